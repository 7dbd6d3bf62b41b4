//! The crate's error type.

use std::fmt;

/// Everything that can go wrong when a statistic is computed from user input.
///
/// Hand-written (no `thiserror`) so the crate stays dependency-light. No
/// function in this crate panics on user input; each returns one of these
/// variants instead.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StatsError {
    /// Fewer observations than the statistic needs (`needed` at least, `got` given).
    TooFewSamples {
        /// Minimum number of observations required.
        needed: usize,
        /// Number of observations supplied.
        got: usize,
    },
    /// An input contained NaN or ±infinity; the payload names the argument.
    NonFinite(&'static str),
    /// The sample variance is exactly zero, so a t statistic is undefined
    /// (scipy would return `inf`/`nan` here instead of raising).
    ZeroVariance,
    /// Two inputs that must be paired element-wise have different lengths.
    LengthMismatch {
        /// Length of the first input.
        left: usize,
        /// Length of the second input.
        right: usize,
    },
    /// A parameter is outside its domain; the payload says which and why.
    InvalidArgument(&'static str),
}

impl fmt::Display for StatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsError::TooFewSamples { needed, got } => {
                write!(f, "too few samples: need at least {needed}, got {got}")
            }
            StatsError::NonFinite(what) => write!(f, "input `{what}` contains NaN or infinity"),
            StatsError::ZeroVariance => write!(f, "sample variance is zero"),
            StatsError::LengthMismatch { left, right } => {
                write!(f, "paired inputs differ in length: {left} vs {right}")
            }
            StatsError::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
        }
    }
}

impl std::error::Error for StatsError {}
