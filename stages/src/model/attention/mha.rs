//! Multi-head self-attention with one packed input projection (as PyTorch's
//! `nn.MultiheadAttention`), so the three projections are one matmul.

use dfdx::prelude::*;

use crate::model::dense::Dense;
use crate::model::device::{Float, NetDevice, T3};
use crate::model::error::ModelError;
use crate::model::init::Init;
use crate::model::Mode;

/// `MHA(x, x, x)` with `heads` heads over model width `dim`.
#[derive(Clone, Debug)]
pub struct SelfAttention<E, D: Storage<E>> {
    /// `dim -> 3·dim`: queries, keys, values side by side.
    pub qkv: Dense<E, D>,
    /// `dim -> dim`.
    pub out: Dense<E, D>,
    pub heads: usize,
    /// Dropout on the attention weights (train mode only).
    pub dropout: f64,
}

crate::impl_params!(SelfAttention { qkv, out });

impl<E: Float, D: NetDevice<E>> SelfAttention<E, D> {
    /// PyTorch's initialisation: packed input weight Xavier-uniform, input bias 0,
    /// output weight `U(±1/√dim)`, output bias 0.
    pub fn new(
        init: &mut Init<D>,
        dim: usize,
        heads: usize,
        dropout: f64,
    ) -> Result<Self, ModelError> {
        let xavier = (6.0 / (dim + 3 * dim) as f64).sqrt();
        let qkv = Dense {
            weight: init.uniform2(dim, 3 * dim, xavier)?,
            bias: Some(init.constant1(3 * dim, 0.0)?),
        };
        let out = Dense {
            weight: init.uniform2(dim, dim, 1.0 / (dim as f64).sqrt())?,
            bias: Some(init.constant1(dim, 0.0)?),
        };
        Ok(SelfAttention {
            qkv,
            out,
            heads,
            dropout,
        })
    }

    /// `(B, S, dim) -> (B, S, dim)`.
    pub fn forward<T: Tape<E, D>>(
        &self,
        x: T3<E, D, T>,
        mode: Mode,
    ) -> Result<T3<E, D, T>, D::Err> {
        let qkv = self.qkv.forward3(x)?;
        let p = (mode == Mode::Train && self.dropout > 0.0).then_some(self.dropout);
        let heads = D::attention(qkv, self.heads, p)?;
        self.out.forward3(heads)
    }
}
