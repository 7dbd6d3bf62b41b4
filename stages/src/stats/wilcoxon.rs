//! Wilcoxon signed-rank test, matching `scipy.stats.wilcoxon` 1.17 defaults.

use super::dist::{check_finite, check_len, norm_cdf};
use super::StatsError;

/// Which null distribution produced the p-value of [`wilcoxon_signed_rank`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WilcoxonMethod {
    /// Exact distribution of `W+` over ranks `1..n` (no ties, no zeros, `n ≤ 50`).
    Exact,
    /// Exact sign-flip (permutation) distribution of `W+` with mid-ranks, used
    /// when there are ties or zeros and `n ≤ 13` (scipy's deterministic
    /// `PermutationMethod` branch, all `2ⁿ` sign flips).
    ExactWithTies,
    /// Normal approximation with tie correction, no continuity correction.
    Normal,
}

/// Result of [`wilcoxon_signed_rank`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WilcoxonResult {
    /// `min(W+, W−)`, the statistic scipy reports for the two-sided test.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Number of non-zero differences that were ranked.
    pub n_used: usize,
    /// Null distribution that was used.
    pub method: WilcoxonMethod,
}

/// Two-sided Wilcoxon signed-rank test of `H₀: median(d) = 0` with scipy's
/// defaults (`zero_method="wilcox"`, `correction=False`, `method="auto"`),
/// matching `scipy.stats.wilcoxon(d)` of scipy 1.17.1.
///
/// Zeros are dropped; the non-zero `|d|` get mid-ranks; `W+`/`W−` are the rank
/// sums of the positive/negative differences. scipy 1.17's `"auto"` rule,
/// where `n` counts *all* differences, zeros included:
/// 1. `n > 50` → normal approximation;
/// 2. otherwise, no ties and no zeros → exact null distribution of `W+`
///    (dynamic programming over ranks `1..n`),
///    `p = 2·min(P(W+ ≤ w), P(W+ ≥ w))`, capped at 1;
/// 3. otherwise `n ≤ 13` → exact sign-flip distribution of the mid-rank `W+`
///    (scipy enumerates all `2ⁿ` flips with `permutation_test`; here a DP over
///    doubled mid-ranks gives the same distribution), same p formula;
/// 4. otherwise → normal approximation
///    `z = (W+ − m(m+1)/4) / sqrt(m(m+1)(2m+1)/24 − Σ(t³−t)/48)` over the `m`
///    non-zero differences with tie-group sizes `t`, `p = 2·Φ(−|z|)`, no
///    continuity correction.
///
/// All differences zero: returns `statistic = 0`, `p = 1`. scipy agrees for
/// `n ≤ 13` but returns `p = NaN` for `n > 13` (0/0 in the normal branch) —
/// a deliberate divergence.
///
/// # Errors
/// [`StatsError::TooFewSamples`] for an empty slice (scipy returns NaN),
/// [`StatsError::NonFinite`] for NaN/±inf input.
pub(crate) fn wilcoxon_signed_rank(diffs: &[f64]) -> Result<WilcoxonResult, StatsError> {
    check_finite(diffs, "diffs")?;
    check_len(diffs.len(), 1)?;
    let n_total = diffs.len();
    let mut nonzero: Vec<f64> = diffs.iter().copied().filter(|&x| x != 0.0).collect();
    let has_zeros = nonzero.len() < n_total;
    let m = nonzero.len();
    if m == 0 {
        return Ok(WilcoxonResult {
            statistic: 0.0,
            p_value: 1.0,
            n_used: 0,
            method: WilcoxonMethod::ExactWithTies,
        });
    }
    nonzero.sort_by(|x, y| x.abs().total_cmp(&y.abs()));

    // Doubled mid-ranks (integers) and tie-group sizes.
    let mut rank2 = vec![0u64; m];
    let mut tie_term = 0.0f64; // Σ (t³ − t)
    let mut has_ties = false;
    let mut i = 0;
    while i < m {
        let mut j = i;
        while j + 1 < m && nonzero[j + 1].abs() == nonzero[i].abs() {
            j += 1;
        }
        let r2 = (i + 1 + j + 1) as u64; // 2 × mid-rank of positions i..=j (1-based)
        for r in &mut rank2[i..=j] {
            *r = r2;
        }
        let t = (j - i + 1) as f64;
        if t > 1.0 {
            has_ties = true;
            tie_term += t * t * t - t;
        }
        i = j + 1;
    }
    let w_plus2: u64 = nonzero
        .iter()
        .zip(&rank2)
        .filter(|(x, _)| **x > 0.0)
        .map(|(_, r)| r)
        .sum();
    let total2: u64 = rank2.iter().sum();
    let w_plus = w_plus2 as f64 / 2.0;
    let w_minus = (total2 - w_plus2) as f64 / 2.0;
    let statistic = w_plus.min(w_minus);

    let method = if n_total > 50 {
        WilcoxonMethod::Normal
    } else if !has_ties && !has_zeros {
        WilcoxonMethod::Exact
    } else if n_total <= 13 {
        WilcoxonMethod::ExactWithTies
    } else {
        WilcoxonMethod::Normal
    };

    let p_value = match method {
        WilcoxonMethod::Normal => {
            let mf = m as f64;
            let mn = mf * (mf + 1.0) / 4.0;
            let var = (mf * (mf + 1.0) * (2.0 * mf + 1.0) - tie_term / 2.0) / 24.0;
            let z = (w_plus - mn) / var.sqrt();
            (2.0 * norm_cdf(-z.abs())).min(1.0)
        }
        WilcoxonMethod::Exact | WilcoxonMethod::ExactWithTies => {
            let counts = sign_flip_counts(&rank2);
            let total: f64 = counts.iter().sum();
            let w = w_plus2 as usize;
            let le: f64 = counts[..=w].iter().sum::<f64>() / total;
            let ge: f64 = counts[w..].iter().sum::<f64>() / total;
            (2.0 * le.min(ge)).min(1.0)
        }
    };
    Ok(WilcoxonResult {
        statistic,
        p_value,
        n_used: m,
        method,
    })
}

/// Null distribution of `Σ sᵢ·rᵢ` over all `2^m` sign vectors `s ∈ {0,1}^m`,
/// as counts indexed by the (integer) sum. Counts stay below `2^50 < 2^53`
/// (m ≤ 50), so they are exact in `f64`.
fn sign_flip_counts(ranks: &[u64]) -> Vec<f64> {
    let max: usize = ranks.iter().sum::<u64>() as usize;
    let mut counts = vec![0.0f64; max + 1];
    counts[0] = 1.0;
    let mut reach = 0usize;
    for &r in ranks {
        let r = r as usize;
        for s in (0..=reach).rev() {
            let c = counts[s];
            if c != 0.0 {
                counts[s + r] += c;
            }
        }
        reach += r;
    }
    counts
}

#[cfg(test)]
mod tests {
    //! Expected values: `scipy.stats.wilcoxon(d)` (scipy 1.17.1), inputs as in
    //! `scripts/reference.py`.
    use super::super::assert_rel;
    use super::*;

    #[test]
    fn exact_no_ties() {
        let d = [
            0.31, -1.42, 2.05, 0.77, -0.18, 1.26, 0.94, -0.55, 1.73, 0.08,
        ];
        let r = wilcoxon_signed_rank(&d).unwrap();
        // wilcoxon(W_EXACT) = [14.0, 0.193359375]
        assert_eq!(r.method, WilcoxonMethod::Exact);
        assert_eq!(r.statistic, 14.0);
        assert_rel(r.p_value, 0.193359375, 1e-9);
    }

    #[test]
    fn zeros_and_ties_small_n_uses_exact_sign_flips() {
        let d = [0.0, 1.0, 2.0, -2.0, 0.0, 3.0, -1.0, 4.0, 5.0, 3.0];
        let r = wilcoxon_signed_rank(&d).unwrap();
        // wilcoxon(W_TIES) = [5.0, 0.078125]
        assert_eq!(r.method, WilcoxonMethod::ExactWithTies);
        assert_eq!(r.n_used, 8);
        assert_eq!(r.statistic, 5.0);
        assert_rel(r.p_value, 0.078125, 1e-9);
    }

    #[test]
    fn zeros_and_ties_n20_uses_normal() {
        let d = [
            1.0, 2.0, 2.0, -3.0, 4.0, 5.0, -6.0, 7.0, 8.0, 9.0, 10.0, 10.0, -11.0, 12.0, 13.0, 0.0,
            14.0, 15.0, 16.0, -2.0,
        ];
        let r = wilcoxon_signed_rank(&d).unwrap();
        // wilcoxon(W_TIES20) = [30.0, 0.008868904011201816]
        assert_eq!(r.method, WilcoxonMethod::Normal);
        assert_eq!(r.statistic, 30.0);
        assert_rel(r.p_value, 0.008868904011201816, 1e-9);
    }

    #[test]
    fn no_ties_n40_is_exact() {
        // W_40 = np.round(rng.normal(0.2, 1.0, 40), 6), rng state as in reference.py
        let d = [
            0.607543, 0.130193, -0.007592, -0.62378, 0.912183, 1.070571, -1.44072, -0.56582, 0.626,
            -0.72478, 0.359103, -0.370438, 1.731595, 0.139739, 2.075143, 0.418439, 0.929121,
            0.329045, 0.878291, 1.118231, -0.681226, 0.90757, 0.131642, -2.19018, 0.033933,
            -1.206287, 0.408003, -0.982148, 0.526724, 0.172135, -0.207743, 0.696066, -0.199332,
            0.675329, -1.350207, 0.286903, 0.945502, 0.177692, -0.28111, 0.287185,
        ];
        let r = wilcoxon_signed_rank(&d).unwrap();
        // wilcoxon(W_40) = [313.0, 0.19685455255421402]
        assert_eq!(r.method, WilcoxonMethod::Exact);
        assert_eq!(r.statistic, 313.0);
        assert_rel(r.p_value, 0.19685455255421402, 1e-9);
    }

    #[test]
    fn n60_uses_normal() {
        // W_BIG = np.round(rng.normal(0.3, 1.0, 60), 6), rng state as in reference.py
        let d = [
            -1.651806, -0.560278, -0.083034, 1.184486, -0.948926, 0.20478, 0.389594, -1.20284,
            -0.140714, 1.181403, 0.290626, -0.459419, 0.035195, 0.578152, -0.51628, -1.482067,
            1.300551, 0.210486, -0.087243, -0.055127, 1.436107, 0.409702, 1.566062, 2.147051,
            -1.253267, 0.584606, 0.756949, 2.535376, 0.7564, 1.58204, -0.838931, 0.570604, 0.54184,
            0.934131, -0.713861, -0.415653, -0.293238, -0.423945, 0.584545, 0.385011, 0.865369,
            1.446061, -1.737707, 0.025533, 0.479104, -0.317453, -1.872636, -0.672259, -1.018942,
            0.57553, -2.225795, 0.704041, -0.509942, -0.353079, 0.912298, 0.210907, 1.335884,
            -1.224537, -0.841164, 0.569621,
        ];
        let r = wilcoxon_signed_rank(&d).unwrap();
        // wilcoxon(W_BIG) = [812.0, 0.4483042610564597]
        assert_eq!(r.method, WilcoxonMethod::Normal);
        assert_eq!(r.statistic, 812.0);
        assert_rel(r.p_value, 0.4483042610564597, 1e-9);
    }

    #[test]
    fn all_zero_diffs_give_p_one() {
        // wilcoxon([0, 0, 0]) = [0.0, 1.0]
        // wilcoxon([0.0] * 20) = [0.0, nan]  ← deliberate divergence: we return p = 1
        for n in [3usize, 20] {
            let r = wilcoxon_signed_rank(&vec![0.0; n]).unwrap();
            assert_eq!(r.statistic, 0.0);
            assert_eq!(r.p_value, 1.0);
            assert_eq!(r.n_used, 0);
        }
    }

    #[test]
    fn tiny_samples() {
        // wilcoxon([1.0]) = [0.0, 1.0]
        // wilcoxon([1, -2]) = [1.0, 1.0]
        let r = wilcoxon_signed_rank(&[1.0]).unwrap();
        assert_eq!((r.statistic, r.p_value), (0.0, 1.0));
        let r = wilcoxon_signed_rank(&[1.0, -2.0]).unwrap();
        assert_eq!((r.statistic, r.p_value), (1.0, 1.0));
    }

    #[test]
    fn empty_and_nan_are_errors() {
        assert_eq!(
            wilcoxon_signed_rank(&[]),
            Err(StatsError::TooFewSamples { needed: 1, got: 0 })
        );
        assert_eq!(
            wilcoxon_signed_rank(&[1.0, f64::NAN]),
            Err(StatsError::NonFinite("diffs"))
        );
    }
}
