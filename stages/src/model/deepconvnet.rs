//! DeepConvNet (Schirrmeister et al. 2017, "Deep learning with convolutional neural
//! networks for EEG decoding and visualization"), the EOG baseline.
//!
//! Layout follows braindecode's `Deep4Net`: block 1 is a temporal conv (with bias)
//! then a spatial conv over all channels (no bias), batch norm, ELU, max-pool; blocks
//! 2..n are dropout → temporal conv (no bias) → batch norm → ELU → max-pool; a dense
//! layer maps the flattened last block to the class logits. Pool size = stride.
//! Convolutions are unfold + matmul (dfdx's Conv2D is nightly-only); activations are
//! kept as `(B, time, filters)`.

use std::path::Path;

use dfdx::prelude::*;

use super::batchnorm::BatchNorm;
use super::checkpoint;
use super::config::DeepConvNetConfig;
use super::dense::Dense;
use super::device::{Float, NetDevice, T2, T3};
use super::error::ModelError;
use super::init::Init;
use super::{dropout, Mode};

/// Temporal conv (as a `(kernel·in, out)` matrix, no bias) + batch norm.
#[derive(Clone, Debug)]
pub struct ConvBlock<E, D: Storage<E>> {
    pub conv: Dense<E, D>,
    pub bn: BatchNorm<E, D>,
}

crate::impl_params!(ConvBlock { conv, bn });

#[derive(Clone, Debug)]
pub struct DeepConvNet<E, D: Storage<E>> {
    /// `Conv2d(1, F₀, (1, k))` as `(k, F₀)` + bias.
    pub temporal: Dense<E, D>,
    /// `Conv2d(F₀, F₀, (C, 1), bias=False)` as `(C·F₀, F₀)`.
    pub spatial: Dense<E, D>,
    pub bn: BatchNorm<E, D>,
    pub blocks: Vec<ConvBlock<E, D>>,
    pub out: Dense<E, D>,
    pub config: DeepConvNetConfig,
}

crate::impl_params!(DeepConvNet {
    temporal,
    spatial,
    bn,
    blocks,
    out
});

/// `ELU(x) = max(x, 0) + exp(min(x, 0)) − 1`.
pub(crate) fn elu<S: Shape, E: Float, D: NetDevice<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
) -> Result<Tensor<S, E, D, T>, D::Err> {
    let neg = x
        .retaped::<T>()
        .try_clamp(f64::NEG_INFINITY, 0.0)?
        .try_exp()?
        .try_sub(E::one())?;
    x.try_relu()?.try_add(neg)
}

/// Max-pool with size = stride `pool` along axis 1 of `(B, L, F)`; a remainder is
/// dropped (PyTorch's floor mode).
pub(crate) fn max_pool_time<E: Float, D: NetDevice<E>, T: Tape<E, D>>(
    x: T3<E, D, T>,
    pool: usize,
) -> Result<T3<E, D, T>, D::Err> {
    let (b, l, f) = *x.shape();
    let p = l / pool;
    let x = if p * pool == l {
        x
    } else {
        // Gather the first p·pool steps (a slice's backward would overwrite the
        // input gradient in dfdx 0.13 instead of adding to it).
        let idx: Vec<usize> = (0..b).flat_map(|_| 0..p * pool).collect();
        let idx = x.device().try_tensor_from_vec(idx, (b, p * pool))?;
        x.try_gather(idx)?
    };
    x.try_reshape_like(&(b, p, pool, f))?
        .try_max::<(usize, usize, usize), Axis<2>>()
}

/// Unfolds `(B, L, F)` into `(B·L', k·F)` windows of `k` consecutive steps (stride
/// 1, `L' = L − k + 1`), row-major `(tap, filter)`, differentiable.
pub(crate) fn unfold_time<E: Float, D: NetDevice<E>, T: Tape<E, D>>(
    x: T3<E, D, T>,
    k: usize,
) -> Result<T2<E, D, T>, D::Err> {
    let (b, l, f) = *x.shape();
    let lo = l - k + 1;
    let mut idx = Vec::with_capacity(b * lo * k);
    for bi in 0..b {
        for t in 0..lo {
            idx.extend((0..k).map(|j| bi * l + t + j));
        }
    }
    let idx = x.device().try_tensor_from_vec(idx, (b * lo * k,))?;
    x.try_reshape_like(&(b * l, f))?
        .try_gather(idx)?
        .try_reshape_like(&(b * lo, k * f))
}

impl<E: Float, D: NetDevice<E>> DeepConvNet<E, D> {
    pub fn new(dev: &D, cfg: &DeepConvNetConfig, seed: u64) -> Result<Self, ModelError> {
        cfg.validate()?;
        let lengths = cfg.lengths().expect("validated");
        let mut init = Init::new(dev, seed);
        let f0 = cfg.filters[0];
        let temporal = Dense::new(&mut init, cfg.kernel, f0, true)?;
        let spatial = Dense::new(&mut init, cfg.channels * f0, f0, false)?;
        let bn = BatchNorm::new(&mut init, f0, cfg.bn_momentum, cfg.bn_eps)?;
        let blocks = cfg
            .filters
            .windows(2)
            .map(|w| {
                Ok(ConvBlock {
                    conv: Dense::new(&mut init, cfg.kernel * w[0], w[1], false)?,
                    bn: BatchNorm::new(&mut init, w[1], cfg.bn_momentum, cfg.bn_eps)?,
                })
            })
            .collect::<Result<_, ModelError>>()?;
        let last_len = *lengths.last().expect("at least one block");
        let last_filters = *cfg.filters.last().expect("at least one block");
        let out = Dense::new(&mut init, last_len * last_filters, cfg.classes, true)?;
        Ok(DeepConvNet {
            temporal,
            spatial,
            bn,
            blocks,
            out,
            config: cfg.clone(),
        })
    }

    /// `(B, channels, samples)` → logits `(B, classes)`.
    pub fn forward<T: Tape<E, D>>(
        &mut self,
        x: T3<E, D, T>,
        mode: Mode,
    ) -> Result<T2<E, D, T>, ModelError> {
        let (b, c, s) = *x.shape();
        if b == 0 || c != self.config.channels || s != self.config.samples {
            return Err(ModelError::Shape(format!(
                "DeepConvNet input is {b}×{c}×{s}, expected a non-empty batch × {} × {}",
                self.config.channels, self.config.samples
            )));
        }
        let run = |n: &mut Self| -> Result<T2<E, D, T>, D::Err> {
            let cfg = &n.config;
            let f0 = cfg.filters[0];
            let l = s - cfg.kernel + 1;
            let h = D::temporal_conv(x, &n.temporal.weight, n.temporal.bias.as_ref(), 1)?; // (B·L·C, F₀)
            let h = n.spatial.forward(h.try_reshape_like(&(b * l, c * f0))?)?;
            let h = n.bn.forward(h.try_reshape_like(&(b * l, f0, 1))?, mode)?;
            let mut h = max_pool_time(elu(h)?.try_reshape_like(&(b, l, f0))?, cfg.pool)?;
            for block in n.blocks.iter_mut() {
                let h_in = dropout(h, cfg.dropout, mode)?;
                let lo = h_in.shape().1 - cfg.kernel + 1;
                let fo = block.conv.output();
                let z = block.conv.forward(unfold_time(h_in, cfg.kernel)?)?;
                let z = block
                    .bn
                    .forward(z.try_reshape_like(&(b * lo, fo, 1))?, mode)?;
                h = max_pool_time(elu(z)?.try_reshape_like(&(b, lo, fo))?, cfg.pool)?;
            }
            let (_, p, f) = *h.shape();
            n.out.forward(h.try_reshape_like(&(b, p * f))?)
        };
        run(self).map_err(ModelError::device)
    }

    /// Eval-mode logits, no tape.
    pub fn predict(&self, x: T3<E, D>) -> Result<T2<E, D>, ModelError> {
        self.clone().forward(x, Mode::Eval)
    }

    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        checkpoint::save(self, path, "deepconvnet", &self.config)
    }

    pub fn load(dev: &D, path: &Path) -> Result<Self, ModelError> {
        let cfg: DeepConvNetConfig = checkpoint::read_config(path, "deepconvnet")?;
        let mut n = DeepConvNet::new(dev, &cfg, 0)?;
        checkpoint::load_into(&mut n, path)?;
        Ok(n)
    }
}
