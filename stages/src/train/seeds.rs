//! Independent seeds for the random streams of one stage instance, all derived from
//! the instance seed: the same seed gives the same weights, batch order, dropout
//! masks and quiz batches.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The random streams of a training stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// The stage's device (model-side randomness).
    Device = 1,
    /// Per-step dropout masks.
    Dropout = 2,
    /// Mini-batch order.
    Batches = 3,
    /// Quiz batches of the feedback phase.
    Quiz = 4,
}

/// A seed for `stream`, independent of the others.
pub(crate) fn derive_seed(seed: u64, stream: Stream) -> u64 {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream as u64);
    rng.gen()
}
