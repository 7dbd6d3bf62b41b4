//! Fused multi-head attention core, one rayon task per batch item.
//!
//! dfdx 0.13 runs the `(B, H, S, S)` batched matmuls as one GEMM call per (batch,
//! head) pair — 512 calls of a 61×8×61 product at the default sizes, each paying
//! the GEMM set-up — plus separate slice/permute/softmax/dropout passes. Here every
//! head is a few loops over contiguous rows of length S (they vectorise), with the
//! softmax and the attention dropout fused in. Dropout masks come from a per-item
//! generator seeded from the device RNG, so results do not depend on the thread
//! count.

use dfdx::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::host::{grad_mut, restore_grad, take_grad, values};
use crate::model::device::{Float, T3};

/// Sizes of one call.
#[derive(Clone, Copy)]
struct Dims {
    s: usize,
    d: usize,
    heads: usize,
    dh: usize,
}

/// Head `h` of the queries (part 0), keys (1) or values (2) of one batch item
/// (`item`: `s × 3d`) as an `s × dh` matrix or, if `transpose`, `dh × s`.
fn head_slice<E: Float>(item: &[E], dims: Dims, part: usize, h: usize, transpose: bool) -> Vec<E> {
    let Dims { s, d, dh, .. } = dims;
    let mut out = vec![E::zero(); s * dh];
    for i in 0..s {
        let row = &item[i * 3 * d + part * d + h * dh..][..dh];
        for (e, v) in row.iter().enumerate() {
            if transpose {
                out[e * s + i] = *v;
            } else {
                out[i * dh + e] = *v;
            }
        }
    }
    out
}

fn softmax_row<E: Float>(row: &mut [E]) {
    let max = row.iter().copied().fold(E::neg_infinity(), E::max);
    let mut sum = E::zero();
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = E::one() / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// Forward of one batch item: fills `probs` (`heads × s × s`), `kept` (the dropped
/// and rescaled weights, same shape, if dropout) and `out` (`s × d`).
fn item_forward<E: Float>(
    item: &[E],
    dims: Dims,
    dropout: Option<(f64, u64)>,
    probs: &mut [E],
    kept: &mut [E],
    out: &mut [E],
) {
    let Dims { s, d, heads, dh } = dims;
    let scale = E::c(1.0 / (dh as f64).sqrt());
    let mut rng = dropout.map(|(_, seed)| SmallRng::seed_from_u64(seed));
    for h in 0..heads {
        let q = head_slice(item, dims, 0, h, false);
        let kt = head_slice(item, dims, 1, h, true);
        let vt = head_slice(item, dims, 2, h, true);
        let p = &mut probs[h * s * s..(h + 1) * s * s];
        for i in 0..s {
            let row = &mut p[i * s..(i + 1) * s];
            row.fill(E::zero());
            for e in 0..dh {
                let qv = q[i * dh + e] * scale;
                for (r, k) in row.iter_mut().zip(&kt[e * s..(e + 1) * s]) {
                    *r += qv * *k;
                }
            }
            softmax_row(row);
        }
        let weights: &[E] = match (dropout, rng.as_mut()) {
            (Some((pd, _)), Some(rng)) => {
                let kh = &mut kept[h * s * s..(h + 1) * s * s];
                let keep_scale = E::c(1.0 / (1.0 - pd));
                for (k, v) in kh.iter_mut().zip(p.iter()) {
                    *k = if rng.gen::<f64>() < pd {
                        E::zero()
                    } else {
                        *v * keep_scale
                    };
                }
                kh
            }
            _ => p,
        };
        for i in 0..s {
            let w = &weights[i * s..(i + 1) * s];
            for e in 0..dh {
                let acc: E = w
                    .iter()
                    .zip(&vt[e * s..(e + 1) * s])
                    .map(|(a, b)| *a * *b)
                    .sum();
                out[i * d + h * dh + e] = acc;
            }
        }
    }
}

/// Backward of one batch item: adds the gradient of `qkv` into `grad` (`s × 3d`).
fn item_backward<E: Float>(
    item: &[E],
    dims: Dims,
    dropout: bool,
    probs: &[E],
    kept: &[E],
    dy: &[E],
    grad: &mut [E],
) {
    let Dims { s, d, heads, dh } = dims;
    let scale = E::c(1.0 / (dh as f64).sqrt());
    let mut dp = vec![E::zero(); s * s];
    for h in 0..heads {
        let q = head_slice(item, dims, 0, h, false);
        let kt = head_slice(item, dims, 1, h, true);
        let vt = head_slice(item, dims, 2, h, true);
        let p = &probs[h * s * s..(h + 1) * s * s];
        let w = if dropout {
            &kept[h * s * s..(h + 1) * s * s]
        } else {
            p
        };
        // dO of this head, transposed (dh × s) for row-wise loops.
        let mut dot = vec![E::zero(); dh * s];
        for i in 0..s {
            for e in 0..dh {
                dot[e * s + i] = dy[i * d + h * dh + e];
            }
        }
        // dV[j, e] = Σ_i W[i, j] dO[i, e]; dW[i, j] = Σ_e dO[i, e] V[j, e].
        let mut dvt = vec![E::zero(); dh * s];
        for i in 0..s {
            let wr = &w[i * s..(i + 1) * s];
            let dpr = &mut dp[i * s..(i + 1) * s];
            dpr.fill(E::zero());
            for e in 0..dh {
                let g = dot[e * s + i];
                for (acc, wv) in dvt[e * s..(e + 1) * s].iter_mut().zip(wr) {
                    *acc += g * *wv;
                }
                for (acc, v) in dpr.iter_mut().zip(&vt[e * s..(e + 1) * s]) {
                    *acc += g * *v;
                }
            }
        }
        // Through the dropout (kept weights are P/(1−p), dropped ones 0) and the
        // softmax: dS = P ⊙ (dP − Σ_j dP ⊙ P).
        for i in 0..s {
            let pr = &p[i * s..(i + 1) * s];
            let dpr = &mut dp[i * s..(i + 1) * s];
            if dropout {
                let wr = &w[i * s..(i + 1) * s];
                for j in 0..s {
                    dpr[j] = if pr[j] == E::zero() {
                        E::zero()
                    } else {
                        dpr[j] * wr[j] / pr[j]
                    };
                }
            }
            let dotp: E = dpr.iter().zip(pr).map(|(a, b)| *a * *b).sum();
            for (g, pv) in dpr.iter_mut().zip(pr) {
                *g = *pv * (*g - dotp) * scale;
            }
        }
        // dQ[i, e] = Σ_j dS[i, j] K[j, e]; dK[j, e] = Σ_i dS[i, j] Q[i, e].
        let mut dkt = vec![E::zero(); dh * s];
        for i in 0..s {
            let dsr = &dp[i * s..(i + 1) * s];
            for e in 0..dh {
                let acc: E = dsr
                    .iter()
                    .zip(&kt[e * s..(e + 1) * s])
                    .map(|(a, b)| *a * *b)
                    .sum();
                grad[i * 3 * d + h * dh + e] += acc;
                let qv = q[i * dh + e];
                for (acc, g) in dkt[e * s..(e + 1) * s].iter_mut().zip(dsr) {
                    *acc += qv * *g;
                }
            }
        }
        for j in 0..s {
            for e in 0..dh {
                grad[j * 3 * d + d + h * dh + e] += dkt[e * s + j];
                grad[j * 3 * d + 2 * d + h * dh + e] += dvt[e * s + j];
            }
        }
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
        d,
        heads,
        dh: d / heads,
    };
    let (qkv, mut tape) = qkv.try_contiguous()?.split_tape();
    let dev = qkv.device().clone();
    let x = values(&qkv);
    let dropout = dropout.filter(|p| *p > 0.0);
    let seed = dropout.map(|_| dev.random_u64());
    let mut probs = vec![E::zero(); b * heads * s * s];
    let mut kept = vec![
        E::zero();
        if dropout.is_some() {
            b * heads * s * s
        } else {
            0
        }
    ];
    let mut out = vec![E::zero(); b * s * d];
    let hss = heads * s * s;
    let item_dropout = |bi: usize| {
        dropout.zip(seed).map(|(p, seed)| {
            (
                p,
                seed.wrapping_add((bi as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            )
        })
    };
    if dropout.is_some() {
        probs
            .par_chunks_mut(hss)
            .zip(kept.par_chunks_mut(hss))
            .zip(out.par_chunks_mut(s * d))
            .zip(x.par_chunks(s * d3))
            .enumerate()
            .for_each(|(bi, (((p, k), o), item))| {
                item_forward(item, dims, item_dropout(bi), p, k, o)
            });
    } else {
        probs
            .par_chunks_mut(hss)
            .zip(out.par_chunks_mut(s * d))
            .zip(x.par_chunks(s * d3))
            .for_each(|((p, o), item)| item_forward(item, dims, None, p, &mut [], o));
    }
    let out = dev.try_tensor_from_vec(out, (b, s, d))?;
    if T::OWNS_TAPE {
        let (xg, og) = (qkv.ghost(), out.ghost());
        let has_dropout = dropout.is_some();
        tape.add_backward_op(move |grads| {
            let dy = take_grad!(grads, og);
            let gx = grad_mut!(grads, xg);
            let kept_chunks: Vec<&[E]> = if has_dropout {
                kept.chunks(hss).collect()
            } else {
                vec![&[][..]; b]
            };
            gx.par_chunks_mut(s * d3)
                .zip(x.par_chunks(s * d3))
                .zip(probs.par_chunks(hss))
                .zip(dy.par_chunks(s * d))
                .zip(kept_chunks.into_par_iter())
                .for_each(|((((g, item), p), dyi), k)| {
                    item_backward(item, dims, has_dropout, p, k, dyi, g)
                });
            restore_grad!(grads, og, dy);
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}
