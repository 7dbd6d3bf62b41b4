//! The [`super::NetDevice`] kernels written with dfdx primitives only.
//!
//! These run on any dfdx device (CUDA included) and are the reference the fused CPU
//! kernels in [`super::cpu`] are tested against.

use dfdx::prelude::*;

use super::device::{BatchStats, BnOutput, Float, FrontOutput, FrontParams, T1, T2, T3};
use super::masks;

/// `x · w + b`.
pub(crate) fn linear<E: Float, D: Device<E>, T: Tape<E, D>>(
    x: T2<E, D, T>,
    w: &T2<E, D>,
    b: Option<&T1<E, D>>,
) -> Result<T2<E, D, T>, D::Err> {
    let n = x.shape().0;
    let o = w.shape().1;
    let y = x.try_matmul(w.retaped::<T>())?;
    match b {
        Some(b) => y.try_add(b.retaped::<T>().try_broadcast_like::<_, Axis<0>>(&(n, o))?),
        None => Ok(y),
    }
}

/// Row indices of the unfolded input: for every (batch, window, channel, tap) the
/// position of the sample in the flattened `(B, C, S)` input.
pub(crate) fn unfold_indices(
    (batch, channels, samples): (usize, usize, usize),
    kernel: usize,
    stride: usize,
) -> Vec<usize> {
    let windows = (samples - kernel) / stride + 1;
    let mut idx = Vec::with_capacity(batch * windows * channels * kernel);
    for b in 0..batch {
        for l in 0..windows {
            for c in 0..channels {
                let start = b * channels * samples + c * samples + l * stride;
                idx.extend(start..start + kernel);
            }
        }
    }
    idx
}

/// Unfold (gather) + matmul; the input gets no gradient.
pub(crate) fn temporal_conv<E: Float, D: Device<E>, T: Tape<E, D>>(
    x: T3<E, D, T>,
    w: &T2<E, D>,
    b: Option<&T1<E, D>>,
    stride: usize,
) -> Result<T2<E, D, T>, D::Err> {
    let (batch, channels, samples) = *x.shape();
    let kernel = w.shape().0;
    let windows = (samples - kernel) / stride + 1;
    let (x, tape) = x.split_tape();
    let idx = unfold_indices((batch, channels, samples), kernel, stride);
    let idx = x
        .device()
        .try_tensor_from_vec(idx, (batch * windows * channels * kernel,))?;
    let unfolded = x
        .try_reshape_like(&(batch * channels * samples, 1))?
        .try_gather(idx)?
        .try_reshape_like(&(batch * windows * channels, kernel))?;
    linear(unfolded.put_tape(tape), w, b)
}

/// Temporal conv → batch norm → ReLU → spatial conv.
pub(crate) fn conv_front<E: Float, D: Device<E>, T: Tape<E, D>>(
    x: T3<E, D, T>,
    p: &FrontParams<'_, E, D>,
) -> Result<FrontOutput<E, D, T>, D::Err> {
    let (b, c, s) = *x.shape();
    let (k, f) = *p.temporal_w.shape();
    let l = (s - k) / p.stride + 1;
    let conv = temporal_conv(x, p.temporal_w, p.temporal_b, p.stride)?.try_reshape_like(&(
        b * l * c,
        f,
        1,
    ))?;
    let (normed, stats) = match p.running {
        None => {
            let (y, stats) = batch_norm_train(conv, p.gamma, p.beta, p.eps)?;
            (y, Some(stats))
        }
        Some((mean, var)) => (
            batch_norm_eval(conv, p.gamma, p.beta, mean, var, p.eps)?,
            None,
        ),
    };
    let act = normed.try_relu()?.try_reshape_like(&(b * l, c * f))?;
    let dim = p.spatial_w.shape().1;
    let tokens = linear(act, p.spatial_w, p.spatial_b)?.try_reshape_like(&(b, l, dim))?;
    Ok((tokens, stats))
}

/// Batch norm with batch statistics over axes 0 and 2.
pub(crate) fn batch_norm_train<E: Float, D: Device<E>, T: Tape<E, D>>(
    x: T3<E, D, T>,
    gamma: &T1<E, D>,
    beta: &T1<E, D>,
    eps: f64,
) -> Result<BnOutput<E, D, T>, D::Err> {
    let shape = *x.shape();
    let mean = x.retaped::<T>().try_mean::<(usize,), Axes2<0, 2>>()?;
    let mean_stat = mean.retaped::<NoneTape>();
    let centered = x.try_sub(mean.try_broadcast_like::<_, Axes2<0, 2>>(&shape)?)?;
    let var = centered
        .retaped::<T>()
        .try_square()?
        .try_mean::<(usize,), Axes2<0, 2>>()?;
    let var_stat = var.retaped::<NoneTape>();
    let std = var.try_add(E::c(eps))?.try_sqrt()?;
    let normed = centered.try_div(std.try_broadcast_like::<_, Axes2<0, 2>>(&shape)?)?;
    let y = affine_channel(normed, gamma, beta)?;
    Ok((
        y,
        BatchStats {
            mean: mean_stat,
            var: var_stat,
        },
    ))
}

/// `x · gamma + beta` with the channel on axis 1.
fn affine_channel<E: Float, D: Device<E>, T: Tape<E, D>>(
    x: T3<E, D, T>,
    gamma: &T1<E, D>,
    beta: &T1<E, D>,
) -> Result<T3<E, D, T>, D::Err> {
    let shape = *x.shape();
    x.try_mul(
        gamma
            .retaped::<T>()
            .try_broadcast_like::<_, Axes2<0, 2>>(&shape)?,
    )?
    .try_add(
        beta.retaped::<T>()
            .try_broadcast_like::<_, Axes2<0, 2>>(&shape)?,
    )
}

/// Batch norm with fixed statistics.
pub(crate) fn batch_norm_eval<E: Float, D: Device<E>, T: Tape<E, D>>(
    x: T3<E, D, T>,
    gamma: &T1<E, D>,
    beta: &T1<E, D>,
    mean: &T1<E, D>,
    var: &T1<E, D>,
    eps: f64,
) -> Result<T3<E, D, T>, D::Err> {
    let shape = *x.shape();
    let inv_std = var.clone().try_add(E::c(eps))?.try_sqrt()?.try_recip()?;
    let centered = x.try_sub(mean.clone().try_broadcast_like::<_, Axes2<0, 2>>(&shape)?)?;
    let normed = centered.try_mul(inv_std.try_broadcast_like::<_, Axes2<0, 2>>(&shape)?)?;
    affine_channel(normed, gamma, beta)
}

/// Layer norm over the last axis.
pub(crate) fn layer_norm<E: Float, D: Device<E>, T: Tape<E, D>>(
    x: T2<E, D, T>,
    gamma: &T1<E, D>,
    beta: &T1<E, D>,
    eps: f64,
) -> Result<T2<E, D, T>, D::Err> {
    let shape = *x.shape();
    x.try_normalize::<Axis<1>>(eps)?
        .try_mul(
            gamma
                .retaped::<T>()
                .try_broadcast_like::<_, Axis<0>>(&shape)?,
        )?
        .try_add(
            beta.retaped::<T>()
                .try_broadcast_like::<_, Axis<0>>(&shape)?,
        )
}

/// Layer norm of `x + residual`.
pub(crate) fn add_layer_norm<E: Float, D: Device<E>, T: Tape<E, D>>(
    x: T2<E, D, T>,
    residual: &T2<E, D>,
    gamma: &T1<E, D>,
    beta: &T1<E, D>,
    eps: f64,
) -> Result<T2<E, D, T>, D::Err> {
    layer_norm(x.try_add(residual.clone())?, gamma, beta, eps)
}

/// `x ⊙ z / (1 + |z|)`.
pub(crate) fn gate<E: Float, D: Device<E>, T: Tape<E, D>>(
    z: T3<E, D, T>,
    x: &T3<E, D>,
) -> Result<T3<E, D, T>, D::Err> {
    let denom = z.retaped::<T>().try_abs()?.try_add(E::one())?;
    z.try_div(denom)?.try_mul(x.clone())
}

/// Multi-head scaled dot-product attention on packed `(B, S, 3·D)` projections.
pub(crate) fn attention<E: Float, D: Device<E>, T: Tape<E, D>>(
    qkv: T3<E, D, T>,
    heads: usize,
    dropout: Option<(f64, u64)>,
) -> Result<T3<E, D, T>, D::Err> {
    let (b, s, d3) = *qkv.shape();
    let d = d3 / 3;
    let dh = d / heads;
    // Select (not slice: dfdx 0.13's slice backward overwrites instead of adding)
    // the three parts of `(B, S, 3, D)`.
    let (qkv, tape) = qkv.try_reshape_like(&(b, s, 3, d))?.split_tape();
    let part = |p: usize| qkv.device().try_tensor_from_vec(vec![p; b * s], (b, s));
    let q = qkv.clone().put_tape(tape).try_select(part(0)?)?;
    let k = qkv.retaped::<T>().try_select(part(1)?)?;
    let v = qkv.retaped::<T>().try_select(part(2)?)?;
    let q = q
        .try_reshape_like(&(b, s, heads, dh))?
        .try_permute::<_, Axes4<0, 2, 1, 3>>()?;
    let k = k
        .try_reshape_like(&(b, s, heads, dh))?
        .try_permute::<_, Axes4<0, 2, 3, 1>>()?;
    let v = v
        .try_reshape_like(&(b, s, heads, dh))?
        .try_permute::<_, Axes4<0, 2, 1, 3>>()?;
    let scale = E::c(1.0 / (dh as f64).sqrt());
    let mut weights = q.try_matmul(k)?.try_mul(scale)?.try_softmax::<Axis<3>>()?;
    if let Some((p, seed)) = dropout {
        // The fused kernel pads each weight row to a multiple of 8 and hashes the
        // padded flat index; draw the same mask.
        let sp = s.div_ceil(8) * 8;
        let n = b * heads * s * s;
        let f = masks::keep_factors::<E>(n, |i| (i / s) * sp + i % s, seed, p);
        let mask = weights.device().try_tensor_from_vec(f, (b, heads, s, s))?;
        weights = weights.try_mul(mask)?;
    }
    weights
        .try_matmul(v)?
        .try_permute::<_, Axes4<0, 2, 1, 3>>()?
        .try_reshape_like(&(b, s, d))
}

/// Inverted dropout keeping the elements [`masks::keep_factors`] keeps for `seed`
/// (the fused CPU kernel's mask).
pub(crate) fn dropout<S: Shape, E: Float, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
    p: f64,
    seed: u64,
) -> Result<Tensor<S, E, D, T>, D::Err> {
    let shape = *x.shape();
    let f = masks::keep_factors::<E>(shape.num_elements(), |i| i, seed, p);
    let mask = x.device().try_tensor_from_vec(f, shape)?;
    x.try_mul(mask)
}
