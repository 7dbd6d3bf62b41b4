//! The `evaluate` stage: gathers every upstream instance's test predictions,
//! recomputes accuracy, F1 (positive = high), macro-F1, balanced accuracy, AUROC and
//! the confusion matrix per instance (one cell: fold × repeat), aggregates mean,
//! sample sd and 95 % t-interval over cells per (stage, model, target), and runs
//! the paired contrasts it is given ([`crate::train::comparison`]). Writes
//! `metrics.json` (with `schema_version`), `summary.csv` and `report.json` (its
//! tables, plots and statistics section for the run report:
//! [`crate::train::evaluate_report`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::params::ParamSchema;
use crate::report::REPORT_JSON;
use crate::stage::{Context, Input, IoContext, Outcome, Stage, StageError};
use crate::train::comparison::{self, Contrast, ModelSummary, Run};
use crate::train::fit::read_curve;
use crate::train::metrics::{Confusion, MeanStd};
use crate::train::predictions::{
    confusion, read_predictions, Prediction, PREDICTIONS, TEACHER_PREDICTIONS,
};
use crate::train::training_stage::LEARNING_CURVE;

pub(crate) const METRICS_JSON: &str = "metrics.json";
pub(crate) const SUMMARY_CSV: &str = "summary.csv";
/// Version of the `metrics.json` layout written by `evaluate`.
pub(crate) const SCHEMA_VERSION: u32 = 2;

pub(crate) struct Evaluate;

/// The scores of one upstream instance (one model on one fold and target).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct InstanceScore {
    pub stage: String,
    /// "student" for `predictions.csv`, "teacher" for `teacher_predictions.csv`.
    pub model: String,
    pub variation: String,
    pub fold: Option<i64>,
    /// The `repeat` axis of the cell (0 without one).
    pub repeat: i64,
    /// The `subject` axis of per-subject models.
    pub subject: Option<i64>,
    pub target: String,
    pub accuracy: f64,
    pub f1: f64,
    pub macro_f1: f64,
    pub balanced_accuracy: f64,
    /// NaN when the test set has one class.
    pub auroc: f64,
    /// Accuracy of the best constant classifier on this test set.
    pub constant_accuracy: f64,
    pub n: u64,
    /// `[[tn, fp], [fn, tp]]`, rows = true class (low, high).
    pub confusion: [[u64; 2]; 2],
}

/// Mean ± sample std over the cells (fold × repeat) of one group.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GroupScore {
    pub stage: String,
    pub model: String,
    pub variation: String,
    pub target: String,
    /// Cells (fold × repeat).
    pub folds: usize,
    pub accuracy: MeanStd,
    pub f1: MeanStd,
    pub macro_f1: MeanStd,
}

#[derive(Debug, Clone, Serialize)]
struct MetricsFile<'a> {
    schema_version: u32,
    std: &'static str,
    instances: &'a [InstanceScore],
    summary: &'a [GroupScore],
    /// Per model and target: intervals, baselines, permutation test.
    models: &'a [ModelSummary],
    /// The paired contrasts asked for.
    contrasts: &'a [Contrast],
    /// Dataset, generator and protocol of the evaluated models' data.
    data: &'a DataProvenance,
    test_train_ratio: f64,
}

crate::stage_params! {
    /// What `evaluate` takes.
    pub(crate) struct EvaluateParams {
        /// paired accuracy contrasts "A - B" between upstream models (a stage name, `stage/teacher` for an updated teacher, or `constant` as B: the best constant classifier)
        contrasts: Vec<String> = Vec::new();
        /// n_test / n_train of one resample for the corrected t-test (0: 1/(k-1) from the k folds seen)
        test_train_ratio: f64 = 0.0;
    }
}

impl Stage for Evaluate {
    fn name(&self) -> &'static str {
        "evaluate"
    }
    fn version(&self) -> u32 {
        3
    }
    fn doc(&self) -> &'static str {
        "accuracy, F1, balanced accuracy, macro-F1, AUROC per instance; mean, sd, 95 % interval over cells; paired contrasts with corrected t, Wilcoxon, window bootstrap, Holm (fan-in)"
    }
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<EvaluateParams>()
    }
    fn consumes(&self) -> Vec<&'static str> {
        vec![PREDICTIONS, TEACHER_PREDICTIONS, LEARNING_CURVE]
    }
    fn produces(&self) -> Vec<&'static str> {
        vec![METRICS_JSON, SUMMARY_CSV, REPORT_JSON]
    }
    fn resources(&self) -> crate::Resources {
        crate::Resources::light()
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        let p: EvaluateParams = ctx.params()?;
        let wanted = p
            .contrasts
            .iter()
            .map(|c| comparison::parse_contrast(c))
            .collect::<Result<Vec<_>, _>>()?;
        let mut instances = Vec::new();
        let mut runs = Vec::new();
        let mut curves = Vec::new();
        let mut unread_curves = Vec::new();
        let mut data = DataProvenance::default();
        ctx.progress.start("evaluate", ctx.inputs.len() as u64);
        for (i, input) in ctx.inputs.iter().enumerate() {
            ctx.check_cancelled()?;
            data.add(input)?;
            let curve = Some(input.dir.join(LEARNING_CURVE)).filter(|c| c.exists());
            let scored: Vec<_> = [(PREDICTIONS, "student"), (TEACHER_PREDICTIONS, "teacher")]
                .into_iter()
                .map(|(file, model)| (input.dir.join(file), model))
                .filter(|(path, _)| path.exists())
                .collect();
            if curve.is_none() && scored.is_empty() {
                ctx.progress.update(i as u64 + 1, &input.stage);
                continue;
            }
            let (fold, target) = fold_and_target(input)?;
            if let Some(curve) = curve {
                // a plot-only input: one that cannot be read is named, not fatal
                match read_curve(&curve) {
                    Ok(points) => curves.push(Curve::of(input, &ctx.cell, &target, points)),
                    Err(e) => unread_curves.push(e.to_string()),
                }
            }
            for (path, model) in scored {
                let (score, run) = score_instance(input, &path, model, fold, &target)?;
                instances.push(score);
                runs.push(run);
            }
            ctx.progress.update(i as u64 + 1, &input.stage);
        }
        if instances.is_empty() {
            return Err(StageError::MissingInput {
                file: PREDICTIONS.into(),
                upstream: if ctx.inputs.is_empty() {
                    "none".into()
                } else {
                    ctx.inputs
                        .iter()
                        .map(|i| i.stage.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
        let summary = summarise(&instances);
        let ratio = match p.test_train_ratio {
            r if r > 0.0 => r,
            _ => {
                let k = instances
                    .iter()
                    .filter_map(|i| i.fold)
                    .collect::<BTreeSet<_>>()
                    .len();
                if k > 1 {
                    1.0 / (k - 1) as f64
                } else {
                    0.0
                }
            }
        };
        let models = comparison::summarise(&runs, ctx.seed);
        let contrasts = comparison::contrasts(&runs, &wanted, ratio, ctx.seed)?;
        let path = ctx.out_dir.join(METRICS_JSON);
        let file = MetricsFile {
            schema_version: SCHEMA_VERSION,
            std: "sample (ddof = 1) over cells (fold x repeat)",
            instances: &instances,
            summary: &summary,
            models: &models,
            contrasts: &contrasts,
            data: &data,
            test_train_ratio: ratio,
        };
        let text = serde_json::to_string_pretty(&file).expect("metrics serialise");
        std::fs::write(&path, text).at(&path)?;
        write_summary_csv(&ctx.out_dir.join(SUMMARY_CSV), &summary)?;
        let mut statistics = data.markdown() + &comparison::markdown(&models, &contrasts, ratio);
        for why in &unread_curves {
            let _ = write!(statistics, "\n\nNot plotted: {why}.");
        }
        crate::report::write(
            &ctx.out_dir,
            &crate::train::evaluate_report::build(&instances, &summary, &curves, statistics),
        )?;
        Ok(Outcome::with_metrics(outcome_metrics(&summary)))
    }
}

/// The datasets, synthetic generators and protocols the training stages recorded in
/// their `metrics.json` (`data`).
#[derive(Debug, Default, Serialize)]
pub(crate) struct DataProvenance {
    pub datasets: BTreeSet<String>,
    /// Generators of synthetic inputs ("" = recorded data).
    pub generated_by: BTreeSet<String>,
    pub protocols: BTreeSet<String>,
}

impl DataProvenance {
    fn add(&mut self, input: &Input) -> Result<(), StageError> {
        let path = input.dir.join(METRICS_JSON);
        if !path.exists() {
            return Ok(());
        }
        let text = std::fs::read_to_string(&path).at(&path)?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| StageError::bad_file(&path, format!("not JSON: {e}")))?;
        let Some(d) = v.get("data") else {
            return Ok(());
        };
        let field = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
        self.datasets
            .extend(field("dataset").filter(|s| !s.is_empty()));
        self.generated_by.extend(field("generated_by"));
        self.protocols
            .extend(field("protocol").filter(|s| !s.is_empty()));
        Ok(())
    }

    /// Generated by one of the synthetic generators only.
    pub(crate) fn synthetic(&self) -> bool {
        !self.generated_by.is_empty() && self.generated_by.iter().all(|g| !g.is_empty())
    }

    /// The report's "Data and protocol" paragraph ("" when nothing was recorded).
    pub(crate) fn markdown(&self) -> String {
        if self.datasets.is_empty() && self.protocols.is_empty() {
            return String::new();
        }
        let list = |set: &BTreeSet<String>| {
            set.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut s = String::new();
        let source = if self.synthetic() {
            format!("synthetic, generated by {}", list(&self.generated_by))
        } else if self.generated_by.iter().any(String::is_empty) {
            "recorded files (no generator's marker in the source folder)".to_string()
        } else {
            "not recorded by the training stages".to_string()
        };
        let _ = writeln!(s, "**Data:** {} ({source}).", list(&self.datasets));
        for p in &self.protocols {
            let held = crate::data::folds::Protocol::from_name(p)
                .map_or("(unknown protocol)", |p| p.held_out());
            let _ = writeln!(s, "**Protocol:** `{p}`: each fold holds out {held}.");
        }
        if self.synthetic() {
            let _ = writeln!(
                s,
                "\nWhat the synthetic data settles and what it tests: the generator puts the emotion signal in the EEG channels and a weaker one in the EOG channels (`eog_effect`), so *teacher (EEG + EOG) > EOG-only students > chance* is designed into the data and checks the pipeline, not the method; how the EOG students compare with each other (no KD, V1, V2, V3) is what this run tests."
            );
        }
        if self.datasets.contains(crate::data::ingest_mahnob::DATASET) {
            let _ = writeln!(
                s,
                "\nOn MAHNOB-HCI the students' \"EOG\" channels are, with the ingest's default `eog: proxy`, derivations of frontal EEG electrodes (hEOG = F7 − F8, vEOG = mean(Fp1, Fp2) − mean(F3, F4)) whose sources the teacher's EEG branch also sees: read every student row as a **frontal-EEG proxy**, not as EOG."
            );
        }
        s.push('\n');
        s
    }
}

/// Stages are not told which variations an instance belongs to (it is not part of
/// the cache key); one `evaluate` instance gathers one variation's upstream
/// instances, and the engine's report labels its rows by variation.
fn variation_label(_input: &Input) -> String {
    String::new()
}

/// Fold and target of an instance: from its matrix cell, else from the `metrics.json`
/// the training stages write next to their predictions.
fn fold_and_target(input: &Input) -> Result<(Option<i64>, String), StageError> {
    let mut fold = input.cell.get("fold").and_then(|v| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    let mut target = input
        .cell
        .get("target")
        .and_then(Value::as_str)
        .map(str::to_string);
    if fold.is_none() || target.is_none() {
        let path = input.dir.join(METRICS_JSON);
        if path.exists() {
            let text = std::fs::read_to_string(&path).at(&path)?;
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| StageError::bad_file(&path, format!("not JSON: {e}")))?;
            fold = fold.or_else(|| v.get("fold").and_then(Value::as_i64));
            target = target.or_else(|| v.get("target").and_then(Value::as_str).map(str::to_string));
        }
    }
    Ok((fold, target.unwrap_or_else(|| "unknown".into())))
}

/// The learning curve of an upstream training instance.
#[derive(Debug, Clone)]
pub(crate) struct Curve {
    /// Its stage, and the cell's axes other than fold, target and repeat (which the
    /// plot averages over or shows as panels) and those of the evaluating instance
    /// (which the report adds), e.g. `teacher (subject=3)`.
    pub(crate) label: String,
    pub(crate) stage: String,
    pub(crate) target: String,
    /// (epoch, validation accuracy).
    pub(crate) points: Vec<(f64, f64)>,
}

impl Curve {
    /// `own_cell`: the evaluating instance's cell, whose axes the report adds itself.
    fn of(
        input: &Input,
        own_cell: &Map<String, Value>,
        target: &str,
        points: Vec<(f64, f64)>,
    ) -> Curve {
        let axes: Vec<String> = input
            .cell
            .iter()
            .filter(|(axis, _)| {
                !matches!(axis.as_str(), "fold" | "target" | "repeat")
                    && !own_cell.contains_key(*axis)
            })
            .map(|(axis, v)| match v {
                Value::String(s) => format!("{axis}={s}"),
                other => format!("{axis}={other}"),
            })
            .collect();
        let label = if axes.is_empty() {
            input.stage.clone()
        } else {
            format!("{} ({})", input.stage, axes.join(","))
        };
        Curve {
            label,
            stage: input.stage.clone(),
            target: target.to_string(),
            points,
        }
    }
}

/// `fold` and `target`: the instance's, from [`fold_and_target`].
fn score_instance(
    input: &Input,
    path: &Path,
    model: &str,
    fold: Option<i64>,
    target: &str,
) -> Result<(InstanceScore, Run), StageError> {
    let preds: Vec<Prediction> = read_predictions(path)?;
    let c: Confusion = confusion(&preds);
    let target = target.to_string();
    let repeat = input
        .cell
        .get("repeat")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let subject = input.cell.get("subject").and_then(Value::as_i64);
    let label = crate::train::evaluate_report::model_label(&input.stage, model);
    let run = Run::new(label, target.clone(), fold, repeat, subject, preds);
    let m = &run.metrics;
    let score = InstanceScore {
        stage: input.stage.clone(),
        model: model.into(),
        variation: variation_label(input),
        fold,
        repeat,
        subject,
        target,
        accuracy: c.accuracy(),
        f1: c.f1_high(),
        macro_f1: c.macro_f1(),
        balanced_accuracy: m.balanced_accuracy,
        auroc: m.auroc,
        constant_accuracy: m.constant_accuracy,
        n: c.total(),
        confusion: c.matrix(),
    };
    Ok((score, run))
}

/// Mean and sample standard deviation (ddof = 1; NaN for one value).
fn mean_sd(xs: &[f64]) -> MeanStd {
    let s = crate::stats::summary(xs);
    MeanStd {
        mean: s.as_ref().map_or(f64::NAN, |s| s.mean),
        std: s.as_ref().map_or(f64::NAN, |s| s.sd),
        n: xs.len(),
    }
}

/// Group by (stage, model, variation, target), in first-seen order of stages.
pub(crate) fn summarise(instances: &[InstanceScore]) -> Vec<GroupScore> {
    let mut order: Vec<(String, String, String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String, String, String), Vec<&InstanceScore>> =
        BTreeMap::new();
    for i in instances {
        let key = (
            i.stage.clone(),
            i.model.clone(),
            i.variation.clone(),
            i.target.clone(),
        );
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(i);
    }
    order
        .into_iter()
        .map(|key| {
            let g = &groups[&key];
            let col =
                |f: fn(&InstanceScore) -> f64| mean_sd(&g.iter().map(|i| f(i)).collect::<Vec<_>>());
            GroupScore {
                folds: g.len(),
                accuracy: col(|i| i.accuracy),
                f1: col(|i| i.f1),
                macro_f1: col(|i| i.macro_f1),
                stage: key.0,
                model: key.1,
                variation: key.2,
                target: key.3,
            }
        })
        .collect()
}

fn group_label(g: &GroupScore) -> String {
    let mut label = g.stage.clone();
    if g.model == "teacher" {
        label.push_str("/teacher");
    }
    if !g.variation.is_empty() {
        let _ = write!(label, "[{}]", g.variation);
    }
    label
}

/// `{label: {target: {accuracy: {mean, std}, f1: .., macro_f1: .., folds}}}`.
fn outcome_metrics(summary: &[GroupScore]) -> Map<String, Value> {
    let mut out = Map::new();
    for g in summary {
        let entry = out
            .entry(group_label(g))
            .or_insert_with(|| Value::Object(Map::new()));
        let ms = |m: &MeanStd| serde_json::json!({ "mean": m.mean, "std": m.std });
        if let Value::Object(by_target) = entry {
            by_target.insert(
                g.target.clone(),
                serde_json::json!({
                    "accuracy": ms(&g.accuracy),
                    "f1": ms(&g.f1),
                    "macro_f1": ms(&g.macro_f1),
                    "folds": g.folds,
                }),
            );
        }
    }
    out
}

fn write_summary_csv(path: &Path, summary: &[GroupScore]) -> Result<(), StageError> {
    let mut text = String::from(
        "stage,model,variation,target,folds,accuracy_mean,accuracy_std,f1_mean,f1_std,macro_f1_mean,macro_f1_std\n",
    );
    for g in summary {
        let _ = writeln!(
            text,
            "{},{},{},{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4}",
            g.stage,
            g.model,
            g.variation,
            g.target,
            g.folds,
            g.accuracy.mean,
            g.accuracy.std,
            g.f1.mean,
            g.f1.std,
            g.macro_f1.mean,
            g.macro_f1.std
        );
    }
    std::fs::write(path, text).at(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;
    use crate::train::dataset::WindowId;
    use crate::train::predictions::{write_predictions, Prediction};

    fn preds(pairs: &[(u8, f32)]) -> Vec<Prediction> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, &(y, p))| Prediction {
                id: WindowId {
                    subject: 1,
                    trial: i as u16,
                    window: 0,
                },
                y,
                p_high: p,
            })
            .collect()
    }

    fn input(
        root: &Path,
        stage: &str,
        fold: i64,
        target: &str,
        variations: &[&str],
        p: &[(u8, f32)],
    ) -> Input {
        let dir = root.join(format!("{stage}-{fold}-{target}-{}", variations.join("")));
        std::fs::create_dir_all(&dir).unwrap();
        write_predictions(&dir.join(PREDICTIONS), &preds(p)).unwrap();
        crate::test_support::input(stage, &dir, fold, target)
    }

    /// Runs `evaluate`; its `report.json` and learning-curve figure.
    fn run_for_curves(ctx: &Context) -> (crate::report::ReportFile, crate::report::Figure) {
        Evaluate.run(ctx).unwrap();
        let text = std::fs::read_to_string(ctx.out_dir.join(REPORT_JSON)).unwrap();
        let report: crate::report::ReportFile = serde_json::from_str(&text).unwrap();
        let curves = report
            .figures
            .iter()
            .find(|f| f.file == "learning_curves.png")
            .expect("a learning-curve figure")
            .clone();
        (report, curves)
    }

    #[test]
    fn the_report_plots_upstream_learning_curves_per_target_and_names_a_broken_one() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let mut ctx = Context::for_test(Params::resolve(&Evaluate, &Value::Null).unwrap(), &out);
        let mut inputs = Vec::new();
        for (fold, acc) in [(0, "50"), (1, "70")] {
            let mut i = input(tmp.path(), "teacher", fold, "valence", &[], &[(1, 0.9)]);
            i.cell.insert("subject".into(), Value::from(3));
            std::fs::write(
                i.dir.join(LEARNING_CURVE),
                format!("epoch,train_loss,val_loss,val_acc\n1,0.7,0.69,{acc}\n2,0.6,0.6,NaN\n"),
            )
            .unwrap();
            inputs.push(i);
        }
        ctx.inputs = inputs;
        let (_, curves) = run_for_curves(&ctx);
        assert!(curves.mean_of_same_label);
        assert_eq!(curves.panels.len(), 1, "one panel: valence");
        assert_eq!(
            curves.panels[0].title,
            "Learning curves — valence (mean over folds)"
        );
        let series = &curves.panels[0].series;
        assert_eq!(series.len(), 2, "one per fold, averaged when drawn");
        assert_eq!(series[0].label.as_deref(), Some("teacher (subject=3)"));
        assert_eq!(series[0].source.as_deref(), Some("teacher"));
        // epoch 2 has no validation accuracy (NaN): left out
        assert_eq!(series[0].points, [(1.0, 50.0)]);
        assert_eq!(series[1].points, [(1.0, 70.0)]);
        std::fs::write(
            ctx.inputs[0].dir.join(LEARNING_CURVE),
            "epoch,loss\n1,0.5\n",
        )
        .unwrap();
        // a plot-only input: the evaluation stands, the report names what it left out
        let (report, curves) = run_for_curves(&ctx);
        assert_eq!(curves.panels[0].series.len(), 1);
        let text = &report.sections[0].markdown;
        assert!(
            text.contains("Not plotted: ")
                && text.contains("learning_curve.csv")
                && text.contains("no `val_acc` column"),
            "{text}"
        );
    }

    #[test]
    fn scores_and_aggregates_against_hand_computed_values() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let mut ctx = Context::for_test(Params::resolve(&Evaluate, &Value::Null).unwrap(), &out);
        // fold 0: y 1 1 0 0, pred 1 0 0 0 → acc 75, F1 = 2/(2+0+1) = 66.667
        // fold 1: y 1 1 0 0, pred 1 1 1 0 → acc 75, F1 = 4/(4+1+0) = 80
        ctx.inputs = vec![
            input(
                tmp.path(),
                "student",
                0,
                "arousal",
                &[],
                &[(1, 0.9), (1, 0.2), (0, 0.1), (0, 0.4)],
            ),
            input(
                tmp.path(),
                "student",
                1,
                "arousal",
                &[],
                &[(1, 0.9), (1, 0.7), (0, 0.6), (0, 0.4)],
            ),
            input(
                tmp.path(),
                "student",
                0,
                "valence",
                &[],
                &[(1, 0.9), (0, 0.2)],
            ),
        ];
        // a teacher's predictions in the first folder count as a separate model
        write_predictions(
            &ctx.inputs[0].dir.join(TEACHER_PREDICTIONS),
            &preds(&[(1, 0.2), (0, 0.7)]),
        )
        .unwrap();
        let outcome = Evaluate.run(&ctx).unwrap();
        let aro = &outcome.metrics["student"]["arousal"];
        assert_eq!(aro["accuracy"]["mean"], 75.0);
        assert_eq!(aro["accuracy"]["std"], 0.0);
        let f1_mean = aro["f1"]["mean"].as_f64().unwrap();
        assert!((f1_mean - (200.0 / 3.0 + 80.0) / 2.0).abs() < 1e-9);
        // sample std (ddof 1) of two values: |a − b| / √2
        let f1_std = aro["f1"]["std"].as_f64().unwrap();
        assert!((f1_std - (80.0 - 200.0 / 3.0) / 2f64.sqrt()).abs() < 1e-9);
        // macro-F1 fold 0: low F1 = 2·2/(4+1+0) = 80 → (66.667+80)/2
        let file: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(METRICS_JSON)).unwrap())
                .unwrap();
        assert_eq!(file["schema_version"], SCHEMA_VERSION);
        let i0 = &file["instances"][0];
        assert!((i0["macro_f1"].as_f64().unwrap() - (200.0 / 3.0 + 80.0) / 2.0).abs() < 1e-9);
        assert_eq!(i0["confusion"], serde_json::json!([[2, 0], [1, 1]]));
        assert_eq!(
            outcome.metrics["student/teacher"]["arousal"]["accuracy"]["mean"],
            0.0
        );
        assert_eq!(outcome.metrics["student"]["valence"]["folds"], 1);
        let csv = std::fs::read_to_string(out.join(SUMMARY_CSV)).unwrap();
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .starts_with("student,student,,arousal,2,75.0000,0.0000,73.3333"),
            "{csv}"
        );
    }

    #[test]
    fn groups_by_stage_and_fails_without_predictions() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let mut ctx = Context::for_test(Params::resolve(&Evaluate, &Value::Null).unwrap(), &out);
        ctx.inputs = vec![
            input(
                tmp.path(),
                "student_v1",
                0,
                "arousal",
                &["v1"],
                &[(1, 0.9), (0, 0.1)],
            ),
            input(
                tmp.path(),
                "student_v2",
                0,
                "arousal",
                &["v2"],
                &[(1, 0.1), (0, 0.1)],
            ),
        ];
        let m = Evaluate.run(&ctx).unwrap().metrics;
        assert_eq!(m["student_v1"]["arousal"]["accuracy"]["mean"], 100.0);
        assert_eq!(m["student_v2"]["arousal"]["accuracy"]["mean"], 50.0);
        ctx.inputs = vec![Input {
            stage: "windows".into(),
            cell: Map::new(),
            dir: tmp.path().into(),
        }];
        let e = Evaluate.run(&ctx).unwrap_err().to_string();
        assert!(
            e.contains("predictions.csv") && e.contains("windows"),
            "{e}"
        );
    }

    #[test]
    fn the_report_names_data_and_protocol_and_says_what_is_designed_in_only_for_synthetic_data() {
        let report = |dataset: &str, generated_by: &str| {
            let tmp = tempfile::tempdir().unwrap();
            let out = tmp.path().join("out");
            std::fs::create_dir_all(&out).unwrap();
            let mut ctx =
                Context::for_test(Params::resolve(&Evaluate, &Value::Null).unwrap(), &out);
            let i = input(tmp.path(), "v3", 0, "arousal", &[], &[(1, 0.9), (0, 0.1)]);
            let data = serde_json::json!({"data": {
                "dataset": dataset, "generated_by": generated_by, "protocol": "leave-video-out"
            }});
            std::fs::write(i.dir.join(METRICS_JSON), data.to_string()).unwrap();
            ctx.inputs = vec![i];
            Evaluate.run(&ctx).unwrap();
            let meta: Value =
                serde_json::from_str(&std::fs::read_to_string(out.join(METRICS_JSON)).unwrap())
                    .unwrap();
            assert_eq!(meta["data"]["protocols"][0], "leave-video-out");
            let report: crate::report::ReportFile = serde_json::from_str(
                &std::fs::read_to_string(out.join(crate::report::REPORT_JSON)).unwrap(),
            )
            .unwrap();
            assert_eq!(report.tables[0].id, "results");
            assert_eq!(report.tables[0].rows[0].label.as_deref(), Some("v3"));
            assert_eq!(report.figures.len(), 2);
            report.sections[0].markdown.clone()
        };
        let synthetic = report("deap", "synthetic-deap");
        assert!(
            synthetic.contains("**Data:** `deap` (synthetic, generated by `synthetic-deap`)"),
            "{synthetic}"
        );
        assert!(
            synthetic
                .contains("**Protocol:** `leave-video-out`: each fold holds out trial indices"),
            "{synthetic}"
        );
        assert!(
            synthetic.contains("is designed into the data"),
            "{synthetic}"
        );
        assert!(!synthetic.contains("frontal-EEG proxy"), "{synthetic}");
        let recorded = report("deap", "");
        assert!(recorded.contains("(recorded files"), "{recorded}");
        assert!(!recorded.contains("designed into"), "{recorded}");
        let mahnob = report("mahnob", "");
        assert!(mahnob.contains("frontal-EEG proxy"), "{mahnob}");
    }
}
