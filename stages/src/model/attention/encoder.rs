//! Post-LN transformer encoder block with dropout.
//!
//! dfdx's `TransformerEncoderBlock` has no dropout and is const-sized; this one
//! follows PyTorch's `nn.TransformerEncoderLayer(norm_first=False, activation=relu)`:
//! `h = LN₁(x + Drop(MHA(x)))`, `y = LN₂(h + Drop(W₂·Drop(ReLU(W₁h))))`.

use dfdx::prelude::*;

use super::mha::SelfAttention;
use crate::model::dense::Dense;
use crate::model::device::{Float, NetDevice, T3};
use crate::model::error::ModelError;
use crate::model::init::Init;
use crate::model::layer_norm::LayerNorm;
use crate::model::{dropout, Mode};

/// Sizes of one encoder block.
#[derive(Clone, Copy, Debug)]
pub struct EncoderSizes {
    pub dim: usize,
    pub heads: usize,
    pub ffn_dim: usize,
    pub dropout: f64,
    pub attn_dropout: f64,
    pub ln_eps: f64,
}

#[derive(Clone, Debug)]
pub struct EncoderBlock<E, D: Storage<E>> {
    pub attn: SelfAttention<E, D>,
    pub ln1: LayerNorm<E, D>,
    pub ff1: Dense<E, D>,
    pub ff2: Dense<E, D>,
    pub ln2: LayerNorm<E, D>,
    pub dropout: f64,
}

crate::impl_params!(EncoderBlock {
    attn,
    ln1,
    ff1,
    ff2,
    ln2
});

impl<E: Float, D: NetDevice<E>> EncoderBlock<E, D> {
    pub fn new(init: &mut Init<D>, s: EncoderSizes) -> Result<Self, ModelError> {
        Ok(EncoderBlock {
            attn: SelfAttention::new(init, s.dim, s.heads, s.attn_dropout)?,
            ln1: LayerNorm::new(init, s.dim, s.ln_eps)?,
            ff1: Dense::new(init, s.dim, s.ffn_dim, true)?,
            ff2: Dense::new(init, s.ffn_dim, s.dim, true)?,
            ln2: LayerNorm::new(init, s.dim, s.ln_eps)?,
            dropout: s.dropout,
        })
    }

    /// `(B, S, dim) -> (B, S, dim)`.
    pub fn forward<T: Tape<E, D>>(
        &self,
        x: T3<E, D, T>,
        mode: Mode,
    ) -> Result<T3<E, D, T>, D::Err> {
        let (x, tape) = x.split_tape();
        let a = self.attn.forward(x.clone().put_tape(tape), mode)?;
        let a = dropout(a, self.dropout, mode)?;
        let h = self.ln1.forward3_residual(a, &x)?;
        let (h, tape) = h.split_tape();
        let f = self.ff1.forward3(h.clone().put_tape(tape))?.try_relu()?;
        let f = dropout(f, self.dropout, mode)?;
        let f = dropout(self.ff2.forward3(f)?, self.dropout, mode)?;
        self.ln2.forward3_residual(f, &h)
    }
}
