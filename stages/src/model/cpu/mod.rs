//! Fused CPU kernels for [`NetDevice`]: the branch front end
//! (unfold, temporal GEMM, batch norm, ReLU, spatial GEMM), the linear layer, batch
//! norm, layer norm with an optional residual, the score gate, dropout and the
//! attention core. Each is checked against its dfdx-composed twin
//! ([`super::composed`]) and by finite differences (`model::tests::grads`).
//!
//! Common ground (`host`): inputs are copied out once (dfdx keeps tensor buffers
//! crate-private), outputs become tensors without a copy, gradients are written in
//! place; GEMMs go through the `gemm` crate (dfdx's own GEMM backend), row loops are
//! compiled for AVX2 as well and picked at run time (`simd`); parallel reductions
//! sum fixed blocks in order, so results do not depend on the thread count.

// The only place `unsafe` is allowed (workspace lint): gemm calls and the AVX2
// dispatch, each with its SAFETY comment.
#![allow(unsafe_code)]

mod attention;
mod dropout;
mod front;
mod gate;
mod host;
mod linear;
mod norm;
mod simd;

use std::cell::Cell;

use dfdx::prelude::*;

use super::composed;
use super::device::{BnOutput, Float, FrontOutput, FrontParams, NetDevice, T1, T2, T3};
use super::error::ModelError;

thread_local! {
    static COMPOSED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every CPU block replaced by its composed twin — the path a CUDA
/// device takes — on this thread. Dropout masks are the same on both paths, so a
/// training run inside gives the fused run's results to rounding.
pub fn with_composed_blocks<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            COMPOSED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(COMPOSED.with(|c| c.replace(true)));
    f()
}

fn composed_only() -> bool {
    COMPOSED.with(|c| c.get())
}

impl<E: Float> NetDevice<E> for Cpu
where
    Cpu: Device<E>,
{
    const BACKEND: &'static str = "cpu";

    fn open(seed: u64) -> Result<Self, ModelError> {
        Ok(Cpu::seed_from_u64(seed))
    }

    fn step_device(&self, seed: u64) -> Self {
        Cpu::seed_from_u64(seed)
    }

    fn linear<T: Tape<E, Self>>(
        x: T2<E, Self, T>,
        w: &T2<E, Self>,
        b: Option<&T1<E, Self>>,
    ) -> Result<T2<E, Self, T>, Self::Err> {
        if composed_only() {
            return composed::linear(x, w, b);
        }
        linear::linear(x, w, b)
    }

    fn conv_front<T: Tape<E, Self>>(
        x: T3<E, Self, T>,
        p: &FrontParams<'_, E, Self>,
    ) -> Result<FrontOutput<E, Self, T>, Self::Err> {
        if composed_only() {
            return composed::conv_front(x, p);
        }
        front::conv_front(x, p)
    }

    fn batch_norm_train<T: Tape<E, Self>>(
        x: T3<E, Self, T>,
        gamma: &T1<E, Self>,
        beta: &T1<E, Self>,
        eps: f64,
    ) -> Result<BnOutput<E, Self, T>, Self::Err> {
        if composed_only() {
            return composed::batch_norm_train(x, gamma, beta, eps);
        }
        norm::batch_norm(x, gamma, beta, None, eps)
    }

    fn batch_norm_eval<T: Tape<E, Self>>(
        x: T3<E, Self, T>,
        gamma: &T1<E, Self>,
        beta: &T1<E, Self>,
        mean: &T1<E, Self>,
        var: &T1<E, Self>,
        eps: f64,
    ) -> Result<T3<E, Self, T>, Self::Err> {
        if composed_only() {
            return composed::batch_norm_eval(x, gamma, beta, mean, var, eps);
        }
        Ok(norm::batch_norm(x, gamma, beta, Some((mean, var)), eps)?.0)
    }

    fn layer_norm<T: Tape<E, Self>>(
        x: T2<E, Self, T>,
        gamma: &T1<E, Self>,
        beta: &T1<E, Self>,
        eps: f64,
    ) -> Result<T2<E, Self, T>, Self::Err> {
        if composed_only() {
            return composed::layer_norm(x, gamma, beta, eps);
        }
        norm::layer_norm(x, None, gamma, beta, eps)
    }

    fn add_layer_norm<T: Tape<E, Self>>(
        x: T2<E, Self, T>,
        residual: &T2<E, Self>,
        gamma: &T1<E, Self>,
        beta: &T1<E, Self>,
        eps: f64,
    ) -> Result<T2<E, Self, T>, Self::Err> {
        if composed_only() {
            return composed::add_layer_norm(x, residual, gamma, beta, eps);
        }
        norm::layer_norm(x, Some(residual), gamma, beta, eps)
    }

    fn gate<T: Tape<E, Self>>(
        z: T3<E, Self, T>,
        x: &T3<E, Self>,
    ) -> Result<T3<E, Self, T>, Self::Err> {
        if composed_only() {
            return composed::gate(z, x);
        }
        gate::gate(z, x)
    }

    fn dropout<S: Shape, T: Tape<E, Self>>(
        x: Tensor<S, E, Self, T>,
        p: f64,
    ) -> Result<Tensor<S, E, Self, T>, Self::Err> {
        if composed_only() {
            let seed = x.device().random_u64();
            return composed::dropout(x, p, seed);
        }
        dropout::dropout(x, p)
    }

    fn attention<T: Tape<E, Self>>(
        qkv: T3<E, Self, T>,
        heads: usize,
        dropout: Option<f64>,
    ) -> Result<T3<E, Self, T>, Self::Err> {
        if composed_only() {
            let dropout = dropout
                .filter(|p| *p > 0.0)
                .map(|p| (p, qkv.device().random_u64()));
            return composed::attention(qkv, heads, dropout);
        }
        attention::attention(qkv, heads, dropout)
    }
}
