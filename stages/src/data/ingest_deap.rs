//! `ingest-deap`: DEAP subject files (`sNN.dat` pickles or `sNN.mat`) →
//! `recordings.parquet` (one row per subject, trial, channel) + `labels.parquet`.
//!
//! Streams a subject at a time: with more than one thread a reader thread decodes the
//! next subject while this one is written. The hand-over is a rendezvous channel, so
//! at most two subjects' samples are held (the one being written, plus its copy in the
//! Arrow builders, and the next one, decoded and waiting).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::data::channels::DEAP_CHANNELS;
use crate::data::deap::{
    digest_files, locate, read_subject, FormatChoice, OnNan, SubjectData, SubjectFile,
    DOWNLOAD_HINT, MATLAB_FOLDER, PYTHON_FOLDER, READER_VERSION, SAMPLE_RATE,
};
use crate::data::tables::{
    channel_kind, write_labels, ChannelRecord, LabelRecord, RecordingsWriter, LABELS, RECORDINGS,
};
use crate::stage::{Context, Outcome, ParamKind, ParamSpec, Stage, StageError};

pub struct IngestDeap;

/// The dataset name written into the tables.
pub const DATASET: &str = "deap";

impl IngestDeap {
    /// The folder and subject files: the `path` parameter, else the first upstream
    /// folder that holds DEAP files (e.g. synthetic-deap's output).
    fn source(
        ctx: &Context,
        choice: FormatChoice,
    ) -> Result<(PathBuf, Vec<SubjectFile>), StageError> {
        if ctx.params.is_set("path") {
            return locate(&ctx.params.path("path")?, choice);
        }
        let mut first_error = None;
        for input in &ctx.inputs {
            match locate(&input.dir, choice) {
                Ok(found) => return Ok(found),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| {
            StageError::Data(format!(
                "ingest-deap has no DEAP files to read: set `path:` to a DEAP \
                 `{PYTHON_FOLDER}` (or `{MATLAB_FOLDER}`) folder, or add a synthetic-deap stage to \
                 `needs`. {DOWNLOAD_HINT}"
            ))
        }))
    }
}

impl Stage for IngestDeap {
    fn name(&self) -> &'static str {
        "ingest-deap"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "DEAP sNN.dat (or sNN.mat) files -> recordings.parquet + labels.parquet"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::optional(
                "path",
                ParamKind::Path,
                "DEAP folder (data_preprocessed_python, data_preprocessed_matlab or their parent); \
                 default: the upstream synthetic-deap output",
            )
            .if_missing(crate::data::deap::DOWNLOAD_HINT),
            ParamSpec::new(
                "format",
                ParamKind::choice(&["auto", "pickle", "mat"]),
                "auto",
                "which files to read; auto prefers sNN.dat over sNN.mat",
            ),
            ParamSpec::new(
                "on_nan",
                ParamKind::choice(&["error", "zero", "drop-trial"]),
                "error",
                "NaN/inf samples: fail naming subject/trial/channel, replace with 0, or leave the trial out",
            ),
            ParamSpec::new("sample_rate", ParamKind::Float, SAMPLE_RATE, "sample rate of the files (Hz)"),
        ]
    }
    fn consumes(&self) -> Vec<&'static str> {
        // Optional: `path` replaces it.
        vec![PYTHON_FOLDER]
    }
    fn produces(&self) -> Vec<&'static str> {
        vec![RECORDINGS, LABELS]
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        let started = Instant::now();
        let choice = FormatChoice::parse(ctx.params.str("format")?)?;
        let on_nan = OnNan::parse(ctx.params.str("on_nan")?)?;
        let sample_rate = ctx.params.f32("sample_rate")?;
        if sample_rate.is_nan() || sample_rate <= 0.0 {
            return Err(StageError::Param("sample_rate must be > 0".into()));
        }
        let (folder, files) = Self::source(ctx, choice)?;
        let format = files.first().map_or("none", |f| f.format.name());
        ctx.progress.start("hashing source files", 0);
        let digest = digest_files(&files)?;
        let metadata = [
            ("source_path", folder.display().to_string()),
            ("source_digest", digest.clone()),
            ("source_files", files.len().to_string()),
            ("source_format", format.to_string()),
            ("reader_version", READER_VERSION.to_string()),
            ("on_nan", ctx.params.str("on_nan")?.to_string()),
        ];
        let mut writer =
            RecordingsWriter::create(&ctx.out_dir.join(RECORDINGS), DATASET, &metadata)?;
        let mut labels = Vec::new();
        let mut stats = Stats::default();
        ctx.progress.start("subjects", files.len() as u64);
        let mut write = |s: SubjectData| -> Result<(), StageError> {
            ctx.check_cancelled()?;
            write_subject(&mut writer, &mut labels, &s, sample_rate)?;
            stats.add(&s);
            ctx.progress
                .update(stats.subjects as u64, &format!("subject {}", s.subject));
            Ok(())
        };
        if ctx.threads <= 1 {
            for f in &files {
                write(read_subject(f, on_nan)?)?;
            }
        } else {
            std::thread::scope(|scope| -> Result<(), StageError> {
                let (tx, rx) = sync_channel(0);
                let cancel = ctx.cancel.clone();
                let files = &files;
                scope.spawn(move || {
                    for f in files {
                        if cancel.load(Ordering::Relaxed) {
                            return;
                        }
                        let read = read_subject(f, on_nan);
                        let failed = read.is_err();
                        // A closed channel means the writer stopped: stop too.
                        if tx.send(read).is_err() || failed {
                            return;
                        }
                    }
                });
                for read in rx {
                    write(read?)?;
                }
                Ok(())
            })?;
        }
        ctx.check_cancelled()?;
        writer.finish()?;
        write_labels(&ctx.out_dir.join(LABELS), DATASET, &labels)?;

        let seconds = started.elapsed().as_secs_f64();
        let mut m = Map::new();
        m.insert("subjects".into(), Value::from(stats.subjects));
        m.insert("trials".into(), Value::from(stats.trials));
        m.insert("dropped_trials".into(), Value::from(stats.dropped));
        m.insert("channels".into(), Value::from(stats.channels));
        m.insert("samples_per_trial".into(), Value::from(stats.samples));
        m.insert("bytes_read".into(), Value::from(stats.bytes));
        m.insert("source_digest".into(), Value::from(digest));
        m.insert("seconds".into(), Value::from(seconds));
        m.insert(
            "mb_per_s".into(),
            Value::from(stats.bytes as f64 / 1e6 / seconds.max(1e-9)),
        );
        Ok(Outcome::with_metrics(m))
    }
}

#[derive(Default)]
struct Stats {
    subjects: usize,
    trials: usize,
    dropped: usize,
    channels: usize,
    samples: usize,
    bytes: u64,
}

impl Stats {
    fn add(&mut self, s: &SubjectData) {
        self.subjects += 1;
        self.trials += s.trials();
        self.dropped += s.dropped.len();
        self.channels = self.channels.max(s.channels);
        self.samples = self.samples.max(s.samples);
        self.bytes += s.bytes;
    }
}

/// One subject's rows, then a flush (one row group per subject, at most 1024 rows).
fn write_subject(
    writer: &mut RecordingsWriter,
    labels: &mut Vec<LabelRecord>,
    s: &SubjectData,
    sample_rate: f32,
) -> Result<(), StageError> {
    for (row, &trial) in s.trial_numbers.iter().enumerate() {
        for (c, name) in DEAP_CHANNELS.iter().enumerate().take(s.channels) {
            writer.push(&ChannelRecord {
                subject: s.subject,
                trial,
                channel: name,
                kind: channel_kind(name),
                sample_rate,
                samples: s.channel(row, c),
            });
        }
        let [valence, arousal, dominance, liking] = s.labels[row];
        labels.push(LabelRecord {
            subject: s.subject,
            trial,
            valence,
            arousal,
            dominance: Some(dominance),
            liking: Some(liking),
        });
    }
    writer.flush()
}

#[cfg(test)]
#[path = "ingest_deap_tests.rs"]
mod tests;
