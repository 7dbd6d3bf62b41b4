//! Dropout masks: which elements a dropout call keeps, on every device.
//!
//! Element `i` of a call is kept iff [`hash_u32`]`(i, seed) ≥ `[`drop_threshold`]`(p)`,
//! with one `seed` per call drawn by [`super::NetDevice::mask_seed`]. The fused CPU
//! kernels evaluate the hash in place; the composed blocks (any other device) build
//! the same factors on the host ([`keep_factors`]) and multiply, so both paths drop
//! the same elements for the same seed.
//!
//! A training step fixes its masks with [`super::NetDevice::step_device`]: on the CPU
//! a fresh device seeded with the step's seed; a CUDA device cannot be re-seeded
//! cheaply (a new one is a new context), so it keeps one device and draws its
//! per-call seeds from this thread's step stream ([`start_step`], [`next_seed`]),
//! which yields exactly what the seeded CPU device's `random_u64` would.

use std::cell::RefCell;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::device::Float;

/// A counter-based random `u32`: two rounds of MurmurHash3's 32-bit finaliser over
/// the element index, keyed by the two halves of a per-call seed. Unlike a
/// sequential generator it vectorises and gives each element its draw regardless
/// of which thread handles it (dropout masks are drawn again in the backward pass).
/// `rand` 0.8 has no cheap counter-based generator (ChaCha is one, at ~10× the cost).
#[inline(always)]
pub(crate) fn hash_u32(index: u32, seed: u64) -> u32 {
    #[inline(always)]
    fn fmix(mut h: u32) -> u32 {
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
    fmix(fmix(index ^ seed as u32) ^ (seed >> 32) as u32)
}

/// A `u32` draw below this is dropped: `P(drop) = p` (to 2⁻³²).
pub(crate) fn drop_threshold(p: f64) -> u32 {
    (p.clamp(0.0, 1.0) * 4_294_967_296.0).min(u32::MAX as f64) as u32
}

/// The `n` keep factors (`1/(1−p)` or 0) of one call; element `i` draws the hash of
/// `index(i)` (the fused kernels' flat index of that element).
pub(crate) fn keep_factors<E: Float>(
    n: usize,
    index: impl Fn(usize) -> usize,
    seed: u64,
    p: f64,
) -> Vec<E> {
    let threshold = drop_threshold(p);
    let scale = E::c(1.0 / (1.0 - p));
    (0..n)
        .map(|i| {
            if hash_u32(index(i) as u32, seed) >= threshold {
                scale
            } else {
                E::zero()
            }
        })
        .collect()
}

thread_local! {
    static STEP_STREAM: RefCell<Option<StdRng>> = const { RefCell::new(None) };
}

/// Start this thread's step stream at `seed` (what `Cpu::seed_from_u64(seed)` seeds).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) fn start_step(seed: u64) {
    STEP_STREAM.with(|s| *s.borrow_mut() = Some(StdRng::seed_from_u64(seed)));
}

/// The next per-call seed of this thread's step stream; `None` before any step.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) fn next_seed() -> Option<u64> {
    STEP_STREAM.with(|s| s.borrow_mut().as_mut().map(|r| r.gen()))
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;
    use dfdx::tensor::RandomU64;

    use super::*;

    #[test]
    fn the_step_stream_draws_what_a_seeded_cpu_device_draws() {
        for seed in [0, 7, u64::MAX] {
            let dev = Cpu::seed_from_u64(seed);
            start_step(seed);
            for _ in 0..5 {
                assert_eq!(next_seed(), Some(dev.random_u64()));
            }
        }
    }

    #[test]
    fn keep_factors_drop_about_p_and_scale_the_rest() {
        let f: Vec<f64> = keep_factors(100_000, |i| i, 42, 0.25);
        let kept = f.iter().filter(|&&v| v != 0.0).count() as f64 / f.len() as f64;
        assert!((kept - 0.75).abs() < 0.01, "kept {kept}");
        assert!(f
            .iter()
            .all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-12));
        let g: Vec<f64> = keep_factors(1000, |i| i, 43, 0.25);
        assert_ne!(f[..1000], g[..]);
    }
}
