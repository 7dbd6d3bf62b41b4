//! `pipe bench`: the engine's own numbers — a no-op rerun of a 100-instance
//! pipeline, hashing a 1 GiB file (beside `b3sum` when installed), planning a
//! 10,000-instance matrix. Each is timed as users meet it: whole `pipe` processes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::json;

use crate::cli::BenchArgs;
use crate::exit_codes;

use super::Failure;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Time `pipe ARGS` `n` times (seconds, median and all).
fn time_pipe(exe: &Path, args: &[&str], dir: &Path, n: usize) -> Result<Vec<f64>, Failure> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let status = Command::new(exe)
            .args(args)
            .current_dir(dir)
            .env("PIPE_CACHE_DIR", dir.join("cache"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| Failure::Other(format!("cannot run pipe: {e}")))?;
        times.push(t.elapsed().as_secs_f64());
        if !status.success() {
            return Err(Failure::Other(format!(
                "`pipe {}` failed in {}",
                args.join(" "),
                dir.display()
            )));
        }
    }
    Ok(times)
}

pub(super) fn bench(args: BenchArgs) -> Result<i32, Failure> {
    let tmp = tempfile::tempdir().map_err(|e| Failure::Other(e.to_string()))?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).map_err(|e| Failure::Other(format!("{}: {e}", dir.display())))?;
    let exe = std::env::current_exe().map_err(|e| Failure::Other(e.to_string()))?;
    let mut results = serde_json::Map::new();

    // 1. no-op rerun
    let n = args.instances.max(2);
    let half = n / 2;
    let noop = format!(
        "name: bench-noop\nstages:\n  make:\n    run: echo ${{matrix.i}} > $PIPE_OUT/x\n    outs: [x]\n    matrix: {{ i: \"range({half})\" }}\n  use:\n    run: cat $PIPE_IN_MAKE/x > $PIPE_OUT/y\n    outs: [y]\n    needs: [make]\n    matrix: {{ i: \"range({half})\" }}\n"
    );
    std::fs::write(dir.join("noop.yaml"), noop).map_err(|e| Failure::Other(e.to_string()))?;
    let cold = time_pipe(&exe, &["run", "-q", "noop.yaml"], &dir, 1)?;
    let warm = time_pipe(&exe, &["run", "-q", "noop.yaml"], &dir, 11)?;
    let m = median(warm.clone());
    println!(
        "no-op rerun, {} instances: median {:.1} ms (min {:.1}, max {:.1}; cold run {:.2} s)",
        half * 2,
        m * 1e3,
        warm.iter().cloned().fold(f64::INFINITY, f64::min) * 1e3,
        warm.iter().cloned().fold(0.0, f64::max) * 1e3,
        cold[0]
    );
    results.insert(
        "noop_rerun".into(),
        json!({"instances": half * 2, "median_s": m, "runs_s": warm, "cold_s": cold[0]}),
    );

    // 2. hashing
    let big = dir.join("big.bin");
    {
        let mut f = std::fs::File::create(&big).map_err(|e| Failure::Other(e.to_string()))?;
        let mut block = vec![0u8; 1 << 20];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for mib in 0..args.hash_mib {
            for chunk in block.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.wrapping_add(mib).to_le_bytes()[..chunk.len()]);
            }
            f.write_all(&block)
                .map_err(|e| Failure::Other(e.to_string()))?;
        }
        f.sync_all().map_err(|e| Failure::Other(e.to_string()))?;
    }
    let bytes = (args.hash_mib << 20) as f64;
    let _ = crate::cache::hash::file(&big); // warm the page cache
    let mut ours = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        crate::cache::hash::file(&big).map_err(|e| Failure::Other(e.to_string()))?;
        ours.push(t.elapsed().as_secs_f64());
    }
    let ours_gbs = bytes / median(ours) / 1e9;
    let mut b3 = None;
    if Command::new("b3sum")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        let mut t_b3 = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let ok = Command::new("b3sum")
                .arg(&big)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                t_b3.push(t.elapsed().as_secs_f64());
            }
        }
        if !t_b3.is_empty() {
            b3 = Some(bytes / median(t_b3) / 1e9);
        }
    }
    match b3 {
        Some(b) => println!("hash {} MiB: {ours_gbs:.2} GB/s; b3sum {b:.2} GB/s; ratio {:.2}", args.hash_mib, ours_gbs / b),
        None => println!("hash {} MiB: {ours_gbs:.2} GB/s (b3sum not installed: `cargo install b3sum` to compare)", args.hash_mib),
    }
    results.insert(
        "hash".into(),
        json!({"mib": args.hash_mib, "gb_per_s": ours_gbs, "b3sum_gb_per_s": b3}),
    );
    let _ = std::fs::remove_file(&big);

    // 3. planning a large matrix
    let side = (args.plan_cells as f64).sqrt().ceil() as usize;
    let plan = format!(
        "name: bench-plan\nstages:\n  cell:\n    run: echo ${{matrix.a}}-${{matrix.b}} > $PIPE_OUT/x\n    outs: [x]\n    matrix: {{ a: \"range({side})\", b: \"range({side})\" }}\n"
    );
    std::fs::write(dir.join("plan.yaml"), plan).map_err(|e| Failure::Other(e.to_string()))?;
    let t_plan = time_pipe(&exe, &["plan", "plan.yaml"], &dir, 3)?;
    let mp = median(t_plan.clone());
    println!("plan {} instances: median {:.0} ms", side * side, mp * 1e3);
    results.insert(
        "plan".into(),
        json!({"instances": side * side, "median_s": mp, "runs_s": t_plan}),
    );

    if let Some(path) = &args.json {
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&json!({"schema_version": 1, "bench": results}))
                .expect("json"),
        )
        .map_err(|e| Failure::Other(format!("{}: {e}", path.display())))?;
        println!("numbers: {}", path.display());
    }
    Ok(exit_codes::OK)
}
