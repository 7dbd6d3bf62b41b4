//! `ingest-deap`: DEAP subject files (`sNN.dat` pickles or `sNN.mat`) →
//! `recordings.parquet` (one row per subject, trial, channel) + `labels.parquet`.
//!
//! Streams a subject at a time: while one subject's row groups are encoded (in
//! parallel, see [`RecordingsWriter`]), the encoded row groups of the subject before
//! are written and the next subject is read. So at most two subjects' samples are
//! held (the one being encoded, the next one) and two subjects' encoded row groups.
//! The samples go from the decoded file to the Parquet encoder without a copy, and
//! each subject is decoded into the buffer of the one two before.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::data::channels::DEAP_CHANNELS;
use crate::data::deap::{
    digest_files, locate, read_subject_into, FormatChoice, OnNan, SubjectData, SubjectFile,
    DOWNLOAD_HINT, MATLAB_FOLDER, PYTHON_FOLDER, READER_VERSION, SAMPLE_RATE,
};
use crate::data::provenance;
use crate::data::tables::{
    channel_kind, write_labels, LabelRecord, RecordingsWriter, RowKey, LABELS, RECORDINGS,
};
use crate::params::ParamSchema;
use crate::stage::{Context, Outcome, Stage, StageError};

pub struct IngestDeap;

crate::stage_params! {
    /// What `ingest-deap` takes.
    pub struct IngestDeapParams {
        /// DEAP folder (data_preprocessed_python, data_preprocessed_matlab or their parent); default: the upstream synthetic-deap output
        path: Option<PathBuf> = None, if_missing DOWNLOAD_HINT;
        /// which files to read; auto prefers sNN.dat over sNN.mat
        format: FormatChoice = FormatChoice::Auto;
        /// NaN/inf samples: fail naming subject/trial/channel, replace with 0, or leave the trial out
        on_nan: OnNan = OnNan::Error;
        /// sample rate of the files (Hz)
        sample_rate: f64 = SAMPLE_RATE;
    }
}

/// The dataset name written into the tables.
pub const DATASET: &str = "deap";

impl IngestDeap {
    /// The folder and subject files: the `path` parameter, else the first upstream
    /// folder that holds DEAP files (e.g. synthetic-deap's output).
    fn source(
        ctx: &Context,
        p: &IngestDeapParams,
    ) -> Result<(PathBuf, Vec<SubjectFile>), StageError> {
        let choice = p.format;
        if let Some(path) = &p.path {
            return locate(path, choice);
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
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<IngestDeapParams>()
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
        let p: IngestDeapParams = ctx.params()?;
        let on_nan = p.on_nan;
        let sample_rate = p.sample_rate as f32;
        if sample_rate.is_nan() || sample_rate <= 0.0 {
            return Err(StageError::Param("sample_rate must be > 0".into()));
        }
        let (folder, files) = Self::source(ctx, &p)?;
        let format = files.first().map_or("none", |f| f.format.name());
        ctx.progress.start("hashing source files", 0);
        let digest = digest_files(&files)?;
        let metadata = [
            (
                "source_path",
                provenance::source_label(ctx, p.path.is_some(), &folder),
            ),
            ("source_digest", digest.clone()),
            ("source_files", files.len().to_string()),
            ("source_format", format.to_string()),
            ("reader_version", READER_VERSION.to_string()),
            ("on_nan", on_nan.name().to_string()),
            (provenance::KEY, provenance::generator_of(&folder)),
        ];
        let mut writer =
            RecordingsWriter::create(&ctx.out_dir.join(RECORDINGS), DATASET, &metadata)?;
        let mut labels = Vec::new();
        let mut stats = Stats::default();
        ctx.progress.start("subjects", files.len() as u64);
        let pool = ctx.thread_pool()?;
        pool.install(|| -> Result<(), StageError> {
            let read = |i: usize, buffer: Vec<f32>| {
                files.get(i).map(|f| read_subject_into(f, on_nan, buffer))
            };
            let (encoder, sink) = writer.split()?;
            let mut next = read(0, Vec::new());
            let (mut spare, mut encoded) = (Vec::new(), None);
            for i in 0..files.len() {
                ctx.check_cancelled()?;
                let Some(current) = next.take() else {
                    break;
                };
                let mut s = current?;
                // While this subject's row groups are encoded: write the ones of the
                // subject before, and read the next subject into that one's buffer.
                let ((appended, read_next), this) = rayon::join(
                    || {
                        let appended = encoded.take().map(|e| sink.append(e));
                        (appended, read(i + 1, std::mem::take(&mut spare)))
                    },
                    || encoder.encode(&row_keys(&s, sample_rate), &s.data),
                );
                appended.transpose()?;
                encoded = Some(this?);
                add_labels(&mut labels, &s);
                stats.add(&s);
                ctx.progress
                    .update(stats.subjects as u64, &format!("subject {}", s.subject));
                spare = std::mem::take(&mut s.data);
                next = read_next;
            }
            encoded.map_or(Ok(()), |e| sink.append(e))
        })?;
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

/// The row keys of a subject's samples, in its order (trial-major, then channel).
fn row_keys(s: &SubjectData, sample_rate: f32) -> Vec<RowKey<'static>> {
    let mut keys = Vec::with_capacity(s.trials() * s.channels);
    for &trial in &s.trial_numbers {
        for name in DEAP_CHANNELS.iter().take(s.channels) {
            keys.push(RowKey {
                subject: s.subject,
                trial,
                channel: name,
                kind: channel_kind(name),
                sample_rate,
            });
        }
    }
    keys
}

fn add_labels(labels: &mut Vec<LabelRecord>, s: &SubjectData) {
    for (&trial, &[valence, arousal, dominance, liking]) in s.trial_numbers.iter().zip(&s.labels) {
        labels.push(LabelRecord {
            subject: s.subject,
            trial,
            valence,
            arousal,
            dominance: Some(dominance),
            liking: Some(liking),
        });
    }
}

#[cfg(test)]
#[path = "ingest_deap_tests.rs"]
mod tests;
