//! The score block's gate fused: `E = x ⊙ z / (1 + |z|)` (softsign of the
//! normalised scores times the tokens), one pass forward and one backward instead of
//! four dfdx ops (abs, add, div, mul) and their backward passes.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::host::{grad_mut, restore_grad, take_grad, values, Buf, ROW_BLOCK_ELEMS};
use super::simd::dispatch;
use crate::model::device::{Float, T3};

dispatch! {
    fn gate_forward<E: Float>(z: &[E], x: &[E], y: &mut [E]) {
        for ((o, zv), xv) in y.iter_mut().zip(z).zip(x) {
            *o = *xv * (*zv / (E::one() + zv.abs()));
        }
    }
}

dispatch! {
    /// `dz += dy·x/(1 + |z|)²`, `dx += dy·z/(1 + |z|)`.
    fn gate_backward<E: Float>(dy: &[E], z: &[E], x: &[E], dz: &mut [E], dx: &mut [E]) {
        for i in 0..dy.len() {
            let den = E::one() / (E::one() + z[i].abs());
            dz[i] += dy[i] * x[i] * den * den;
            dx[i] += dy[i] * z[i] * den;
        }
    }
}

pub(crate) fn gate<E: Float, T: Tape<E, Cpu>>(
    z: T3<E, Cpu, T>,
    x: &T3<E, Cpu>,
) -> Result<T3<E, Cpu, T>, CpuError>
where
    Cpu: Device<E>,
{
    let shape = *z.shape();
    assert_eq!(*x.shape(), shape, "gate: shapes");
    let (z, mut tape) = z.try_contiguous()?.split_tape();
    let x = x.clone().try_contiguous()?;
    let dev = z.device().clone();
    let (zv, xv) = (values(&z), values(&x));
    let mut y = Buf::zeros(&dev, zv.len())?;
    let blk = ROW_BLOCK_ELEMS;
    y.par_chunks_mut(blk)
        .zip(zv.par_chunks(blk))
        .zip(xv.par_chunks(blk))
        .for_each(|((o, zc), xc)| gate_forward(zc, xc, o));
    let out = dev.try_tensor_from_vec(y.into_vec(), shape)?;
    if T::OWNS_TAPE {
        let (zg, xg, og) = (z.ghost(), x.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let dy = take_grad!(grads, og);
            // The two gradients go to different tensors: take one out while writing
            // the other.
            let mut dz = std::mem::take(grad_mut!(grads, zg));
            grad_mut!(grads, xg)
                .par_chunks_mut(blk)
                .zip(dz.par_chunks_mut(blk))
                .zip(dy.par_chunks(blk))
                .zip(zv.par_chunks(blk))
                .zip(xv.par_chunks(blk))
                .for_each(|((((dx, dzc), d), zc), xc)| gate_backward(d, zc, xc, dzc, dx));
            *grad_mut!(grads, zg) = dz;
            restore_grad!(grads, og, dy);
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}
