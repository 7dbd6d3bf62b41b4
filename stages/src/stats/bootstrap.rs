//! Two-stage (cluster, then unit) bootstrap for paired per-window outcomes.

use super::StatsError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One unit (e.g. a trial): its windows, each a pair `(a, b)` of the two
/// models' per-window values — typically 1.0 = correct, 0.0 = incorrect.
pub(super) type Unit = Vec<(f64, f64)>;

/// One cluster (e.g. a subject): its units.
pub(crate) type Cluster = Vec<Unit>;

/// Result of [`cluster_bootstrap_diff`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BootstrapResult {
    /// Statistic on the original data.
    pub observed: f64,
    /// 95 % percentile interval: the 2.5 % and 97.5 % quantiles of the
    /// bootstrap replicates (linear interpolation, numpy's default `percentile`).
    pub ci95: (f64, f64),
    /// Two-sided bootstrap p-value `min(1, 2·min(P*(θ* ≤ 0), P*(θ* ≥ 0)))`.
    pub p_value: f64,
    /// Number of bootstrap replicates.
    pub reps: usize,
}

/// `mean(a) − mean(b)` over all windows: the default statistic for
/// [`cluster_bootstrap_diff`] (difference in per-window accuracy when the
/// values are 0/1). NaN for an empty slice.
pub(crate) fn mean_diff(windows: &[(f64, f64)]) -> f64 {
    let n = windows.len() as f64;
    let (sa, sb) = windows
        .iter()
        .fold((0.0, 0.0), |(sa, sb), &(a, b)| (sa + a, sb + b));
    (sa - sb) / n
}

/// Sample quantile `q ∈ [0,1]` of a sorted slice by linear
/// interpolation between order statistics (Hyndman & Fan 1996 type 7,
/// `numpy.percentile(x, 100*q)` default). `q` is clamped to `[0, 1]`; an empty
/// slice gives NaN. The slice must already be sorted ascending.
pub(super) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Cluster bootstrap for a paired difference between two models that respects
/// the nesting windows ⊂ units ⊂ clusters (two-stage resampling, Davison &
/// Hinkley 1997 §3.8; Field & Welsh 2007, *JRSS-B* 69:369–390).
///
/// Each replicate draws `K` clusters with replacement from the `K` clusters,
/// then, inside each drawn cluster with `U` units, `U` units with replacement;
/// all windows of the drawn units are pooled and `stat` is applied to the
/// pooled `(a, b)` pairs (use [`mean_diff`] for `mean(a) − mean(b)`, which
/// weights every window equally). Returns the observed statistic, the 95 %
/// percentile interval and the two-sided bootstrap p-value
/// `min(1, 2·min(#{θ* ≤ 0}, #{θ* ≥ 0})/reps)`.
///
/// Deterministic given `seed` (`rand::rngs::StdRng::seed_from_u64`, rand 0.8);
/// the stream is not the one numpy would draw, so results match a Python
/// implementation only in distribution, not digit for digit.
///
/// # Errors
/// [`StatsError::TooFewSamples`] for fewer than 2 clusters,
/// [`StatsError::InvalidArgument`] for `reps == 0` or an empty cluster/unit,
/// [`StatsError::NonFinite`] for a non-finite window value or a non-finite
/// value of `stat` on the data or on a replicate.
pub(crate) fn cluster_bootstrap_diff<S>(
    clusters: &[Cluster],
    stat: S,
    reps: usize,
    seed: u64,
) -> Result<BootstrapResult, StatsError>
where
    S: Fn(&[(f64, f64)]) -> f64,
{
    if clusters.len() < 2 {
        return Err(StatsError::TooFewSamples {
            needed: 2,
            got: clusters.len(),
        });
    }
    if reps == 0 {
        return Err(StatsError::InvalidArgument("reps must be positive"));
    }
    for cluster in clusters {
        if cluster.is_empty() {
            return Err(StatsError::InvalidArgument("every cluster needs a unit"));
        }
        for unit in cluster {
            if unit.is_empty() {
                return Err(StatsError::InvalidArgument("every unit needs a window"));
            }
            if unit.iter().any(|(a, b)| !a.is_finite() || !b.is_finite()) {
                return Err(StatsError::NonFinite("clusters"));
            }
        }
    }
    let all: Vec<(f64, f64)> = clusters.iter().flatten().flatten().copied().collect();
    let observed = stat(&all);
    if !observed.is_finite() {
        return Err(StatsError::NonFinite("stat(observed)"));
    }

    let mut rng = StdRng::seed_from_u64(seed);
    let k = clusters.len();
    let mut buf: Vec<(f64, f64)> = Vec::with_capacity(all.len());
    let mut stats = Vec::with_capacity(reps);
    for _ in 0..reps {
        buf.clear();
        for _ in 0..k {
            let cluster = &clusters[rng.gen_range(0..k)];
            let u = cluster.len();
            for _ in 0..u {
                buf.extend_from_slice(&cluster[rng.gen_range(0..u)]);
            }
        }
        let v = stat(&buf);
        if !v.is_finite() {
            return Err(StatsError::NonFinite("stat(replicate)"));
        }
        stats.push(v);
    }
    let le = stats.iter().filter(|&&v| v <= 0.0).count() as f64;
    let ge = stats.iter().filter(|&&v| v >= 0.0).count() as f64;
    let p_value = (2.0 * le.min(ge) / reps as f64).min(1.0);
    stats.sort_by(f64::total_cmp);
    Ok(BootstrapResult {
        observed,
        ci95: (
            quantile_sorted(&stats, 0.025),
            quantile_sorted(&stats, 0.975),
        ),
        p_value,
        reps,
    })
}

#[cfg(test)]
mod tests {
    use super::super::assert_rel;
    use super::*;

    fn unit(pairs: &[(f64, f64)]) -> Unit {
        pairs.to_vec()
    }

    fn example() -> Vec<Cluster> {
        vec![
            vec![
                unit(&[(1.0, 0.0), (1.0, 1.0), (0.0, 0.0)]),
                unit(&[(1.0, 1.0), (1.0, 0.0)]),
            ],
            vec![unit(&[(0.0, 0.0), (1.0, 1.0)]), unit(&[(1.0, 0.0)])],
            vec![
                unit(&[(0.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.0, 0.0)]),
                unit(&[(1.0, 1.0)]),
                unit(&[(0.0, 0.0), (1.0, 0.0)]),
            ],
        ]
    }

    #[test]
    fn quantile_matches_numpy_percentile() {
        let mut q = vec![0.3, -0.1, 0.25, 0.0, 0.12, 0.4, -0.2];
        q.sort_by(f64::total_cmp);
        // np.percentile(Q, [2.5, 97.5]) = [-0.185, 0.385]
        assert_rel(quantile_sorted(&q, 0.025), -0.185, 1e-9);
        assert_rel(quantile_sorted(&q, 0.975), 0.385, 1e-9);
        // np.percentile(Q, [0, 50, 100]) = [-0.2, 0.12, 0.4]
        assert_rel(quantile_sorted(&q, 0.0), -0.2, 1e-9);
        assert_rel(quantile_sorted(&q, 0.5), 0.12, 1e-9);
        assert_rel(quantile_sorted(&q, 1.0), 0.4, 1e-9);
        assert!(quantile_sorted(&[], 0.5).is_nan());
    }

    #[test]
    fn observed_is_window_weighted_mean_difference() {
        let r = cluster_bootstrap_diff(&example(), mean_diff, 500, 7).unwrap();
        // 15 windows: sum(a) = 11, sum(b) = 7 → (11 − 7)/15
        assert_rel(r.observed, 4.0 / 15.0, 1e-12);
        assert!(r.ci95.0 <= r.observed && r.observed <= r.ci95.1);
        assert!((0.0..=1.0).contains(&r.p_value));
        assert_eq!(r.reps, 500);
    }

    #[test]
    fn deterministic_given_seed() {
        let a = cluster_bootstrap_diff(&example(), mean_diff, 300, 42).unwrap();
        let b = cluster_bootstrap_diff(&example(), mean_diff, 300, 42).unwrap();
        let c = cluster_bootstrap_diff(&example(), mean_diff, 300, 43).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn identical_models_give_zero_interval_and_p_one() {
        let data: Vec<Cluster> = (0..4)
            .map(|i| vec![unit(&[(1.0, 1.0), ((i % 2) as f64, (i % 2) as f64)])])
            .collect();
        let r = cluster_bootstrap_diff(&data, mean_diff, 200, 1).unwrap();
        assert_eq!(r.observed, 0.0);
        assert_eq!(r.ci95, (0.0, 0.0));
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn dominant_model_gives_p_zero() {
        let data: Vec<Cluster> = (0..5).map(|_| vec![unit(&[(1.0, 0.0); 3])]).collect();
        let r = cluster_bootstrap_diff(&data, mean_diff, 200, 1).unwrap();
        assert_eq!(r.observed, 1.0);
        assert_eq!(r.ci95, (1.0, 1.0));
        assert_eq!(r.p_value, 0.0);
    }

    #[test]
    fn one_window_per_cluster_reduces_to_ordinary_bootstrap() {
        // Bootstrap SD of the mean of K iid values ≈ population SD / sqrt(K).
        let d: [f64; 12] = [0.0, 1.0, 1.0, -1.0, 0.0, 1.0, 1.0, 0.0, 1.0, -1.0, 1.0, 0.0];
        let data: Vec<Cluster> = d
            .iter()
            .map(|&x| vec![unit(&[(x.max(0.0), (-x).max(0.0))])])
            .collect();
        let k = d.len() as f64;
        let m = d.iter().sum::<f64>() / k;
        let pop_var = d.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / k;
        let want_sd = (pop_var / k).sqrt();
        // Empirical SD via the 2.5/97.5 % percentiles of a near-normal replicate distribution.
        let r = cluster_bootstrap_diff(&data, mean_diff, 20_000, 3).unwrap();
        let sd_from_ci = (r.ci95.1 - r.ci95.0) / (2.0 * 1.959964);
        assert!(
            (sd_from_ci / want_sd - 1.0).abs() < 0.1,
            "{sd_from_ci} vs {want_sd}"
        );
        assert_rel(r.observed, m, 1e-12);
    }

    #[test]
    fn custom_statistic_is_used() {
        let r = cluster_bootstrap_diff(&example(), |w| w.len() as f64, 50, 9).unwrap();
        assert_eq!(r.observed, 15.0);
        assert!(r.ci95.0 >= 1.0);
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let one = vec![example()[0].clone()];
        assert_eq!(
            cluster_bootstrap_diff(&one, mean_diff, 10, 0),
            Err(StatsError::TooFewSamples { needed: 2, got: 1 })
        );
        assert!(matches!(
            cluster_bootstrap_diff(&example(), mean_diff, 0, 0),
            Err(StatsError::InvalidArgument(_))
        ));
        let mut empty_unit = example();
        empty_unit[1].push(Vec::new());
        assert!(matches!(
            cluster_bootstrap_diff(&empty_unit, mean_diff, 10, 0),
            Err(StatsError::InvalidArgument(_))
        ));
        let mut empty_cluster = example();
        empty_cluster.push(Vec::new());
        assert!(matches!(
            cluster_bootstrap_diff(&empty_cluster, mean_diff, 10, 0),
            Err(StatsError::InvalidArgument(_))
        ));
        let mut nan = example();
        nan[0][0][0].1 = f64::NAN;
        assert_eq!(
            cluster_bootstrap_diff(&nan, mean_diff, 10, 0),
            Err(StatsError::NonFinite("clusters"))
        );
        assert_eq!(
            cluster_bootstrap_diff(&example(), |_| f64::NAN, 10, 0),
            Err(StatsError::NonFinite("stat(observed)"))
        );
    }
}
