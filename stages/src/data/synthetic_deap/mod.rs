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
use crate::params::ParamSchema;
use crate::stage::{Context, IoContext, Outcome, Stage, StageError};

/// Per-trial latents of every subject (ground truth for diagnostics; not read by the pipeline).
pub const LATENTS_FILE: &str = "latents.csv";

pub struct SyntheticDeap;

crate::stage_params! {
    /// What `synthetic-deap` takes.
    pub struct SyntheticDeapParams {
        /// number of subjects (DEAP: 32)
        subjects: usize = SynthConfig::default().subjects;
        /// trials per subject (DEAP: 40)
        trials: usize = SynthConfig::default().trials;
        /// stimulus seconds per trial (DEAP: 60)
        seconds: f64 = SynthConfig::default().seconds;
        /// pre-trial baseline seconds (DEAP: 3)
        baseline_s: f64 = SynthConfig::default().baseline_s;
        /// samples per second (DEAP: 128)
        sample_rate: f64 = SynthConfig::default().sample_rate;
        /// strength of the latents' EEG band-power effects (0 = none)
        eeg_effect: f64 = SynthConfig::default().eeg_effect;
        /// strength of the latents' effects on blink and saccade rates (0 = none)
        eog_effect: f64 = SynthConfig::default().eog_effect;
        /// SD in rating points between a latent state and its 1-9 self-rating
        label_noise: f64 = SynthConfig::default().label_noise;
        /// scales every between-subject difference (gains, rhythms, blink rates, rating bias)
        subject_variability: f64 = SynthConfig::default().subject_variability;
        /// random seed: same seed, same bytes
        seed: i64 = 0;
    }
}

impl SyntheticDeap {
    fn config(ctx: &Context) -> Result<SynthConfig, StageError> {
        let p: SyntheticDeapParams = ctx.params()?;
        let cfg = SynthConfig {
            subjects: p.subjects,
            trials: p.trials,
            seconds: p.seconds,
            baseline_s: p.baseline_s,
            sample_rate: p.sample_rate,
            eeg_effect: p.eeg_effect,
            eog_effect: p.eog_effect,
            label_noise: p.label_noise,
            subject_variability: p.subject_variability,
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
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<SyntheticDeapParams>()
    }
    fn produces(&self) -> Vec<&'static str> {
        vec![PYTHON_FOLDER, LATENTS_FILE]
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        let cfg = Self::config(ctx)?;
        let dir = ctx.out_dir.join(PYTHON_FOLDER);
        std::fs::create_dir_all(&dir).at(&dir)?;
        let pool = ctx.thread_pool()?;
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
