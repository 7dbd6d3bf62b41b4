//! Descriptive summary with a t-based confidence interval.

use super::dist::{check_finite, check_len, mean, t_quantile, var_ddof1};
use super::StatsError;

/// Mean, spread and 95 % confidence interval of one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    /// Number of observations.
    pub n: usize,
    /// Arithmetic mean `x̄ = Σx/n`.
    pub mean: f64,
    /// Sample standard deviation `s = sqrt(Σ(x−x̄)²/(n−1))` (ddof = 1); NaN when `n == 1`.
    pub sd: f64,
    /// Standard error of the mean `s/√n`; NaN when `n == 1`.
    pub se: f64,
    /// 95 % t-interval `x̄ ± t_{0.975, n−1}·s/√n`; `(NaN, NaN)` when `n == 1`.
    pub ci95: (f64, f64),
}

/// Summarises a sample: `n`, mean, sample SD (ddof 1), standard error and the
/// 95 % Student-t confidence interval `x̄ ± t_{0.975, n−1}·s/√n`, where the
/// quantile comes from statrs `StudentsT::inverse_cdf`.
///
/// Matches `numpy.mean`, `numpy.std(ddof=1)`, `scipy.stats.sem` and
/// `scipy.stats.t.interval(0.95, n-1, loc=mean, scale=sem)`.
///
/// A single observation is not an error: `sd`, `se` and `ci95` are NaN then
/// (as numpy/scipy return). A zero SD gives the degenerate interval `(x̄, x̄)`.
///
/// # Errors
/// [`StatsError::TooFewSamples`] for an empty slice, [`StatsError::NonFinite`]
/// for NaN/±inf input.
pub(crate) fn summary(xs: &[f64]) -> Result<Summary, StatsError> {
    check_finite(xs, "xs")?;
    check_len(xs.len(), 1)?;
    let n = xs.len();
    let m = mean(xs);
    if n == 1 {
        return Ok(Summary {
            n,
            mean: m,
            sd: f64::NAN,
            se: f64::NAN,
            ci95: (f64::NAN, f64::NAN),
        });
    }
    let sd = var_ddof1(xs, m).sqrt();
    let se = sd / (n as f64).sqrt();
    let q = t_quantile(0.975, (n - 1) as f64)?;
    Ok(Summary {
        n,
        mean: m,
        sd,
        se,
        ci95: (m - q * se, m + q * se),
    })
}

#[cfg(test)]
mod tests {
    use super::super::assert_rel;
    use super::*;

    #[test]
    fn small_sample_with_ties_matches_scipy() {
        let s = summary(&[1.0, 2.0, 2.0, 3.0, 7.0]).unwrap();
        assert_eq!(s.n, 5);
        assert_rel(s.mean, 3.0, 1e-12);
        // np.std(S1, ddof=1) = 2.345207879911715
        assert_rel(s.sd, 2.345207879911715, 1e-9);
        // st.sem(S1) = 1.0488088481701516
        assert_rel(s.se, 1.0488088481701516, 1e-9);
        // t.interval(0.95, 4, loc=np.mean(S1), scale=st.sem(S1)) = [0.08803980720984672, 5.911960192790153]
        assert_rel(s.ci95.0, 0.08803980720984672, 1e-9);
        assert_rel(s.ci95.1, 5.911960192790153, 1e-9);
    }

    #[test]
    fn accuracy_like_sample_matches_scipy() {
        let xs = [
            0.6812, 0.7134, 0.6655, 0.7021, 0.6930, 0.7248, 0.6779, 0.7093,
        ];
        let s = summary(&xs).unwrap();
        // np.mean(S2) = 0.6959
        assert_rel(s.mean, 0.6959, 1e-9);
        // np.std(S2, ddof=1) = 0.020114387175068794
        assert_rel(s.sd, 0.020114387175068794, 1e-9);
        // ci(S2) = [0.6790839514958821, 0.7127160485041178]
        assert_rel(s.ci95.0, 0.6790839514958821, 1e-9);
        assert_rel(s.ci95.1, 0.7127160485041178, 1e-9);
    }

    #[test]
    fn single_observation_gives_nan_spread() {
        let s = summary(&[0.5]).unwrap();
        assert_eq!(s.n, 1);
        assert_eq!(s.mean, 0.5);
        assert!(s.sd.is_nan() && s.se.is_nan() && s.ci95.0.is_nan() && s.ci95.1.is_nan());
    }

    #[test]
    fn empty_and_nan_are_errors() {
        assert_eq!(
            summary(&[]),
            Err(StatsError::TooFewSamples { needed: 1, got: 0 })
        );
        assert_eq!(summary(&[1.0, f64::NAN]), Err(StatsError::NonFinite("xs")));
        assert_eq!(
            summary(&[1.0, f64::INFINITY]),
            Err(StatsError::NonFinite("xs"))
        );
    }

    #[test]
    fn constant_sample_has_degenerate_interval() {
        let s = summary(&[2.0, 2.0, 2.0]).unwrap();
        assert_eq!(s.sd, 0.0);
        assert_eq!(s.ci95, (2.0, 2.0));
    }
}
