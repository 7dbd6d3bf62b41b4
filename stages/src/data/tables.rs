//! The Parquet tables the data stages exchange (see `../shared/spec/data.md`):
//! `recordings.parquet`, `labels.parquet`, `windows.parquet`, `splits.parquet`.
//! Written with arrow + parquet (zstd), streamed a subject at a time.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Builder, ListBuilder, RecordBatch, StringBuilder, UInt16Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::stage::StageError;

pub const RECORDINGS: &str = "recordings.parquet";
pub const LABELS: &str = "labels.parquet";
pub const WINDOWS: &str = "windows.parquet";
pub const SPLITS: &str = "splits.parquet";

/// The kind of a channel, from its name.
pub fn channel_kind(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    if n.contains("eog") {
        "eog"
    } else if crate::data::channels::is_eeg(name) {
        "eeg"
    } else {
        "other"
    }
}

/// One channel of one trial.
pub struct ChannelRecord<'a> {
    pub subject: u16,
    pub trial: u16,
    pub channel: &'a str,
    pub kind: &'a str,
    pub sample_rate: f32,
    pub samples: &'a [f32],
}

/// One trial's self-ratings (1-9). MAHNOB has no liking rating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelRecord {
    pub subject: u16,
    pub trial: u16,
    pub valence: f32,
    pub arousal: f32,
    pub dominance: Option<f32>,
    pub liking: Option<f32>,
}

fn writer_props(metadata: &[(&str, String)]) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(1024))
        .set_key_value_metadata(Some(
            metadata
                .iter()
                .map(|(k, v)| KeyValue::new(k.to_string(), v.clone()))
                .collect(),
        ))
        .build()
}

fn parquet_err(path: &Path, e: impl std::fmt::Display) -> StageError {
    StageError::bad_file(path, format!("writing Parquet: {e}"))
}

/// Streams `recordings.parquet`: call [`RecordingsWriter::push`] per channel and
/// [`RecordingsWriter::flush`] after each subject so memory stays at one subject.
pub struct RecordingsWriter {
    path: PathBuf,
    dataset: String,
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    subject: UInt16Builder,
    trial: UInt16Builder,
    channel: StringBuilder,
    kind: StringBuilder,
    rate: Float32Builder,
    samples: ListBuilder<Float32Builder>,
    rows: usize,
}

impl RecordingsWriter {
    /// `metadata`: file-level key/values (source path, source digest, reader version).
    pub fn create(
        path: &Path,
        dataset: &str,
        metadata: &[(&str, String)],
    ) -> Result<Self, StageError> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("dataset", DataType::Utf8, false),
            Field::new("subject", DataType::UInt16, false),
            Field::new("trial", DataType::UInt16, false),
            Field::new("channel", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("sample_rate", DataType::Float32, false),
            Field::new(
                "samples",
                DataType::List(Arc::new(Field::new("item", DataType::Float32, false))),
                false,
            ),
        ]));
        let file = File::create(path).map_err(|e| StageError::io(path, e))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_props(metadata)))
            .map_err(|e| parquet_err(path, e))?;
        Ok(RecordingsWriter {
            path: path.to_path_buf(),
            dataset: dataset.to_string(),
            writer,
            schema,
            subject: UInt16Builder::new(),
            trial: UInt16Builder::new(),
            channel: StringBuilder::new(),
            kind: StringBuilder::new(),
            rate: Float32Builder::new(),
            samples: ListBuilder::new(Float32Builder::new()).with_field(Arc::new(Field::new(
                "item",
                DataType::Float32,
                false,
            ))),
            rows: 0,
        })
    }

    pub fn push(&mut self, r: &ChannelRecord) {
        self.subject.append_value(r.subject);
        self.trial.append_value(r.trial);
        self.channel.append_value(r.channel);
        self.kind.append_value(r.kind);
        self.rate.append_value(r.sample_rate);
        self.samples.values().append_slice(r.samples);
        self.samples.append(true);
        self.rows += 1;
    }

    /// Write the rows pushed so far as one row group.
    pub fn flush(&mut self) -> Result<(), StageError> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut dataset = StringBuilder::new();
        for _ in 0..self.rows {
            dataset.append_value(&self.dataset);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(dataset.finish()),
            Arc::new(self.subject.finish()),
            Arc::new(self.trial.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.rate.finish()),
            Arc::new(self.samples.finish()),
        ];
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| parquet_err(&self.path, e))?;
        self.writer
            .write(&batch)
            .map_err(|e| parquet_err(&self.path, e))?;
        self.writer
            .flush()
            .map_err(|e| parquet_err(&self.path, e))?;
        self.rows = 0;
        Ok(())
    }

    pub fn finish(mut self) -> Result<(), StageError> {
        self.flush()?;
        self.writer
            .close()
            .map_err(|e| parquet_err(&self.path, e))?;
        Ok(())
    }
}

/// Writes `labels.parquet` (small: one row per trial).
pub fn write_labels(path: &Path, dataset: &str, labels: &[LabelRecord]) -> Result<(), StageError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("dataset", DataType::Utf8, false),
        Field::new("subject", DataType::UInt16, false),
        Field::new("trial", DataType::UInt16, false),
        Field::new("valence", DataType::Float32, false),
        Field::new("arousal", DataType::Float32, false),
        Field::new("dominance", DataType::Float32, true),
        Field::new("liking", DataType::Float32, true),
    ]));
    let mut ds = StringBuilder::new();
    let (mut s, mut t) = (UInt16Builder::new(), UInt16Builder::new());
    let (mut v, mut a, mut d, mut l) = (
        Float32Builder::new(),
        Float32Builder::new(),
        Float32Builder::new(),
        Float32Builder::new(),
    );
    for r in labels {
        ds.append_value(dataset);
        s.append_value(r.subject);
        t.append_value(r.trial);
        v.append_value(r.valence);
        a.append_value(r.arousal);
        d.append_option(r.dominance);
        l.append_option(r.liking);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ds.finish()),
        Arc::new(s.finish()),
        Arc::new(t.finish()),
        Arc::new(v.finish()),
        Arc::new(a.finish()),
        Arc::new(d.finish()),
        Arc::new(l.finish()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| parquet_err(path, e))?;
    let file = File::create(path).map_err(|e| StageError::io(path, e))?;
    let mut w = ArrowWriter::try_new(file, schema, Some(writer_props(&[])))
        .map_err(|e| parquet_err(path, e))?;
    w.write(&batch).map_err(|e| parquet_err(path, e))?;
    w.close().map_err(|e| parquet_err(path, e))?;
    Ok(())
}
