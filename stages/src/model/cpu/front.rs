//! The branch front end fused on the CPU: unfold → GEMM (temporal conv) → batch
//! norm → ReLU → GEMM (spatial conv).
//!
//! At the default sizes the EEG front end's intermediate activations are
//! `B·61·28 × 64` (7 M values at batch 64): as dfdx tensors each op over them would
//! cost a strided pass plus a backward pass. Here they stay host buffers, the input
//! gets no gradient (it is the network input), and the backward is three GEMMs and
//! two passes.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::host::{
    add_column_sums, broadcast_rows, grad_mut, matmul, param_values, restore_grad, take_grad,
    values,
};
use super::norm::{bn_backward, bn_forward};
use crate::model::device::{BatchStats, Float, FrontOutput, FrontParams, T3};

/// `(B, C, S)` → `(B·L·C, k)` windows, rows ordered (batch, window, channel).
pub(crate) fn unfold<E: Float>(
    x: &[E],
    (b, c, s): (usize, usize, usize),
    k: usize,
    stride: usize,
) -> Vec<E> {
    let l = (s - k) / stride + 1;
    let mut u = vec![E::zero(); b * l * c * k];
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

    // Temporal conv.
    let u = unfold(&xv, (b, c, s), k, p.stride);
    let wt = param_values(p.temporal_w)?;
    let mut z = vec![E::zero(); m * f];
    if let Some(bt) = p.temporal_b {
        broadcast_rows(&mut z, &param_values(bt)?);
    }
    matmul(
        (m, k, f),
        &u,
        false,
        &wt,
        false,
        &mut z,
        p.temporal_b.is_some(),
        true,
    );
    drop(u);

    // Batch norm (filters are the channels: a `(m, f, 1)` view) and ReLU.
    let gv = param_values(p.gamma)?;
    let bev = param_values(p.beta)?;
    let running = match p.running {
        Some((mean, var)) => Some((param_values(mean)?, param_values(var)?)),
        None => None,
    };
    let bn = bn_forward(
        &z,
        (m, f, 1),
        &gv,
        &bev,
        running.as_ref().map(|(a, v)| (&a[..], &v[..])),
        p.eps,
    );
    drop(z);
    let mut act = bn.y;
    act.par_iter_mut().for_each(|v| *v = v.max(E::zero()));

    // Spatial conv: each window's C·F activations are one row.
    let ws = param_values(p.spatial_w)?;
    let mut y = vec![E::zero(); b * l * dim];
    if let Some(bs) = p.spatial_b {
        broadcast_rows(&mut y, &param_values(bs)?);
    }
    matmul(
        (b * l, c * f, dim),
        &act,
        false,
        &ws,
        false,
        &mut y,
        p.spatial_b.is_some(),
        true,
    );
    let out = dev.try_tensor_from_vec(y, (b, l, dim))?;

    let stats = if p.running.is_none() {
        Some(BatchStats {
            mean: dev.try_tensor_from_vec(bn.mean.iter().map(|v| E::c(*v)).collect(), (f,))?,
            var: dev.try_tensor_from_vec(bn.var.iter().map(|v| E::c(*v)).collect(), (f,))?,
        })
    } else {
        None
    };

    if T::OWNS_TAPE {
        let og = out.ghost();
        let (wtg, btg) = (p.temporal_w.ghost(), p.temporal_b.map(|t| t.ghost()));
        let (gg, bg) = (p.gamma.ghost(), p.beta.ghost());
        let (wsg, bsg) = (p.spatial_w.ghost(), p.spatial_b.map(|t| t.ghost()));
        let (xhat, inv, train, stride) = (bn.xhat, bn.inv, p.running.is_none(), p.stride);
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
            let mut da = vec![E::zero(); m * f];
            matmul(
                (b * l, dim, c * f),
                &dy,
                false,
                &ws,
                true,
                &mut da,
                false,
                true,
            );
            restore_grad!(grads, og, dy);
            // ReLU.
            da.par_iter_mut().zip(act.par_iter()).for_each(|(g, a)| {
                if *a <= E::zero() {
                    *g = E::zero();
                }
            });
            // Batch norm.
            let mut dz = vec![E::zero(); m * f];
            let (dgamma, dbeta) = bn_backward(&da, &xhat, (m, f, 1), &gv, &inv, train, &mut dz);
            drop(da);
            for (acc, v) in grad_mut!(grads, gg).iter_mut().zip(&dgamma) {
                *acc += E::c(*v);
            }
            for (acc, v) in grad_mut!(grads, bg).iter_mut().zip(&dbeta) {
                *acc += E::c(*v);
            }
            // Temporal conv (weights only).
            let u = unfold(&xv, (b, c, s), k, stride);
            matmul(
                (k, m, f),
                &u,
                true,
                &dz,
                false,
                grad_mut!(grads, wtg),
                true,
                true,
            );
            if let Some(btg) = btg {
                add_column_sums(&dz, f, grad_mut!(grads, btg));
            }
            Ok(())
        });
    }
    Ok((out.put_tape(tape), stats))
}
