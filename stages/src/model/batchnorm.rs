//! Batch normalisation that stays differentiable in eval mode.
//!
//! dfdx's own `BatchNorm1D/2D` use batch statistics only when the input carries a tape
//! and running statistics only without one, so an eval-mode pass cannot be
//! differentiated — but the feedback phase's Hessian-vector product differentiates
//! through the eval-mode teacher. Here the mode is an explicit argument.

use dfdx::prelude::*;

use super::device::{BatchStats, Float, NetDevice, T1, T3};
use super::error::ModelError;
use super::init::Init;
use super::param_tree::Buffer;
use super::Mode;

/// `BatchNorm` over the channel axis 1 of `(A, C, L)` inputs; statistics over A and L.
/// Covers PyTorch's `BatchNorm1d(C)` on `(B, C, L)` and, with `L = 1`, a
/// channels-last `BatchNorm2d`.
#[derive(Clone, Debug)]
pub struct BatchNorm<E, D: Storage<E>> {
    pub gamma: T1<E, D>,
    pub beta: T1<E, D>,
    pub running_mean: Buffer<E, D>,
    pub running_var: Buffer<E, D>,
    pub momentum: f64,
    pub eps: f64,
}

crate::impl_params!(BatchNorm {
    gamma,
    beta,
    running_mean,
    running_var
});

impl<E: Float, D: NetDevice<E>> BatchNorm<E, D> {
    /// γ = 1, β = 0, running mean 0 and variance 1 (PyTorch's defaults).
    pub fn new(
        init: &mut Init<D>,
        channels: usize,
        momentum: f64,
        eps: f64,
    ) -> Result<Self, ModelError> {
        Ok(BatchNorm {
            gamma: init.constant1(channels, 1.0)?,
            beta: init.constant1(channels, 0.0)?,
            running_mean: Buffer(init.constant1(channels, 0.0)?),
            running_var: Buffer(init.constant1(channels, 1.0)?),
            momentum,
            eps,
        })
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.gamma.shape().0
    }

    /// Folds batch statistics over `n` values per channel into the running ones:
    /// `r ← (1 − m)·r + m·stat`, with the unbiased variance (as PyTorch).
    pub fn update_running(&mut self, stats: &BatchStats<E, D>, n: usize) -> Result<(), D::Err> {
        let n = n as f64;
        let unbias = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
        let m = self.momentum;
        self.running_mean.0.try_axpy(1.0 - m, &stats.mean, m)?;
        self.running_var.0.try_axpy(1.0 - m, &stats.var, m * unbias)
    }

    /// Train mode normalises with the batch statistics and updates the running ones
    /// (`r ← (1 − m)·r + m·stat`, unbiased variance, as PyTorch); eval mode uses the
    /// running statistics. Both are differentiable.
    pub fn forward<T: Tape<E, D>>(
        &mut self,
        x: T3<E, D, T>,
        mode: Mode,
    ) -> Result<T3<E, D, T>, D::Err> {
        match mode {
            Mode::Train => {
                let (a, _, l) = *x.shape();
                let (y, stats) = D::batch_norm_train(x, &self.gamma, &self.beta, self.eps)?;
                self.update_running(&stats, a * l)?;
                Ok(y)
            }
            Mode::Eval => D::batch_norm_eval(
                x,
                &self.gamma,
                &self.beta,
                &self.running_mean.0,
                &self.running_var.0,
                self.eps,
            ),
        }
    }
}
