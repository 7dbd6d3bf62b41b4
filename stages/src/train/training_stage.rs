//! What every training stage does around its training loop: the `fold` / `target` /
//! optimiser parameters, loading the cell's data, and writing checkpoint, learning
//! curve, test predictions and `metrics.json`. (The network size parameters are in
//! [`super::network_params`].)

use std::path::PathBuf;

use dfdx::optim::{AdamConfig, WeightDecay};
use serde_json::{Map, Value};

use crate::data::tables::{SPLITS, WINDOWS};
use crate::stage::{Context, IoContext, StageError};
use crate::train::dataset::{FoldData, Modality, Role, Target};
use crate::train::evaluate::METRICS_JSON;
use crate::train::fit::{write_curve, FitReport};
use crate::train::predictions::{confusion, write_predictions, Prediction};

pub(crate) const LEARNING_CURVE: &str = "learning_curve.csv";
/// Version of the `metrics.json` a training stage writes.
pub(crate) const TRAIN_METRICS_SCHEMA: u32 = 1;

crate::stage_params! {
    /// `fold`, `target`, `subject` (filled by the pipeline matrix): which models a
    /// training stage fits, on which part of the data.
    pub(crate) struct CellParams {
        /// fold of splits.parquet to train on (a matrix axis)
        fold: u16 = 0;
        /// binary label to predict (a matrix axis)
        target: Target = Target::Arousal;
        /// train and test on this subject's trials only (-1: all subjects); a `subject` matrix axis gives per-subject models (subject-dependent protocol)
        subject: i64 = -1;
    }
}

crate::stage_params! {
    /// The optimiser of the stages that train a network by gradient descent.
    pub(crate) struct OptimiserParams {
        /// Adam learning rate
        lr: f64 = 1e-3;
        /// Adam L2 weight decay (0 = none)
        weight_decay: f64 = 0.0;
    }
}

impl OptimiserParams {
    /// Adam with the spec's defaults (β = 0.9, 0.999; ε = 1e-8), `lr` and `weight_decay`.
    pub(crate) fn adam(&self) -> Result<AdamConfig, StageError> {
        let (lr, wd) = (self.lr, self.weight_decay);
        if lr.is_nan() || lr <= 0.0 {
            return Err(StageError::Param(format!(
                "parameter `lr` must be positive, got {lr}"
            )));
        }
        Ok(AdamConfig {
            lr,
            weight_decay: (wd > 0.0).then_some(WeightDecay::L2(wd)),
            ..AdamConfig::default()
        })
    }
}

impl CellParams {
    /// The one subject to train and test on (`None`: all).
    pub(crate) fn subject(&self) -> Result<Option<u16>, StageError> {
        match self.subject {
            s if s < 0 => Ok(None),
            s => u16::try_from(s).map(Some).map_err(|_| {
                StageError::Param(format!("parameter `subject` = {s} is not a subject id"))
            }),
        }
    }
}

/// The error of a `backend: cuda` request in a build without the `cuda` feature
/// (refused rather than silently run on the CPU: the backend is part of the key).
#[cfg_attr(feature = "cuda", allow(dead_code))]
pub(crate) fn cuda_not_built(stage: &str) -> StageError {
    StageError::Param(format!(
        "{stage}: backend cuda needs pipe built with the `cuda` feature (cargo build --release --features cuda)"
    ))
}

/// The upstream `windows.parquet` and `splits.parquet`.
pub(crate) fn input_tables(ctx: &Context) -> Result<(PathBuf, PathBuf), StageError> {
    Ok((ctx.input_file(WINDOWS)?, ctx.input_file(SPLITS)?))
}

/// Load this cell's data with `modalities` (one subject's if `subject` is set).
pub(crate) fn load_data(ctx: &Context, modalities: &[Modality]) -> Result<FoldData, StageError> {
    let cell: CellParams = ctx.params()?;
    let (w, s) = input_tables(ctx)?;
    FoldData::load_subject(&w, &s, cell.fold, cell.target, modalities, cell.subject()?)
}

/// The test role's predictions from P(high) per row.
pub(crate) fn predictions(data: &FoldData, role: Role, p_high: &[f32]) -> Vec<Prediction> {
    let set = data.role(role);
    set.ids
        .iter()
        .zip(&set.labels)
        .zip(p_high)
        .map(|((&id, &y), &p)| Prediction { id, y, p_high: p })
        .collect()
}

/// Writes `file` (predictions) and returns the test metrics as JSON.
pub(crate) fn write_test_predictions(
    ctx: &Context,
    file: &str,
    preds: &[Prediction],
) -> Result<Map<String, Value>, StageError> {
    write_predictions(&ctx.out_dir.join(file), preds)?;
    Ok(confusion(preds).to_json())
}

/// Writes the learning curve and `metrics.json`; returns the stage's Outcome
/// metrics: the test metrics plus `best_epoch`, `epochs`, `stopped_early`, and any
/// `extra` entries.
pub(crate) fn finish(
    ctx: &Context,
    stage: &str,
    data: &FoldData,
    report: &FitReport,
    test: Map<String, Value>,
    extra: Map<String, Value>,
) -> Result<Map<String, Value>, StageError> {
    write_curve(&ctx.out_dir.join(LEARNING_CURVE), &report.curve)?;
    let cell: CellParams = ctx.params()?;
    let mut metrics = test.clone();
    metrics.insert("best_epoch".into(), Value::from(report.best_epoch));
    metrics.insert("epochs".into(), Value::from(report.curve.len()));
    metrics.insert("stopped_early".into(), Value::from(report.stopped_early));
    if let Some(best) = report.curve.get(report.best_epoch.saturating_sub(1)) {
        if best.val_acc.is_finite() {
            metrics.insert("val_acc".into(), Value::from(best.val_acc));
            metrics.insert("val_loss".into(), Value::from(best.val_loss));
        }
    }
    metrics.extend(extra);
    let file = serde_json::json!({
        "schema_version": TRAIN_METRICS_SCHEMA,
        "stage": stage,
        "fold": cell.fold,
        "target": cell.target.name(),
        "seed": ctx.seed,
        "data": {
            "dataset": data.meta.dataset,
            "generated_by": data.meta.generated_by,
            "protocol": data.protocol,
        },
        "metrics": metrics,
    });
    let path = ctx.out_dir.join(METRICS_JSON);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&file).expect("metrics serialise"),
    )
    .at(&path)?;
    Ok(metrics)
}
