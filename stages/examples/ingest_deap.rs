//! Benchmark binary for the DEAP ingest (compare with `stages/benches/ingest_deap.py`).
//!
//! ```text
//! # a DEAP-size synthetic folder (32 subjects × 40 trials × 63 s, 3.3 GB):
//! cargo build --workspace --examples
//! target/debug/examples/ingest_deap generate /tmp/deap 32 40 60
//! /usr/bin/time -v target/debug/examples/ingest_deap ingest /tmp/deap/data_preprocessed_python /tmp/out-rs 2
//! /usr/bin/time -v python3 stages/benches/ingest_deap.py /tmp/deap/data_preprocessed_python /tmp/out-py
//! /usr/bin/time -v python3 stages/benches/ingest_deap.py --plain /tmp/deap/data_preprocessed_python /tmp/out-pyp
//! ```
//!
//! Measured 2026-11-26 on a 2-core Xeon VM that other jobs kept busy (load 3-4), the
//! commands above run in turn (Rust, Python, Rust, ...), whole-process medians of 5
//! pairs, 3303 MB of input (the dev profile builds `stages` at opt-level 3):
//!
//! | | wall s | cpu s | MB/s | peak RSS | recordings.parquet |
//! |---|---|---|---|---|---|
//! | ingest_deap, 2 threads | 8.7 | 7.6 | 381 | 195 MiB | 1405 MB |
//! | Python, same Parquet settings | 16.9 | 15.5 | 195 | 368 MiB | 1405 MB |
//! | ingest_deap, 2 threads | 9.2 | 8.0 | 360 | 195 MiB | 1405 MB |
//! | Python `--plain` (the old settings) | 19.5 | 17.8 | 169 | 399 MiB | 1557 MB |
//!
//! Paired ratios Rust/Python of wall time: 0.50 (same settings), 0.46 (`--plain`).
//! On that busy machine the second thread rarely got a core (2 threads ran no
//! faster than 1), so these ratios are mostly the CPU-time ratios (0.48, 0.45). At a
//! moment with one other job, 5 pairs against the same settings: 5.8 s against
//! 19.1 s (median ratio 0.32, 567 MB/s against 173 MB/s).
//! Before this writer (ArrowWriter with dictionary and statistics on the samples,
//! zstd 3) the same ingest took 14.5 cpu s and 274 MiB (a lighter-loaded moment).

use std::path::PathBuf;

use serde_json::{Map, Value};
use stages::data::ingest_deap::IngestDeap;
use stages::data::synthetic_deap::SyntheticDeap;
use stages::{Context, Params, Stage};

fn params(stage: &dyn Stage, set: &[(&str, Value)]) -> Params {
    let set: Map<String, Value> = set
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Params::resolve(stage, &Value::Object(set)).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: ingest_deap generate OUT [subjects trials seconds] | ingest SRC OUT [threads]";
    let arg = |i: usize| args.get(i).cloned();
    let num = |i: usize, default: i64| arg(i).map_or(default, |s| s.parse().expect("a number"));
    let (stage, set, out, threads): (&dyn Stage, Vec<(&str, Value)>, PathBuf, usize) =
        match arg(0).as_deref() {
            Some("generate") => (
                &SyntheticDeap,
                vec![
                    ("subjects", Value::from(num(2, 32))),
                    ("trials", Value::from(num(3, 40))),
                    ("seconds", Value::from(num(4, 60) as f64)),
                ],
                PathBuf::from(arg(1).expect(usage)),
                2,
            ),
            Some("ingest") => (
                &IngestDeap,
                vec![("path", Value::from(arg(1).expect(usage)))],
                PathBuf::from(arg(2).expect(usage)),
                num(3, 2) as usize,
            ),
            _ => {
                eprintln!("{usage}");
                std::process::exit(2);
            }
        };
    std::fs::create_dir_all(&out).expect("create the output folder");
    let mut ctx = Context::for_test(params(stage, &set), &out);
    ctx.threads = threads;
    let started = std::time::Instant::now();
    match stage.run(&ctx) {
        Ok(outcome) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&outcome.metrics).expect("json")
            );
            println!("{}: {:.2} s", stage.name(), started.elapsed().as_secs_f64());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
