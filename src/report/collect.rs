//! Gathers what a report shows from a finished run: evaluation summaries
//! (`metrics.json` with a `summary` list, as the `evaluate` stage writes), per-fold
//! scores and learning curves (`learning_curve.csv` of training stages).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::exec::summary::{InstanceReport, RunSummary, Status};

/// Mean ± std over folds of one model on one target.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    /// Upstream stage name (`/teacher` appended for a teacher's own scores).
    pub model: String,
    /// Variations the row belongs to ("" when shared by all).
    pub variation: String,
    pub target: String,
    pub folds: u64,
    pub accuracy: (f64, f64),
    pub f1: (f64, f64),
    pub macro_f1: (f64, f64),
}

impl ScoreRow {
    pub fn label(&self) -> String {
        if self.variation.is_empty() {
            self.model.clone()
        } else {
            format!("{} [{}]", self.model, self.variation)
        }
    }
}

#[derive(Debug, Clone)]
pub struct FoldScore {
    pub label: String,
    pub target: String,
    pub fold: i64,
    pub accuracy: f64,
}

#[derive(Debug, Clone)]
pub struct Curve {
    pub label: String,
    pub target: String,
    /// (epoch, train loss, val loss, val accuracy)
    pub points: Vec<(f64, f64, f64, f64)>,
}

#[derive(Debug, Default)]
pub struct Collected {
    pub scores: Vec<ScoreRow>,
    pub folds: Vec<FoldScore>,
    pub curves: Vec<Curve>,
}

/// Variation label of an instance: empty when it is shared by every variation.
fn variation_label(r: &InstanceReport, total: usize) -> String {
    if r.variations.len() >= total || (r.variations.len() == 1 && r.variations[0] == "default") {
        String::new()
    } else {
        r.variations.join(",")
    }
}

/// The cell's other axes (not fold or target), e.g. `dataset=mahnob`: they tell
/// apart rows of one model that a matrix over something else (a dataset swap) made.
fn cell_tag(r: &InstanceReport) -> String {
    r.cell
        .iter()
        .filter(|(axis, _)| !matches!(axis.as_str(), "fold" | "target"))
        .map(|(axis, v)| match v {
            Value::String(s) => format!("{axis}={s}"),
            other => format!("{axis}={other}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn tagged(label: String, tag: &str) -> String {
    if tag.is_empty() {
        label
    } else {
        format!("{label} ({tag})")
    }
}

fn mean_std(v: &Value) -> (f64, f64) {
    (
        v["mean"].as_f64().unwrap_or(f64::NAN),
        v["std"].as_f64().unwrap_or(f64::NAN),
    )
}

pub fn collect(summary: &RunSummary, variation_count: usize) -> Collected {
    let mut c = Collected::default();
    // stages whose instances differ between variations (their rows get a variation label)
    let varying: BTreeSet<&str> = summary
        .instances
        .iter()
        .filter(|r| r.variations.len() < variation_count)
        .map(|r| r.stage.as_str())
        .collect();
    for r in summary
        .instances
        .iter()
        .filter(|r| matches!(r.status, Status::Ran | Status::Cached))
    {
        let Some(dir) = &r.out_dir else { continue };
        let own_variation = variation_label(r, variation_count);
        let tag = cell_tag(r);
        if let Some(m) = read_json(&dir.join("metrics.json")) {
            if let Some(rows) = m["summary"].as_array() {
                for g in rows {
                    let stage = g["stage"].as_str().unwrap_or("?");
                    let model =
                        if g["model"].as_str() == Some("teacher") && !stage.contains("teacher") {
                            format!("{stage}/teacher")
                        } else {
                            stage.to_string()
                        };
                    let variation = if varying.contains(stage) {
                        own_variation.clone()
                    } else {
                        String::new()
                    };
                    let row = ScoreRow {
                        model: tagged(model, &tag),
                        variation,
                        target: g["target"].as_str().unwrap_or("?").to_string(),
                        folds: g["folds"].as_u64().unwrap_or(0),
                        accuracy: mean_std(&g["accuracy"]),
                        f1: mean_std(&g["f1"]),
                        macro_f1: mean_std(&g["macro_f1"]),
                    };
                    if !c.scores.contains(&row) {
                        c.scores.push(row);
                    }
                }
                for i in m["instances"].as_array().into_iter().flatten() {
                    let stage = i["stage"].as_str().unwrap_or("?");
                    let mut label = stage.to_string();
                    if i["model"].as_str() == Some("teacher") && !stage.contains("teacher") {
                        label.push_str("/teacher");
                    }
                    if varying.contains(stage) && !own_variation.is_empty() {
                        label = format!("{label} [{own_variation}]");
                    }
                    let fs = FoldScore {
                        label: tagged(label, &tag),
                        target: i["target"].as_str().unwrap_or("?").to_string(),
                        fold: i["fold"].as_i64().unwrap_or(-1),
                        accuracy: i["accuracy"].as_f64().unwrap_or(f64::NAN),
                    };
                    if !c
                        .folds
                        .iter()
                        .any(|f| f.label == fs.label && f.target == fs.target && f.fold == fs.fold)
                    {
                        c.folds.push(fs);
                    }
                }
            }
        }
        if let Some(points) = read_curve(&dir.join("learning_curve.csv")) {
            let label = if own_variation.is_empty() {
                r.stage.clone()
            } else {
                format!("{} [{own_variation}]", r.stage)
            };
            let target = r
                .cell
                .get("target")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            c.curves.push(Curve {
                label: tagged(label, &tag),
                target,
                points,
            });
        }
    }
    c
}

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// `epoch,train_loss,val_loss,val_acc` rows.
fn read_curve(p: &Path) -> Option<Vec<(f64, f64, f64, f64)>> {
    let text = std::fs::read_to_string(p).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (e, tl, vl, va) = (
        col("epoch")?,
        col("train_loss")?,
        col("val_loss")?,
        col("val_acc")?,
    );
    let points: Vec<_> = lines
        .filter_map(|l| {
            let f: Vec<f64> = l
                .split(',')
                .map(|x| x.trim().parse().unwrap_or(f64::NAN))
                .collect();
            Some((*f.get(e)?, *f.get(tl)?, *f.get(vl)?, *f.get(va)?))
        })
        .collect();
    (!points.is_empty()).then_some(points)
}
