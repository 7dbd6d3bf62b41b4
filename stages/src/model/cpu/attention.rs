//! Fused multi-head attention core, one rayon task per batch item.
//!
//! dfdx 0.13 runs the `(B, H, S, S)` batched matmuls as one GEMM call per (batch,
//! head) pair — 512 calls of a 61×8×61 product at the default sizes, each paying
//! the GEMM set-up — plus separate slice/permute/softmax/dropout passes. Here every
//! head's two products are small single-threaded GEMMs on strided views of the
//! packed `qkv` rows (no copies), the softmax and the attention dropout are fused
//! row passes, and the batch items run in parallel. Dropout masks come from a
//! counter-based hash of the weight's index and a per-call seed from the device
//! RNG: the backward pass recomputes them instead of storing them, and results do
//! not depend on the thread count.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::host::{grad_mut, matmul_strided, restore_grad, take_grad, values, Buf, Scratch, View};
use super::simd::{dispatch, dot};
use crate::model::device::{Float, T3};
use crate::model::masks::{drop_threshold, hash_u32};

/// Sizes of one call.
#[derive(Clone, Copy)]
struct Dims {
    s: usize,
    /// Row length of the weight matrices: `s` rounded up to a multiple of 8, so the
    /// row passes (softmax, dropout) run on whole SIMD vectors; the padding columns
    /// hold weight 0.
    sp: usize,
    d: usize,
    heads: usize,
    dh: usize,
}

/// In-place softmax of one row (eight-lane max and sum so the loops vectorise).
#[inline(always)]
fn softmax_row<E: Float>(row: &mut [E]) {
    let mut lanes = [E::neg_infinity(); 8];
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            if c[i] > lanes[i] {
                lanes[i] = c[i];
            }
        }
    }
    let max = lanes
        .iter()
        .chain(rest)
        .fold(E::neg_infinity(), |m, v| if *v > m { *v } else { m });
    for v in row.iter_mut() {
        *v = (*v - max).softmax_exp();
    }
    let inv = E::one() / sum(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// `Σ x` with eight partial sums.
#[inline(always)]
fn sum<E: Float>(x: &[E]) -> E {
    let mut acc = [E::zero(); 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().chain(rest).fold(E::zero(), |s, v| s + *v)
}

/// Attention-weight dropout of one call: drop threshold, keep scale `1/(1−p)`,
/// and the seed of the whole call.
#[derive(Clone, Copy)]
struct Drop<E> {
    threshold: u32,
    scale: E,
    seed: u64,
}

dispatch! {
    /// Mask factors of the `m.len()` weights starting at flat index `first` of the
    /// call's `(B, heads, s, s)` weights: `keep ? 1/(1−p) : 0` from [`hash_u32`], so
    /// the backward pass draws the same mask.
    fn draw_mask<E: Float>(m: &mut [E], first: usize, seed: u64, threshold: u32, scale: E) {
        for (i, v) in m.iter_mut().enumerate() {
            *v = if hash_u32((first + i) as u32, seed) >= threshold { scale } else { E::zero() };
        }
    }
}

dispatch! {
    /// `out = a ⊙ b`.
    fn mul_into<E: Float>(a: &[E], b: &[E], out: &mut [E]) {
        for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
            *o = *x * *y;
        }
    }
}

dispatch! {
    /// `a ⊙= b`.
    fn mul_assign<E: Float>(a: &mut [E], b: &[E]) {
        for (x, y) in a.iter_mut().zip(b) {
            *x *= *y;
        }
    }
}

dispatch! {
    /// Softmax of every `s`-wide row, in place.
    fn softmax_rows<E: Float>(p: &mut [E], s: usize) {
        for row in p.chunks_exact_mut(s) {
            softmax_row(row);
        }
    }
}

dispatch! {
    /// Softmax backward in place: `dS = P ⊙ (dP − Σ_j dP ⊙ P)`, times the score
    /// `scale`.
    fn softmax_backward<E: Float>(dp: &mut [E], p: &[E], s: usize, scale: E) {
        for (dpr, pr) in dp.chunks_exact_mut(s).zip(p.chunks_exact(s)) {
            let dotp = dot(dpr, pr);
            for (g, pv) in dpr.iter_mut().zip(pr) {
                *g = *pv * (*g - dotp) * scale;
            }
        }
    }
}

/// Forward of one batch item (`item`: `s × 3d`, queries | keys | values): fills
/// `probs` (`heads × s × s`, the softmax weights before dropout) and `out`
/// (`s × d`). Each head's products are small GEMMs on strided views of `item`.
fn item_forward<E: Float>(
    item: &[E],
    dims: Dims,
    bi: usize,
    drop: Option<Drop<E>>,
    probs: &mut [E],
    out: &mut [E],
) {
    let Dims {
        s,
        sp,
        d,
        heads,
        dh,
    } = dims;
    let scale = E::c(1.0 / (dh as f64).sqrt());
    let (mut m, mut w) = match drop {
        Some(_) => (vec![E::zero(); s * sp], vec![E::zero(); s * sp]),
        None => (Vec::new(), Vec::new()),
    };
    for h in 0..heads {
        let first = (bi * heads + h) * s * sp;
        let (q, k, v) = (
            View::rows(h * dh, 3 * d),
            View::transposed(d + h * dh, 3 * d),
            View::rows(2 * d + h * dh, 3 * d),
        );
        let p = &mut probs[h * s * sp..(h + 1) * s * sp];
        matmul_strided(
            (s, dh, s),
            item,
            q,
            item,
            k,
            p,
            View::rows(0, sp),
            scale,
            false,
        );
        if sp > s {
            for row in p.chunks_exact_mut(sp) {
                row[s..].fill(E::neg_infinity());
            }
        }
        softmax_rows(p, sp);
        let weights: &[E] = match drop {
            Some(dr) => {
                draw_mask(&mut m, first, dr.seed, dr.threshold, dr.scale);
                mul_into(p, &m, &mut w);
                &w
            }
            None => p,
        };
        matmul_strided(
            (s, s, dh),
            weights,
            View::rows(0, sp),
            item,
            v,
            out,
            View::rows(h * dh, d),
            E::one(),
            false,
        );
    }
}

/// Backward of one batch item: adds the gradient of `qkv` into `grad` (`s × 3d`).
/// The dropout mask is drawn again from the same hash.
#[allow(clippy::too_many_arguments)]
fn item_backward<E: Float>(
    item: &[E],
    dims: Dims,
    bi: usize,
    drop: Option<Drop<E>>,
    probs: &[E],
    dy: &[E],
    grad: &mut [E],
) {
    let Dims {
        s,
        sp,
        d,
        heads,
        dh,
    } = dims;
    let scale = E::c(1.0 / (dh as f64).sqrt());
    let one = E::one();
    let mut dp = vec![E::zero(); s * sp];
    let (mut m, mut w) = match drop {
        Some(_) => (vec![E::zero(); s * sp], vec![E::zero(); s * sp]),
        None => (Vec::new(), Vec::new()),
    };
    for h in 0..heads {
        let first = (bi * heads + h) * s * sp;
        let (qo, ko, vo) = (h * dh, d + h * dh, 2 * d + h * dh);
        let p = &probs[h * s * sp..(h + 1) * s * sp];
        let weights: &[E] = match drop {
            Some(dr) => {
                draw_mask(&mut m, first, dr.seed, dr.threshold, dr.scale);
                mul_into(p, &m, &mut w);
                &w
            }
            None => p,
        };
        let dout = View::rows(h * dh, d);
        // dW = dO·Vᵀ; dV += Wᵀ·dO.
        matmul_strided(
            (s, dh, s),
            dy,
            dout,
            item,
            View::transposed(vo, 3 * d),
            &mut dp,
            View::rows(0, sp),
            one,
            false,
        );
        matmul_strided(
            (s, s, dh),
            weights,
            View::transposed(0, sp),
            dy,
            dout,
            grad,
            View::rows(vo, 3 * d),
            one,
            true,
        );
        // Through the dropout (dP = dW ⊙ mask/(1−p)) and the softmax.
        if drop.is_some() {
            mul_assign(&mut dp, &m);
        }
        softmax_backward(&mut dp, p, sp, scale);
        // dQ += dS·K; dK += dSᵀ·Q.
        matmul_strided(
            (s, s, dh),
            &dp,
            View::rows(0, sp),
            item,
            View::rows(ko, 3 * d),
            grad,
            View::rows(qo, 3 * d),
            one,
            true,
        );
        matmul_strided(
            (s, s, dh),
            &dp,
            View::transposed(0, sp),
            item,
            View::rows(qo, 3 * d),
            grad,
            View::rows(ko, 3 * d),
            one,
            true,
        );
    }
}

pub(crate) fn attention<E: Float, T: Tape<E, Cpu>>(
    qkv: T3<E, Cpu, T>,
    heads: usize,
    dropout: Option<f64>,
) -> Result<T3<E, Cpu, T>, CpuError>
where
    Cpu: Device<E>,
{
    let (b, s, d3) = *qkv.shape();
    let d = d3 / 3;
    assert!(
        d * 3 == d3 && heads > 0 && d % heads == 0,
        "attention: packed width {d3}, {heads} heads"
    );
    let dims = Dims {
        s,
        sp: s.div_ceil(8) * 8,
        d,
        heads,
        dh: d / heads,
    };
    let (qkv, mut tape) = qkv.try_contiguous()?.split_tape();
    let dev = qkv.device().clone();
    let x = values(&qkv);
    let drop = dropout.filter(|p| *p > 0.0).map(|p| Drop {
        threshold: drop_threshold(p),
        scale: E::c(1.0 / (1.0 - p)),
        seed: dev.random_u64(),
    });
    let hss = heads * s * dims.sp;
    let mut out = Buf::zeros(&dev, b * s * d)?;
    // The weights are kept for the backward pass; without a tape each item uses a
    // small buffer that stays in cache.
    let probs = if T::OWNS_TAPE {
        let mut probs = Scratch::new(b * hss);
        probs
            .par_chunks_mut(hss)
            .zip(out.par_chunks_mut(s * d))
            .zip(x.par_chunks(s * d3))
            .enumerate()
            .for_each(|(bi, ((p, o), item))| item_forward(item, dims, bi, drop, p, o));
        probs
    } else {
        out.par_chunks_mut(s * d)
            .zip(x.par_chunks(s * d3))
            .enumerate()
            .for_each(|(bi, (o, item))| {
                item_forward(item, dims, bi, drop, &mut Scratch::new(hss), o)
            });
        Scratch::new(0)
    };
    let out = dev.try_tensor_from_vec(out.into_vec(), (b, s, d))?;
    if T::OWNS_TAPE {
        let (xg, og) = (qkv.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let dy = take_grad!(grads, og);
            grad_mut!(grads, xg)
                .par_chunks_mut(s * d3)
                .zip(x.par_chunks(s * d3))
                .zip(probs.par_chunks(hss))
                .zip(dy.par_chunks(s * d))
                .enumerate()
                .for_each(|(bi, (((g, item), p), dyi))| {
                    item_backward(item, dims, bi, drop, p, dyi, g)
                });
            restore_grad!(grads, og, dy);
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}
