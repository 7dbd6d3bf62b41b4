//! Paired t-test and the Nadeau–Bengio corrected resampled t-test.

use super::dist::{check_finite, check_len, mean, t_quantile, t_two_sided_p, var_ddof1};
use super::StatsError;

/// Result of a one-sample t-test on paired differences `d`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TTestResult {
    /// Number of differences.
    pub n: usize,
    /// Mean difference `d̄`.
    pub mean_diff: f64,
    /// Sample SD of the differences (ddof = 1).
    pub sd: f64,
    /// Standard error used in the denominator of `t` (corrected for
    /// [`corrected_resampled_t`]).
    pub se: f64,
    /// Test statistic `t = d̄ / se`.
    pub t: f64,
    /// Degrees of freedom `n − 1`.
    pub df: f64,
    /// Two-sided p-value `2·P(T_df > |t|)`.
    pub p_value: f64,
    /// 95 % confidence interval for the mean difference, `d̄ ± t_{0.975,df}·se`.
    pub ci95: (f64, f64),
}

/// One-sample t-test of `d̄ = 0` with `se = sqrt(se_factor · var(d))`.
fn t_test_on_diffs(d: &[f64], se_factor: f64) -> Result<TTestResult, StatsError> {
    let n = d.len();
    // All-equal differences: the exact variance is 0 (the two-pass estimate may
    // be a rounding residue like 1e-34, which would give an absurd t).
    if d.iter().all(|&x| x == d[0]) {
        return Err(StatsError::ZeroVariance);
    }
    let m = mean(d);
    let var = var_ddof1(d, m);
    if var == 0.0 {
        return Err(StatsError::ZeroVariance);
    }
    let se = (se_factor * var).sqrt();
    let df = (n - 1) as f64;
    let t = m / se;
    let q = t_quantile(0.975, df)?;
    Ok(TTestResult {
        n,
        mean_diff: m,
        sd: var.sqrt(),
        se,
        t,
        df,
        p_value: t_two_sided_p(t, df),
        ci95: (m - q * se, m + q * se),
    })
}

#[cfg(test)]
/// Paired (dependent-samples) t-test on `d = a − b`:
/// `t = d̄ / (s_d/√n)`, `df = n − 1`, two-sided `p = 2·P(T_df > |t|)`, and the
/// 95 % interval `d̄ ± t_{0.975,df}·s_d/√n`.
///
/// Matches `scipy.stats.ttest_rel(a, b)` (statistic, pvalue, df and
/// `.confidence_interval(0.95)`).
///
/// # Errors
/// [`StatsError::LengthMismatch`], [`StatsError::NonFinite`],
/// [`StatsError::TooFewSamples`] for `n < 2`, and [`StatsError::ZeroVariance`]
/// when all differences are equal (scipy returns `t = ±inf`/huge, `p ≈ 0`, or NaN there).
pub(crate) fn paired_t(a: &[f64], b: &[f64]) -> Result<TTestResult, StatsError> {
    if a.len() != b.len() {
        return Err(StatsError::LengthMismatch {
            left: a.len(),
            right: b.len(),
        });
    }
    check_finite(a, "a")?;
    check_finite(b, "b")?;
    check_len(a.len(), 2)?;
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    t_test_on_diffs(&d, 1.0 / d.len() as f64)
}

/// Corrected resampled t-test of Nadeau & Bengio (2003, *Machine Learning*
/// 52:239–281), in the form used by Bouckaert & Frank (2004, PAKDD) for
/// `J` train/test resamplings (e.g. r×k cross-validation, `J = r·k`):
///
/// `t = d̄ / sqrt((1/J + n₂/n₁) · s_d²)`, `df = J − 1`,
///
/// where `d` are the per-resample score differences, `s_d²` their sample
/// variance (ddof 1), `n₂/n₁ = test_train_ratio` (test-set size over
/// training-set size; `1/(k−1)` for k-fold CV). The p-value is two-sided from
/// Student's t with `J − 1` df, and the corrected 95 % interval is
/// `d̄ ± t_{0.975,J−1} · sqrt((1/J + n₂/n₁)·s_d²)`.
///
/// scipy has no built-in; the reference values in the tests were computed
/// with this formula in numpy and `scipy.stats.t.sf`/`t.ppf`.
/// `test_train_ratio = 0` reduces to the ordinary one-sample t-test.
///
/// # Errors
/// [`StatsError::NonFinite`], [`StatsError::TooFewSamples`] for `J < 2`,
/// [`StatsError::ZeroVariance`] when all differences are equal, and
/// [`StatsError::InvalidArgument`] for a
/// negative or non-finite ratio.
pub(crate) fn corrected_resampled_t(
    diffs: &[f64],
    test_train_ratio: f64,
) -> Result<TTestResult, StatsError> {
    check_finite(diffs, "diffs")?;
    if !(test_train_ratio.is_finite() && test_train_ratio >= 0.0) {
        return Err(StatsError::InvalidArgument(
            "test_train_ratio must be finite and >= 0",
        ));
    }
    check_len(diffs.len(), 2)?;
    t_test_on_diffs(diffs, 1.0 / diffs.len() as f64 + test_train_ratio)
}

#[cfg(test)]
mod tests {
    use super::super::assert_rel;
    use super::*;

    #[test]
    fn paired_t_small_with_zero_diff_matches_scipy() {
        let a = [0.70, 0.72, 0.68, 0.75, 0.71];
        let b = [0.70, 0.69, 0.66, 0.71, 0.73];
        let r = paired_t(&a, &b).unwrap();
        // ttest_rel(A1, B1).statistic = 1.299867367239363
        assert_rel(r.t, 1.299867367239363, 1e-9);
        // ttest_rel(A1, B1).pvalue = 0.2634928170690076
        assert_rel(r.p_value, 0.2634928170690076, 1e-9);
        assert_eq!(r.df, 4.0);
        // ttest_rel(A1, B1).confidence_interval(0.95) = [-0.01590322893890404, 0.04390322893890407]
        assert_rel(r.ci95.0, -0.01590322893890404, 1e-9);
        assert_rel(r.ci95.1, 0.04390322893890407, 1e-9);
    }

    #[test]
    fn paired_t_random_looking_matches_scipy() {
        let a = [
            0.8123, 0.7951, 0.8342, 0.8017, 0.7788, 0.8230, 0.8105, 0.7899, 0.8264, 0.8011,
        ];
        let b = [
            0.7944, 0.7990, 0.8101, 0.7823, 0.7801, 0.8012, 0.7956, 0.7910, 0.8015, 0.7888,
        ];
        let r = paired_t(&a, &b).unwrap();
        // ttest_rel(A2, B2).statistic = 3.6896654309597214
        assert_rel(r.t, 3.6896654309597214, 1e-9);
        // ttest_rel(A2, B2).pvalue = 0.004999976452523271
        assert_rel(r.p_value, 0.004999976452523271, 1e-9);
        // ttest_rel(A2, B2).confidence_interval(0.95) = [0.0049909285825120685, 0.020809071417487956]
        assert_rel(r.ci95.0, 0.0049909285825120685, 1e-9);
        assert_rel(r.ci95.1, 0.020809071417487956, 1e-9);
    }

    #[test]
    fn paired_t_edge_cases() {
        assert_eq!(
            paired_t(&[1.0], &[0.0]),
            Err(StatsError::TooFewSamples { needed: 2, got: 1 })
        );
        assert_eq!(
            paired_t(&[1.0, 2.0], &[0.0]),
            Err(StatsError::LengthMismatch { left: 2, right: 1 })
        );
        assert_eq!(
            paired_t(&[1.0, f64::NAN], &[0.0, 1.0]),
            Err(StatsError::NonFinite("a"))
        );
        assert_eq!(
            paired_t(&[1.0, 2.0], &[0.0, 1.0]),
            Err(StatsError::ZeroVariance)
        );
    }

    #[test]
    fn corrected_t_10x10_cv_with_zero_diff() {
        let d = [0.02, -0.01, 0.03, 0.01, 0.0, 0.02, 0.04, -0.02, 0.01, 0.03];
        let r = corrected_resampled_t(&d, 1.0 / 9.0).unwrap();
        // nb(D1, 1/9) = [1.4981542997808324, 0.1683206002151228, -0.006629515545013502, 0.032629515545013504]
        // where nb(d, r): se = np.sqrt((1/len(d) + r) * np.var(d, ddof=1)); t = np.mean(d)/se;
        //   p = 2*t.sf(abs(t), len(d)-1); ci = np.mean(d) -/+ t.ppf(0.975, len(d)-1)*se
        assert_rel(r.t, 1.4981542997808324, 1e-9);
        assert_rel(r.p_value, 0.1683206002151228, 1e-9);
        assert_rel(r.ci95.0, -0.006629515545013502, 1e-9);
        assert_rel(r.ci95.1, 0.032629515545013504, 1e-9);
        assert_eq!(r.df, 9.0);
    }

    #[test]
    fn corrected_t_random_looking() {
        // D2 = np.round(np.random.default_rng(20240607).normal(0.012, 0.02, 30), 6)
        let d = [
            0.01029, 0.003424, -0.04547, 0.076903, 0.014934, 0.038232, 0.019019, -0.002409,
            0.028331, -0.030351, 0.017878, 0.023279, -0.007578, -0.008028, 0.02343, 0.023848,
            -0.010838, -0.016829, 0.05387, 0.022263, 0.012589, -0.011362, -0.005772, 0.000833,
            0.000826, 0.00053, 0.05316, 0.023564, -0.016349, 0.021329,
        ];
        let r = corrected_resampled_t(&d, 0.25).unwrap();
        // nb(D2, 0.25) = [0.7686485856331321, 0.4483167986044655, -0.01735803553676902, 0.03826110220343568]
        assert_rel(r.t, 0.7686485856331321, 1e-9);
        assert_rel(r.p_value, 0.4483167986044655, 1e-9);
        assert_rel(r.ci95.0, -0.01735803553676902, 1e-9);
        assert_rel(r.ci95.1, 0.03826110220343568, 1e-9);
    }

    #[test]
    fn corrected_t_with_zero_ratio_is_plain_t() {
        let a = [0.70, 0.72, 0.68, 0.75, 0.71];
        let b = [0.70, 0.69, 0.66, 0.71, 0.73];
        let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        let r = corrected_resampled_t(&d, 0.0).unwrap();
        assert_rel(r.t, 1.299867367239363, 1e-9);
    }

    #[test]
    fn corrected_t_edge_cases() {
        assert_eq!(
            corrected_resampled_t(&[0.1], 0.1),
            Err(StatsError::TooFewSamples { needed: 2, got: 1 })
        );
        assert_eq!(
            corrected_resampled_t(&[0.1, f64::NAN], 0.1),
            Err(StatsError::NonFinite("diffs"))
        );
        assert!(matches!(
            corrected_resampled_t(&[0.1, 0.2], -1.0),
            Err(StatsError::InvalidArgument(_))
        ));
        assert_eq!(
            corrected_resampled_t(&[0.1, 0.1, 0.1], 0.1),
            Err(StatsError::ZeroVariance)
        );
    }
}
