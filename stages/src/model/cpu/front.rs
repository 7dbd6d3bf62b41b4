//! The branch front end fused on the CPU: unfold → GEMM (temporal conv) → batch
//! norm → ReLU → GEMM (spatial conv).
//!
//! At the default sizes the EEG front end's intermediate activations are
//! `B·61·28 × 64` (7 M values at batch 64): as dfdx tensors each op over them would
//! cost a strided pass plus a backward pass. Here they stay host buffers laid out
//! channels-last (one row of F filter outputs per window and channel), the input
//! gets no gradient (it is the network input), the forward makes one statistics pass
//! and one normalise+ReLU pass, and the backward is three GEMMs and two passes.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::host::{
    add_column_sums, add_rows, grad_mut, matmul, param_values, restore_grad, take_grad, values,
    Buf, Scratch, SumPairs, ROW_BLOCK_ELEMS,
};
use super::simd;
use crate::model::device::{BatchStats, Float, FrontOutput, FrontParams, T1, T3};

/// `(B, C, S)` → `(B·L·C, k)` windows, rows ordered (batch, window, channel).
pub(crate) fn unfold<E: Float>(
    x: &[E],
    (b, c, s): (usize, usize, usize),
    k: usize,
    stride: usize,
) -> Scratch<E> {
    let l = (s - k) / stride + 1;
    let mut u = Scratch::new(b * l * c * k);
    u.par_chunks_mut(l * c * k)
        .enumerate()
        .for_each(|(bi, ub)| {
            for li in 0..l {
                for ci in 0..c {
                    let src = &x[(bi * c + ci) * s + li * stride..][..k];
                    ub[(li * c + ci) * k..][..k].copy_from_slice(src);
                }
            }
        });
    u
}

/// Rows per parallel block for a row width of `cols`.
fn rows_per_block(cols: usize) -> usize {
    (ROW_BLOCK_ELEMS / cols.max(1)).max(1)
}

/// Sums two per-column accumulators over fixed row blocks (deterministic).
fn column_reduce<E: Float>(
    m: &[E],
    cols: usize,
    block: impl Fn(&[E], usize, &mut [f64], &mut [f64]) + Sync,
) -> (Vec<f64>, Vec<f64>) {
    let rows = rows_per_block(cols);
    m.par_chunks(rows * cols)
        .enumerate()
        .map(|(i, chunk)| {
            let mut s1 = vec![0.0; cols];
            let mut s2 = vec![0.0; cols];
            block(chunk, i * rows, &mut s1, &mut s2);
            (s1, s2)
        })
        .collect::<Vec<_>>()
        .sum_pairs(cols)
}

/// Windows per tile of [`inference_tiles`]: about 1024 rows of the temporal conv
/// output, so a tile's buffers stay in the core's cache.
const TILE_ROWS: usize = 1024;

/// Pure inference (fixed statistics, no tape): the whole front end tile by tile —
/// unfold, temporal GEMM, normalise + ReLU and spatial GEMM for a block of
/// windows at a time — instead of materialising the `B·L·C × F` activations.
fn inference_tiles<E: Float>(
    dev: &Cpu,
    xv: &[E],
    (b, c, s): (usize, usize, usize),
    p: &FrontParams<'_, E, Cpu>,
    (rm, rv): (&T1<E, Cpu>, &T1<E, Cpu>),
) -> Result<Buf<E>, CpuError>
where
    Cpu: Device<E>,
{
    let (k, f) = *p.temporal_w.shape();
    let dim = p.spatial_w.shape().1;
    let l = (s - k) / p.stride + 1;
    let wt = param_values(p.temporal_w)?;
    let ws = param_values(p.spatial_w)?;
    let (gv, bev) = (param_values(p.gamma)?, param_values(p.beta)?);
    let (mean, var) = (param_values(rm)?, param_values(rv)?);
    let bias: Vec<f64> = match p.temporal_b {
        Some(bt) => param_values(bt)?.iter().map(|v| v.wide()).collect(),
        None => vec![0.0; f],
    };
    // act = ReLU(z'·a + c) with a = γ/σ, c = β − (μ − b)·a.
    let scale: Vec<f64> = (0..f)
        .map(|j| gv[j].wide() / (var[j].wide() + p.eps).sqrt())
        .collect();
    let shift: Vec<E> = (0..f)
        .map(|j| E::c(bev[j].wide() - (mean[j].wide() - bias[j]) * scale[j]))
        .collect();
    let scale: Vec<E> = scale.iter().map(|v| E::c(*v)).collect();
    let sb = match p.spatial_b {
        Some(t) => Some(param_values(t)?),
        None => None,
    };
    let windows = b * l;
    let tw = (TILE_ROWS / c.max(1)).max(1);
    let mut y = Buf::zeros(dev, windows * dim)?;
    y.par_chunks_mut(tw * dim).enumerate().for_each(|(t, yt)| {
        let (w0, nw) = (t * tw, yt.len() / dim);
        let mut u = Scratch::new(nw * c * k);
        for w in 0..nw {
            let (bi, li) = ((w0 + w) / l, (w0 + w) % l);
            for ci in 0..c {
                let src = &xv[(bi * c + ci) * s + li * p.stride..][..k];
                u[(w * c + ci) * k..][..k].copy_from_slice(src);
            }
        }
        let mut z = Scratch::new(nw * c * f);
        matmul((nw * c, k, f), &u, false, &wt, false, &mut z, false, false);
        simd::affine_relu_rows_in_place(&mut z, &scale, &shift);
        matmul((nw, c * f, dim), &z, false, &ws, false, yt, false, false);
        if let Some(sb) = &sb {
            for row in yt.chunks_exact_mut(dim) {
                for (o, v) in row.iter_mut().zip(sb) {
                    *o += *v;
                }
            }
        }
    });
    Ok(y)
}

pub(crate) fn conv_front<E: Float, T: Tape<E, Cpu>>(
    x: T3<E, Cpu, T>,
    p: &FrontParams<'_, E, Cpu>,
) -> Result<FrontOutput<E, Cpu, T>, CpuError>
where
    Cpu: Device<E>,
{
    let (b, c, s) = *x.shape();
    let (k, f) = *p.temporal_w.shape();
    let dim = p.spatial_w.shape().1;
    assert_eq!(
        p.spatial_w.shape().0,
        c * f,
        "conv_front: spatial weight rows"
    );
    let l = (s - k) / p.stride + 1;
    let m = b * l * c;
    let (x, mut tape) = x.try_contiguous()?.split_tape();
    let dev = x.device().clone();
    let xv = values(&x);
    if let (false, Some((rm, rv))) = (T::OWNS_TAPE, p.running) {
        let y = inference_tiles(&dev, &xv, (b, c, s), p, (rm, rv))?;
        let out = dev.try_tensor_from_vec(y.into_vec(), (b, l, dim))?;
        return Ok((out.put_tape(tape), None));
    }

    // Temporal conv without its bias: z' = unfold(x)·W, an (m, f) matrix. The bias b
    // only shifts each filter's mean, so it is folded into the batch-norm constants
    // (z = z' + b is never materialised).
    let u = unfold(&xv, (b, c, s), k, p.stride);
    let wt = param_values(p.temporal_w)?;
    let mut z = Scratch::new(m * f);
    matmul((m, k, f), &u, false, &wt, false, &mut z, false, true);
    drop(u);
    let bias: Vec<f64> = match p.temporal_b {
        Some(bt) => param_values(bt)?.iter().map(|v| v.wide()).collect(),
        None => vec![0.0; f],
    };

    // Batch-norm statistics of z (batch: one pass over z', f64 sums; eval: the
    // running ones), then act = ReLU(z'·a + c) with a = γ/σ and c = β − (μ − b)·a.
    let (mean, var): (Vec<f64>, Vec<f64>) = match p.running {
        Some((rm, rv)) => (
            param_values(rm)?.iter().map(|v| v.wide()).collect(),
            param_values(rv)?.iter().map(|v| v.wide()).collect(),
        ),
        None => {
            let (sum, sq) = column_reduce(&z, f, |chunk, _, s1, s2| {
                simd::column_sums_sq(chunk, s1, s2)
            });
            let n = m as f64;
            let mean_raw: Vec<f64> = sum.iter().map(|v| v / n).collect();
            let var = sq
                .iter()
                .zip(&mean_raw)
                .map(|(q, mu)| (q / n - mu * mu).max(0.0))
                .collect();
            (
                mean_raw.iter().zip(&bias).map(|(mu, bv)| mu + bv).collect(),
                var,
            )
        }
    };
    let gv = param_values(p.gamma)?;
    let bev = param_values(p.beta)?;
    let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + p.eps).sqrt()).collect();
    // x̂ = (z' − center)·inv.
    let center: Vec<f64> = mean.iter().zip(&bias).map(|(mu, bv)| mu - bv).collect();
    let scale: Vec<E> = (0..f).map(|j| E::c(gv[j].wide() * inv[j])).collect();
    let shift: Vec<E> = (0..f)
        .map(|j| E::c(bev[j].wide() - center[j] * gv[j].wide() * inv[j]))
        .collect();
    // Without a tape z' is not needed again: ReLU(z'·a + c) overwrites it.
    let rows = rows_per_block(f);
    let act = if T::OWNS_TAPE {
        let mut act = Scratch::new(m * f);
        act.par_chunks_mut(rows * f)
            .zip(z.par_chunks(rows * f))
            .for_each(|(a, zc)| simd::affine_relu_rows(zc, &scale, &shift, a));
        act
    } else {
        z.par_chunks_mut(rows * f)
            .for_each(|zc| simd::affine_relu_rows_in_place(zc, &scale, &shift));
        std::mem::replace(&mut z, Scratch::new(0))
    };

    // Spatial conv: each window's C·F activations are one row.
    let ws = param_values(p.spatial_w)?;
    let mut y = Buf::zeros(&dev, b * l * dim)?;
    matmul(
        (b * l, c * f, dim),
        &act,
        false,
        &ws,
        false,
        &mut y,
        false,
        true,
    );
    if let Some(bs) = p.spatial_b {
        add_rows(&mut y, &param_values(bs)?);
    }
    let out = dev.try_tensor_from_vec(y.into_vec(), (b, l, dim))?;

    let stats = if p.running.is_none() {
        Some(BatchStats {
            mean: dev.try_tensor_from_vec(mean.iter().map(|v| E::c(*v)).collect(), (f,))?,
            var: dev.try_tensor_from_vec(var.iter().map(|v| E::c(*v)).collect(), (f,))?,
        })
    } else {
        None
    };

    if T::OWNS_TAPE {
        let og = out.ghost();
        let (wtg, btg) = (p.temporal_w.ghost(), p.temporal_b.map(|t| t.ghost()));
        let (gg, bg) = (p.gamma.ghost(), p.beta.ghost());
        let (wsg, bsg) = (p.spatial_w.ghost(), p.spatial_b.map(|t| t.ghost()));
        let (train, stride) = (p.running.is_none(), p.stride);
        let mean_e: Vec<E> = center.iter().map(|v| E::c(*v)).collect();
        let inv_e: Vec<E> = inv.iter().map(|v| E::c(*v)).collect();
        tape.add_backward_op(move |grads| {
            let dy = take_grad!(grads, og);
            // Spatial conv.
            matmul(
                (c * f, b * l, dim),
                &act,
                true,
                &dy,
                false,
                grad_mut!(grads, wsg),
                true,
                true,
            );
            if let Some(bsg) = bsg {
                add_column_sums(&dy, dim, grad_mut!(grads, bsg));
            }
            let mut g = Scratch::new(m * f);
            matmul(
                (b * l, dim, c * f),
                &dy,
                false,
                &ws,
                true,
                &mut g,
                false,
                true,
            );
            restore_grad!(grads, og, dy);

            // ReLU mask (in place), and the batch-norm sums Σg and Σg·x̂ per filter.
            let (sg, sgx) = {
                let rows = rows_per_block(f);
                g.par_chunks_mut(rows * f)
                    .zip(act.par_chunks(rows * f))
                    .zip(z.par_chunks(rows * f))
                    .map(|((gc, ac), zc)| {
                        let mut s1 = vec![0.0; f];
                        let mut s2 = vec![0.0; f];
                        simd::relu_mask_bn_sums(gc, ac, zc, &mean_e, &inv_e, &mut s1, &mut s2);
                        (s1, s2)
                    })
                    .collect::<Vec<_>>()
                    .sum_pairs(f)
            };
            for (acc, v) in grad_mut!(grads, gg).iter_mut().zip(&sgx) {
                *acc += E::c(*v);
            }
            for (acc, v) in grad_mut!(grads, bg).iter_mut().zip(&sg) {
                *acc += E::c(*v);
            }
            // dz = γ/σ · (g − mean(g) − x̂·mean(g·x̂)) in train mode, γ/σ · g in eval.
            let n = m as f64;
            let gscale: Vec<E> = scale.clone();
            let c1: Vec<E> = sg
                .iter()
                .map(|v| E::c(if train { v / n } else { 0.0 }))
                .collect();
            let c2: Vec<E> = sgx
                .iter()
                .map(|v| E::c(if train { v / n } else { 0.0 }))
                .collect();
            let rows = rows_per_block(f);
            g.par_chunks_mut(rows * f)
                .zip(z.par_chunks(rows * f))
                .for_each(|(gc, zc)| {
                    simd::bn_input_grad_rows(gc, zc, &mean_e, &inv_e, &gscale, &c1, &c2)
                });
            // Temporal conv (weights only).
            let u = unfold(&xv, (b, c, s), k, stride);
            matmul(
                (k, m, f),
                &u,
                true,
                &g,
                false,
                grad_mut!(grads, wtg),
                true,
                true,
            );
            if let Some(btg) = btg {
                add_column_sums(&g, f, grad_mut!(grads, btg));
            }
            Ok(())
        });
    }
    Ok((out.put_tape(tape), stats))
}
