//! `synthetic-deap`: a deterministic stand-in for DEAP that writes the real file
//! format (`data_preprocessed_python/sNN.dat`, Python 2 cPickle of float64 arrays), so
//! the default pipeline goes through the same reader a researcher's folder does. The
//! generative model is described in `../SYNTHETIC.md`.

mod model;
mod signals;

use std::fmt::Write as _;

use serde_json::{Map, Value};

pub use model::{generate_subject, SynthConfig, SyntheticSubject};

use crate::data::deap::{write_subject_pickle, LABEL_NAMES, PYTHON_FOLDER};
use crate::stage::{Context, IoContext, Outcome, ParamKind, ParamSpec, Stage, StageError};

/// Per-trial latents of every subject (ground truth for diagnostics; not read by the pipeline).
pub const LATENTS_FILE: &str = "latents.csv";

pub struct SyntheticDeap;

impl SyntheticDeap {
    fn config(ctx: &Context) -> Result<SynthConfig, StageError> {
        let p = &ctx.params;
        let cfg = SynthConfig {
            subjects: p.usize("subjects")?,
            trials: p.usize("trials")?,
            seconds: p.f64("seconds")?,
            baseline_s: p.f64("baseline_s")?,
            sample_rate: p.f64("sample_rate")?,
            eeg_effect: p.f64("eeg_effect")?,
            eog_effect: p.f64("eog_effect")?,
            label_noise: p.f64("label_noise")?,
            subject_variability: p.f64("subject_variability")?,
            seed: ctx.seed,
        };
        let fail = |m: &str| Err(StageError::Param(m.to_string()));
        if !(1..=usize::from(u16::MAX)).contains(&cfg.subjects) {
            return fail("subjects must be between 1 and 65535");
        }
        if !(1..=usize::from(u16::MAX)).contains(&cfg.trials) {
            return fail("trials must be between 1 and 65535");
        }
        if !(cfg.sample_rate > 0.0 && cfg.seconds > 0.0 && cfg.baseline_s >= 0.0) {
            return fail("sample_rate and seconds must be > 0 and baseline_s >= 0");
        }
        // cPickle writes the data as one py2 str of at most 2^31 - 1 bytes.
        let bytes = cfg.trials as f64 * 40.0 * cfg.samples() as f64 * 8.0;
        if cfg.samples() == 0 || bytes >= 2f64.powi(31) {
            return fail(
                "trials × 40 × samples × 8 bytes must be between 1 and 2^31 - 1 (cPickle's limit)",
            );
        }
        if cfg.label_noise < 0.0 || cfg.subject_variability < 0.0 {
            return fail("label_noise and subject_variability must be >= 0");
        }
        Ok(cfg)
    }
}

impl Stage for SyntheticDeap {
    fn name(&self) -> &'static str {
        "synthetic-deap"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "deterministic DEAP stand-in: writes data_preprocessed_python/sNN.dat exactly as DEAP ships them"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::new("subjects", ParamKind::Int, 4, "number of subjects (DEAP: 32)"),
            ParamSpec::new("trials", ParamKind::Int, 20, "trials per subject (DEAP: 40)"),
            ParamSpec::new("seconds", ParamKind::Float, 60.0, "stimulus seconds per trial (DEAP: 60)"),
            ParamSpec::new("baseline_s", ParamKind::Float, 3.0, "pre-trial baseline seconds (DEAP: 3)"),
            ParamSpec::new("sample_rate", ParamKind::Float, 128.0, "samples per second (DEAP: 128)"),
            ParamSpec::new(
                "eeg_effect",
                ParamKind::Float,
                SynthConfig::default().eeg_effect,
                "strength of the latents' EEG band-power effects (0 = none)",
            ),
            ParamSpec::new(
                "eog_effect",
                ParamKind::Float,
                SynthConfig::default().eog_effect,
                "strength of the latents' effects on blink and saccade rates (0 = none)",
            ),
            ParamSpec::new(
                "label_noise",
                ParamKind::Float,
                1.0,
                "SD in rating points between a latent state and its 1-9 self-rating",
            ),
            ParamSpec::new(
                "subject_variability",
                ParamKind::Float,
                1.0,
                "scales every between-subject difference (gains, rhythms, blink rates, rating bias)",
            ),
            ParamSpec::new("seed", ParamKind::Int, 0, "random seed: same seed, same bytes"),
        ]
    }
    fn produces(&self) -> Vec<&'static str> {
        vec![PYTHON_FOLDER, LATENTS_FILE]
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        let cfg = Self::config(ctx)?;
        let dir = ctx.out_dir.join(PYTHON_FOLDER);
        std::fs::create_dir_all(&dir).at(&dir)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(ctx.threads.max(1))
            .build()
            .map_err(|e| StageError::Data(format!("cannot start worker threads: {e}")))?;
        let mut latents = String::from("subject,trial,arousal,valence,");
        latents.push_str(&LABEL_NAMES.join(","));
        latents.push('\n');
        ctx.progress.start("subjects", cfg.subjects as u64);
        let mut bytes = 0u64;
        for s in 1..=cfg.subjects {
            ctx.check_cancelled()?;
            let subject = u16::try_from(s).expect("subjects <= 65535 was checked");
            let gen = pool.install(|| generate_subject(&cfg, subject));
            let path = dir.join(format!("s{subject:02}.dat"));
            write_subject_pickle(
                &path,
                [cfg.trials, 40, cfg.samples()],
                &gen.data,
                &gen.labels,
            )?;
            bytes += std::fs::metadata(&path).at(&path)?.len();
            for (t, ((a, v), l)) in gen
                .latents
                .iter()
                .zip(gen.labels.chunks_exact(4))
                .enumerate()
            {
                let _ = writeln!(
                    latents,
                    "{subject},{},{a},{v},{},{},{},{}",
                    t + 1,
                    l[0],
                    l[1],
                    l[2],
                    l[3]
                );
            }
            ctx.progress.update(s as u64, &format!("s{subject:02}.dat"));
        }
        let path = ctx.out_dir.join(LATENTS_FILE);
        std::fs::write(&path, latents).at(&path)?;
        crate::data::provenance::mark(&dir, self.name(), ctx.seed)?;
        let mut m = Map::new();
        m.insert("subjects".into(), Value::from(cfg.subjects));
        m.insert("trials".into(), Value::from(cfg.subjects * cfg.trials));
        m.insert("samples_per_trial".into(), Value::from(cfg.samples()));
        m.insert("bytes_written".into(), Value::from(bytes));
        Ok(Outcome::with_metrics(m))
    }
}
