//! Runs synthetic-mahnob → ingest-mahnob → windows → folds into a folder and
//! prints each stage's wall time and metrics: a throughput check of the BDF
//! reader, the resampler and the windowing, and data for
//! `benches/mahnob_separability.py`.
//!
//! ```text
//! cargo build --workspace --examples
//! target/debug/examples/mahnob_pipeline OUT [subjects] [sessions] [stimulus_s] [threads]
//! target/debug/examples/mahnob_pipeline --windows RECORDINGS_DIR OUT
//! ```
//! (A workspace-wide build reuses the dependencies of `cargo test --workspace`; `-p
//! stages` alone resolves other features of shared crates and rebuilds polars.)
//! The second form runs only the windows stage (default parameters) on an existing
//! recordings.parquet + labels.parquet, e.g. to watch its memory on a large table.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Map, Value};
use stages::data::{
    folds::Folds, ingest_mahnob::IngestMahnob, synthetic_mahnob::SyntheticMahnob, windows::Windows,
};
use stages::{Context, Input, Params, Stage};

fn params(stage: &dyn Stage, overrides: &Value) -> Params {
    Params::resolve(stage, overrides).expect("valid parameters")
}

fn run(
    stage: &dyn Stage,
    overrides: Value,
    upstream: &[&Path],
    out: &Path,
    threads: usize,
) -> PathBuf {
    std::fs::create_dir_all(out).expect("create output folder");
    let mut ctx = Context::for_test(params(stage, &overrides), out);
    ctx.threads = threads;
    ctx.seed = overrides.get("seed").and_then(Value::as_u64).unwrap_or(0);
    ctx.inputs = upstream
        .iter()
        .map(|d| Input {
            stage: "up".into(),
            cell: Map::new(),
            dir: d.to_path_buf(),
        })
        .collect();
    let t = Instant::now();
    let outcome = stage
        .run(&ctx)
        .unwrap_or_else(|e| panic!("{}: {e}", stage.name()));
    println!(
        "{:<18} {:>8.2} s  {}",
        stage.name(),
        t.elapsed().as_secs_f64(),
        Value::Object(outcome.metrics)
    );
    out.to_path_buf()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--windows") {
        let (rec, out) = (PathBuf::from(&args[2]), PathBuf::from(&args[3]));
        run(&Windows, json!({}), &[&rec], &out, 1);
        return;
    }
    let root = PathBuf::from(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("target/mahnob_pipeline"),
    );
    let arg = |i: usize, d: f64| args.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(d);
    let (subjects, sessions, stimulus, threads) = (
        arg(2, 4.0),
        arg(3, 10.0),
        arg(4, 20.0),
        arg(5, 2.0) as usize,
    );
    let data = run(
        &SyntheticMahnob,
        json!({"subjects": subjects as i64, "sessions": sessions as i64, "stimulus_s": stimulus, "seed": 1}),
        &[],
        &root.join("data"),
        threads,
    );
    let rec = run(
        &IngestMahnob,
        json!({}),
        &[&data],
        &root.join("recordings"),
        threads,
    );
    let win = run(&Windows, json!({}), &[&rec], &root.join("windows"), threads);
    run(
        &Folds,
        json!({"k": 5, "seed": 1}),
        &[&win],
        &root.join("splits"),
        threads,
    );
}
