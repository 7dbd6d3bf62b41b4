//! Fused batch and layer normalisation: two passes forward, two backward, instead
//! of dfdx's chain of broadcast ops (each a strided pass with its own backward).

use dfdx::prelude::*;
use rayon::prelude::*;

use super::host::{grad_mut, param_values, restore_grad, take_grad, values, ROW_BLOCK_ELEMS};
use crate::model::device::{BatchStats, BnOutput, Float, Running, T1, T2, T3};

/// Per-channel sums over axes 0 and 2 of `(a, c, l)`: `row(i, s1, s2)` adds the
/// contributions of row `i` (`c·l` values) to two accumulators of length `c`.
fn per_channel(
    (a, c, l): (usize, usize, usize),
    row: impl Fn(usize, &mut [f64], &mut [f64]) + Sync,
) -> (Vec<f64>, Vec<f64>) {
    let rows_per = (ROW_BLOCK_ELEMS / (c * l).max(1)).max(1);
    let blocks = a.div_ceil(rows_per);
    (0..blocks)
        .into_par_iter()
        .map(|blk| {
            let mut s1 = vec![0.0; c];
            let mut s2 = vec![0.0; c];
            for i in blk * rows_per..((blk + 1) * rows_per).min(a) {
                row(i, &mut s1, &mut s2);
            }
            (s1, s2)
        })
        .reduce(
            || (vec![0.0; c], vec![0.0; c]),
            |(mut a1, mut a2), (b1, b2)| {
                for (x, y) in a1.iter_mut().zip(b1) {
                    *x += y;
                }
                for (x, y) in a2.iter_mut().zip(b2) {
                    *x += y;
                }
                (a1, a2)
            },
        )
}

/// What a batch-norm forward keeps for its backward.
pub(crate) struct BnForward<E> {
    pub y: Vec<E>,
    pub xhat: Vec<E>,
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
    pub inv: Vec<f64>,
}

/// Batch norm of `x: (a, c, l)` over axes 0 and 2. `running`: eval mode with these
/// statistics; otherwise batch statistics (biased variance).
pub(crate) fn bn_forward<E: Float>(
    x: &[E],
    (a, c, l): (usize, usize, usize),
    gamma: &[E],
    beta: &[E],
    running: Option<(&[E], &[E])>,
    eps: f64,
) -> BnForward<E> {
    let to = |v: &E| v.to_f64().unwrap_or(f64::NAN);
    let (mean, var): (Vec<f64>, Vec<f64>) = match running {
        Some((m, v)) => (m.iter().map(to).collect(), v.iter().map(to).collect()),
        None => {
            let n = (a * l) as f64;
            let (sum, _) = per_channel((a, c, l), |i, s, _| {
                for (ch, seg) in x[i * c * l..(i + 1) * c * l].chunks_exact(l).enumerate() {
                    s[ch] += seg.iter().map(to).sum::<f64>();
                }
            });
            let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
            let (sq, _) = per_channel((a, c, l), |i, s, _| {
                for (ch, seg) in x[i * c * l..(i + 1) * c * l].chunks_exact(l).enumerate() {
                    s[ch] += seg.iter().map(|v| (to(v) - mean[ch]).powi(2)).sum::<f64>();
                }
            });
            (mean, sq.iter().map(|s| s / n).collect())
        }
    };
    let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let n = x.len();
    let mut y = vec![E::zero(); n];
    let mut xhat = vec![E::zero(); n];
    let row = (c * l).max(1);
    let (mean_e, inv_e): (Vec<E>, Vec<E>) = (
        mean.iter().map(|v| E::c(*v)).collect(),
        inv.iter().map(|v| E::c(*v)).collect(),
    );
    y.par_chunks_mut(row)
        .zip(xhat.par_chunks_mut(row))
        .zip(x.par_chunks(row))
        .for_each(|((yr, hr), xr)| {
            for ch in 0..c {
                let (m, s, g, b) = (mean_e[ch], inv_e[ch], gamma[ch], beta[ch]);
                for j in ch * l..(ch + 1) * l {
                    let h = (xr[j] - m) * s;
                    hr[j] = h;
                    yr[j] = g * h + b;
                }
            }
        });
    BnForward {
        y,
        xhat,
        mean,
        var,
        inv,
    }
}

/// Backward of [`bn_forward`]: adds `dL/dx` into `dx` and returns the per-channel
/// `(dL/dγ, dL/dβ)`. `train`: the statistics depended on `x`.
pub(crate) fn bn_backward<E: Float>(
    dy: &[E],
    xhat: &[E],
    (a, c, l): (usize, usize, usize),
    gamma: &[E],
    inv: &[f64],
    train: bool,
    dx: &mut [E],
) -> (Vec<f64>, Vec<f64>) {
    let to = |v: E| v.to_f64().unwrap_or(f64::NAN);
    let (dgamma, dbeta) = per_channel((a, c, l), |i, sg, sb| {
        let base = i * c * l;
        for ch in 0..c {
            for j in base + ch * l..base + (ch + 1) * l {
                sg[ch] += to(dy[j] * xhat[j]);
                sb[ch] += to(dy[j]);
            }
        }
    });
    let n = (a * l) as f64;
    let scale: Vec<E> = (0..c).map(|ch| E::c(to(gamma[ch]) * inv[ch])).collect();
    let mean_dy: Vec<E> = dbeta
        .iter()
        .map(|v| E::c(if train { v / n } else { 0.0 }))
        .collect();
    let mean_dyx: Vec<E> = dgamma
        .iter()
        .map(|v| E::c(if train { v / n } else { 0.0 }))
        .collect();
    let row = (c * l).max(1);
    dx.par_chunks_mut(row)
        .zip(dy.par_chunks(row))
        .zip(xhat.par_chunks(row))
        .for_each(|((dxr, dyr), hr)| {
            for ch in 0..c {
                let (s, md, mx) = (scale[ch], mean_dy[ch], mean_dyx[ch]);
                for j in ch * l..(ch + 1) * l {
                    dxr[j] += s * (dyr[j] - md - hr[j] * mx);
                }
            }
        });
    (dgamma, dbeta)
}

fn add_f64<E: Float>(acc: &mut [E], v: &[f64]) {
    for (a, x) in acc.iter_mut().zip(v) {
        *a += E::c(*x);
    }
}

pub(crate) fn batch_norm<E: Float, T: Tape<E, Cpu>>(
    x: T3<E, Cpu, T>,
    gamma: &T1<E, Cpu>,
    beta: &T1<E, Cpu>,
    running: Running<'_, E, Cpu>,
    eps: f64,
) -> Result<BnOutput<E, Cpu, T>, CpuError>
where
    Cpu: Device<E>,
{
    let shape = *x.shape();
    let (x, mut tape) = x.try_contiguous()?.split_tape();
    let dev = x.device().clone();
    let xv = values(&x);
    let gv = param_values(gamma)?;
    let bv = param_values(beta)?;
    let run = match running {
        Some((m, v)) => Some((param_values(m)?, param_values(v)?)),
        None => None,
    };
    let fwd = bn_forward(
        &xv,
        shape,
        &gv,
        &bv,
        run.as_ref().map(|(m, v)| (&m[..], &v[..])),
        eps,
    );
    let c = shape.1;
    let stats = BatchStats {
        mean: dev.try_tensor_from_vec(fwd.mean.iter().map(|v| E::c(*v)).collect(), (c,))?,
        var: dev.try_tensor_from_vec(fwd.var.iter().map(|v| E::c(*v)).collect(), (c,))?,
    };
    let out = dev.try_tensor_from_vec(fwd.y, shape)?;
    if T::OWNS_TAPE {
        let (xg, gg, bg, og) = (x.ghost(), gamma.ghost(), beta.ghost(), out.ghost());
        let (xhat, inv, train) = (fwd.xhat, fwd.inv, running.is_none());
        tape.add_backward_op(move |grads| {
            let dy = take_grad!(grads, og);
            let (dg, db) = bn_backward(&dy, &xhat, shape, &gv, &inv, train, grad_mut!(grads, xg));
            add_f64(grad_mut!(grads, gg), &dg);
            add_f64(grad_mut!(grads, bg), &db);
            restore_grad!(grads, og, dy);
            Ok(())
        });
    }
    Ok((out.put_tape(tape), stats))
}

pub(crate) fn layer_norm<E: Float, T: Tape<E, Cpu>>(
    x: T2<E, Cpu, T>,
    gamma: &T1<E, Cpu>,
    beta: &T1<E, Cpu>,
    eps: f64,
) -> Result<T2<E, Cpu, T>, CpuError>
where
    Cpu: Device<E>,
{
    let shape = *x.shape();
    let (_, d) = shape;
    let (x, mut tape) = x.try_contiguous()?.split_tape();
    let dev = x.device().clone();
    let xv = values(&x);
    let gv = param_values(gamma)?;
    let bv = param_values(beta)?;
    let mut y = vec![E::zero(); xv.len()];
    let mut xhat = vec![E::zero(); xv.len()];
    let rows = shape.0;
    let mut inv = vec![E::zero(); rows];
    let dn = E::c(d as f64);
    let block = (ROW_BLOCK_ELEMS / d.max(1)).max(1);
    y.par_chunks_mut(block * d)
        .zip(xhat.par_chunks_mut(block * d))
        .zip(inv.par_chunks_mut(block))
        .zip(xv.par_chunks(block * d))
        .for_each(|(((yb, hb), ib), xb)| {
            for (((yr, hr), is), xr) in yb
                .chunks_mut(d)
                .zip(hb.chunks_mut(d))
                .zip(ib.iter_mut())
                .zip(xb.chunks(d))
            {
                let mean = xr.iter().copied().sum::<E>() / dn;
                let var = xr.iter().map(|v| (*v - mean) * (*v - mean)).sum::<E>() / dn;
                let s = E::one() / (var + E::c(eps)).sqrt();
                *is = s;
                for j in 0..d {
                    let h = (xr[j] - mean) * s;
                    hr[j] = h;
                    yr[j] = gv[j] * h + bv[j];
                }
            }
        });
    let out = dev.try_tensor_from_vec(y, shape)?;
    if T::OWNS_TAPE {
        let (xg, gg, bg, og) = (x.ghost(), gamma.ghost(), beta.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let dy = take_grad!(grads, og);
            let dx = grad_mut!(grads, xg);
            let partial = dx
                .par_chunks_mut(block * d)
                .zip(dy.par_chunks(block * d))
                .zip(xhat.par_chunks(block * d))
                .zip(inv.par_chunks(block))
                .map(|(((dxb, dyb), hb), ib)| {
                    let mut dg = vec![0.0f64; d];
                    let mut db = vec![0.0f64; d];
                    let mut dh = vec![E::zero(); d];
                    for (((dxr, dyr), hr), s) in dxb
                        .chunks_mut(d)
                        .zip(dyb.chunks(d))
                        .zip(hb.chunks(d))
                        .zip(ib)
                    {
                        let mut m1 = E::zero();
                        let mut m2 = E::zero();
                        for j in 0..d {
                            dg[j] += (dyr[j] * hr[j]).to_f64().unwrap_or(f64::NAN);
                            db[j] += dyr[j].to_f64().unwrap_or(f64::NAN);
                            dh[j] = dyr[j] * gv[j];
                            m1 += dh[j];
                            m2 += dh[j] * hr[j];
                        }
                        let (m1, m2) = (m1 / dn, m2 / dn);
                        for j in 0..d {
                            dxr[j] += *s * (dh[j] - m1 - hr[j] * m2);
                        }
                    }
                    (dg, db)
                })
                .reduce(
                    || (vec![0.0; d], vec![0.0; d]),
                    |(mut a1, mut a2), (b1, b2)| {
                        for (x, y) in a1.iter_mut().zip(b1) {
                            *x += y;
                        }
                        for (x, y) in a2.iter_mut().zip(b2) {
                            *x += y;
                        }
                        (a1, a2)
                    },
                );
            add_f64(grad_mut!(grads, gg), &partial.0);
            add_f64(grad_mut!(grads, bg), &partial.1);
            restore_grad!(grads, og, dy);
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}
