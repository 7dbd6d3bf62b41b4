//! `recordings.parquet` as written by [`RecordingsWriter`]: read back exactly, the
//! same bytes whatever the threads and whichever way the rows are handed over, row
//! groups within a subject, the column settings.

use std::fs::File;
use std::path::Path;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Float32Type, UInt16Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Encoding;
use parquet::file::reader::{FileReader, SerializedFileReader};

use super::*;
use crate::data::tables::ChannelRecord;

const CHANNELS: [&str; 3] = ["Fp1", "hEOG", "GSR"];

/// Row `r` of subject `subject`: `len` samples, exact in f32 and unique.
fn samples(subject: u16, r: usize, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| f32::from(subject) * 1e5 + (r * 50 + i) as f32 * 0.25)
        .collect()
}

fn keys(subject: u16, rows: usize) -> Vec<RowKey<'static>> {
    (0..rows)
        .map(|r| RowKey {
            subject,
            trial: (r / CHANNELS.len()) as u16 + 1,
            channel: CHANNELS[r % CHANNELS.len()],
            kind: crate::data::tables::channel_kind(CHANNELS[r % CHANNELS.len()]),
            sample_rate: 128.0,
        })
        .collect()
}

/// How the rows are handed to the writer.
#[derive(Clone, Copy)]
enum Via {
    WriteRows,
    Push,
    /// Encoded while the subject before is appended, as the DEAP ingest does.
    Split,
}

/// Subjects 1 and 2 with `rows` rows of `len` samples each, on `threads` threads.
fn write(path: &Path, rows: usize, len: usize, threads: usize, via: Via) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let meta = [("source_digest", "abc".to_string())];
        let mut w = RecordingsWriter::create(path, "test", &meta).unwrap();
        let data: Vec<(u16, Vec<f32>)> = [1u16, 2]
            .map(|s| (s, (0..rows).flat_map(|r| samples(s, r, len)).collect()))
            .into();
        match via {
            Via::WriteRows => {
                for (s, d) in &data {
                    w.write_rows(&keys(*s, rows), d).unwrap();
                }
            }
            Via::Push => {
                for (s, d) in &data {
                    for (k, chunk) in keys(*s, rows).iter().zip(d.chunks(len)) {
                        w.push(&ChannelRecord {
                            subject: k.subject,
                            trial: k.trial,
                            channel: k.channel,
                            kind: k.kind,
                            sample_rate: k.sample_rate,
                            samples: chunk,
                        });
                    }
                    w.flush().unwrap();
                }
            }
            Via::Split => {
                let (encoder, sink) = w.split().unwrap();
                let first = encoder.encode(&keys(1, rows), &data[0].1).unwrap();
                let (appended, second) = rayon::join(
                    || sink.append(first),
                    || encoder.encode(&keys(2, rows), &data[1].1),
                );
                appended.unwrap();
                sink.append(second.unwrap()).unwrap();
            }
        }
        w.finish().unwrap();
    });
}

/// (subject, trial, channel, kind, rate, samples) rows.
type Row = (u16, u16, String, String, f32, Vec<f32>);

fn read(path: &Path) -> Vec<Row> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    assert_eq!(
        builder.schema().fields(),
        recordings_schema().fields(),
        "the Arrow schema read back"
    );
    let mut rows = Vec::new();
    for batch in builder.build().unwrap() {
        let b = batch.unwrap();
        let col = |name: &str| b.column_by_name(name).unwrap().clone();
        assert!(col("dataset")
            .as_string::<i32>()
            .iter()
            .all(|d| d == Some("test")));
        let (subject, trial, channel, kind, rate, list) = (
            col("subject"),
            col("trial"),
            col("channel"),
            col("kind"),
            col("sample_rate"),
            col("samples"),
        );
        for i in 0..b.num_rows() {
            rows.push((
                subject.as_primitive::<UInt16Type>().value(i),
                trial.as_primitive::<UInt16Type>().value(i),
                channel.as_string::<i32>().value(i).to_string(),
                kind.as_string::<i32>().value(i).to_string(),
                rate.as_primitive::<Float32Type>().value(i),
                list.as_list::<i32>()
                    .value(i)
                    .as_primitive::<Float32Type>()
                    .values()
                    .to_vec(),
            ));
        }
    }
    rows
}

fn expected(rows: usize, len: usize) -> Vec<Row> {
    [1u16, 2]
        .iter()
        .flat_map(|&s| {
            keys(s, rows).into_iter().enumerate().map(move |(r, k)| {
                (
                    k.subject,
                    k.trial,
                    k.channel.to_string(),
                    k.kind.to_string(),
                    k.sample_rate,
                    samples(s, r, len),
                )
            })
        })
        .collect()
}

#[test]
fn same_bytes_whatever_the_threads_or_the_way_in() {
    let tmp = tempfile::tempdir().unwrap();
    // Three row groups per subject.
    let rows = 2 * ROW_GROUP_ROWS + 7;
    let reference = tmp.path().join("reference.parquet");
    write(&reference, rows, 5, 1, Via::WriteRows);
    let bytes = std::fs::read(&reference).unwrap();
    for (name, threads, via) in [
        ("rows3", 3, Via::WriteRows),
        ("push1", 1, Via::Push),
        ("push2", 2, Via::Push),
        ("split1", 1, Via::Split),
        ("split3", 3, Via::Split),
    ] {
        let path = tmp.path().join(format!("{name}.parquet"));
        write(&path, rows, 5, threads, via);
        assert!(std::fs::read(&path).unwrap() == bytes, "{name} differs");
    }
    assert_eq!(read(&reference), expected(rows, 5));

    // Row groups: within one subject, of equal size, in order.
    let file = SerializedFileReader::new(File::open(&reference).unwrap()).unwrap();
    let meta = file.metadata();
    let sizes: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(sizes, [269, 269, 269, 269, 269, 269]);
    for (g, group) in meta.row_groups().iter().enumerate() {
        let subject = group.column(1).statistics().expect("subject statistics");
        let range = (subject.min_bytes_opt(), subject.max_bytes_opt());
        let s = if g < 3 { 1u16 } else { 2 };
        // Parquet stores a u16 as an INT32.
        let want = (s as i32).to_le_bytes();
        assert_eq!(range, (Some(&want[..]), Some(&want[..])), "row group {g}");
        let samples = group.column(KEY_COLUMNS);
        assert!(samples.statistics().is_none());
        assert!(samples
            .encodings()
            .any(|e| e == Encoding::BYTE_STREAM_SPLIT));
        assert!(samples.dictionary_page_offset().is_none());
    }
    let kv = meta.file_metadata().key_value_metadata().unwrap();
    assert!(kv
        .iter()
        .any(|k| k.key == "source_digest" && k.value.as_deref() == Some("abc")));
}

#[test]
fn rows_of_any_length_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("r.parquet");
    let lengths = [0usize, 1, 70_000, 3, 0, 12];
    let mut w = RecordingsWriter::create(&path, "test", &[]).unwrap();
    let mut want = Vec::new();
    for (r, &len) in lengths.iter().enumerate() {
        let s = samples(7, r, len);
        w.push(&ChannelRecord {
            subject: 7,
            trial: r as u16,
            channel: "Cz",
            kind: "eeg",
            sample_rate: 4.5,
            samples: &s,
        });
        want.push((7, r as u16, "Cz".into(), "eeg".into(), 4.5, s));
    }
    w.finish().unwrap();
    assert_eq!(read(&path), want);
    // The samples column's type survives for readers that go by the Arrow schema.
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
    let field = builder.schema().field_with_name("samples").unwrap().clone();
    assert!(matches!(field.data_type(), DataType::List(item) if !item.is_nullable()));
}

#[test]
fn empty_and_unequal_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("e.parquet");
    let mut w = RecordingsWriter::create(&path, "test", &[]).unwrap();
    w.write_rows(&[], &[]).unwrap();
    let e = w
        .write_rows(&keys(1, 3), &[1.0; 7])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("e.parquet") && e.contains("7 samples do not split into 3 rows"),
        "{e}"
    );
    w.write_rows(&keys(1, 3), &[1.0; 6]).unwrap();
    w.finish().unwrap();
    assert_eq!(read(&path).len(), 3);
}
