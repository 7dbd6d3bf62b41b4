//! Multiple-comparison adjustment.

use super::StatsError;

/// Holm–Bonferroni step-down adjusted p-values (Holm 1979, *Scand. J. Stat.*
/// 6:65–70), returned in the input order.
///
/// With the `m` p-values sorted ascending, `p₍₁₎ ≤ … ≤ p₍ₘ₎`:
/// `p̃₍ᵢ₎ = min(1, max_{j ≤ i} (m − j + 1)·p₍ⱼ₎)` — monotone and capped at 1.
/// Matches `statsmodels.stats.multitest.multipletests(p, method="holm")[1]`.
/// An empty input gives an empty output.
///
/// # Errors
/// [`StatsError::NonFinite`] for NaN/±inf, [`StatsError::InvalidArgument`] for
/// a value outside `[0, 1]`.
pub(crate) fn holm(pvalues: &[f64]) -> Result<Vec<f64>, StatsError> {
    if pvalues.iter().any(|p| !p.is_finite()) {
        return Err(StatsError::NonFinite("pvalues"));
    }
    if pvalues.iter().any(|&p| !(0.0..=1.0).contains(&p)) {
        return Err(StatsError::InvalidArgument("p-values must lie in [0, 1]"));
    }
    let m = pvalues.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| pvalues[i].total_cmp(&pvalues[j]));
    let mut adjusted = vec![0.0; m];
    let mut running_max = 0.0f64;
    for (rank, &idx) in order.iter().enumerate() {
        let candidate = (m - rank) as f64 * pvalues[idx];
        running_max = running_max.max(candidate);
        adjusted[idx] = running_max.min(1.0);
    }
    Ok(adjusted)
}

#[cfg(test)]
mod tests {
    use super::super::assert_rel;
    use super::*;

    fn check(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_rel(*g, *w, 1e-9);
        }
    }

    #[test]
    fn small_matches_statsmodels() {
        let p = [0.01, 0.04, 0.03, 0.005];
        // multipletests([0.01, 0.04, 0.03, 0.005], method='holm')[1] = [0.03, 0.06, 0.06, 0.02]
        check(&holm(&p).unwrap(), &[0.03, 0.06, 0.06, 0.02]);
    }

    #[test]
    fn ties_and_capping_match_statsmodels() {
        let p = [0.2, 0.01, 0.04, 0.04, 0.5, 0.001, 0.3];
        // multipletests([0.2, 0.01, 0.04, 0.04, 0.5, 0.001, 0.3], method='holm')[1] = [0.6000000000000001, 0.06, 0.2, 0.2, 0.6000000000000001, 0.007, 0.6000000000000001]
        check(
            &holm(&p).unwrap(),
            &[
                0.6000000000000001,
                0.06,
                0.2,
                0.2,
                0.6000000000000001,
                0.007,
                0.6000000000000001,
            ],
        );
        // capping: 3 * 0.5 > 1
        check(&holm(&[0.5, 0.6, 0.7]).unwrap(), &[1.0, 1.0, 1.0]);
    }

    #[test]
    fn edge_cases() {
        assert_eq!(holm(&[]).unwrap(), Vec::<f64>::new());
        assert_eq!(holm(&[0.3]).unwrap(), vec![0.3]);
        assert_eq!(
            holm(&[0.1, f64::NAN]),
            Err(StatsError::NonFinite("pvalues"))
        );
        assert!(matches!(
            holm(&[0.1, 1.5]),
            Err(StatsError::InvalidArgument(_))
        ));
    }
}
