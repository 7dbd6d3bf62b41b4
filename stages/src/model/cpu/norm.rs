//! Fused batch and layer normalisation: one statistics pass and one normalise pass
//! forward, two passes backward, instead of dfdx's chain of broadcast ops (each a
//! strided pass with its own backward). The normalised values are recomputed from
//! the saved input in the backward pass rather than stored.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::host::{
    grad_mut, param_values, restore_grad, take_grad, values, Buf, Scratch, SumPairs,
    ROW_BLOCK_ELEMS,
};
use super::simd::{dispatch, dot};
use crate::model::device::{BatchStats, BnOutput, Float, Running, T1, T2, T3};

/// `Σ x` of a short contiguous run, with eight partial sums.
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

dispatch! {
    /// Per-channel `Σx` of `x: (rows, c, l)` (channel runs of length `l`), added
    /// into `s1`.
    fn channel_sums<E: Float>(x: &[E], c: usize, l: usize, s1: &mut [f64]) {
        for row in x.chunks_exact(c * l) {
            for (ch, seg) in row.chunks_exact(l).enumerate() {
                s1[ch] += sum(seg).wide();
            }
        }
    }
}

dispatch! {
    /// Per-channel `Σ(x − mean)²`, added into `s2`.
    fn channel_centered_squares<E: Float>(x: &[E], c: usize, l: usize, mean: &[E], s2: &mut [f64]) {
        for row in x.chunks_exact(c * l) {
            for (ch, seg) in row.chunks_exact(l).enumerate() {
                let m = mean[ch];
                let mut acc = [E::zero(); 8];
                let chunks = seg.chunks_exact(8);
                let rest = chunks.remainder();
                for q in chunks {
                    for i in 0..8 {
                        acc[i] += (q[i] - m) * (q[i] - m);
                    }
                }
                let tail = rest.iter().fold(E::zero(), |t, v| t + (*v - m) * (*v - m));
                s2[ch] += (acc.iter().fold(E::zero(), |t, v| t + *v) + tail).wide();
            }
        }
    }
}

dispatch! {
    /// `y = x·a[ch] + b[ch]` per channel run.
    fn channel_affine<E: Float>(x: &[E], c: usize, l: usize, a: &[E], b: &[E], y: &mut [E]) {
        for (yr, xr) in y.chunks_exact_mut(c * l).zip(x.chunks_exact(c * l)) {
            for (ch, (ys, xs)) in yr.chunks_exact_mut(l).zip(xr.chunks_exact(l)).enumerate() {
                let (av, bv) = (a[ch], b[ch]);
                for (o, v) in ys.iter_mut().zip(xs) {
                    *o = *v * av + bv;
                }
            }
        }
    }
}

dispatch! {
    /// Per-channel `Σdy` and `Σdy·x̂` (`x̂ = (x − mean)·inv`), added into `s1`, `s2`.
    fn channel_grad_sums<E: Float>(
        dy: &[E],
        x: &[E],
        c: usize,
        l: usize,
        mean: &[E],
        inv: &[E],
        s1: &mut [f64],
        s2: &mut [f64],
    ) {
        for (dr, xr) in dy.chunks_exact(c * l).zip(x.chunks_exact(c * l)) {
            for (ch, (ds, xs)) in dr.chunks_exact(l).zip(xr.chunks_exact(l)).enumerate() {
                let (m, s) = (mean[ch], inv[ch]);
                let sdy = sum(ds);
                // Σ dy·(x − m)·s = s·(Σ dy·x − m·Σ dy)
                let sdyx = s * (dot(ds, xs) - m * sdy);
                s1[ch] += sdy.wide();
                s2[ch] += sdyx.wide();
            }
        }
    }
}

dispatch! {
    /// `dx += scale·(dy − c1 − x̂·c2)` per channel run.
    fn channel_input_grad<E: Float>(
        dx: &mut [E],
        dy: &[E],
        x: &[E],
        c: usize,
        l: usize,
        mean: &[E],
        inv: &[E],
        scale: &[E],
        c1: &[E],
        c2: &[E],
    ) {
        let rows = dx.chunks_exact_mut(c * l).zip(dy.chunks_exact(c * l)).zip(x.chunks_exact(c * l));
        for ((gr, dr), xr) in rows {
            for ch in 0..c {
                let (m, s, k, a, b) = (mean[ch], inv[ch], scale[ch], c1[ch], c2[ch]);
                let span = ch * l..(ch + 1) * l;
                for ((g, d), xv) in gr[span.clone()].iter_mut().zip(&dr[span.clone()]).zip(&xr[span]) {
                    *g += k * (*d - a - (*xv - m) * s * b);
                }
            }
        }
    }
}

/// Rows of `(a, c, l)` per parallel block.
fn rows_per_block(c: usize, l: usize) -> usize {
    (ROW_BLOCK_ELEMS / (c * l).max(1)).max(1)
}

/// Runs `f` on fixed row blocks in parallel, summing its two per-channel outputs.
fn reduce_blocks<F>(n_blocks: usize, c: usize, f: F) -> (Vec<f64>, Vec<f64>)
where
    F: Fn(usize, &mut [f64], &mut [f64]) + Sync,
{
    (0..n_blocks)
        .into_par_iter()
        .map(|blk| {
            let mut s1 = vec![0.0; c];
            let mut s2 = vec![0.0; c];
            f(blk, &mut s1, &mut s2);
            (s1, s2)
        })
        .collect::<Vec<_>>()
        .sum_pairs(c)
}

fn to_e<E: Float>(v: &[f64]) -> Vec<E> {
    v.iter().map(|x| E::c(*x)).collect()
}

/// Batch norm over axes 0 and 2 of `x: (a, c, l)`. `running`: eval mode with these
/// statistics; otherwise batch statistics (biased variance, returned).
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
    let (a, c, l) = shape;
    let (x, mut tape) = x.try_contiguous()?.split_tape();
    let dev = x.device().clone();
    let xv = values(&x);
    let gv = param_values(gamma)?;
    let bv = param_values(beta)?;
    let rows = rows_per_block(c, l);
    let blocks = a.div_ceil(rows);
    let block = move |i: usize| i * rows * c * l..((i + 1) * rows).min(a) * c * l;
    let (mean, var): (Vec<f64>, Vec<f64>) = match running {
        Some((m, v)) => (
            param_values(m)?.iter().map(|v| v.wide()).collect(),
            param_values(v)?.iter().map(|v| v.wide()).collect(),
        ),
        None => {
            let n = (a * l) as f64;
            let (s1, _) =
                reduce_blocks(blocks, c, |i, s1, _| channel_sums(&xv[block(i)], c, l, s1));
            let mean: Vec<f64> = s1.iter().map(|v| v / n).collect();
            let mean_e = to_e::<E>(&mean);
            let (s2, _) = reduce_blocks(blocks, c, |i, s2, _| {
                channel_centered_squares(&xv[block(i)], c, l, &mean_e, s2)
            });
            (mean, s2.iter().map(|q| q / n).collect())
        }
    };
    let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let scale: Vec<f64> = (0..c).map(|j| gv[j].wide() * inv[j]).collect();
    let shift: Vec<f64> = (0..c).map(|j| bv[j].wide() - mean[j] * scale[j]).collect();
    let (scale_e, shift_e) = (to_e::<E>(&scale), to_e::<E>(&shift));
    let mut y = Buf::zeros(&dev, xv.len())?;
    y.par_chunks_mut(rows * c * l)
        .zip(xv.par_chunks(rows * c * l))
        .for_each(|(yb, xb)| channel_affine(xb, c, l, &scale_e, &shift_e, yb));
    let stats = BatchStats {
        mean: dev.try_tensor_from_vec(to_e(&mean), (c,))?,
        var: dev.try_tensor_from_vec(to_e(&var), (c,))?,
    };
    let out = dev.try_tensor_from_vec(y.into_vec(), shape)?;
    if T::OWNS_TAPE {
        let (xg, gg, bg, og) = (x.ghost(), gamma.ghost(), beta.ghost(), out.ghost());
        let train = running.is_none();
        let (mean_e, inv_e) = (to_e::<E>(&mean), to_e::<E>(&inv));
        tape.add_backward_op(move |grads| {
            let dy = take_grad!(grads, og);
            let (sdy, sdyx) = reduce_blocks(blocks, c, |i, s1, s2| {
                channel_grad_sums(&dy[block(i)], &xv[block(i)], c, l, &mean_e, &inv_e, s1, s2)
            });
            let n = (a * l) as f64;
            let c1 = to_e::<E>(
                &sdy.iter()
                    .map(|v| if train { v / n } else { 0.0 })
                    .collect::<Vec<_>>(),
            );
            let c2 = to_e::<E>(
                &sdyx
                    .iter()
                    .map(|v| if train { v / n } else { 0.0 })
                    .collect::<Vec<_>>(),
            );
            grad_mut!(grads, xg)
                .par_chunks_mut(rows * c * l)
                .zip(dy.par_chunks(rows * c * l))
                .zip(xv.par_chunks(rows * c * l))
                .for_each(|((g, d), xb)| {
                    channel_input_grad(g, d, xb, c, l, &mean_e, &inv_e, &scale_e, &c1, &c2)
                });
            for (acc, v) in grad_mut!(grads, gg).iter_mut().zip(&sdyx) {
                *acc += E::c(*v);
            }
            for (acc, v) in grad_mut!(grads, bg).iter_mut().zip(&sdy) {
                *acc += E::c(*v);
            }
            restore_grad!(grads, og, dy);
            Ok(())
        });
    }
    Ok((out.put_tape(tape), stats))
}

dispatch! {
    /// Layer norm of each `d`-wide row: writes `y` and the per-row `1/σ`.
    fn ln_rows<E: Float>(x: &[E], d: usize, gamma: &[E], beta: &[E], eps: E, y: &mut [E], inv: &mut [E]) {
        let dn = E::c(d as f64);
        for ((yr, xr), is) in y.chunks_exact_mut(d).zip(x.chunks_exact(d)).zip(inv.iter_mut()) {
            let mean = sum(xr) / dn;
            let mut var = E::zero();
            for v in xr {
                var += (*v - mean) * (*v - mean);
            }
            let s = E::one() / (var / dn + eps).sqrt();
            *is = s;
            for (((o, v), g), b) in yr.iter_mut().zip(xr).zip(gamma).zip(beta) {
                *o = *g * ((*v - mean) * s) + *b;
            }
        }
    }
}

dispatch! {
    /// Layer-norm backward of each row: `dx = s·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))` with
    /// `ĝ = dy·γ` (written, not added); adds `Σ dy·x̂` and `Σ dy` into `dg`, `db`.
    fn ln_rows_backward<E: Float>(
        dx: &mut [E],
        dy: &[E],
        x: &[E],
        inv: &[E],
        gamma: &[E],
        dg: &mut [E],
        db: &mut [E],
        xhat: &mut [E],
        gh: &mut [E],
    ) {
        let d = gamma.len();
        let dn = E::c(d as f64);
        let rows = dx.chunks_exact_mut(d).zip(dy.chunks_exact(d)).zip(x.chunks_exact(d)).zip(inv);
        for (((gr, dr), xr), s) in rows {
            let mean = sum(xr) / dn;
            for j in 0..d {
                xhat[j] = (xr[j] - mean) * *s;
                gh[j] = dr[j] * gamma[j];
                dg[j] += dr[j] * xhat[j];
                db[j] += dr[j];
            }
            let m1 = sum(gh) / dn;
            let m2 = dot(gh, xhat) / dn;
            for j in 0..d {
                gr[j] = *s * (gh[j] - m1 - xhat[j] * m2);
            }
        }
    }
}

dispatch! {
    /// `a += b`.
    fn add_assign<E: Float>(a: &mut [E], b: &[E]) {
        for (x, y) in a.iter_mut().zip(b) {
            *x += *y;
        }
    }
}

/// Layer norm over the last axis of `x + residual` (the residual, if any, gets the
/// same gradient as `x`).
pub(crate) fn layer_norm<E: Float, T: Tape<E, Cpu>>(
    x: T2<E, Cpu, T>,
    residual: Option<&T2<E, Cpu>>,
    gamma: &T1<E, Cpu>,
    beta: &T1<E, Cpu>,
    eps: f64,
) -> Result<T2<E, Cpu, T>, CpuError>
where
    Cpu: Device<E>,
{
    let shape = *x.shape();
    let (n, d) = shape;
    let (x, mut tape) = x.try_contiguous()?.split_tape();
    let dev = x.device().clone();
    let mut xv = values(&x);
    let residual = match residual {
        Some(r) => {
            assert_eq!(*r.shape(), shape, "layer norm: residual shape");
            let r = r.clone().try_contiguous()?;
            let rv = values(&r);
            let block = ROW_BLOCK_ELEMS;
            xv.par_chunks_mut(block)
                .zip(rv.par_chunks(block))
                .for_each(|(a, b)| add_assign(a, b));
            Some(r)
        }
        None => None,
    };
    let gv = param_values(gamma)?;
    let bv = param_values(beta)?;
    let mut y = Buf::zeros(&dev, xv.len())?;
    let mut inv = vec![E::zero(); n];
    let block = (ROW_BLOCK_ELEMS / d.max(1)).max(1);
    let eps_e = E::c(eps);
    y.par_chunks_mut(block * d)
        .zip(inv.par_chunks_mut(block))
        .zip(xv.par_chunks(block * d))
        .for_each(|((yb, ib), xb)| ln_rows(xb, d, &gv, &bv, eps_e, yb, ib));
    let out = dev.try_tensor_from_vec(y.into_vec(), shape)?;
    if T::OWNS_TAPE {
        let (xg, gg, bg, og) = (x.ghost(), gamma.ghost(), beta.ghost(), out.ghost());
        let rg = residual.map(|r| r.ghost());
        tape.add_backward_op(move |grads| {
            let dy = take_grad!(grads, og);
            let mut g = Scratch::new(n * d);
            let (dgamma, dbeta) = g
                .par_chunks_mut(block * d)
                .zip(dy.par_chunks(block * d))
                .zip(xv.par_chunks(block * d))
                .zip(inv.par_chunks(block))
                .map(|(((gb, dyb), xb), ib)| {
                    let (mut dg, mut db) = (vec![E::zero(); d], vec![E::zero(); d]);
                    let (mut xhat, mut gh) = (vec![E::zero(); d], vec![E::zero(); d]);
                    ln_rows_backward(gb, dyb, xb, ib, &gv, &mut dg, &mut db, &mut xhat, &mut gh);
                    (
                        dg.iter().map(|v| v.wide()).collect::<Vec<f64>>(),
                        db.iter().map(|v| v.wide()).collect::<Vec<f64>>(),
                    )
                })
                .collect::<Vec<_>>()
                .sum_pairs(d);
            let blk = ROW_BLOCK_ELEMS;
            grad_mut!(grads, xg)
                .par_chunks_mut(blk)
                .zip(g.par_chunks(blk))
                .for_each(|(a, b)| add_assign(a, b));
            if let Some(rg) = rg {
                grad_mut!(grads, rg)
                    .par_chunks_mut(blk)
                    .zip(g.par_chunks(blk))
                    .for_each(|(a, b)| add_assign(a, b));
            }
            for (acc, v) in grad_mut!(grads, gg).iter_mut().zip(&dgamma) {
                *acc += E::c(*v);
            }
            for (acc, v) in grad_mut!(grads, bg).iter_mut().zip(&dbeta) {
                *acc += E::c(*v);
            }
            restore_grad!(grads, og, dy);
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}
