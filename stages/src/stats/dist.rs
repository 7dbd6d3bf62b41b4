//! Internal helpers around statrs' distributions and special functions.

use super::StatsError;
use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::function::beta::beta_reg;
use statrs::function::erf::erfc;

/// Quantile `q` of Student's t with `df` degrees of freedom (statrs `inverse_cdf`).
pub(crate) fn t_quantile(q: f64, df: f64) -> Result<f64, StatsError> {
    if !(q > 0.0 && q < 1.0) {
        return Err(StatsError::InvalidArgument(
            "quantile level must lie in (0, 1)",
        ));
    }
    let dist = StudentsT::new(0.0, 1.0, df)
        .map_err(|_| StatsError::InvalidArgument("degrees of freedom must be positive"))?;
    Ok(dist.inverse_cdf(q))
}

/// Two-sided p-value `2·P(T > |t|) = I_{df/(df+t²)}(df/2, 1/2)`.
pub(crate) fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    beta_reg(0.5 * df, 0.5, df / (df + t * t)).min(1.0)
}

/// Standard normal CDF `Φ(x) = erfc(−x/√2)/2`.
pub(crate) fn norm_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Arithmetic mean of a non-empty slice.
pub(crate) fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample variance (ddof = 1, two-pass) of a slice with at least two elements.
pub(crate) fn var_ddof1(xs: &[f64], mean: f64) -> f64 {
    xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (xs.len() - 1) as f64
}

/// Error if any element is NaN or infinite.
pub(crate) fn check_finite(xs: &[f64], what: &'static str) -> Result<(), StatsError> {
    if xs.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(StatsError::NonFinite(what))
    }
}

/// Error if fewer than `needed` observations.
pub(crate) fn check_len(got: usize, needed: usize) -> Result<(), StatsError> {
    if got < needed {
        Err(StatsError::TooFewSamples { needed, got })
    } else {
        Ok(())
    }
}
