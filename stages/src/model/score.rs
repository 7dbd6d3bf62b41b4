//! The gated score block: `s(X) = softsign(BN(W₂·ReLU(BN(W₁X + b₁)) + b₂))`,
//! `E(X) = X ⊙ s(X)`.
//!
//! The batch norms are `BatchNorm1d(N)` over the token axis (N = number of tokens,
//! statistics over batch and features), which is what gives the spec's parameter
//! counts (teacher 1,354,658, student 648,862).

use dfdx::prelude::*;

use super::batchnorm::BatchNorm;
use super::dense::Dense;
use super::device::{Float, NetDevice, T3};
use super::error::ModelError;
use super::init::Init;
use super::Mode;

#[derive(Clone, Debug)]
pub struct ScoreBlock<E, D: Storage<E>> {
    pub w1: Dense<E, D>,
    pub bn1: BatchNorm<E, D>,
    pub w2: Dense<E, D>,
    pub bn2: BatchNorm<E, D>,
}

crate::impl_params!(ScoreBlock { w1, bn1, w2, bn2 });

/// `z / (1 + |z|)`.
pub fn softsign<E: Float, D: NetDevice<E>, T: Tape<E, D>>(
    z: T3<E, D, T>,
) -> Result<T3<E, D, T>, D::Err> {
    let denom = z.retaped::<T>().try_abs()?.try_add(E::one())?;
    z.try_div(denom)
}

impl<E: Float, D: NetDevice<E>> ScoreBlock<E, D> {
    /// A block for `tokens × dim` inputs.
    pub fn new(
        init: &mut Init<D>,
        tokens: usize,
        dim: usize,
        bn_momentum: f64,
        bn_eps: f64,
    ) -> Result<Self, ModelError> {
        Ok(ScoreBlock {
            w1: Dense::new(init, dim, dim, true)?,
            bn1: BatchNorm::new(init, tokens, bn_momentum, bn_eps)?,
            w2: Dense::new(init, dim, dim, true)?,
            bn2: BatchNorm::new(init, tokens, bn_momentum, bn_eps)?,
        })
    }

    /// The pre-activation `z = BN(W₂·ReLU(BN(W₁X + b₁)) + b₂)`, so `s(X) = softsign(z)`.
    fn logits<T: Tape<E, D>>(&mut self, x: T3<E, D, T>, mode: Mode) -> Result<T3<E, D, T>, D::Err> {
        let h = self.bn1.forward(self.w1.forward3(x)?, mode)?.try_relu()?;
        self.bn2.forward(self.w2.forward3(h)?, mode)
    }

    /// The scores `s(X) ∈ (−1, 1)`, same shape as `x: (B, N, dim)`.
    pub fn scores<T: Tape<E, D>>(
        &mut self,
        x: T3<E, D, T>,
        mode: Mode,
    ) -> Result<T3<E, D, T>, D::Err> {
        softsign(self.logits(x, mode)?)
    }

    /// The gated tokens `E(X) = X ⊙ s(X)`.
    pub fn forward<T: Tape<E, D>>(
        &mut self,
        x: T3<E, D, T>,
        mode: Mode,
    ) -> Result<T3<E, D, T>, D::Err> {
        let (x, tape) = x.split_tape();
        let z = self.logits(x.clone().put_tape(tape), mode)?;
        D::gate(z, &x)
    }
}
