//! The writer of `recordings.parquet` (schema in [`crate::data::tables`] and docs/data.md):
//! streamed a subject at a time, each subject's row groups encoded in parallel.
//!
//! Why not `ArrowWriter` alone: for a `list<f32>` column it first builds, per sample,
//! an index (8 bytes) and a definition and a repetition level (2 + 2 bytes), then
//! gathers the values through the indices. Here the `samples` column is encoded with
//! parquet's own column writer straight from the `f32` slices (every row reuses one
//! level buffer of a row's length), the small key columns with `ArrowWriter`'s
//! column writers, and the finished column chunks are appended to the file in order.
//! Both are parquet's public API for encoding row groups apart from writing them.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::{
    ArrayRef, Float32Array, Float32Builder, StringArray, StringBuilder, UInt16Array, UInt16Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowRowGroupWriterFactory, ArrowWriter,
};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::writer::{get_column_writer, ColumnCloseResult, ColumnWriter};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesPtr};
use parquet::file::writer::{SerializedFileWriter, SerializedPageWriter, TrackedWrite};
use parquet::schema::types::{ColumnDescPtr, ColumnPath};
use rayon::prelude::*;

use crate::data::tables::{parquet_err, writer_props, ChannelRecord};
use crate::stage::StageError;

/// Most rows in a row group. One flush (a subject) is split into
/// `ceil(rows / ROW_GROUP_ROWS)` row groups of equal size (±1): a DEAP subject
/// (40 trials × 40 channels) into 4 groups of 10 trials. Groups are the unit of
/// parallel encoding, so a subject needs a few for two threads to share the work.
pub(crate) const ROW_GROUP_ROWS: usize = 400;

/// zstd level of the `samples` column. Level 1 on byte-stream-split floats writes a
/// smaller file than level 3 on plain floats (the exponent bytes, gathered in one
/// stream, compress; the low mantissa bytes do not at any level) in about half the
/// time. Measured on the DEAP-size synthetic folder (see
/// `stages/examples/ingest_deap.rs`): 1405 MB at level 1 with the split, 1557 MB at
/// level 3 without.
const SAMPLES_ZSTD_LEVEL: i32 = 1;

/// Data page size of the `samples` column. At parquet's default (1 MiB) the column
/// writer grows and drops page buffers of 1-2 MiB, which glibc's allocator maps and
/// unmaps afresh for every page (a page fault per 4 KiB: ~8 % of the ingest's time);
/// at 256 KiB they are reused. The file grows by ~3 % (zstd frames are per page).
const SAMPLES_PAGE_BYTES: usize = 256 * 1024;

/// Columns before `samples`.
const KEY_COLUMNS: usize = 6;

/// The `samples` leaf: `samples` (LIST) / `list` (repeated) / `item` (float).
fn samples_path() -> ColumnPath {
    ColumnPath::new(vec!["samples".into(), "list".into(), "item".into()])
}

/// [`writer_props`] and, for the `samples` column (nearly all of the bytes),
/// byte-stream-split encoding, no dictionary (samples rarely repeat: the dictionary
/// is abandoned after its first page, a wasted pass) and no min/max statistics (no
/// reader filters on sample values; they cost a pass). The key columns keep their
/// statistics: the windows stage skips row groups by `subject`.
fn recordings_props(metadata: &[(&str, String)]) -> WriterProperties {
    writer_props(metadata)
        .set_column_dictionary_enabled(samples_path(), false)
        .set_column_statistics_enabled(samples_path(), EnabledStatistics::None)
        .set_column_encoding(samples_path(), Encoding::BYTE_STREAM_SPLIT)
        .set_column_data_page_size_limit(samples_path(), SAMPLES_PAGE_BYTES)
        .set_column_compression(
            samples_path(),
            Compression::ZSTD(ZstdLevel::try_new(SAMPLES_ZSTD_LEVEL).expect("valid zstd level")),
        )
        .build()
}

fn recordings_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
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
    ]))
}

/// The values of a `recordings.parquet` row other than its samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowKey<'a> {
    pub subject: u16,
    pub trial: u16,
    pub channel: &'a str,
    pub kind: &'a str,
    pub sample_rate: f32,
}

/// Streams `recordings.parquet`, a subject (one or more row groups) at a time: either
/// [`RecordingsWriter::push`] each channel and [`RecordingsWriter::flush`] after each
/// subject, or hand a subject's samples over in one buffer with
/// [`RecordingsWriter::write_rows`] (no copy). To overlap the encoding of one subject
/// with the writing of the one before, [`RecordingsWriter::split`] it.
///
/// The row groups of a subject are encoded in parallel on the current rayon pool and
/// written in order: the file does not depend on the number of threads.
pub struct RecordingsWriter {
    encoder: RowsEncoder,
    sink: RowsSink,
    subject: UInt16Builder,
    trial: UInt16Builder,
    channel: StringBuilder,
    kind: StringBuilder,
    rate: Float32Builder,
    /// The pushed samples, back to back; `bounds[r]..bounds[r + 1]` is row r's.
    samples: Vec<f32>,
    bounds: Vec<usize>,
}

/// Encodes rows into row groups, without touching the file.
pub struct RowsEncoder {
    path: PathBuf,
    dataset: String,
    columns: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    samples: ColumnDescPtr,
    props: WriterPropertiesPtr,
    /// Row groups encoded so far (the index of the next one).
    groups: AtomicUsize,
    /// Buffers of appended samples columns, for the next row groups to encode into
    /// (pages already faulted in).
    spare: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// Appends encoded row groups to the file, in the order they were encoded.
pub struct RowsSink {
    path: PathBuf,
    file: SerializedFileWriter<BufWriter<File>>,
    spare: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// The row groups of one [`RowsEncoder::encode`] call, to be written with
/// [`RowsSink::append`].
pub struct EncodedRows {
    groups: Vec<EncodedGroup>,
}

/// One encoded row group: the key columns, then the samples column.
struct EncodedGroup {
    keys: Vec<ArrowColumnChunk>,
    samples: Bytes,
    samples_close: ColumnCloseResult,
}

impl RecordingsWriter {
    /// `metadata`: file-level key/values (source path, source digest, reader version).
    pub fn create(
        path: &Path,
        dataset: &str,
        metadata: &[(&str, String)],
    ) -> Result<Self, StageError> {
        let schema = recordings_schema();
        // Appending an encoded column chunk copies it 8 KiB at a time: gathered here,
        // it reaches the file in large writes rather than one system call per 8 KiB.
        let file = BufWriter::with_capacity(
            1 << 20,
            File::create(path).map_err(|e| StageError::io(path, e))?,
        );
        // ArrowWriter sets up the Parquet schema and the embedded Arrow schema; the
        // row groups are then encoded with its lower-level parts.
        let (file, columns) =
            ArrowWriter::try_new(file, schema.clone(), Some(recordings_props(metadata)))
                .and_then(|w| w.into_serialized_writer())
                .map_err(|e| parquet_err(path, e))?;
        let samples = file.schema_descr().column(KEY_COLUMNS);
        if samples.path() != &samples_path()
            || samples.max_def_level() != 1
            || samples.max_rep_level() != 1
        {
            return Err(parquet_err(
                path,
                format!("unexpected Parquet layout of the samples column: {samples:?}"),
            ));
        }
        let spare = Arc::new(Mutex::new(Vec::new()));
        Ok(RecordingsWriter {
            encoder: RowsEncoder {
                path: path.to_path_buf(),
                dataset: dataset.to_string(),
                columns,
                schema,
                samples,
                props: file.properties().clone(),
                groups: AtomicUsize::new(0),
                spare: spare.clone(),
            },
            sink: RowsSink {
                path: path.to_path_buf(),
                file,
                spare,
            },
            subject: UInt16Builder::new(),
            trial: UInt16Builder::new(),
            channel: StringBuilder::new(),
            kind: StringBuilder::new(),
            rate: Float32Builder::new(),
            samples: Vec::new(),
            bounds: vec![0],
        })
    }

    pub fn push(&mut self, r: &ChannelRecord) {
        self.subject.append_value(r.subject);
        self.trial.append_value(r.trial);
        self.channel.append_value(r.channel);
        self.kind.append_value(r.kind);
        self.rate.append_value(r.sample_rate);
        self.samples.extend_from_slice(r.samples);
        self.bounds.push(self.samples.len());
    }

    /// Write the rows pushed so far (one subject) as one or more row groups.
    pub fn flush(&mut self) -> Result<(), StageError> {
        let rows = self.bounds.len() - 1;
        if rows == 0 {
            return Ok(());
        }
        let keys = [
            self.encoder.dataset_column(rows),
            Arc::new(self.subject.finish()) as ArrayRef,
            Arc::new(self.trial.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.rate.finish()),
        ];
        let encoded = self
            .encoder
            .encode_groups(&keys, &self.samples, &self.bounds);
        // Keep the buffers (and their pages) for the next subject.
        self.samples.clear();
        self.bounds.truncate(1);
        self.sink.append(encoded?)
    }

    /// Writes one subject's rows: `keys[r]` with `samples[r * n..(r + 1) * n]`, where
    /// `n = samples.len() / keys.len()` (all rows have the same length).
    pub fn write_rows(&mut self, keys: &[RowKey], samples: &[f32]) -> Result<(), StageError> {
        self.flush()?;
        let encoded = self.encoder.encode(keys, samples)?;
        self.sink.append(encoded)
    }

    /// The encoder and the sink, to encode a subject while the one before is written.
    /// Rows pushed and not flushed are written first.
    pub fn split(&mut self) -> Result<(&RowsEncoder, &mut RowsSink), StageError> {
        self.flush()?;
        Ok((&self.encoder, &mut self.sink))
    }

    pub fn finish(mut self) -> Result<(), StageError> {
        self.flush()?;
        let path = self.sink.path;
        self.sink.file.close().map_err(|e| parquet_err(&path, e))?;
        Ok(())
    }
}

impl RowsEncoder {
    /// Encodes one subject's rows: `keys[r]` with `samples[r * n..(r + 1) * n]`,
    /// where `n = samples.len() / keys.len()` (all rows have the same length).
    pub fn encode(&self, keys: &[RowKey], samples: &[f32]) -> Result<EncodedRows, StageError> {
        if keys.is_empty() {
            return Ok(EncodedRows { groups: Vec::new() });
        }
        if !samples.len().is_multiple_of(keys.len()) {
            return Err(parquet_err(
                &self.path,
                format!(
                    "{} samples do not split into {} rows of equal length",
                    samples.len(),
                    keys.len()
                ),
            ));
        }
        let n = samples.len() / keys.len();
        let bounds: Vec<usize> = (0..=keys.len()).map(|r| r * n).collect();
        let columns = [
            self.dataset_column(keys.len()),
            Arc::new(keys.iter().map(|k| k.subject).collect::<UInt16Array>()) as ArrayRef,
            Arc::new(keys.iter().map(|k| k.trial).collect::<UInt16Array>()),
            Arc::new(
                keys.iter()
                    .map(|k| Some(k.channel))
                    .collect::<StringArray>(),
            ),
            Arc::new(keys.iter().map(|k| Some(k.kind)).collect::<StringArray>()),
            Arc::new(keys.iter().map(|k| k.sample_rate).collect::<Float32Array>()),
        ];
        self.encode_groups(&columns, samples, &bounds)
    }

    fn dataset_column(&self, rows: usize) -> ArrayRef {
        Arc::new(std::iter::repeat_n(Some(self.dataset.as_str()), rows).collect::<StringArray>())
    }

    /// Splits the rows into row groups of at most [`ROW_GROUP_ROWS`] rows (as equal
    /// as can be) and encodes them in parallel. Row `r` holds
    /// `samples[bounds[r]..bounds[r + 1]]`.
    fn encode_groups(
        &self,
        keys: &[ArrayRef; KEY_COLUMNS],
        samples: &[f32],
        bounds: &[usize],
    ) -> Result<EncodedRows, StageError> {
        let rows = bounds.len() - 1;
        let count = rows.div_ceil(ROW_GROUP_ROWS);
        let first = self.groups.fetch_add(count, Ordering::Relaxed);
        let buffers: Vec<Vec<u8>> = {
            let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
            (0..count)
                .map(|_| spare.pop().unwrap_or_default())
                .collect()
        };
        let groups = buffers
            .into_par_iter()
            .enumerate()
            .map(|(g, buffer)| {
                let (start, end) = (g * rows / count, (g + 1) * rows / count);
                self.encode_group(
                    first + g,
                    keys,
                    samples,
                    &bounds[start..=end],
                    start,
                    buffer,
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| parquet_err(&self.path, e))?;
        Ok(EncodedRows { groups })
    }

    /// Encodes rows `first_row..first_row + bounds.len() - 1` as row group `index`,
    /// the samples column into `buffer`.
    fn encode_group(
        &self,
        index: usize,
        keys: &[ArrayRef; KEY_COLUMNS],
        samples: &[f32],
        bounds: &[usize],
        first_row: usize,
        buffer: Vec<u8>,
    ) -> parquet::errors::Result<EncodedGroup> {
        let rows = bounds.len() - 1;
        let mut writers = self.columns.create_column_writers(index)?;
        writers.truncate(KEY_COLUMNS);
        let mut chunks = Vec::with_capacity(KEY_COLUMNS);
        for ((mut writer, array), field) in writers.into_iter().zip(keys).zip(self.schema.fields())
        {
            for leaf in compute_leaves(field, &array.slice(first_row, rows))? {
                writer.write(&leaf)?;
            }
            chunks.push(writer.close()?);
        }
        let (samples, samples_close) = encode_samples(
            self.samples.clone(),
            self.props.clone(),
            samples,
            bounds,
            buffer,
        )?;
        Ok(EncodedGroup {
            keys: chunks,
            samples,
            samples_close,
        })
    }
}

impl RowsSink {
    /// Writes the row groups (after those appended before).
    pub fn append(&mut self, rows: EncodedRows) -> Result<(), StageError> {
        for group in rows.groups {
            self.append_group(group)
                .map_err(|e| parquet_err(&self.path, e))?;
        }
        Ok(())
    }

    fn append_group(&mut self, group: EncodedGroup) -> parquet::errors::Result<()> {
        let mut row_group = self.file.next_row_group()?;
        for chunk in group.keys {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.append_column(&group.samples, group.samples_close)?;
        row_group.close()?;
        if let Ok(buffer) = group.samples.try_into_mut() {
            self.spare
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(buffer.into());
        }
        Ok(())
    }
}

/// Encodes the `samples` column chunk of the rows `bounds[r]..bounds[r + 1]` of
/// `samples` into `buffer` (cleared first), to be appended to a row group.
fn encode_samples(
    descr: ColumnDescPtr,
    props: WriterPropertiesPtr,
    samples: &[f32],
    bounds: &[usize],
    mut buffer: Vec<u8>,
) -> parquet::errors::Result<(Bytes, ColumnCloseResult)> {
    let longest = bounds.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    // Per row: the first value starts a record (repetition level 0), the others
    // repeat it (1); all are defined (1). An empty list is one level (0, 0), no value.
    let defined = vec![1i16; longest.max(1)];
    let mut repeat = vec![1i16; longest.max(1)];
    repeat[0] = 0;
    let empty = [0i16];
    // Reserved, not touched: pages fault in as they are written.
    let raw = bounds.last().zip(bounds.first()).map_or(0, |(b, a)| b - a) * 4;
    buffer.clear();
    buffer.reserve(raw + raw / 16 + 4096);
    let mut sink = TrackedWrite::new(buffer);
    let close = {
        let page_writer = Box::new(SerializedPageWriter::new(&mut sink));
        let ColumnWriter::FloatColumnWriter(mut writer) =
            get_column_writer(descr, props, page_writer)
        else {
            return Err(ParquetError::General(
                "the samples column is not float".into(),
            ));
        };
        for w in bounds.windows(2) {
            let values = &samples[w[0]..w[1]];
            let n = values.len();
            if n == 0 {
                writer.write_batch(&[], Some(&empty), Some(&empty))?;
            } else {
                writer.write_batch(values, Some(&defined[..n]), Some(&repeat[..n]))?;
            }
        }
        writer.close()?
    };
    Ok((Bytes::from(sink.into_inner()?), close))
}

#[cfg(test)]
#[path = "recordings_writer_tests.rs"]
mod tests;
