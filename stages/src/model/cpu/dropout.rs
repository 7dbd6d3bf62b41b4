//! Inverted dropout with a fast generator.
//!
//! dfdx 0.13's CPU dropout draws a `Bernoulli` from a ChaCha `StdRng` per element,
//! forward and again backward (7% of a teacher training step in a profile). Here
//! the mask comes from a counter-based hash of the element index and a per-call
//! seed from the device RNG ([`hash_u32`]): it vectorises, the backward recomputes
//! it, and results do not depend on the thread count.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::host::{grad_mut, restore_grad, take_grad, Buf};
use super::simd::dispatch;
use crate::model::device::Float;
use crate::model::masks::{drop_threshold, hash_u32};

/// Elements per parallel task.
const BLOCK: usize = 1 << 14;

dispatch! {
    /// Forward, in place: `buf ← buf·keep/(1 − p)`; `first` is the index of
    /// `buf[0]` in the whole tensor.
    fn mask_in_place<E: Float>(buf: &mut [E], first: usize, seed: u64, threshold: u32, scale: E) {
        for (i, v) in buf.iter_mut().enumerate() {
            let keep = if hash_u32((first + i) as u32, seed) >= threshold { scale } else { E::zero() };
            *v *= keep;
        }
    }
}

dispatch! {
    /// Backward: `g += dy·keep/(1 − p)` with the forward's mask.
    fn mask_accumulate<E: Float>(g: &mut [E], dy: &[E], first: usize, seed: u64, threshold: u32, scale: E) {
        for (i, (o, d)) in g.iter_mut().zip(dy).enumerate() {
            let keep = if hash_u32((first + i) as u32, seed) >= threshold { scale } else { E::zero() };
            *o += *d * keep;
        }
    }
}

pub(crate) fn dropout<S: Shape, E: Float, T: Tape<E, Cpu>>(
    x: Tensor<S, E, Cpu, T>,
    p: f64,
) -> Result<Tensor<S, E, Cpu, T>, CpuError>
where
    Cpu: Device<E>,
{
    let shape = *x.shape();
    let (x, mut tape) = x.try_contiguous()?.split_tape();
    let dev = x.device().clone();
    let seed = dev.random_u64();
    let threshold = drop_threshold(p);
    let scale = E::c(1.0 / (1.0 - p));
    let mut y = Buf::zeros(&dev, shape.num_elements())?;
    x.copy_into(&mut y);
    y.par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(i, chunk)| mask_in_place(chunk, i * BLOCK, seed, threshold, scale));
    let out = dev.try_tensor_from_vec(y.into_vec(), shape)?;
    if T::OWNS_TAPE {
        let (xg, og) = (x.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let dy = take_grad!(grads, og);
            grad_mut!(grads, xg)
                .par_chunks_mut(BLOCK)
                .zip(dy.par_chunks(BLOCK))
                .enumerate()
                .for_each(|(i, (g, d))| mask_accumulate(g, d, i * BLOCK, seed, threshold, scale));
            restore_grad!(grads, og, dy);
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}
