//! synthetic-deap → ingest-deap round trips, the Python-written fixture folders
//! (pickle and MAT), and the errors users see.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, UInt16Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value};

use super::IngestDeap;
use crate::data::channels::DEAP_CHANNELS;
use crate::data::deap::{digest_files, locate, FormatChoice};
use crate::data::pickle::tests::{fixture_data, fixture_labels, fixtures};
use crate::data::pickle::writer::{write_py2_dict, F64Array};
use crate::data::synthetic_deap::{generate_subject, SynthConfig, SyntheticDeap};
use crate::params::Params;
use crate::stage::{Context, Input, Outcome, Stage, StageError};

fn params(stage: &dyn Stage, set: &[(&str, Value)]) -> Params {
    let set: Map<String, Value> = set
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    crate::test_support::params_for(stage, Value::Object(set))
}

fn run(
    stage: &dyn Stage,
    set: &[(&str, Value)],
    inputs: &[&Path],
    out: &Path,
    threads: usize,
) -> Result<Outcome, StageError> {
    std::fs::create_dir_all(out).unwrap();
    let mut ctx = Context::for_test(params(stage, set), out);
    ctx.inputs = inputs
        .iter()
        .map(|d| Input {
            stage: "data".into(),
            cell: Map::new(),
            dir: d.to_path_buf(),
        })
        .collect();
    ctx.threads = threads;
    if let Some(seed) = set.iter().find(|(k, _)| *k == "seed") {
        ctx.seed = seed.1.as_u64().unwrap();
    }
    stage.run(&ctx)
}

struct Row {
    subject: u16,
    trial: u16,
    channel: String,
    kind: String,
    rate: f32,
    samples: Vec<f32>,
}

fn read_recordings(path: &Path) -> (Vec<Row>, HashMap<String, String>) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let meta = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    for batch in builder.build().unwrap() {
        let b = batch.unwrap();
        let col = |name: &str| b.column_by_name(name).unwrap().clone();
        let (subject, trial) = (col("subject"), col("trial"));
        let (subject, trial) = (
            subject.as_primitive::<UInt16Type>(),
            trial.as_primitive::<UInt16Type>(),
        );
        let (channel, kind, rate, samples) = (
            col("channel"),
            col("kind"),
            col("sample_rate"),
            col("samples"),
        );
        assert!(col("dataset")
            .as_string::<i32>()
            .iter()
            .all(|d| d == Some("deap")));
        for i in 0..b.num_rows() {
            let list = samples.as_list::<i32>().value(i);
            rows.push(Row {
                subject: subject.value(i),
                trial: trial.value(i),
                channel: channel.as_string::<i32>().value(i).to_string(),
                kind: kind.as_string::<i32>().value(i).to_string(),
                rate: rate.as_primitive::<Float32Type>().value(i),
                samples: list.as_primitive::<Float32Type>().values().to_vec(),
            });
        }
    }
    (rows, meta)
}

/// (subject, trial, [valence, arousal, dominance, liking]) rows of labels.parquet.
fn read_labels(path: &Path) -> Vec<(u16, u16, [f32; 4])> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let b = batch.unwrap();
        let u = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_primitive::<UInt16Type>()
                .clone()
        };
        let f = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_primitive::<Float32Type>()
                .clone()
        };
        let (s, t) = (u("subject"), u("trial"));
        let cols = [f("valence"), f("arousal"), f("dominance"), f("liking")];
        for i in 0..b.num_rows() {
            assert!(cols.iter().all(|c| c.is_valid(i)));
            rows.push((
                s.value(i),
                t.value(i),
                [0, 1, 2, 3].map(|k| cols[k].value(i)),
            ));
        }
    }
    rows
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

#[test]
fn synthetic_round_trip_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let set = [
        ("subjects", Value::from(2)),
        ("trials", Value::from(3)),
        ("seconds", Value::from(1.0)),
        ("seed", Value::from(11)),
    ];
    let synth = tmp.path().join("synth");
    let m = run(&SyntheticDeap, &set, &[], &synth, 2).unwrap();
    assert_eq!(m.metrics["subjects"], 2);
    let out = tmp.path().join("ingest");
    let m = run(&IngestDeap, &[], &[&synth], &out, 2).unwrap();
    assert_eq!(
        (m.metrics["subjects"].as_u64(), m.metrics["trials"].as_u64()),
        (Some(2), Some(6))
    );

    let (rows, meta) = read_recordings(&out.join("recordings.parquet"));
    assert_eq!(rows.len(), 2 * 3 * 40);
    let cfg = SynthConfig {
        subjects: 2,
        trials: 3,
        seconds: 1.0,
        seed: 11,
        ..SynthConfig::default()
    };
    let samples = cfg.samples();
    for s in 1..=2u16 {
        let truth = generate_subject(&cfg, s);
        for (i, r) in rows.iter().filter(|r| r.subject == s).enumerate() {
            let (t, c) = (i / 40, i % 40);
            assert_eq!(
                (r.trial as usize, r.channel.as_str()),
                (t + 1, DEAP_CHANNELS[c])
            );
            assert_eq!(r.rate, 128.0);
            let start = (t * 40 + c) * samples;
            // float64 in the file, float32 in the table: the nearest f32 (`as`).
            assert_eq!(
                r.samples,
                f32s(&truth.data[start..start + samples]),
                "s{s} t{t} c{c}"
            );
        }
        let labels: Vec<_> = read_labels(&out.join("labels.parquet"))
            .into_iter()
            .filter(|l| l.0 == s)
            .collect();
        assert_eq!(labels.len(), 3);
        for (t, l) in labels.iter().enumerate() {
            assert_eq!(l.1 as usize, t + 1);
            assert_eq!(l.2.to_vec(), f32s(&truth.labels[t * 4..t * 4 + 4]));
        }
    }
    let kinds: Vec<&str> = rows[..40].iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds[..32], ["eeg"; 32]);
    assert_eq!(kinds[32..34], ["eog", "eog"]);
    assert_eq!(kinds[34..], ["other"; 6]);

    let (_, files) = locate(&synth, FormatChoice::Auto).unwrap();
    assert_eq!(meta["source_digest"], digest_files(&files).unwrap());
    assert_eq!(meta["source_format"], "pickle");
    assert!(meta["source_path"].ends_with("data_preprocessed_python"));
    assert!(meta["reader_version"].contains("deap-reader"));

    // One thread or two: the same file.
    let out1 = tmp.path().join("ingest1");
    run(&IngestDeap, &[], &[&synth], &out1, 1).unwrap();
    assert_eq!(
        std::fs::read(out.join("recordings.parquet")).unwrap(),
        std::fs::read(out1.join("recordings.parquet")).unwrap()
    );
}

#[test]
fn same_seed_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let set = |seed: u64| {
        [
            ("subjects", Value::from(2)),
            ("trials", Value::from(2)),
            ("seconds", Value::from(2.0)),
            ("seed", Value::from(seed)),
        ]
    };
    let dirs = ["a", "b", "c"].map(|d| tmp.path().join(d));
    run(&SyntheticDeap, &set(3), &[], &dirs[0], 2).unwrap();
    run(&SyntheticDeap, &set(3), &[], &dirs[1], 1).unwrap();
    run(&SyntheticDeap, &set(4), &[], &dirs[2], 2).unwrap();
    for f in [
        "data_preprocessed_python/s01.dat",
        "data_preprocessed_python/s02.dat",
        "latents.csv",
    ] {
        let read = |d: &PathBuf| std::fs::read(d.join(f)).unwrap();
        assert_eq!(read(&dirs[0]), read(&dirs[1]), "{f}");
        assert_ne!(read(&dirs[0]), read(&dirs[2]), "{f}");
    }
    // DEAP's layout: (trials, 40, samples) float64 data, (trials, 4) labels, 189 bytes
    // of opcodes (192 in DEAP's files, whose labels need a 4-byte BINSTRING length).
    let s01 = std::fs::read(dirs[0].join("data_preprocessed_python/s01.dat")).unwrap();
    assert_eq!(s01.len(), 2 * 40 * 640 * 8 + 2 * 4 * 8 + 189);
}

fn assert_fixture_rows(rows: &[Row], subjects: &[(u16, usize)]) {
    let mut i = 0;
    for &(subject, trials) in subjects {
        let data = fixture_data([trials, 40, 16]);
        for t in 0..trials {
            for (c, name) in DEAP_CHANNELS.iter().enumerate() {
                let r = &rows[i];
                assert_eq!(
                    (r.subject, r.trial as usize, r.channel.as_str()),
                    (subject, t + 1, *name)
                );
                let start = (t * 40 + c) * 16;
                assert_eq!(r.samples, f32s(&data[start..start + 16]));
                i += 1;
            }
        }
    }
    assert_eq!(i, rows.len());
}

#[test]
fn ingests_python2_written_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let path = fixtures().join("folder_py2");
    let m = run(
        &IngestDeap,
        &[("path", Value::from(path.to_str().unwrap()))],
        &[],
        tmp.path(),
        2,
    )
    .unwrap();
    assert_eq!(m.metrics["bytes_read"], 10492 + 15644);
    let (rows, _) = read_recordings(&tmp.path().join("recordings.parquet"));
    assert_fixture_rows(&rows, &[(1, 2), (2, 3)]);
    let labels = read_labels(&tmp.path().join("labels.parquet"));
    let want = fixture_labels(3);
    assert_eq!(labels[4], (2, 3, [0, 1, 2, 3].map(|k| want[8 + k] as f32)));
}

#[test]
fn ingests_scipy_mat_files_compressed_or_not() {
    for folder in ["mat_plain", "mat_compressed"] {
        let tmp = tempfile::tempdir().unwrap();
        let path = fixtures().join(folder);
        let set = [("path", Value::from(path.to_str().unwrap()))];
        run(&IngestDeap, &set, &[], tmp.path(), 1).unwrap_or_else(|e| panic!("{folder}: {e}"));
        let (rows, meta) = read_recordings(&tmp.path().join("recordings.parquet"));
        assert_eq!(meta["source_format"], "mat");
        assert_fixture_rows(&rows, &[(1, 2)]);
        let labels = read_labels(&tmp.path().join("labels.parquet"));
        assert_eq!(labels[1].2.to_vec(), f32s(&fixture_labels(2)[4..8]));
    }
}

fn ingest_error(set: &[(&str, Value)], inputs: &[&Path]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    match run(&IngestDeap, set, inputs, tmp.path(), 2) {
        Ok(_) => panic!("ingest succeeded"),
        Err(e) => e.to_string(),
    }
}

fn path_param(p: &Path) -> [(&'static str, Value); 1] {
    [("path", Value::from(p.to_str().unwrap()))]
}

#[test]
fn missing_or_empty_folders_say_what_to_download() {
    let tmp = tempfile::tempdir().unwrap();
    let e = ingest_error(&path_param(&tmp.path().join("nope")), &[]);
    assert!(
        e.contains("does not exist") && e.contains("data_preprocessed_python"),
        "{e}"
    );
    let e = ingest_error(&path_param(tmp.path()), &[]);
    assert!(
        e.contains("no DEAP subject files") && e.contains("download"),
        "{e}"
    );
    let e = ingest_error(&[], &[]);
    assert!(
        e.contains("set `path:`") && e.contains("synthetic-deap"),
        "{e}"
    );
    let e = ingest_error(
        &[
            (
                "path",
                Value::from(fixtures().join("folder_py2").to_str().unwrap()),
            ),
            ("format", Value::from("mat")),
        ],
        &[],
    );
    assert!(e.contains("s01.mat"), "{e}");
}

/// A folder holding one `s01.dat` with these bytes.
fn folder_with(bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s01.dat"), bytes).unwrap();
    dir
}

fn pickle_of(entries: &[(&str, &[usize], &[f64])]) -> Vec<u8> {
    let arrays: Vec<(&str, F64Array)> = entries
        .iter()
        .map(|(k, shape, values)| (*k, F64Array { shape, values }))
        .collect();
    let mut out = Vec::new();
    write_py2_dict(&mut out, &arrays).unwrap();
    out
}

#[test]
fn bad_files_give_errors_that_name_them() {
    let good = std::fs::read(fixtures().join("folder_py2/s01.dat")).unwrap();
    for cut in [
        0,
        1,
        10,
        100,
        200,
        1000,
        good.len() / 2,
        good.len() - 2,
        good.len() - 1,
    ] {
        let dir = folder_with(&good[..cut]);
        let e = ingest_error(&path_param(dir.path()), &[]);
        assert!(
            e.contains("s01.dat") && e.contains("truncated"),
            "cut {cut}: {e}"
        );
    }
    let dir = folder_with(b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.");
    let e = ingest_error(&path_param(dir.path()), &[]);
    assert!(
        e.contains("s01.dat") && e.contains("refusing the global `os.system`"),
        "{e}"
    );

    let data = vec![0.5; 2 * 40 * 4];
    let labels = vec![5.0; 8];
    let dir = folder_with(&pickle_of(&[
        ("foo", &[2, 4], &labels),
        ("bar", &[2, 40, 4], &data),
    ]));
    let e = ingest_error(&path_param(dir.path()), &[]);
    assert!(e.contains("no `labels` key (found `foo`, `bar`)"), "{e}");

    let dir = folder_with(&pickle_of(&[
        ("labels", &[2, 4], &labels),
        ("data", &[80, 4], &data),
    ]));
    let e = ingest_error(&path_param(dir.path()), &[]);
    assert!(e.contains("`data` has shape [80, 4]"), "{e}");

    let dir = folder_with(&pickle_of(&[
        ("labels", &[2, 4], &labels),
        ("data", &[2, 20, 8], &data),
    ]));
    let e = ingest_error(&path_param(dir.path()), &[]);
    assert!(e.contains("20 channels"), "{e}");

    let dir = folder_with(&pickle_of(&[
        ("labels", &[1, 8], &labels),
        ("data", &[2, 40, 4], &data),
    ]));
    let e = ingest_error(&path_param(dir.path()), &[]);
    assert!(
        e.contains("`labels` has shape [1, 8], expected (2, 4)"),
        "{e}"
    );
}

#[test]
fn nan_samples_fail_or_follow_on_nan() {
    let mut data = vec![0.5; 2 * 40 * 4];
    data[4 + 2] = f64::NAN; // trial 1, channel 2 (AF3), sample 2
    let labels = vec![5.0; 8];
    let dir = folder_with(&pickle_of(&[
        ("labels", &[2, 4], &labels),
        ("data", &[2, 40, 4], &data),
    ]));
    let e = ingest_error(&path_param(dir.path()), &[]);
    assert!(
        e.contains("s01.dat") && e.contains("subject 1 trial 1 channel 2 (AF3) sample 2 is NaN"),
        "{e}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let set = [
        path_param(dir.path())[0].clone(),
        ("on_nan", Value::from("drop-trial")),
    ];
    let m = run(&IngestDeap, &set, &[], tmp.path(), 2).unwrap();
    assert_eq!(
        (
            m.metrics["trials"].as_u64(),
            m.metrics["dropped_trials"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let (rows, _) = read_recordings(&tmp.path().join("recordings.parquet"));
    assert!(rows.iter().all(|r| r.trial == 2));

    let set = [
        path_param(dir.path())[0].clone(),
        ("on_nan", Value::from("zero")),
    ];
    run(&IngestDeap, &set, &[], tmp.path(), 1).unwrap();
    let (rows, _) = read_recordings(&tmp.path().join("recordings.parquet"));
    assert_eq!(rows[1].samples, vec![0.5, 0.5, 0.0, 0.5]);
}
