//! One training step (forward, cross-entropy, backward, Adam) of the teacher and the
//! student at the spec's sizes on the CPU, and one eval forward; compare with
//! `benches/torch_step.py` (same network in PyTorch) at the same thread count.
//!
//! `cargo build --workspace --benches`, then run `target/debug/deps/train_step-*` (the
//! dev profile optimises the stage library and the dependencies; `cargo bench` builds
//! everything again in release) — environment: `BENCH_THREADS` (2),
//! `BENCH_BATCH` (64), `BENCH_STEPS` (10), `BENCH_NETS` (`teacher,student`),
//! `BENCH_CACHE` (`1`, the default: enable dfdx's allocation cache), `BENCH_WHAT`
//! (`train,eval`), `BENCH_EPOCH_WINDOWS` (0: none; else also time a teacher epoch of
//! that many windows, fresh host batches copied in each step), `BENCH_DEVICE` (`cpu`;
//! `cuda` in a build with `--features cuda`: `stages/benches/gpu.sh` runs it next to
//! PyTorch CUDA).
//!
//! The README ("Training step vs PyTorch") has the measured numbers and the command.

use std::time::Instant;

use dfdx::optim::AdamConfig;
use dfdx::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stages::model::{
    Adam, Mode, NetDevice, ParamTreeExt, Student, StudentConfig, Teacher, TeacherConfig, T3,
};

// The allocator of the `pipe` binary, where stages run (see src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn noise<D: NetDevice<f32>>(dev: &D, shape: (usize, usize, usize), rng: &mut StdRng) -> T3<f32, D> {
    dev.tensor_from_vec(host_noise(shape.0 * shape.1 * shape.2, rng), shape)
}

fn host_noise(n: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

/// CPU time of all threads of this process in ms (Linux `/proc`; `None` elsewhere).
/// On a shared machine the wall time of a step depends on the other load; the CPU
/// time much less.
fn cpu_ms() -> Option<f64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(entry.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total as f64 / 1e6)
}

/// Median wall milliseconds of `steps` runs after two warm-up runs, and the mean
/// CPU milliseconds per run.
fn measure(steps: usize, mut f: impl FnMut()) -> (f64, Option<f64>) {
    f();
    f();
    let cpu0 = cpu_ms();
    let mut times: Vec<f64> = (0..steps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let cpu = cpu0.zip(cpu_ms()).map(|(a, b)| (b - a) / steps as f64);
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], cpu)
}

fn report(name: &str, what: &str, batch: usize, (ms, cpu): (f64, Option<f64>)) {
    let cpu = cpu.map(|c| format!(", {c:.1} ms CPU")).unwrap_or_default();
    println!(
        "{name} {what}: median {ms:.1} ms ({:.1} samples/s){cpu}",
        batch as f64 / ms * 1e3
    );
}

fn main() {
    let threads = env("BENCH_THREADS", 2);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("the global rayon pool is configured once, here");
    let device = std::env::var("BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    match device.as_str() {
        "cpu" => {
            println!("dfdx CPU, threads {threads}");
            bench(Cpu::seed_from_u64(0));
        }
        #[cfg(feature = "cuda")]
        "cuda" => {
            let dev = <Cuda as NetDevice<f32>>::open(0).expect("a CUDA device");
            println!("dfdx CUDA (device 0)");
            bench(dev);
        }
        other => {
            eprintln!(
                "BENCH_DEVICE={other}: this build knows cpu{}",
                if cfg!(feature = "cuda") {
                    " and cuda"
                } else {
                    " only (build with --features cuda for cuda)"
                }
            );
            std::process::exit(2);
        }
    }
}

fn bench<D: NetDevice<f32> + Cache>(dev: D) {
    let batch = env("BENCH_BATCH", 64);
    let steps = env("BENCH_STEPS", 10).max(1);
    let epoch_windows = env("BENCH_EPOCH_WINDOWS", 0);
    let nets = std::env::var("BENCH_NETS").unwrap_or_else(|_| "teacher,student".into());
    let what = std::env::var("BENCH_WHAT").unwrap_or_else(|_| "train,eval".into());
    println!("batch {batch}, {steps} timed steps");
    if std::env::var("BENCH_CACHE").map_or(true, |v| v == "1") {
        dev.enable_cache();
    }
    let mut rng = StdRng::seed_from_u64(0);
    let eeg = noise(&dev, (batch, 28, 512), &mut rng);
    let eog = noise(&dev, (batch, 2, 512), &mut rng);
    let labels: Vec<usize> = (0..batch).map(|_| rng.gen_range(0..2)).collect();
    let y = one_hot(&dev, &labels);
    let cfg = AdamConfig::default();

    if nets.contains("teacher") {
        let mut net =
            Teacher::<f32, D>::new(&dev, &TeacherConfig::default(), 0).expect("default teacher");
        println!(
            "teacher: {} trainable parameters",
            net.num_trainable_params()
        );
        let mut opt = Adam::new(&dev, &net, cfg).expect("optimizer");
        let mut step = |net: &mut Teacher<f32, D>, eeg: T3<f32, D>, eog: T3<f32, D>, y| {
            let grads = net.alloc_grads().expect("grads");
            let out = net
                .forward(eeg.traced(grads), eog, Mode::Train)
                .expect("forward");
            let loss = cross_entropy_with_logits_loss(out.logits, y);
            // Reading the loss waits for the device, as the training loop does.
            let value = loss.array();
            let mut grads = loss.backward();
            opt.step(net, &mut grads).expect("adam");
            value
        };
        if what.contains("train") {
            let ms = measure(steps, || {
                step(&mut net, eeg.clone(), eog.clone(), y.clone());
            });
            report("teacher", "train step", batch, ms);
        }
        if epoch_windows > 0 {
            // A DEAP-size epoch: fresh host batches copied to the device every step.
            let n = epoch_windows.div_ceil(batch);
            let host: Vec<(Vec<f32>, Vec<f32>, Vec<usize>)> = (0..n.min(8))
                .map(|_| {
                    (
                        host_noise(batch * 28 * 512, &mut rng),
                        host_noise(batch * 2 * 512, &mut rng),
                        (0..batch).map(|_| rng.gen_range(0..2)).collect(),
                    )
                })
                .collect();
            let t = Instant::now();
            for i in 0..n {
                let (e, o, l) = &host[i % host.len()];
                let eeg = dev.tensor_from_vec(e.clone(), (batch, 28, 512));
                let eog = dev.tensor_from_vec(o.clone(), (batch, 2, 512));
                step(&mut net, eeg, eog, one_hot(&dev, l));
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "teacher epoch ({} windows, {n} steps): {secs:.2} s ({:.1} samples/s)",
                n * batch,
                (n * batch) as f64 / secs
            );
        }
        if what.contains("eval") {
            let ms = measure(steps, || {
                net.predict(eeg.clone(), eog.clone())
                    .expect("eval")
                    .as_vec();
            });
            report("teacher", "eval forward", batch, ms);
        }
    }
    if nets.contains("student") {
        let mut net =
            Student::<f32, D>::new(&dev, &StudentConfig::default(), 0).expect("default student");
        println!(
            "student: {} trainable parameters",
            net.num_trainable_params()
        );
        let mut opt = Adam::new(&dev, &net, cfg).expect("optimizer");
        if what.contains("train") {
            let ms = measure(steps, || {
                let grads = net.alloc_grads().expect("grads");
                let out = net
                    .forward(eog.clone().traced(grads), Mode::Train)
                    .expect("forward");
                let loss = cross_entropy_with_logits_loss(out.logits, y.clone());
                loss.array();
                let mut grads = loss.backward();
                opt.step(&mut net, &mut grads).expect("adam");
            });
            report("student", "train step", batch, ms);
        }
        if what.contains("eval") {
            let ms = measure(steps, || {
                net.predict(eog.clone()).expect("eval").as_vec();
            });
            report("student", "eval forward", batch, ms);
        }
    }
}

/// One-hot targets `(B, 2)`.
fn one_hot<D: NetDevice<f32>>(dev: &D, labels: &[usize]) -> Tensor<(usize, usize), f32, D> {
    let mut y = vec![0.0f32; labels.len() * 2];
    for (i, &l) in labels.iter().enumerate() {
        y[i * 2 + l] = 1.0;
    }
    dev.tensor_from_vec(y, (labels.len(), 2))
}
