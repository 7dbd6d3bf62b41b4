//! The statistics `evaluate` reports (all in percentage points):
//!
//! - per model and target, over its cells (fold × repeat): mean, sample sd and the 95 %
//!   t-interval of accuracy, F1, balanced accuracy, macro-F1 and AUROC, next to the
//!   best constant classifier of each test set (`max(share of low, share of high)`,
//!   an upper bound on any majority-class predictor) and the F1 of always predicting
//!   high; a label-permutation test of the pooled balanced accuracy ("above chance"
//!   without assuming 50 %);
//! - per contrast `A − B` and target, paired over the cells both have: the mean
//!   accuracy difference with the corrected resampled t-test (Nadeau & Bengio 2003:
//!   the variance is inflated by `1/J + n_test/n_train` because resampled training
//!   sets overlap) and its interval, the Wilcoxon signed-rank test, a window-level
//!   bootstrap that resamples subjects and then trials within subjects (windows of
//!   one trial are not independent), Holm-adjusted p-values over every contrast and
//!   target of the run, the minimal detectable difference at 80 % power, and a
//!   plain-language verdict.
//!
//! A contrast `M − constant` compares model `M` with its test sets' best constant
//! classifier.
//!
//! With a `subject` axis (per-subject models, the subject-dependent protocol) the unit
//! is the subject: each subject's cells are averaged first, intervals and tests run
//! over subjects (independent units, so the plain paired t-test: no resampling
//! correction).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::stage::StageError;
use crate::stats::{self, SeCorrection};
use crate::train::metrics::predict as predict_high;
use crate::train::predictions::Prediction;

/// α of every verdict.
pub(crate) const ALPHA: f64 = 0.05;
/// Power of the minimal detectable difference.
pub(crate) const POWER: f64 = 0.8;
/// Resamples of the window-level bootstrap and of the permutation test.
pub(crate) const RESAMPLES: usize = 2000;
/// The pseudo-model of a contrast against the best constant classifier.
pub(crate) const CONSTANT: &str = "constant";

/// One model's test predictions in one cell.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// Row label: the stage, `stage/teacher` for an updated teacher.
    pub model: String,
    pub target: String,
    pub fold: Option<i64>,
    pub repeat: i64,
    /// The `subject` axis of per-subject models.
    pub subject: Option<i64>,
    pub preds: Vec<Prediction>,
    /// [`CellMetrics::of`] the predictions, computed once.
    pub metrics: CellMetrics,
}

impl Run {
    pub(crate) fn new(
        model: String,
        target: String,
        fold: Option<i64>,
        repeat: i64,
        subject: Option<i64>,
        preds: Vec<Prediction>,
    ) -> Run {
        let metrics = CellMetrics::of(&preds);
        Run {
            model,
            target,
            fold,
            repeat,
            subject,
            preds,
            metrics,
        }
    }
}

/// Per-cell metrics of a [`Run`], in percent (NaN where undefined, e.g. AUROC with
/// one class in the test set).
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct CellMetrics {
    pub accuracy: f64,
    pub f1: f64,
    pub balanced_accuracy: f64,
    pub macro_f1: f64,
    pub auroc: f64,
    /// Accuracy of the best constant classifier on this test set.
    pub constant_accuracy: f64,
    /// F1 (high = positive) of always predicting high.
    pub constant_high_f1: f64,
    /// Trial-level accuracy: each trial's windows vote (majority of predicted classes,
    /// a tie broken by the mean P(high)) against the trial's label.
    pub trial_accuracy: f64,
}

fn pct(r: Result<f64, stats::StatsError>) -> f64 {
    r.map_or(f64::NAN, |v| 100.0 * v)
}

impl CellMetrics {
    pub(crate) fn of(preds: &[Prediction]) -> CellMetrics {
        let y: Vec<u8> = preds.iter().map(|p| p.y).collect();
        let yhat: Vec<u8> = preds.iter().map(|p| predict_high(p.p_high)).collect();
        let scores: Vec<f64> = preds.iter().map(|p| p.p_high as f64).collect();
        let high = y.iter().filter(|&&v| v == 1).count() as f64 / y.len().max(1) as f64;
        CellMetrics {
            accuracy: pct(stats::accuracy(&y, &yhat)),
            f1: f1_high(&y, &yhat),
            balanced_accuracy: pct(stats::balanced_accuracy(&y, &yhat)),
            macro_f1: pct(stats::macro_f1(&y, &yhat)),
            auroc: pct(stats::auroc(&y, &scores)),
            constant_accuracy: 100.0 * high.max(1.0 - high),
            constant_high_f1: pct(stats::constant_high_f1(&y)),
            trial_accuracy: trial_accuracy(preds),
        }
    }
}

/// Accuracy (%) of a majority vote over each trial's windows.
fn trial_accuracy(preds: &[Prediction]) -> f64 {
    // (subject, trial) → (label, high votes, windows, Σ P(high))
    let mut trials: BTreeMap<(u16, u16), (u8, usize, usize, f64)> = BTreeMap::new();
    for p in preds {
        let e = trials
            .entry((p.id.subject, p.id.trial))
            .or_insert((p.y, 0, 0, 0.0));
        e.1 += usize::from(predict_high(p.p_high));
        e.2 += 1;
        e.3 += f64::from(p.p_high);
    }
    if trials.is_empty() {
        return f64::NAN;
    }
    let correct = trials
        .values()
        .filter(|(y, high, n, sum)| {
            let vote = match (2 * high).cmp(n) {
                std::cmp::Ordering::Greater => 1,
                std::cmp::Ordering::Less => 0,
                std::cmp::Ordering::Equal => u8::from(sum / *n as f64 > 0.5),
            };
            vote == *y
        })
        .count();
    100.0 * correct as f64 / trials.len() as f64
}

fn f1_high(y: &[u8], yhat: &[u8]) -> f64 {
    crate::train::metrics::Confusion::from_pairs(y, yhat).f1_high()
}

/// Mean, sample sd and 95 % t-interval of one metric over cells.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Interval {
    pub mean: f64,
    pub sd: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    fn of(xs: &[f64]) -> Interval {
        let xs: Vec<f64> = xs.iter().copied().filter(|v| v.is_finite()).collect();
        match stats::summary(&xs) {
            Ok(s) => Interval {
                mean: s.mean,
                sd: s.sd,
                lo: s.ci95.0,
                hi: s.ci95.1,
            },
            Err(_) => Interval {
                mean: f64::NAN,
                sd: f64::NAN,
                lo: f64::NAN,
                hi: f64::NAN,
            },
        }
    }
}

/// A model on one target over its cells.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ModelSummary {
    pub model: String,
    pub target: String,
    /// Units the intervals are over: cells (fold × repeat), or subjects.
    pub cells: usize,
    /// `cell` or `subject`.
    pub unit: &'static str,
    /// Test windows over all cells.
    pub windows: usize,
    pub accuracy: Interval,
    pub f1: Interval,
    pub balanced_accuracy: Interval,
    pub macro_f1: Interval,
    pub auroc: Interval,
    pub constant_accuracy: Interval,
    pub constant_high_f1: Interval,
    pub trial_accuracy: Interval,
    /// Label-permutation p of the pooled balanced accuracy (H₀: at chance).
    pub permutation_p: f64,
}

/// One paired contrast on one target.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Contrast {
    pub a: String,
    pub b: String,
    pub target: String,
    /// Paired units (cells, or subjects).
    pub cells: usize,
    /// Mean accuracy difference `a − b` over cells (points) and its corrected 95 % interval.
    pub diff: f64,
    pub lo: f64,
    pub hi: f64,
    /// Corrected resampled t-test.
    pub t: f64,
    pub p: f64,
    /// Holm-adjusted `p` over every contrast of the run.
    pub p_holm: f64,
    /// Wilcoxon signed-rank p over the cells.
    pub p_wilcoxon: f64,
    /// Window-level bootstrap (subjects, then trials within subjects): 95 % interval
    /// and p of the pooled accuracy difference; NaN when not applicable.
    pub boot_lo: f64,
    pub boot_hi: f64,
    pub p_boot: f64,
    /// Smallest true difference this design detects with 80 % power at α = 0.05.
    pub mdd: f64,
    pub verdict: String,
}

/// `"A - B"` → (A, B).
pub(crate) fn parse_contrast(s: &str) -> Result<(String, String), StageError> {
    let mut parts = s.split(" - ");
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), None) if !a.trim().is_empty() && !b.trim().is_empty() => {
            Ok((a.trim().to_string(), b.trim().to_string()))
        }
        _ => Err(StageError::Param(format!(
            "contrast {s:?} is not of the form \"A - B\" (model names separated by \" - \")"
        ))),
    }
}

type CellKey = (Option<i64>, Option<i64>, i64);

/// Runs grouped by (model, target), then cell.
fn index(runs: &[Run]) -> BTreeMap<(String, String), BTreeMap<CellKey, &Run>> {
    let mut m: BTreeMap<(String, String), BTreeMap<CellKey, &Run>> = BTreeMap::new();
    for r in runs {
        m.entry((r.model.clone(), r.target.clone()))
            .or_default()
            .insert((r.subject, r.fold, r.repeat), r);
    }
    m
}

/// Per (model, target) summaries, models in first-seen order.
pub(crate) fn summarise(runs: &[Run], seed: u64) -> Vec<ModelSummary> {
    let idx = index(runs);
    let mut order: Vec<(String, String)> = Vec::new();
    for r in runs {
        let k = (r.model.clone(), r.target.clone());
        if !order.contains(&k) {
            order.push(k);
        }
    }
    order
        .into_iter()
        .map(|k| {
            let cells = &idx[&k];
            let m: Vec<(Option<i64>, CellMetrics)> =
                cells.iter().map(|(key, r)| (key.0, r.metrics)).collect();
            let per_subject = m.iter().any(|(s, _)| s.is_some());
            let col = |f: fn(&CellMetrics) -> f64| {
                let values: Vec<(Option<i64>, f64)> = m.iter().map(|(s, c)| (*s, f(c))).collect();
                Interval::of(&unit_means(&values))
            };
            let pooled: Vec<&Prediction> = cells.values().flat_map(|r| &r.preds).collect();
            let y: Vec<u8> = pooled.iter().map(|p| p.y).collect();
            let yhat: Vec<u8> = pooled.iter().map(|p| predict_high(p.p_high)).collect();
            let permutation_p = stats::permutation_test_above_chance(
                &y,
                &yhat,
                stats::balanced_accuracy,
                RESAMPLES,
                seed,
            )
            .map_or(f64::NAN, |r| r.p_value);
            ModelSummary {
                cells: if per_subject {
                    m.iter().map(|(s, _)| *s).collect::<BTreeSet<_>>().len()
                } else {
                    cells.len()
                },
                unit: if per_subject { "subject" } else { "cell" },
                windows: pooled.len(),
                accuracy: col(|c| c.accuracy),
                f1: col(|c| c.f1),
                balanced_accuracy: col(|c| c.balanced_accuracy),
                macro_f1: col(|c| c.macro_f1),
                auroc: col(|c| c.auroc),
                constant_accuracy: col(|c| c.constant_accuracy),
                constant_high_f1: col(|c| c.constant_high_f1),
                trial_accuracy: col(|c| c.trial_accuracy),
                permutation_p,
                model: k.0,
                target: k.1,
            }
        })
        .collect()
}

/// The values per unit: as given without subjects, else each subject's mean.
fn unit_means(values: &[(Option<i64>, f64)]) -> Vec<f64> {
    if values.iter().all(|(s, _)| s.is_none()) {
        return values.iter().map(|(_, v)| *v).collect();
    }
    let mut by: BTreeMap<Option<i64>, (f64, usize)> = BTreeMap::new();
    for (s, v) in values.iter().filter(|(_, v)| v.is_finite()) {
        let e = by.entry(*s).or_insert((0.0, 0));
        e.0 += v;
        e.1 += 1;
    }
    by.values().map(|(sum, n)| sum / *n as f64).collect()
}

/// Correctness (1/0) of every window of a run, by window.
fn correct(r: &Run) -> BTreeMap<(u16, u16, u16), f64> {
    r.preds
        .iter()
        .map(|p| {
            let ok = predict_high(p.p_high) == p.y;
            (
                (p.id.subject, p.id.trial, p.id.window),
                if ok { 1.0 } else { 0.0 },
            )
        })
        .collect()
}

/// Window-level bootstrap of the pooled accuracy difference of paired cells:
/// clusters = subjects, units = (cell, trial), windows paired by id.
fn window_bootstrap(pairs: &[(&Run, Option<&Run>)], seed: u64) -> Option<stats::BootstrapResult> {
    // subject → (pair, trial) → the trial's windows as (a correct, b correct)
    type Trials = BTreeMap<(usize, u16), Vec<(f64, f64)>>;
    let mut by_subject: BTreeMap<u16, Trials> = BTreeMap::new();
    for (i, (a, b)) in pairs.iter().enumerate() {
        let ca = correct(a);
        let cb = b.map(correct);
        let constant_high = {
            let high = a.preds.iter().filter(|p| p.y == 1).count() * 2 >= a.preds.len();
            u8::from(high)
        };
        for p in &a.preds {
            let key = (p.id.subject, p.id.trial, p.id.window);
            let vb = match &cb {
                Some(cb) => *cb.get(&key)?,
                None => f64::from(u8::from(p.y == constant_high)),
            };
            by_subject
                .entry(p.id.subject)
                .or_default()
                .entry((i, p.id.trial))
                .or_default()
                .push((ca[&key], vb));
        }
    }
    let clusters: Vec<stats::Cluster> = by_subject
        .into_values()
        .map(|units| units.into_values().collect())
        .collect();
    stats::cluster_bootstrap_diff(&clusters, stats::mean_diff, RESAMPLES, seed)
        .ok()
        .map(|r| stats::BootstrapResult {
            observed: 100.0 * r.observed,
            ci95: (100.0 * r.ci95.0, 100.0 * r.ci95.1),
            ..r
        })
}

/// Every contrast on every target both models have, Holm-adjusted together.
/// `test_train_ratio`: `n_test / n_train` of one resample (Nadeau–Bengio).
pub(crate) fn contrasts(
    runs: &[Run],
    wanted: &[(String, String)],
    test_train_ratio: f64,
    seed: u64,
) -> Result<Vec<Contrast>, StageError> {
    let idx = index(runs);
    let models: BTreeSet<&str> = runs.iter().map(|r| r.model.as_str()).collect();
    let targets: BTreeSet<&str> = runs.iter().map(|r| r.target.as_str()).collect();
    for (a, b) in wanted {
        for m in [a, b] {
            if m != CONSTANT && !models.contains(m.as_str()) {
                return Err(StageError::Param(format!(
                    "contrast {a} - {b}: no model {m:?} among the inputs ({}; or `{CONSTANT}`)",
                    models.iter().copied().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        if a == CONSTANT {
            return Err(StageError::Param(format!(
                "contrast {a} - {b}: put `{CONSTANT}` second (model - {CONSTANT})"
            )));
        }
    }
    let mut out = Vec::new();
    for (a, b) in wanted {
        for &t in &targets {
            let Some(ra) = idx.get(&(a.clone(), t.to_string())) else {
                continue;
            };
            let rb = idx.get(&(b.clone(), t.to_string()));
            let mut pairs: Vec<(&Run, Option<&Run>)> = Vec::new();
            let mut diffs = Vec::new();
            for (cell, x) in ra {
                let (y, vb) = if b == CONSTANT {
                    (None, x.metrics.constant_accuracy)
                } else {
                    match rb.and_then(|m| m.get(cell)) {
                        Some(y) => (Some(*y), y.metrics.accuracy),
                        None => continue,
                    }
                };
                diffs.push((cell.0, x.metrics.accuracy - vb));
                pairs.push((x, y));
            }
            if diffs.is_empty() {
                continue;
            }
            // Subjects are independent units: no resampling correction.
            let per_subject = diffs.iter().any(|(s, _)| s.is_some());
            let ratio = if per_subject { 0.0 } else { test_train_ratio };
            out.push(contrast(a, b, t, &unit_means(&diffs), &pairs, ratio, seed));
        }
    }
    let adjusted = stats::holm(
        &out.iter()
            .map(|c| if c.p.is_nan() { 1.0 } else { c.p })
            .collect::<Vec<_>>(),
    )
    .unwrap_or_else(|_| vec![f64::NAN; out.len()]);
    for (c, p) in out.iter_mut().zip(adjusted) {
        c.p_holm = p;
        c.verdict = verdict(c);
    }
    Ok(out)
}

fn contrast(
    a: &str,
    b: &str,
    target: &str,
    diffs: &[f64],
    pairs: &[(&Run, Option<&Run>)],
    ratio: f64,
    seed: u64,
) -> Contrast {
    let n = diffs.len();
    let mean = diffs.iter().sum::<f64>() / n as f64;
    let t = stats::corrected_resampled_t(diffs, ratio).ok();
    let sd = stats::summary(diffs).map_or(f64::NAN, |s| s.sd);
    let mdd = stats::minimal_detectable_difference(
        if sd.is_finite() { sd } else { 0.0 },
        n,
        ALPHA,
        POWER,
        SeCorrection::NadeauBengio {
            test_train_ratio: ratio,
        },
    )
    .unwrap_or(f64::NAN);
    let boot = window_bootstrap(pairs, seed);
    Contrast {
        a: a.into(),
        b: b.into(),
        target: target.into(),
        cells: n,
        diff: mean,
        lo: t.as_ref().map_or(f64::NAN, |t| t.ci95.0),
        hi: t.as_ref().map_or(f64::NAN, |t| t.ci95.1),
        t: t.as_ref().map_or(f64::NAN, |t| t.t),
        p: t.as_ref().map_or(f64::NAN, |t| t.p_value),
        p_holm: f64::NAN,
        p_wilcoxon: stats::wilcoxon_signed_rank(diffs).map_or(f64::NAN, |w| w.p_value),
        boot_lo: boot.as_ref().map_or(f64::NAN, |b| b.ci95.0),
        boot_hi: boot.as_ref().map_or(f64::NAN, |b| b.ci95.1),
        p_boot: boot.as_ref().map_or(f64::NAN, |b| b.p_value),
        mdd,
        verdict: String::new(),
    }
}

fn verdict(c: &Contrast) -> String {
    if c.t.is_nan() && c.cells >= 2 && c.p.is_nan() && c.mdd == 0.0 {
        // every cell gave the same difference: no variance to test against
        return if c.diff == 0.0 {
            "no difference: equal accuracy in every cell".into()
        } else {
            format!(
                "the same difference ({:.2} points) in every cell; the test is undefined",
                c.diff
            )
        };
    }
    if c.p_holm.is_finite() && c.p_holm < ALPHA {
        let (hi, lo) = if c.diff > 0.0 {
            (&c.a, &c.b)
        } else {
            (&c.b, &c.a)
        };
        format!(
            "supported at α = {ALPHA} (Holm): {hi} > {lo} by {:.2} points",
            c.diff.abs()
        )
    } else if c.mdd.is_finite() {
        format!(
            "not resolved: the minimal detectable difference at this size is {:.2} points",
            c.mdd
        )
    } else {
        "not resolved: too few paired cells to test".into()
    }
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.2}")
    }
}

fn pval(p: f64) -> String {
    if p.is_nan() {
        "-".into()
    } else if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

fn ci(i: &Interval) -> String {
    format!("{} [{}, {}]", num(i.mean), num(i.lo), num(i.hi))
}

/// The statistics section of the run report (Markdown).
pub(crate) fn markdown(summary: &[ModelSummary], contrasts: &[Contrast], ratio: f64) -> String {
    let mut s = String::new();
    let cells = summary.iter().map(|m| m.cells).max().unwrap_or(0);
    let unit = if summary.iter().any(|m| m.unit == "subject") {
        format!("one subject, the mean of that subject's per-subject models over folds and repeats ({cells} subjects per model)")
    } else {
        format!("one cell = one model trained and tested on one fold of one repeat ({cells} cells per model)")
    };
    let _ = writeln!(
        s,
        "Unit of every number: {unit}; \
         window-level metrics (each test window counts once) except `trial acc.` (a majority vote over each trial's windows), in %. \
         Mean [95 % t-interval over units]; \
         `constant` is the best constant classifier of each test set (chance is not assumed to be 50 %); \
         `perm. p` is a label-permutation test of the pooled balanced accuracy ({RESAMPLES} permutations).\n"
    );
    let _ = writeln!(
        s,
        "| model | target | accuracy | F1 | balanced acc. | macro-F1 | AUROC | trial acc. | constant acc. | always-high F1 | perm. p |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for m in summary {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.model,
            m.target,
            ci(&m.accuracy),
            ci(&m.f1),
            ci(&m.balanced_accuracy),
            num(m.macro_f1.mean),
            num(m.auroc.mean),
            num(m.trial_accuracy.mean),
            num(m.constant_accuracy.mean),
            num(m.constant_high_f1.mean),
            pval(m.permutation_p)
        );
    }
    if contrasts.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nPaired contrasts of accuracy over the cells both models share (same splits and seeds). \
         `diff` [95 % interval] and `p`: corrected resampled t-test (Nadeau & Bengio; n_test/n_train = {ratio:.3}); \
         `Holm p` adjusts over every contrast below; `Wilcoxon p` over cells; `window bootstrap` resamples subjects, \
         then trials within subjects ({RESAMPLES} resamples); `MDD`: the smallest true difference detectable with \
         {:.0} % power at α = {ALPHA}.\n",
        POWER * 100.0
    );
    let _ = writeln!(
        s,
        "| contrast | target | cells | diff [95 %] | p | Holm p | Wilcoxon p | window bootstrap [95 %], p | MDD | verdict |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for c in contrasts {
        let _ = writeln!(
            s,
            "| {} − {} | {} | {} | {} [{}, {}] | {} | {} | {} | [{}, {}], {} | {} | {} |",
            c.a,
            c.b,
            c.target,
            c.cells,
            num(c.diff),
            num(c.lo),
            num(c.hi),
            pval(c.p),
            pval(c.p_holm),
            pval(c.p_wilcoxon),
            num(c.boot_lo),
            num(c.boot_hi),
            pval(c.p_boot),
            num(c.mdd),
            c.verdict
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::dataset::WindowId;

    /// A run whose window `i` is correct iff `correct[i]`; labels alternate (balanced).
    fn run(model: &str, fold: i64, repeat: i64, correct: &[bool]) -> Run {
        let preds = correct
            .iter()
            .enumerate()
            .map(|(i, &ok)| {
                let y = (i % 2) as u8;
                let p_high = if (y == 1) == ok { 0.9 } else { 0.1 };
                Prediction {
                    id: WindowId {
                        subject: (i % 4) as u16,
                        trial: (i / 4) as u16,
                        window: 0,
                    },
                    y,
                    p_high,
                }
            })
            .collect();
        Run::new(
            model.into(),
            "valence".into(),
            Some(fold),
            repeat,
            None,
            preds,
        )
    }

    fn first_k(n: usize, k: usize) -> Vec<bool> {
        (0..n).map(|i| i < k).collect()
    }

    #[test]
    fn contrasts_pair_cells_and_compute_the_corrected_test() {
        // a is right on 30/40 windows in every cell, b on 20, 22, 18, 21 of 40
        let mut runs = Vec::new();
        for (cell, kb) in [20, 22, 18, 21].into_iter().enumerate() {
            let (fold, repeat) = ((cell % 2) as i64, (cell / 2) as i64);
            runs.push(run("a", fold, repeat, &first_k(40, 30)));
            runs.push(run("b", fold, repeat, &first_k(40, kb)));
        }
        let wanted = vec![("a".to_string(), "b".to_string())];
        let c = &contrasts(&runs, &wanted, 1.0, 1).unwrap()[0];
        assert_eq!(c.cells, 4);
        // diffs (points): 25, 20, 30, 22.5
        let d = [25.0, 20.0, 30.0, 22.5];
        let want = stats::corrected_resampled_t(&d, 1.0).unwrap();
        assert!((c.diff - 24.375).abs() < 1e-9);
        assert!((c.p - want.p_value).abs() < 1e-12);
        assert!((c.lo - want.ci95.0).abs() < 1e-9 && (c.hi - want.ci95.1).abs() < 1e-9);
        // one contrast: Holm changes nothing
        assert!((c.p_holm - c.p).abs() < 1e-12);
        assert!(c.p < 0.05, "{c:?}");
        assert!(
            c.verdict
                .starts_with("supported at α = 0.05 (Holm): a > b by 24.38"),
            "{}",
            c.verdict
        );
        // the window bootstrap sees the same pooled difference
        assert!(c.boot_lo < 24.375 && 24.375 < c.boot_hi, "{c:?}");
    }

    #[test]
    fn holm_spans_every_contrast_and_unresolved_ones_give_the_mdd() {
        let mut runs = Vec::new();
        for (cell, (ka, kb, kc)) in [(21, 20, 36), (19, 20, 35), (22, 20, 37), (20, 21, 36)]
            .into_iter()
            .enumerate()
        {
            let (fold, repeat) = ((cell % 2) as i64, (cell / 2) as i64);
            runs.push(run("a", fold, repeat, &first_k(40, ka)));
            runs.push(run("b", fold, repeat, &first_k(40, kb)));
            runs.push(run("c", fold, repeat, &first_k(40, kc)));
        }
        let wanted = vec![
            ("a".to_string(), "b".to_string()),
            ("c".to_string(), CONSTANT.to_string()),
        ];
        let cs = contrasts(&runs, &wanted, 0.5, 1).unwrap();
        assert_eq!(cs.len(), 2);
        let adjusted = stats::holm(&[cs[0].p, cs[1].p]).unwrap();
        assert_eq!([cs[0].p_holm, cs[1].p_holm], [adjusted[0], adjusted[1]]);
        assert!(
            cs[0]
                .verdict
                .starts_with("not resolved: the minimal detectable difference at this size is"),
            "{}",
            cs[0].verdict
        );
        assert!(cs[0].mdd > cs[0].diff.abs());
        // c: 90, 87.5, 92.5, 90 % on balanced test sets, where the best constant
        // classifier gets 50 %
        assert!((cs[1].diff - 40.0).abs() < 1e-9);
    }

    #[test]
    fn identical_arms_and_bad_contrasts() {
        let runs: Vec<Run> = (0..3)
            .flat_map(|f| {
                [
                    run("a", f, 0, &first_k(20, 12)),
                    run("b", f, 0, &first_k(20, 12)),
                ]
            })
            .collect();
        let c = &contrasts(&runs, &[("a".into(), "b".into())], 0.5, 1).unwrap()[0];
        assert_eq!(c.verdict, "no difference: equal accuracy in every cell");
        let e = contrasts(&runs, &[("a".into(), "x".into())], 0.5, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no model \"x\"") && e.contains("a, b"), "{e}");
        assert!(contrasts(&runs, &[(CONSTANT.into(), "a".into())], 0.5, 1).is_err());
        assert!(parse_contrast("a-b").is_err());
        assert_eq!(
            parse_contrast(" v3 - v2 ").unwrap(),
            ("v3".into(), "v2".into())
        );
    }

    #[test]
    fn per_subject_models_are_averaged_per_subject_and_tested_over_subjects() {
        // 4 subjects × 2 folds; a beats b by 10, 2.5, 15, 10 points on subject means
        let mut runs = Vec::new();
        for (subject, (ka, kb)) in [
            ((24, 26), (20, 22)),
            ((22, 22), (20, 22)),
            ((26, 26), (20, 20)),
            ((24, 24), (20, 20)),
        ]
        .into_iter()
        .enumerate()
        {
            for (fold, (a, b)) in [(ka.0, kb.0), (ka.1, kb.1)].into_iter().enumerate() {
                let mut ra = run("a", fold as i64, 0, &first_k(40, a));
                let mut rb = run("b", fold as i64, 0, &first_k(40, b));
                ra.subject = Some(subject as i64 + 1);
                rb.subject = Some(subject as i64 + 1);
                runs.extend([ra, rb]);
            }
        }
        let s = &summarise(&runs, 1)[0];
        assert_eq!((s.unit, s.cells), ("subject", 4));
        // subject means of a: 62.5, 55, 65, 60
        assert!((s.accuracy.mean - 60.625).abs() < 1e-9);
        let c = &contrasts(&runs, &[("a".into(), "b".into())], 0.5, 1).unwrap()[0];
        assert_eq!(c.cells, 4);
        let want = stats::paired_t(&[62.5, 55.0, 65.0, 60.0], &[52.5, 52.5, 50.0, 50.0]).unwrap();
        assert!(
            (c.p - want.p_value).abs() < 1e-12,
            "{} vs {}",
            c.p,
            want.p_value
        );
    }

    #[test]
    fn trials_vote_with_their_windows() {
        let w = |trial: u16, window: u16, y: u8, p_high: f32| Prediction {
            id: WindowId {
                subject: 1,
                trial,
                window,
            },
            y,
            p_high,
        };
        let preds = [
            // trial 1 (high): 2 of 3 windows say high → right
            w(1, 0, 1, 0.9),
            w(1, 1, 1, 0.8),
            w(1, 2, 1, 0.2),
            // trial 2 (low): a 1–1 tie, mean P(high) 0.55 → high → wrong
            w(2, 0, 0, 0.9),
            w(2, 1, 0, 0.2),
        ];
        let m = CellMetrics::of(&preds);
        assert!((m.trial_accuracy - 50.0).abs() < 1e-12);
        assert!((m.accuracy - 60.0).abs() < 1e-9, "window level: 3 of 5");
    }

    #[test]
    fn summaries_use_the_sample_sd_and_the_constant_baseline() {
        let runs = vec![
            run("a", 0, 0, &first_k(10, 6)),
            run("a", 1, 0, &first_k(10, 8)),
        ];
        let s = &summarise(&runs, 3)[0];
        assert_eq!(s.cells, 2);
        assert!((s.accuracy.mean - 70.0).abs() < 1e-9);
        assert!((s.accuracy.sd - 20.0 / 2f64.sqrt()).abs() < 1e-9);
        assert!((s.constant_accuracy.mean - 50.0).abs() < 1e-9);
        assert!(s.permutation_p > 0.0 && s.permutation_p <= 1.0);
    }
}
