//! Inverted dropout with a fast generator.
//!
//! dfdx 0.13's CPU dropout draws a `Bernoulli` from a ChaCha `StdRng` per element,
//! forward and again backward (7% of a teacher training step in a profile). Here a
//! xoshiro `SmallRng` per fixed block of elements, seeded from the device RNG and
//! the block index, makes the mask; the backward regenerates it. Results do not
//! depend on the thread count.

use dfdx::prelude::*;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use rayon::prelude::*;

use super::attention::drop_threshold;
use super::host::{grad_mut, restore_grad, take_grad, values};
use super::simd::dispatch;
use crate::model::device::Float;

/// Elements per generator.
const BLOCK: usize = 4096;

fn block_rng(seed: u64, block: usize) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ (block as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

dispatch! {
    /// Forward, in place: `buf ← buf·keep/(1 − p)` for block `block`.
    fn mask_in_place<E: Float>(buf: &mut [E], seed: u64, block: usize, threshold: u32, scale: E) {
        let mut rng = block_rng(seed, block);
        for v in buf.iter_mut() {
            *v = if rng.next_u32() < threshold { E::zero() } else { *v * scale };
        }
    }
}

dispatch! {
    /// Backward: `g += dy·keep/(1 − p)` with the same mask as the forward.
    fn mask_accumulate<E: Float>(g: &mut [E], dy: &[E], seed: u64, block: usize, threshold: u32, scale: E) {
        let mut rng = block_rng(seed, block);
        for (o, d) in g.iter_mut().zip(dy) {
            let keep = rng.next_u32() >= threshold;
            if keep {
                *o += *d * scale;
            }
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
    let mut y = values(&x);
    y.par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(i, chunk)| mask_in_place(chunk, seed, i, threshold, scale));
    let out = dev.try_tensor_from_vec(y, shape)?;
    if T::OWNS_TAPE {
        let (xg, og) = (x.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let dy = take_grad!(grads, og);
            grad_mut!(grads, xg)
                .par_chunks_mut(BLOCK)
                .zip(dy.par_chunks(BLOCK))
                .enumerate()
                .for_each(|(i, (g, d))| mask_accumulate(g, d, seed, i, threshold, scale));
            restore_grad!(grads, og, dy);
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}
