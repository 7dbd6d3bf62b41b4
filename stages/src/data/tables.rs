//! The Parquet tables the data stages exchange (see `docs/data.md`):
//! `recordings.parquet`, `labels.parquet`, `windows.parquet`, `splits.parquet`.
//! Recordings and labels have their home here (schema, writers, and readers in
//! [`read`]); windows in `crate::data::windows` (its `reader`), splits in
//! `crate::data::folds`.
//! Written with arrow + parquet (zstd), streamed a subject at a time
//! (`recordings.parquet`: [`RecordingsWriter`]).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Builder, RecordBatch, StringBuilder, UInt16Builder};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};

pub use crate::data::recordings_writer::{RecordingsWriter, RowKey};
use crate::stage::StageError;

pub(crate) mod read;

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

/// The settings every table is written with: zstd level 3 and the file-level
/// key/values (row groups: Parquet's default size). The windows and splits tables
/// use exactly these; changing them changes every output digest downstream.
pub(crate) fn zstd_props(metadata: &[(&str, String)]) -> WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid zstd level"),
        ))
        .set_key_value_metadata(Some(
            metadata
                .iter()
                .map(|(k, v)| KeyValue::new(k.to_string(), v.clone()))
                .collect(),
        ))
}

/// [`zstd_props`] with row groups of at most 1024 rows (the recordings and labels
/// tables, read a subject at a time).
pub(crate) fn writer_props(metadata: &[(&str, String)]) -> WriterPropertiesBuilder {
    zstd_props(metadata).set_max_row_group_row_count(Some(1024))
}

pub(crate) fn parquet_err(path: &Path, e: impl std::fmt::Display) -> StageError {
    StageError::bad_file(path, format!("writing Parquet: {e}"))
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
    let mut w = ArrowWriter::try_new(file, schema, Some(writer_props(&[]).build()))
        .map_err(|e| parquet_err(path, e))?;
    w.write(&batch).map_err(|e| parquet_err(path, e))?;
    w.close().map_err(|e| parquet_err(path, e))?;
    Ok(())
}
