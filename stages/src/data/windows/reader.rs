//! Reading `windows.parquet` (written by [`super::make_windows`]): its key-value
//! metadata and its rows a record batch at a time, checking the schema; errors name
//! the file and what is wrong.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float32Type};
use polars::prelude::{col, PolarsError};

use crate::data::columns::{column, open_parquet, u16_column, u8_column};
use crate::data::tables::read::scan;
use crate::stage::StageError;

/// A group of channels a network branch reads, found by the `kinds` metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modality {
    Eeg,
    Eog,
}

impl Modality {
    pub fn kind(self) -> &'static str {
        match self {
            Modality::Eeg => "eeg",
            Modality::Eog => "eog",
        }
    }
}

/// File-level metadata of `windows.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowsMeta {
    pub channels: Vec<String>,
    /// "eeg" | "eog" | "other", one per channel.
    pub kinds: Vec<String>,
    /// Samples per channel per window (T).
    pub samples: usize,
    pub sample_rate: f32,
    pub dataset: String,
    /// The synthetic generator the data came from ("" for recorded data).
    pub generated_by: String,
}

impl WindowsMeta {
    /// Indices of the channels of `modality`, in table order.
    pub fn channels_of(&self, modality: Modality) -> Vec<usize> {
        self.kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| k.as_str() == modality.kind())
            .map(|(i, _)| i)
            .collect()
    }
}

/// Which window a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowId {
    pub subject: u16,
    pub trial: u16,
    pub window: u16,
}

/// One decoded record batch of `windows.parquet`.
pub(crate) struct WindowsBatch {
    pub(crate) ids: Vec<WindowId>,
    pub(crate) arousal: Vec<u8>,
    pub(crate) valence: Vec<u8>,
    /// `len × channels × samples`.
    pub(crate) data: Vec<f32>,
}

impl WindowsBatch {
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Streams `windows.parquet` a record batch at a time, checking the schema.
pub(crate) struct WindowsReader {
    path: PathBuf,
    pub(crate) meta: WindowsMeta,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
}

impl WindowsReader {
    pub(crate) fn open(path: &Path) -> Result<WindowsReader, StageError> {
        let builder = open_parquet(path)?;
        let meta = read_windows_meta(
            path,
            builder.metadata().file_metadata().key_value_metadata(),
        )?;
        let reader = builder
            .with_batch_size(256)
            .build()
            .map_err(|e| StageError::bad_file(path, format!("reading Parquet: {e}")))?;
        Ok(WindowsReader {
            path: path.to_path_buf(),
            meta,
            reader,
        })
    }

    pub(crate) fn next_batch(&mut self) -> Result<Option<WindowsBatch>, StageError> {
        let path = self.path.as_path();
        let Some(batch) = self.reader.next() else {
            return Ok(None);
        };
        let batch =
            batch.map_err(|e| StageError::bad_file(path, format!("reading Parquet: {e}")))?;
        let subject = u16_column(path, &batch, "subject")?;
        let trial = u16_column(path, &batch, "trial")?;
        let window = u16_column(path, &batch, "window")?;
        let arousal = u8_column(path, &batch, "arousal")?;
        let valence = u8_column(path, &batch, "valence")?;
        let row_len = self.meta.channels.len() * self.meta.samples;
        let col = column(path, &batch, "data")?;
        let (values, width): (&dyn Array, Option<usize>) = match col.data_type() {
            DataType::FixedSizeList(_, n) => {
                let l = col.as_fixed_size_list();
                (l.values().as_ref(), Some(*n as usize))
            }
            DataType::List(_) => (col.as_list::<i32>().values().as_ref(), None),
            DataType::LargeList(_) => (col.as_list::<i64>().values().as_ref(), None),
            other => {
                return Err(StageError::bad_file(
                    path,
                    format!("column `data` has type {other}, expected a fixed-size list of f32"),
                ))
            }
        };
        let floats = values.as_primitive_opt::<Float32Type>().ok_or_else(|| {
            StageError::bad_file(
                path,
                format!("column `data` holds {}, expected f32", values.data_type()),
            )
        })?;
        if floats.null_count() > 0 {
            return Err(StageError::bad_file(
                path,
                "column `data` has missing samples",
            ));
        }
        if let Some(w) = width {
            if w != row_len {
                return Err(StageError::bad_file(
                    path,
                    format!(
                        "column `data` holds {w} values per window, but the metadata says {} channels × {} samples = {row_len}",
                        self.meta.channels.len(),
                        self.meta.samples
                    ),
                ));
            }
        }
        // Variable-length lists: check every row's length through the offsets.
        let data: Vec<f32> = match col.data_type() {
            DataType::FixedSizeList(..) => {
                let l = col.as_fixed_size_list();
                let start = l.offset() * row_len;
                floats.values()[start..start + l.len() * row_len].to_vec()
            }
            _ => {
                let mut out = Vec::with_capacity(batch.num_rows() * row_len);
                for r in 0..batch.num_rows() {
                    let (a, b) = match col.data_type() {
                        DataType::List(_) => {
                            let o = col.as_list::<i32>().value_offsets();
                            (o[r] as usize, o[r + 1] as usize)
                        }
                        _ => {
                            let o = col.as_list::<i64>().value_offsets();
                            (o[r] as usize, o[r + 1] as usize)
                        }
                    };
                    if b - a != row_len {
                        return Err(StageError::bad_file(
                            path,
                            format!(
                                "subject {} trial {} window {}: {} values, expected {} channels × {} samples = {row_len}",
                                subject[r], trial[r], window[r], b - a,
                                self.meta.channels.len(), self.meta.samples
                            ),
                        ));
                    }
                    out.extend_from_slice(&floats.values()[a..b]);
                }
                out
            }
        };
        let ids = (0..batch.num_rows())
            .map(|r| WindowId {
                subject: subject[r],
                trial: trial[r],
                window: window[r],
            })
            .collect();
        Ok(Some(WindowsBatch {
            ids,
            arousal,
            valence,
            data,
        }))
    }
}

fn read_windows_meta(
    path: &Path,
    kv: Option<&Vec<parquet::file::metadata::KeyValue>>,
) -> Result<WindowsMeta, StageError> {
    let get = |key: &str| -> Option<String> {
        kv.and_then(|kv| kv.iter().find(|e| e.key == key))
            .and_then(|e| e.value.clone())
    };
    let need = |key: &str| {
        get(key).ok_or_else(|| {
            StageError::bad_file(
                path,
                format!("missing key-value metadata `{key}` (written by the windows stage)"),
            )
        })
    };
    let list = |key: &str, text: &str| -> Result<Vec<String>, StageError> {
        serde_json::from_str::<Vec<String>>(text).map_err(|e| {
            StageError::bad_file(
                path,
                format!("metadata `{key}` is not a JSON list of strings: {e}"),
            )
        })
    };
    let channels = list("channels", &need("channels")?)?;
    let kinds = match get("kinds") {
        Some(text) => list("kinds", &text)?,
        // Older tables: derive the kind from the channel name.
        None => channels
            .iter()
            .map(|c| crate::data::tables::channel_kind(c).to_string())
            .collect(),
    };
    if kinds.len() != channels.len() {
        return Err(StageError::bad_file(
            path,
            format!(
                "metadata lists {} channels but {} kinds",
                channels.len(),
                kinds.len()
            ),
        ));
    }
    let samples_text = need("samples")?;
    let samples: usize = samples_text.trim().parse().map_err(|_| {
        StageError::bad_file(
            path,
            format!("metadata `samples` = {samples_text:?} is not an integer"),
        )
    })?;
    if samples == 0 || channels.is_empty() {
        return Err(StageError::bad_file(
            path,
            "metadata says windows have no samples or no channels",
        ));
    }
    let sample_rate = match get("sample_rate") {
        Some(t) => t.trim().parse().map_err(|_| {
            StageError::bad_file(
                path,
                format!("metadata `sample_rate` = {t:?} is not a number"),
            )
        })?,
        None => 0.0,
    };
    Ok(WindowsMeta {
        channels,
        kinds,
        samples,
        sample_rate,
        dataset: get("dataset").unwrap_or_default(),
        generated_by: get(crate::data::provenance::KEY).unwrap_or_default(),
    })
}

/// The distinct (subject, trial) pairs of a windows table.
pub(crate) fn read_trials(path: &Path) -> Result<Vec<(u16, u16)>, StageError> {
    let err = |e: PolarsError| StageError::bad_file(path, format!("reading Parquet: {e}"));
    let df = scan(path)?
        .select([col("subject"), col("trial")])
        .collect()
        .map_err(err)?;
    let s = df.column("subject").map_err(err)?.u16().map_err(err)?;
    let t = df.column("trial").map_err(err)?.u16().map_err(err)?;
    let mut out = BTreeSet::new();
    for (s, t) in s.iter().zip(t.iter()) {
        match (s, t) {
            (Some(s), Some(t)) => {
                out.insert((s, t));
            }
            _ => return Err(StageError::bad_file(path, "null subject or trial")),
        }
    }
    if out.is_empty() {
        return Err(StageError::bad_file(path, "no windows"));
    }
    Ok(out.into_iter().collect())
}
