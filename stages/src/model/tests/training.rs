//! Overfitting a tiny batch, determinism, the optimiser and parameter arithmetic.

use dfdx::optim::AdamConfig;
use dfdx::prelude::*;

use super::*;
use crate::model::{Adam, DeepConvNet, Mode, ParamTreeExt, ParamVec, Student, Teacher};

const LABELS: [usize; 8] = [0, 1, 1, 0, 1, 0, 0, 1];

fn adam(lr: f64) -> AdamConfig {
    AdamConfig {
        lr,
        ..AdamConfig::default()
    }
}

/// Trains with `step` (returning the loss) until it is below `target`; returns the
/// last loss.
fn train_until(steps: usize, target: f32, mut step: impl FnMut() -> f32) -> f32 {
    let mut loss = f32::INFINITY;
    for _ in 0..steps {
        loss = step();
        if loss < target {
            break;
        }
    }
    loss
}

#[test]
fn student_overfits_a_tiny_batch() {
    let dev = Cpu::seed_from_u64(0);
    let mut net = Student::<f32, Cpu>::new(&dev, &tiny_student(), 1).unwrap();
    let mut opt = Adam::new(&dev, &net, adam(1e-2)).unwrap();
    let x = input::<f32>(&dev, (8, 2, 24), 3);
    let y = one_hot::<f32>(&dev, &LABELS, 2);
    let loss = train_until(300, 0.02, || {
        let out = net
            .forward(x.trace(net.alloc_grads().unwrap()), Mode::Train)
            .unwrap();
        let loss = cross_entropy_with_logits_loss(out.logits, y.clone());
        let v = loss.array();
        let mut grads = loss.backward();
        opt.step(&mut net, &mut grads).unwrap();
        v
    });
    assert!(loss < 0.02, "student loss stuck at {loss}");
}

#[test]
fn teacher_overfits_a_tiny_batch() {
    let dev = Cpu::seed_from_u64(0);
    let mut net = Teacher::<f32, Cpu>::new(&dev, &tiny_teacher(), 1).unwrap();
    let mut opt = Adam::new(&dev, &net, adam(1e-2)).unwrap();
    let eeg = input::<f32>(&dev, (8, 3, 24), 3);
    let eog = input::<f32>(&dev, (8, 2, 24), 4);
    let y = one_hot::<f32>(&dev, &LABELS, 2);
    let loss = train_until(300, 0.02, || {
        let out = net
            .forward(
                eeg.trace(net.alloc_grads().unwrap()),
                eog.clone(),
                Mode::Train,
            )
            .unwrap();
        let loss = cross_entropy_with_logits_loss(out.logits, y.clone());
        let v = loss.array();
        let mut grads = loss.backward();
        opt.step(&mut net, &mut grads).unwrap();
        v
    });
    assert!(loss < 0.02, "teacher loss stuck at {loss}");
}

#[test]
fn deepconvnet_overfits_a_tiny_batch() {
    let dev = Cpu::seed_from_u64(0);
    let mut net = DeepConvNet::<f32, Cpu>::new(&dev, &tiny_deepconvnet(), 1).unwrap();
    let mut opt = Adam::new(&dev, &net, adam(1e-2)).unwrap();
    let x = input::<f32>(&dev, (8, 2, 64), 3);
    let y = one_hot::<f32>(&dev, &LABELS, 2);
    let loss = train_until(300, 0.02, || {
        let logits = net
            .forward(x.trace(net.alloc_grads().unwrap()), Mode::Train)
            .unwrap();
        let loss = cross_entropy_with_logits_loss(logits, y.clone());
        let v = loss.array();
        let mut grads = loss.backward();
        opt.step(&mut net, &mut grads).unwrap();
        v
    });
    assert!(loss < 0.02, "deepconvnet loss stuck at {loss}");
}

#[test]
fn same_seed_same_network_and_outputs() {
    let mut cfg = tiny_student();
    cfg.branch.dropout = 0.1;
    cfg.classifier.dropout = 0.5;
    // Includes a backward pass: the kernels' parallel reductions must not depend on
    // thread scheduling.
    let run = |init_seed: u64, dev_seed: u64| {
        let dev = Cpu::seed_from_u64(dev_seed);
        let mut net = Student::<f32, Cpu>::new(&dev, &cfg, init_seed).unwrap();
        let x = input::<f32>(&dev, (16, 2, 24), 5);
        let out = net
            .forward(x.trace(net.alloc_grads().unwrap()), Mode::Train)
            .unwrap();
        let train = out.logits.as_vec();
        let mut grads = out.logits.sum().backward();
        let grad = net.grad_vec(&mut grads).unwrap().to_vec();
        let eval = net.predict(x).unwrap().as_vec();
        (net.param_vec().to_vec(), train, eval, grad)
    };
    let a = run(1, 0);
    assert_eq!(a, run(1, 0));
    let b = run(2, 0);
    assert_ne!(a.0, b.0);
    // The device seed drives dropout only.
    let c = run(1, 1);
    assert_eq!(a.0, c.0);
    assert_ne!(a.1, c.1);
    // The init is the same in f32 and f64 (drawn as f64).
    let dev = Cpu::default();
    let s32 = Student::<f32, Cpu>::new(&dev, &cfg, 1)
        .unwrap()
        .param_vec()
        .to_vec();
    let s64 = Student::<f64, Cpu>::new(&dev, &cfg, 1)
        .unwrap()
        .param_vec()
        .to_vec();
    assert!(s32
        .iter()
        .zip(&s64)
        .all(|(a, b)| (*a as f64 - b).abs() < 1e-6));
}

#[test]
fn batch_norm_running_statistics_move_in_train_mode_only() {
    let dev = Cpu::seed_from_u64(0);
    let mut net = Student::<f32, Cpu>::new(&dev, &tiny_student(), 1).unwrap();
    let x = input::<f32>(&dev, (4, 2, 24), 5);
    let stats = |n: &Student<f32, Cpu>| {
        (
            n.branch.bn.running_mean.0.as_vec(),
            n.branch.bn.running_var.0.as_vec(),
        )
    };
    let before = stats(&net);
    net.forward(x.clone(), Mode::Eval).unwrap();
    assert_eq!(stats(&net), before);
    net.forward(x, Mode::Train).unwrap();
    let after = stats(&net);
    assert_ne!(after.0, before.0);
    assert_ne!(after.1, before.1);
}

#[test]
fn adam_moves_parameters_and_checks_layouts() {
    let dev = Cpu::seed_from_u64(0);
    let mut net = Student::<f32, Cpu>::new(&dev, &tiny_student(), 1).unwrap();
    let mut opt = Adam::new(&dev, &net, adam(1e-3)).unwrap();
    let before = net.param_vec().to_vec();
    let g = net.param_vec().scale(1.0).unwrap();
    opt.step_vec(&mut net, &g).unwrap();
    let after = net.param_vec().to_vec();
    // First Adam step moves every parameter by ≈ lr against the gradient's sign.
    for (b, a) in before.iter().zip(&after) {
        if *b != 0.0 {
            assert!(((b - a) - 1e-3 * b.signum()).abs() < 1e-5, "{b} -> {a}");
        }
    }
    let other = Teacher::<f32, Cpu>::new(&dev, &tiny_teacher(), 1).unwrap();
    assert!(opt.step_vec(&mut net, &other.param_vec()).is_err());
}

#[test]
fn parameter_vectors_and_copies() {
    let dev = Cpu::seed_from_u64(0);
    let mut net = Student::<f64, Cpu>::new(&dev, &tiny_student(), 1).unwrap();
    net.forward(input::<f64>(&dev, (4, 2, 24), 5), Mode::Train)
        .unwrap();
    let theta = net.param_vec();
    let n = theta.len();
    assert_eq!(n, net.num_trainable_params());
    let v = ParamVec::from_values(&theta, &noise(n, 3)).unwrap();
    let dot: f64 = theta
        .to_vec()
        .iter()
        .zip(v.to_vec())
        .map(|(a, b)| a * b)
        .sum();
    assert!((theta.dot(&v).unwrap() - dot).abs() < 1e-9);
    assert!((v.norm().unwrap() - v.dot(&v).unwrap().sqrt()).abs() < 1e-12);

    // θ + ε·v changes trainable tensors only, in place.
    let buffers = |m: &Student<f64, Cpu>| -> Vec<Vec<f64>> {
        m.tensors()
            .into_iter()
            .filter(|t| !t.trainable)
            .map(|t| t.tensor.to_vec())
            .collect()
    };
    let mut plus = net.clone();
    plus.add_scaled(&v, 0.01).unwrap();
    let want = theta.add_scaled(&v, 0.01).unwrap().to_vec();
    assert!(max_abs_diff(&plus.param_vec().to_vec(), &want) < 1e-12);
    assert_eq!(buffers(&plus), buffers(&net));
    // The original is untouched (copy-on-write) and keeps its values.
    assert_eq!(net.param_vec().to_vec(), theta.to_vec());
    assert!(plus.add_scaled(&v.scale(1.0).unwrap(), 1.0).is_ok());
    let short = ParamVec {
        parts: v.parts[1..].to_vec(),
    };
    assert!(plus.add_scaled(&short, 1.0).is_err());

    // A deep copy has the same values under new ids.
    let copy = net.deep_copy().unwrap();
    assert_eq!(copy.param_vec().to_vec(), net.param_vec().to_vec());
    assert_eq!(buffers(&copy), buffers(&net));
    // Gradients of the copy do not land in the original's slots (they would for a
    // plain clone, which shares tensor ids).
    let mut copy = copy;
    let x = input::<f64>(&dev, (2, 2, 24), 6);
    let out = copy.forward(x.leaky_trace(), Mode::Eval).unwrap();
    let mut grads = out.logits.sum().backward();
    assert!(copy.grad_vec(&mut grads).unwrap().norm().unwrap() > 0.0);
    assert_eq!(net.grad_vec(&mut grads).unwrap().norm().unwrap(), 0.0);
    let out = net.clone().forward(x.leaky_trace(), Mode::Eval).unwrap();
    let mut grads = out.logits.sum().backward();
    assert!(net.grad_vec(&mut grads).unwrap().norm().unwrap() > 0.0);

    let mut other = Student::<f64, Cpu>::new(&dev, &tiny_student(), 9).unwrap();
    other.copy_values_from(&net).unwrap();
    assert_eq!(other.param_vec().to_vec(), net.param_vec().to_vec());
    assert_eq!(buffers(&other), buffers(&net));
    let mut different = Student::<f64, Cpu>::new(
        &dev,
        &StudentConfig {
            channels: 3,
            ..tiny_student()
        },
        1,
    )
    .unwrap();
    assert!(different.copy_values_from(&net).is_err());
}

#[test]
fn pair_of_models_trains_together() {
    let dev = Cpu::seed_from_u64(0);
    let student = Student::<f32, Cpu>::new(&dev, &tiny_student(), 1).unwrap();
    let reg = crate::model::Regressor::<f32, Cpu>::new(
        &dev,
        &crate::model::RegressorConfig {
            tokens_in: 5,
            tokens_out: 10,
            dim_in: 8,
            dim_out: 8,
        },
        2,
    )
    .unwrap();
    let n = student.num_trainable_params() + reg.num_trainable_params();
    let mut pair = (student, reg);
    assert_eq!(pair.num_trainable_params(), n);
    let names: Vec<String> = pair.tensors().into_iter().map(|t| t.name).collect();
    assert!(names.iter().any(|n| n.starts_with("1.tokens")));
    let mut opt = Adam::new(&dev, &pair, adam(1e-3)).unwrap();
    let x = input::<f32>(&dev, (2, 2, 24), 5);
    let out = pair
        .0
        .forward(x.trace(pair.alloc_grads().unwrap()), Mode::Train)
        .unwrap();
    let r = pair
        .1
        .forward(out.feature.retaped::<OwnedTape<f32, Cpu>>())
        .unwrap();
    let mut grads = (out.logits.sum() + r.square().mean()).backward();
    let before = pair.1.tokens.weight.as_vec();
    opt.step(&mut pair, &mut grads).unwrap();
    assert_ne!(pair.1.tokens.weight.as_vec(), before);
}

/// At the spec's sizes (several parallel blocks per reduction) a training step is
/// bit-for-bit repeatable, whatever the number of threads.
#[test]
fn default_student_step_is_repeatable_across_thread_counts() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let dev = Cpu::seed_from_u64(3);
            let mut net = Student::<f32, Cpu>::new(&dev, &StudentConfig::default(), 1).unwrap();
            let x = input::<f32>(&dev, (6, 2, 512), 5);
            let y = one_hot::<f32>(&dev, &LABELS[..6], 2);
            let out = net
                .forward(x.trace(net.alloc_grads().unwrap()), Mode::Train)
                .unwrap();
            let mut grads = cross_entropy_with_logits_loss(out.logits, y).backward();
            net.grad_vec(&mut grads).unwrap().to_vec()
        })
    };
    let one = run(1);
    assert!(one.iter().any(|v| *v != 0.0));
    assert_eq!(one, run(4));
    assert_eq!(one, run(4));
}
