//! Layer normalisation over the feature axis.

use dfdx::prelude::*;

use super::device::{Float, NetDevice, T1, T3};
use super::error::ModelError;
use super::init::Init;

/// `LayerNorm(dim)` with learned scale and shift (PyTorch defaults: γ = 1, β = 0).
#[derive(Clone, Debug)]
pub struct LayerNorm<E, D: Storage<E>> {
    pub gamma: T1<E, D>,
    pub beta: T1<E, D>,
    pub eps: f64,
}

crate::impl_params!(LayerNorm { gamma, beta });

impl<E: Float, D: NetDevice<E>> LayerNorm<E, D> {
    pub fn new(init: &mut Init<D>, dim: usize, eps: f64) -> Result<Self, ModelError> {
        Ok(LayerNorm {
            gamma: init.constant1(dim, 1.0)?,
            beta: init.constant1(dim, 0.0)?,
            eps,
        })
    }

    /// `LN(x + residual)` for every token of `(B, S, dim)` (a post-LN residual
    /// connection); the residual gets the same gradient as `x`.
    pub fn forward3_residual<T: Tape<E, D>>(
        &self,
        x: T3<E, D, T>,
        residual: &T3<E, D>,
    ) -> Result<T3<E, D, T>, D::Err> {
        let (b, s, d) = *x.shape();
        let r = residual.clone().try_reshape_like(&(b * s, d))?;
        let y = D::add_layer_norm(
            x.try_reshape_like(&(b * s, d))?,
            &r,
            &self.gamma,
            &self.beta,
            self.eps,
        )?;
        y.try_reshape_like(&(b, s, d))
    }

    /// Normalises every token of `(B, S, dim)`.
    pub fn forward3<T: Tape<E, D>>(&self, x: T3<E, D, T>) -> Result<T3<E, D, T>, D::Err> {
        let (b, s, d) = *x.shape();
        let y = D::layer_norm(
            x.try_reshape_like(&(b * s, d))?,
            &self.gamma,
            &self.beta,
            self.eps,
        )?;
        y.try_reshape_like(&(b, s, d))
    }
}
