//! Tests of the networks: shapes, parameter counts, gradients, overfitting, I/O,
//! determinism. Sizes are tiny so the whole module runs in seconds.

mod grads;
mod io;
mod shapes;
mod training;

use dfdx::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{
    BranchConfig, ClassifierConfig, DeepConvNetConfig, StudentConfig, TeacherConfig,
};
use super::device::{Float, T3};

/// A branch small enough for finite differences: 24 samples, kernel 8, stride 4 →
/// 5 tokens of width 8, 2 heads, 3 layers. Dropout off unless a test turns it on.
pub(crate) fn tiny_branch() -> BranchConfig {
    BranchConfig {
        samples: 24,
        temporal_filters: 4,
        kernel: 8,
        stride: 4,
        dim: 8,
        heads: 2,
        ffn_dim: 8,
        layers: 3,
        front_dropout: 0.0,
        dropout: 0.0,
        attn_dropout: 0.0,
        ..BranchConfig::default()
    }
}

pub(crate) fn tiny_classifier() -> ClassifierConfig {
    ClassifierConfig {
        hidden: 8,
        layers: 3,
        relu: true,
        dropout: 0.0,
        classes: 2,
    }
}

pub(crate) fn tiny_student() -> StudentConfig {
    StudentConfig {
        channels: 2,
        branch: tiny_branch(),
        classifier: tiny_classifier(),
    }
}

pub(crate) fn tiny_teacher() -> TeacherConfig {
    TeacherConfig {
        eeg_channels: 3,
        eog_channels: 2,
        branch: tiny_branch(),
        classifier: tiny_classifier(),
    }
}

pub(crate) fn tiny_deepconvnet() -> DeepConvNetConfig {
    DeepConvNetConfig {
        channels: 2,
        samples: 64,
        filters: vec![4, 5, 6, 7],
        kernel: 3,
        pool: 2,
        dropout: 0.0,
        ..DeepConvNetConfig::default()
    }
}

/// Host values from `N(0, 1)`-ish uniform noise.
pub(crate) fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

pub(crate) fn input<E: Float>(dev: &Cpu, shape: (usize, usize, usize), seed: u64) -> T3<E, Cpu>
where
    Cpu: Device<E>,
{
    let v = noise(shape.0 * shape.1 * shape.2, seed)
        .into_iter()
        .map(E::c)
        .collect();
    dev.tensor_from_vec(v, shape)
}

/// One-hot targets for labels `i % 2`.
pub(crate) fn one_hot<E: Float>(
    dev: &Cpu,
    labels: &[usize],
    classes: usize,
) -> Tensor<(usize, usize), E, Cpu>
where
    Cpu: Device<E>,
{
    let mut v = vec![E::zero(); labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        v[i * classes + l] = E::one();
    }
    dev.tensor_from_vec(v, (labels.len(), classes))
}

pub(crate) fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
