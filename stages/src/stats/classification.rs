//! Classification metrics, chance baselines and a label-permutation test.

use super::StatsError;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

fn check_pair(labels: &[u8], predictions: &[u8]) -> Result<(), StatsError> {
    if labels.len() != predictions.len() {
        return Err(StatsError::LengthMismatch {
            left: labels.len(),
            right: predictions.len(),
        });
    }
    if labels.is_empty() {
        return Err(StatsError::TooFewSamples { needed: 1, got: 0 });
    }
    Ok(())
}

fn check_binary(labels: &[u8], what: &'static str) -> Result<(), StatsError> {
    if labels.iter().all(|&l| l <= 1) {
        Ok(())
    } else {
        Err(StatsError::InvalidArgument(what))
    }
}

/// Fraction of correct predictions, `#{yᵢ = ŷᵢ}/n`
/// (`sklearn.metrics.accuracy_score`).
///
/// # Errors
/// [`StatsError::LengthMismatch`], [`StatsError::TooFewSamples`] when empty.
pub(crate) fn accuracy(labels: &[u8], predictions: &[u8]) -> Result<f64, StatsError> {
    check_pair(labels, predictions)?;
    let correct = labels
        .iter()
        .zip(predictions)
        .filter(|(y, p)| y == p)
        .count();
    Ok(correct as f64 / labels.len() as f64)
}

/// Balanced accuracy: the mean over the classes present in `labels` of the
/// per-class recall `TP_c / #{y = c}` (Brodersen et al. 2010;
/// `sklearn.metrics.balanced_accuracy_score` with `adjusted=False`; predicted
/// classes absent from `labels` only count as errors, as in sklearn).
///
/// # Errors
/// [`StatsError::LengthMismatch`], [`StatsError::TooFewSamples`] when empty.
pub(crate) fn balanced_accuracy(labels: &[u8], predictions: &[u8]) -> Result<f64, StatsError> {
    check_pair(labels, predictions)?;
    let mut support = [0usize; 256];
    let mut hits = [0usize; 256];
    for (&y, &p) in labels.iter().zip(predictions) {
        support[y as usize] += 1;
        if y == p {
            hits[y as usize] += 1;
        }
    }
    let (sum, k) = support
        .iter()
        .zip(&hits)
        .filter(|(s, _)| **s > 0)
        .fold((0.0, 0usize), |(sum, k), (&s, &h)| {
            (sum + h as f64 / s as f64, k + 1)
        });
    Ok(sum / k as f64)
}

/// Macro-averaged F1: the unweighted mean over every class occurring in
/// `labels` or `predictions` of `F1_c = 2·TP_c / (2·TP_c + FP_c + FN_c)`
/// (`sklearn.metrics.f1_score(y, p, average="macro")`).
///
/// # Errors
/// [`StatsError::LengthMismatch`], [`StatsError::TooFewSamples`] when empty.
pub(crate) fn macro_f1(labels: &[u8], predictions: &[u8]) -> Result<f64, StatsError> {
    check_pair(labels, predictions)?;
    let mut tp = [0usize; 256];
    let mut fp = [0usize; 256];
    let mut fneg = [0usize; 256];
    for (&y, &p) in labels.iter().zip(predictions) {
        if y == p {
            tp[y as usize] += 1;
        } else {
            fp[p as usize] += 1;
            fneg[y as usize] += 1;
        }
    }
    let mut sum = 0.0;
    let mut k = 0usize;
    for c in 0..256 {
        let denom = 2 * tp[c] + fp[c] + fneg[c];
        if denom > 0 {
            sum += 2.0 * tp[c] as f64 / denom as f64;
            k += 1;
        }
    }
    Ok(sum / k as f64)
}

/// Area under the ROC curve for binary `labels` (0/1) and real `scores`
/// (higher = more positive), via the Mann–Whitney identity
/// `AUC = (R₁ − n₁(n₁+1)/2) / (n₁·n₀)` with mid-ranks `R₁` of the positives,
/// so tied scores count one half. Equals `sklearn.metrics.roc_auc_score`.
///
/// # Errors
/// [`StatsError::LengthMismatch`], [`StatsError::TooFewSamples`] when empty,
/// [`StatsError::NonFinite`] for NaN/±inf scores,
/// [`StatsError::InvalidArgument`] for labels other than 0/1 or only one class
/// present (sklearn raises `ValueError` there too).
pub(crate) fn auroc(labels: &[u8], scores: &[f64]) -> Result<f64, StatsError> {
    if labels.len() != scores.len() {
        return Err(StatsError::LengthMismatch {
            left: labels.len(),
            right: scores.len(),
        });
    }
    if labels.is_empty() {
        return Err(StatsError::TooFewSamples { needed: 2, got: 0 });
    }
    super::dist::check_finite(scores, "scores")?;
    check_binary(labels, "auroc labels must be 0 or 1")?;
    let n1 = labels.iter().filter(|&&l| l == 1).count();
    let n0 = labels.len() - n1;
    if n1 == 0 || n0 == 0 {
        return Err(StatsError::InvalidArgument(
            "auroc needs both classes present in labels",
        ));
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&i, &j| scores[i].total_cmp(&scores[j]));
    // Sum of doubled mid-ranks of the positives (exact integers).
    let mut r1_2: u64 = 0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let rank2 = (i + j + 2) as u64;
        let pos = idx[i..=j].iter().filter(|&&k| labels[k] == 1).count() as u64;
        r1_2 += rank2 * pos;
        i = j + 1;
    }
    let (n1f, n0f) = (n1 as f64, n0 as f64);
    Ok((r1_2 as f64 / 2.0 - n1f * (n1f + 1.0) / 2.0) / (n1f * n0f))
}

#[cfg(test)]
/// Accuracy on `test_labels` of always predicting the most frequent class of
/// `train_labels` (ties → smallest label), the "majority class" chance
/// baseline; equals sklearn's `DummyClassifier(strategy="most_frequent")`
/// fitted on the training labels and scored on the test labels.
///
/// # Errors
/// [`StatsError::TooFewSamples`] when either input is empty.
pub(super) fn majority_class_accuracy(
    train_labels: &[u8],
    test_labels: &[u8],
) -> Result<f64, StatsError> {
    if train_labels.is_empty() || test_labels.is_empty() {
        return Err(StatsError::TooFewSamples { needed: 1, got: 0 });
    }
    let mut counts = [0usize; 256];
    for &l in train_labels {
        counts[l as usize] += 1;
    }
    let mut majority = 0u8;
    for c in 1..256 {
        if counts[c] > counts[majority as usize] {
            majority = c as u8;
        }
    }
    let hits = test_labels.iter().filter(|&&l| l == majority).count();
    Ok(hits as f64 / test_labels.len() as f64)
}

/// F1 of the positive class (label 1) when every test item is predicted 1,
/// the "constant high" chance baseline: with `P` positives and `N` negatives,
/// precision `P/(P+N)`, recall 1, so `F1 = 2P / (2P + N)` (0 when `P = 0`);
/// equals `sklearn.metrics.f1_score(y, np.ones_like(y))`.
///
/// # Errors
/// [`StatsError::TooFewSamples`] when empty, [`StatsError::InvalidArgument`]
/// for labels other than 0/1.
pub(crate) fn constant_high_f1(test_labels: &[u8]) -> Result<f64, StatsError> {
    if test_labels.is_empty() {
        return Err(StatsError::TooFewSamples { needed: 1, got: 0 });
    }
    check_binary(test_labels, "constant_high_f1 labels must be 0 or 1")?;
    let p = test_labels.iter().filter(|&&l| l == 1).count() as f64;
    let n = test_labels.len() as f64 - p;
    Ok(2.0 * p / (2.0 * p + n))
}

/// Result of [`permutation_test_above_chance`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PermutationResult {
    /// Metric on the real labels.
    pub observed: f64,
    /// `(1 + #{metric(permuted) ≥ observed}) / (1 + reps)`.
    pub p_value: f64,
    /// Number of permutations.
    pub reps: usize,
}

/// Label-permutation test that a classifier is above chance (Ojala & Garriga
/// 2010, *JMLR* 11:1833–1863, test 1): shuffles `labels` `reps` times
/// (Fisher–Yates, `StdRng::seed_from_u64(seed)`), keeps `predictions` fixed,
/// and returns `p = (1 + #{metric(π(labels), predictions) ≥ observed}) / (1 + reps)`
/// (Phipson & Smyth 2010: never 0). `metric(labels, predictions)` is e.g.
/// [`accuracy`], [`balanced_accuracy`] or [`macro_f1`]; comparisons are exact
/// (no tolerance). Deterministic given `seed`.
///
/// # Errors
/// [`StatsError::InvalidArgument`] for `reps == 0`; otherwise whatever
/// `metric` returns on the observed data or a permutation.
pub(crate) fn permutation_test_above_chance<M>(
    labels: &[u8],
    predictions: &[u8],
    metric: M,
    reps: usize,
    seed: u64,
) -> Result<PermutationResult, StatsError>
where
    M: Fn(&[u8], &[u8]) -> Result<f64, StatsError>,
{
    if reps == 0 {
        return Err(StatsError::InvalidArgument("reps must be positive"));
    }
    let observed = metric(labels, predictions)?;
    if observed.is_nan() {
        return Err(StatsError::NonFinite("metric(observed)"));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut perm = labels.to_vec();
    let mut at_least = 0usize;
    for _ in 0..reps {
        perm.shuffle(&mut rng);
        if metric(&perm, predictions)? >= observed {
            at_least += 1;
        }
    }
    Ok(PermutationResult {
        observed,
        p_value: (1 + at_least) as f64 / (1 + reps) as f64,
        reps,
    })
}

#[cfg(test)]
mod tests {
    //! Expected values: scikit-learn 1.9.1 / scipy 1.17.1, inputs as in
    //! `scripts/reference.py`.
    use super::super::assert_rel;
    use super::*;

    const Y3: [u8; 12] = [0, 1, 2, 2, 1, 0, 0, 2, 1, 1, 0, 2];
    const P3: [u8; 12] = [0, 2, 2, 1, 1, 0, 1, 2, 1, 0, 0, 0];
    const YB: [u8; 14] = [0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1];
    const SB: [f64; 14] = [
        0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.2, 0.35, 0.55, 0.1, 0.7, 0.65, 0.4,
    ];
    // SB_pred = [int(s >= 0.4) for s in SB]
    const SB_PRED: [u8; 14] = [0, 1, 0, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1];
    // YB2 = rng.integers(0, 2, 50); SB2 = np.round(rng.uniform(0, 1, 50) + 0.3*YB2, 3)
    const YB2: [u8; 50] = [
        0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0, 1,
        1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0,
    ];
    const SB2: [f64; 50] = [
        0.156, 0.516, 0.797, 0.526, 0.818, 0.908, 0.845, 1.002, 0.017, 0.538, 0.713, 1.168, 1.051,
        0.104, 0.521, 1.248, 0.595, 0.402, 0.747, 0.674, 0.31, 0.369, 0.798, 1.193, 0.08, 0.007,
        0.448, 1.214, 0.764, 0.49, 0.335, 0.97, 0.446, 0.442, 1.202, 0.28, 0.806, 0.886, 0.814,
        0.113, 0.308, 0.822, 0.326, 0.666, 1.082, 0.866, 0.074, 0.854, 0.159, 0.719,
    ];

    #[test]
    fn multiclass_metrics_match_sklearn() {
        // accuracy_score(Y3, P3) = 0.5833333333333334
        assert_rel(accuracy(&Y3, &P3).unwrap(), 0.5833333333333334, 1e-9);
        // balanced_accuracy_score(Y3, P3) = 0.5833333333333334
        assert_rel(
            balanced_accuracy(&Y3, &P3).unwrap(),
            0.5833333333333334,
            1e-9,
        );
        // f1_score(Y3, P3, average='macro') = 0.5793650793650793
        assert_rel(macro_f1(&Y3, &P3).unwrap(), 0.5793650793650793, 1e-9);
    }

    #[test]
    fn binary_metrics_match_sklearn() {
        // accuracy_score(YB, SB_pred) = 0.6428571428571429
        assert_rel(accuracy(&YB, &SB_PRED).unwrap(), 0.6428571428571429, 1e-9);
        // balanced_accuracy_score(YB, SB_pred) = 0.625
        assert_rel(balanced_accuracy(&YB, &SB_PRED).unwrap(), 0.625, 1e-9);
        // f1_score(YB, SB_pred, average='macro') = 0.625668449197861
        assert_rel(macro_f1(&YB, &SB_PRED).unwrap(), 0.625668449197861, 1e-9);
    }

    #[test]
    fn auroc_matches_sklearn() {
        // tied scores across classes:
        // roc_auc_score(YB, SB) = 0.7916666666666667
        assert_rel(auroc(&YB, &SB).unwrap(), 0.7916666666666667, 1e-9);
        // roc_auc_score(YB2, SB2) = 0.8035714285714286
        assert_rel(auroc(&YB2, &SB2).unwrap(), 0.8035714285714286, 1e-9);
        assert_eq!(auroc(&[0, 1], &[0.5, 0.5]).unwrap(), 0.5);
    }

    #[test]
    fn chance_baselines_match_sklearn() {
        // TR = [0, 1, 1, 2, 2, 2, 1, 0], TE = [2, 1, 0, 2, 2, 1]:
        // DummyClassifier(strategy='most_frequent').fit(np.zeros((len(TR), 1)), TR).score(np.zeros((len(TE), 1)), TE) = 0.3333333333333333
        let r = majority_class_accuracy(&[0, 1, 1, 2, 2, 2, 1, 0], &[2, 1, 0, 2, 2, 1]).unwrap();
        assert_rel(r, 0.3333333333333333, 1e-9);
        // TR2 = [3, 1, 1, 3, 0], TE2 = [1, 3, 3, 3, 0, 1, 1] (tie 1 vs 3 → smallest label 1):
        // DummyClassifier(strategy='most_frequent').fit(np.zeros((len(TR2), 1)), TR2).score(np.zeros((len(TE2), 1)), TE2) = 0.42857142857142855
        let r = majority_class_accuracy(&[3, 1, 1, 3, 0], &[1, 3, 3, 3, 0, 1, 1]).unwrap();
        assert_rel(r, 0.42857142857142855, 1e-9);
        // f1_score(YB, np.ones_like(YB)) = 0.7272727272727273
        assert_rel(constant_high_f1(&YB).unwrap(), 0.7272727272727273, 1e-9);
        // f1_score(YB2, np.ones_like(YB2)) = 0.6111111111111112
        assert_rel(constant_high_f1(&YB2).unwrap(), 0.6111111111111112, 1e-9);
        assert_eq!(constant_high_f1(&[0, 0]).unwrap(), 0.0);
    }

    #[test]
    fn metric_errors() {
        assert_eq!(
            accuracy(&[0, 1], &[0]),
            Err(StatsError::LengthMismatch { left: 2, right: 1 })
        );
        assert!(accuracy(&[], &[]).is_err());
        assert!(balanced_accuracy(&[], &[]).is_err());
        assert!(macro_f1(&[1], &[]).is_err());
        assert!(matches!(
            auroc(&[1, 1], &[0.2, 0.3]),
            Err(StatsError::InvalidArgument(_))
        ));
        assert!(matches!(
            auroc(&[0, 2], &[0.2, 0.3]),
            Err(StatsError::InvalidArgument(_))
        ));
        assert_eq!(
            auroc(&[0, 1], &[0.2, f64::NAN]),
            Err(StatsError::NonFinite("scores"))
        );
        assert!(majority_class_accuracy(&[], &[1]).is_err());
        assert!(constant_high_f1(&[]).is_err());
        assert!(constant_high_f1(&[0, 3]).is_err());
    }

    #[test]
    fn permutation_p_matches_exact_hypergeometric() {
        // Under label permutation the accuracy depends only on the overlap K of
        // label-1 and prediction-1 positions, K ~ Hypergeom(14, 8, 9); observed K = 6.
        // hypergeom.sf(6 - 1, 14, 8, 9) = 0.3426573426573427
        let r = permutation_test_above_chance(&YB, &SB_PRED, accuracy, 20_000, 11).unwrap();
        assert_rel(r.observed, 0.6428571428571429, 1e-9);
        assert!(
            (r.p_value - 0.3426573426573427).abs() < 0.015,
            "{}",
            r.p_value
        );
    }

    #[test]
    fn permutation_extremes_and_determinism() {
        let y: Vec<u8> = (0..20).map(|i| (i % 2) as u8).collect();
        // Perfect predictions: a permutation reproduces them with prob 1/C(20,10).
        let r = permutation_test_above_chance(&y, &y, balanced_accuracy, 999, 5).unwrap();
        assert_eq!(r.observed, 1.0);
        assert_eq!(r.p_value, 1.0 / 1000.0);
        // Constant predictions: every permutation ties the observed accuracy.
        let constant = vec![1u8; 20];
        let r = permutation_test_above_chance(&y, &constant, accuracy, 99, 5).unwrap();
        assert_eq!(r.p_value, 1.0);
        let a = permutation_test_above_chance(&YB, &SB_PRED, macro_f1, 200, 8).unwrap();
        let b = permutation_test_above_chance(&YB, &SB_PRED, macro_f1, 200, 8).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn permutation_errors() {
        assert!(matches!(
            permutation_test_above_chance(&YB, &SB_PRED, accuracy, 0, 1),
            Err(StatsError::InvalidArgument(_))
        ));
        assert!(matches!(
            permutation_test_above_chance(&YB, &SB_PRED[..3], accuracy, 10, 1),
            Err(StatsError::LengthMismatch { .. })
        ));
    }
}
