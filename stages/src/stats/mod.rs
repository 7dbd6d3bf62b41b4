//! Statistics for comparing emotion-recognition models: intervals, paired tests,
//! multiple-comparison adjustment, power, clustered bootstrap and permutation tests.
//!
//! Every function takes plain slices, returns `Result<_, StatsError>` and never
//! panics on user input. Each public item documents its formula and the
//! reference implementation it is tested against (scipy 1.17.1,
//! statsmodels 0.15.0, scikit-learn 1.9.1; numpy 2.4.6). The reference numbers
//! live in the unit tests, each with the Python line that produced it
//! (`reference.py` next to this file regenerates them; Python is never called by the
//! tests).
//!
//! | function | reference |
//! |---|---|
//! | [`summary`] | `scipy.stats.t.interval` |
//! | [`paired_t`] | `scipy.stats.ttest_rel` |
//! | [`corrected_resampled_t`] | Nadeau & Bengio (2003), formula + `scipy.stats.t` |
//! | [`wilcoxon_signed_rank`] | `scipy.stats.wilcoxon` (defaults) |
//! | [`holm`] | `statsmodels ... multipletests(method="holm")` |
//! | [`minimal_detectable_difference`] | statsmodels `TTestPower().solve_power`, `scipy.stats.nct` |
//! | [`cluster_bootstrap_diff`] | two-stage bootstrap (no digit-exact reference) |
//! | [`permutation_test_above_chance`] | Ojala & Garriga (2010) |
//! | [`accuracy`], [`balanced_accuracy`], [`macro_f1`], [`auroc`] | `sklearn.metrics` |
#![warn(missing_docs)]

mod bootstrap;
mod classification;
mod describe;
mod dist;
mod error;
mod multitest;
mod power;
mod ttest;
mod wilcoxon;

pub(crate) use bootstrap::{cluster_bootstrap_diff, mean_diff, BootstrapResult, Cluster};
pub(crate) use classification::{
    accuracy, auroc, balanced_accuracy, constant_high_f1, macro_f1, permutation_test_above_chance,
};
pub(crate) use describe::summary;
pub(crate) use error::StatsError;
pub(crate) use multitest::holm;
pub(crate) use power::{minimal_detectable_difference, SeCorrection};
pub(crate) use ttest::corrected_resampled_t;
#[cfg(test)]
pub(crate) use ttest::paired_t;
pub(crate) use wilcoxon::wilcoxon_signed_rank;

/// Test helper: assert `|got − want| ≤ tol·max(|want|, tiny)`.
#[cfg(test)]
pub(crate) fn assert_rel(got: f64, want: f64, tol: f64) {
    let scale = want.abs().max(1e-300);
    assert!(
        (got - want).abs() <= tol * scale,
        "got {got:e}, want {want:e}, rel err {:e} > {tol:e}",
        (got - want).abs() / scale
    );
}
