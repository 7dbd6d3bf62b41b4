//! The example converter of `pipelines/dataset-swap.yaml` (`stages/src/bin/own-format.rs`),
//! run as a user runs it: `demo` writes a lab-export folder, `convert` turns it into
//! the two tables the pipeline ingests; bad input is named by file and line.

use std::path::Path;
use std::process::{Command, Output};

fn own_format(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_own-format"))
        .args(args)
        .output()
        .expect("run own-format")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn demo_then_convert_writes_recordings_and_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let (folder, out) = (tmp.path().join("export"), tmp.path().join("out"));
    let demo = own_format(&[Path::new("demo"), &folder]);
    assert!(demo.status.success(), "{}", stderr(&demo));
    assert!(folder.join("ratings.csv").exists());
    assert!(folder.join("s01").join("t01.csv").exists());
    let convert = own_format(&[Path::new("convert"), &folder, &out]);
    assert!(convert.status.success(), "{}", stderr(&convert));
    // demo's defaults: 2 subjects × 10 trials, 34 channels a trial
    for (table, rows) in [
        ("recordings.parquet", 2 * 10 * 34),
        ("labels.parquet", 2 * 10),
    ] {
        let bytes = std::fs::read(out.join(table)).unwrap();
        assert_eq!(&bytes[..4], b"PAR1", "{table} is Parquet");
        assert_eq!(
            dataset_column(&out.join(table)),
            vec!["own"; rows],
            "{table}"
        );
    }
}

/// The `dataset` column of a table, row by row.
fn dataset_column(path: &Path) -> Vec<String> {
    use arrow::array::AsArray;
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let col = batch.column_by_name("dataset").expect("a dataset column");
        out.extend(
            col.as_string::<i32>()
                .iter()
                .map(|v| v.unwrap().to_string()),
        );
    }
    out
}

#[test]
fn a_wrong_ratings_header_is_named_by_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("export");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("ratings.csv"), "subject,trial,arousal\n1,1,5\n").unwrap();
    let o = own_format(&[Path::new("convert"), &folder, &tmp.path().join("out")]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("ratings.csv:1: expected the header `subject,trial,valence,arousal`"),
        "{e}"
    );
}
