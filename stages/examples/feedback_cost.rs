//! Cost of a dynamic-feedback step relative to a plain distillation step, with the
//! spec's network sizes (teacher 28 EEG + 2 EOG channels, student 2 EOG channels,
//! 512 samples).
//!
//! `cargo build --workspace --examples`, then
//! `target/debug/examples/feedback_cost [batch] [iterations] [threads]` (defaults 64, 5,
//! 2; the dev profile builds the stage library and the dependencies optimised, and a
//! workspace-wide build reuses the artifacts of `cargo test --workspace`). Prints the median wall time of: a plain teaching step (V2),
//! a meta feedback step alone, a first-order feedback step alone, and the cost per
//! student step relative to V2 for k = 1, 2, 4, 8.

use std::time::Instant;

use dfdx::optim::AdamConfig;
use dfdx::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use stages::model::{Mode, ParamTreeExt};
use stages::model::{Student, StudentConfig, Teacher, TeacherConfig};
use stages::train::distill_loop::{
    student_forward, teacher_forward, DistillOptions, Distiller, Feedback, FeedbackConfig, KdBatch,
};
use stages::train::losses::KdWeights;

fn batch(rng: &mut StdRng, n: usize, seed: u64) -> KdBatch<f32> {
    let (eeg_c, eog_c, t) = (28, 2, 512);
    KdBatch {
        eeg: (0..n * eeg_c * t)
            .map(|_| rng.sample(StandardNormal))
            .collect(),
        eog: (0..n * eog_c * t)
            .map(|_| rng.sample(StandardNormal))
            .collect(),
        eeg_channels: eeg_c,
        eog_channels: eog_c,
        samples: t,
        y: (0..n).map(|_| rng.gen_range(0..2u8)).collect(),
        mask_seed: seed,
    }
}

/// CPU time of all threads of this process in seconds (Linux `/proc`; `None`
/// elsewhere): on a shared machine less sensitive to other load than wall time.
fn cpu_s() -> Option<f64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(entry.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total as f64 / 1e9)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(64);
    let iters = args.get(1).copied().unwrap_or(5).max(1);
    let threads = args.get(2).copied().unwrap_or(2).max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    pool.install(|| {
        let dev = Cpu::seed_from_u64(0);
        let teacher =
            Teacher::<f32, Cpu>::new(&dev, &TeacherConfig::default(), 1).expect("teacher");
        let student =
            Student::<f32, Cpu>::new(&dev, &StudentConfig::default(), 2).expect("student");
        let mut rng = StdRng::seed_from_u64(3);
        let b = batch(&mut rng, n, 4);
        let q = batch(&mut rng, n, 5);
        let make = |mode| {
            Distiller::new(
                &dev,
                (student.clone(), None),
                teacher.clone(),
                KdWeights::default(),
                FeedbackConfig {
                    mode,
                    ..FeedbackConfig::default()
                },
                DistillOptions {
                    adam: AdamConfig::default(),
                    mask_seed: 6,
                    quiz_seed: 7,
                    eval_batch: n,
                },
            )
            .expect("distiller")
        };
        // (median wall seconds, median CPU seconds) of `f`
        let time = |f: &mut dyn FnMut()| -> (f64, f64) {
            f(); // warm-up
            let (mut wall, mut cpu) = (Vec::new(), Vec::new());
            for _ in 0..iters {
                let (t, c) = (Instant::now(), cpu_s());
                f();
                wall.push(t.elapsed().as_secs_f64());
                cpu.push(cpu_s().zip(c).map_or(f64::NAN, |(b, a)| b - a));
            }
            (median(wall), median(cpu))
        };
        let mut plain = make(Feedback::None);
        let t_plain = time(&mut || {
            plain.teaching_step(&b).expect("teaching step");
        });
        let mut meta = make(Feedback::Meta);
        let t_meta = time(&mut || {
            meta.feedback_step(&b, &q).expect("meta feedback step");
        });
        let mut first = make(Feedback::FirstOrder);
        let t_first = time(&mut || {
            first
                .feedback_step(&b, &q)
                .expect("first-order feedback step");
        });
        let show = |name: &str, t: (f64, f64)| println!("{name:28} {:8.1} / {:8.1}", 1e3 * t.0, 1e3 * t.1);
        // The parts a feedback step is made of.
        let parts = make(Feedback::Meta);
        let t_teacher_eval = time(&mut || {
            parts.teacher_targets(&b).expect("teacher forward");
        });
        let t_teacher_taped = time(&mut || {
            let (eeg, eog) = b.teacher_inputs(&dev);
            let t = &parts.teacher;
            let (z, _) = teacher_forward(t, eeg.traced(t.alloc_grads().expect("grads")), eog, true, false)
                .expect("teacher forward");
            let _ = z.square().mean().backward();
        });
        let t_student_fb = time(&mut || {
            let mut s = parts.student.clone();
            let grads = s.alloc_grads().expect("grads");
            let (z, _) = student_forward(&mut s, b.student_input(&dev).traced(grads), Mode::Train, true)
                .expect("student forward");
            let _ = z.square().mean().backward();
        });
        let t_student_f = time(&mut || {
            let mut s = parts.student.clone();
            student_forward(&mut s, b.student_input(&dev), Mode::Train, true).expect("student forward");
        });
        let t_copy = time(&mut || {
            parts.student.deep_copy().expect("copy");
        });
        println!("batch {n}, {threads} threads, median of {iters} (wall ms / CPU ms)");
        show("teacher eval forward", t_teacher_eval);
        show("teacher eval fwd+bwd (taped)", t_teacher_taped);
        show("student train fwd+bwd", t_student_fb);
        show("student train forward", t_student_f);
        show("student deep copy", t_copy);
        show("plain teaching step (V2)", t_plain);
        show("meta feedback step", t_meta);
        show("first-order feedback step", t_first);
        for k in [1usize, 2, 4, 8] {
            let rel = |fb: (f64, f64)| ((t_plain.0 + fb.0 / k as f64) / t_plain.0, (t_plain.1 + fb.1 / k as f64) / t_plain.1);
            let (m, f) = (rel(t_meta), rel(t_first));
            println!(
                "k = {k}: cost per student step / V2 step: meta {:.2}x wall, {:.2}x CPU; first-order {:.2}x wall, {:.2}x CPU",
                m.0, m.1, f.0, f.1
            );
        }
    });
}
