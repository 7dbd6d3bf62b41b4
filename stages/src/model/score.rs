//! The gated score block: `s(X) = softsign(BN(W₂·ReLU(BN(W₁X + b₁)) + b₂))`,
//! `E(X) = X ⊙ s(X)`.
//!
//! The batch norms are `BatchNorm1d(N)` over the token axis (N = number of tokens,
//! statistics over batch and features) by default, which is what gives the spec's
//! parameter counts (teacher 1,354,658, student 648,862); `score_bn: features`
//! normalises the feature axis instead (statistics over batch and tokens), as Keras'
//! `BatchNormalization()` does on EmotionKD's `(B, tokens, dim)` tensors.

use dfdx::prelude::*;

use super::batchnorm::BatchNorm;
use super::config::{BranchConfig, ScoreBn};
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
    pub axis: ScoreBn,
}

crate::impl_params!(ScoreBlock { w1, bn1, w2, bn2 });

/// `bn` over the token axis of `h: (B, N, dim)`, or over its feature axis as a
/// `(B·N, dim, 1)` view (the same memory, so only a reshape each way).
fn normalise<E: Float, D: NetDevice<E>, T: Tape<E, D>>(
    bn: &mut BatchNorm<E, D>,
    axis: ScoreBn,
    h: T3<E, D, T>,
    mode: Mode,
) -> Result<T3<E, D, T>, D::Err> {
    match axis {
        ScoreBn::Tokens => bn.forward(h, mode),
        ScoreBn::Features => {
            let (b, n, d) = *h.shape();
            let y = bn.forward(h.try_reshape_like(&(b * n, d, 1))?, mode)?;
            y.try_reshape_like(&(b, n, d))
        }
    }
}

/// `z / (1 + |z|)`.
pub fn softsign<E: Float, D: NetDevice<E>, T: Tape<E, D>>(
    z: T3<E, D, T>,
) -> Result<T3<E, D, T>, D::Err> {
    let denom = z.retaped::<T>().try_abs()?.try_add(E::one())?;
    z.try_div(denom)
}

impl<E: Float, D: NetDevice<E>> ScoreBlock<E, D> {
    /// A block for `tokens × b.dim` inputs, with `b`'s batch-norm settings.
    pub fn new(init: &mut Init<D>, tokens: usize, b: &BranchConfig) -> Result<Self, ModelError> {
        let channels = match b.score_bn {
            ScoreBn::Tokens => tokens,
            ScoreBn::Features => b.dim,
        };
        let bn = |init: &mut Init<D>| BatchNorm::new(init, channels, b.bn_momentum, b.bn_eps);
        Ok(ScoreBlock {
            w1: Dense::new(init, b.dim, b.dim, true)?,
            bn1: bn(init)?,
            w2: Dense::new(init, b.dim, b.dim, true)?,
            bn2: bn(init)?,
            axis: b.score_bn,
        })
    }

    /// The pre-activation `z = BN(W₂·ReLU(BN(W₁X + b₁)) + b₂)`, so `s(X) = softsign(z)`.
    fn logits<T: Tape<E, D>>(&mut self, x: T3<E, D, T>, mode: Mode) -> Result<T3<E, D, T>, D::Err> {
        let axis = self.axis;
        let h = normalise(&mut self.bn1, axis, self.w1.forward3(x)?, mode)?.try_relu()?;
        normalise(&mut self.bn2, axis, self.w2.forward3(h)?, mode)
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
