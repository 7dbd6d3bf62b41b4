//! The per-modality branch: temporal conv → BN → ReLU → spatial conv → dropout →
//! positional embedding → transformer encoder blocks, keeping every depth.
//!
//! The convolutions are exact rewrites without a Conv2D (nightly-only in dfdx 0.13):
//! the `(1, k)` stride-`s` temporal conv over a `C × S` image with one input plane is
//! an unfold into `(B·L·C, k)` windows times a `(k, F)` matrix; the `(C, 1)` spatial
//! conv over `F × C × L` is, per window, a linear map of the `C·F` values (a reshape
//! to `(B·L, C·F)` times `(C·F, dim)`). Both, with the batch norm and ReLU between
//! them, are one [`NetDevice::conv_front`] call.

use dfdx::prelude::*;

use super::attention::encoder::EncoderSizes;
use super::attention::EncoderBlock;
use super::batchnorm::BatchNorm;
use super::config::BranchConfig;
use super::dense::Dense;
use super::device::{Float, FrontParams, NetDevice, T2, T3};
use super::error::ModelError;
use super::init::Init;
use super::{dropout, Mode};

/// One modality's encoder.
#[derive(Clone, Debug)]
pub struct Branch<E, D: Storage<E>> {
    /// Temporal conv as `(kernel, filters)` + bias (PyTorch `Conv2d(1, F, (1, k))`).
    pub temporal: Dense<E, D>,
    /// `BatchNorm2d(F)` over the temporal conv output.
    pub bn: BatchNorm<E, D>,
    /// Spatial conv as `(channels·F, dim)` + bias (PyTorch `Conv2d(F, dim, (C, 1))`);
    /// row `c·F + f` holds the weight of filter `f` at channel `c`.
    pub spatial: Dense<E, D>,
    /// Learned positional embedding, `(tokens, dim)`.
    pub pos: T2<E, D>,
    pub blocks: Vec<EncoderBlock<E, D>>,
    pub channels: usize,
    pub samples: usize,
    pub stride: usize,
    pub front_dropout: f64,
}

crate::impl_params!(Branch {
    temporal,
    bn,
    spatial,
    pos,
    blocks
});

impl<E: Float, D: NetDevice<E>> Branch<E, D> {
    /// Standard deviation of the positional embedding's initial values (BERT/ViT
    /// convention; the paper does not say).
    pub const POS_INIT_STD: f64 = 0.02;

    pub fn new(
        init: &mut Init<D>,
        channels: usize,
        cfg: &BranchConfig,
    ) -> Result<Self, ModelError> {
        cfg.validate()?;
        let temporal = Dense::new(init, cfg.kernel, cfg.temporal_filters, true)?;
        let bn = BatchNorm::new(init, cfg.temporal_filters, cfg.bn_momentum, cfg.bn_eps)?;
        let spatial = Dense::new(init, channels * cfg.temporal_filters, cfg.dim, true)?;
        let pos = init.normal2(cfg.tokens(), cfg.dim, Self::POS_INIT_STD)?;
        let sizes = EncoderSizes {
            dim: cfg.dim,
            heads: cfg.heads,
            ffn_dim: cfg.ffn_dim,
            dropout: cfg.dropout,
            attn_dropout: cfg.attn_dropout,
            ln_eps: cfg.ln_eps,
        };
        let blocks = (0..cfg.layers)
            .map(|_| EncoderBlock::new(init, sizes))
            .collect::<Result<_, _>>()?;
        Ok(Branch {
            temporal,
            bn,
            spatial,
            pos,
            blocks,
            channels,
            samples: cfg.samples,
            stride: cfg.stride,
            front_dropout: cfg.front_dropout,
        })
    }

    /// Number of tokens per window.
    pub fn tokens(&self) -> usize {
        self.pos.shape().0
    }

    /// Token width.
    pub fn dim(&self) -> usize {
        self.pos.shape().1
    }

    /// Checks that `x` is `(B ≥ 1, channels, samples)`.
    pub fn check_input(&self, what: &str, shape: (usize, usize, usize)) -> Result<(), ModelError> {
        let (b, c, s) = shape;
        if b == 0 || c != self.channels || s != self.samples {
            return Err(ModelError::Shape(format!(
                "{what} input is {b}×{c}×{s} (batch × channels × samples), expected a non-empty batch × {} × {}",
                self.channels, self.samples
            )));
        }
        Ok(())
    }

    /// The embedded tokens before the encoder: `(B, C, S) -> (B, tokens, dim)`.
    pub fn embed<T: Tape<E, D>>(
        &mut self,
        x: T3<E, D, T>,
        mode: Mode,
    ) -> Result<T3<E, D, T>, D::Err> {
        let (b, c, _) = *x.shape();
        let running = match mode {
            Mode::Train => None,
            Mode::Eval => Some((&self.bn.running_mean.0, &self.bn.running_var.0)),
        };
        let params = FrontParams {
            temporal_w: &self.temporal.weight,
            temporal_b: self.temporal.bias.as_ref(),
            stride: self.stride,
            gamma: &self.bn.gamma,
            beta: &self.bn.beta,
            eps: self.bn.eps,
            running,
            spatial_w: &self.spatial.weight,
            spatial_b: self.spatial.bias.as_ref(),
        };
        let (tokens, stats) = D::conv_front(x, &params)?;
        if let Some(stats) = stats {
            self.bn.update_running(&stats, b * self.tokens() * c)?;
        }
        let tokens = dropout(tokens, self.front_dropout, mode)?;
        let shape = *tokens.shape();
        tokens.try_add(
            self.pos
                .retaped::<T>()
                .try_broadcast_like::<_, Axis<0>>(&shape)?,
        )
    }

    /// All depths `[H¹, …, Hᴸ]`, each `(B, tokens, dim)`. The tape rides on the last
    /// one; the others carry empty tapes of the same type, so each can be used in
    /// further taped ops — but the last must be consumed for gradients to flow.
    /// Inputs are not checked here (the owning network does that).
    pub fn forward<T: Tape<E, D>>(
        &mut self,
        x: T3<E, D, T>,
        mode: Mode,
    ) -> Result<Vec<T3<E, D, T>>, D::Err> {
        let mut h = self.embed(x, mode)?;
        let mut depths = Vec::with_capacity(self.blocks.len());
        let last = self.blocks.len() - 1;
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(h, mode)?;
            if i < last {
                depths.push(h.retaped::<T>());
            }
        }
        depths.push(h);
        Ok(depths)
    }
}
