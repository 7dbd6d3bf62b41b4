//! What every training stage does around its training loop: the `fold` / `target` /
//! optimiser parameters, loading the cell's data, and writing checkpoint, learning
//! curve, test predictions and `metrics.json`. (The network size parameters are in
//! [`super::network_params`].)

use std::path::PathBuf;

use dfdx::optim::{AdamConfig, WeightDecay};
use serde_json::{Map, Value};

use crate::data::tables::{SPLITS, WINDOWS};
use crate::stage::{Context, IoContext, ParamKind, ParamSpec, Params, StageError};
use crate::train::dataset::{FoldData, Modality, Role, Target};
use crate::train::evaluate::METRICS_JSON;
use crate::train::fit::{write_curve, FitReport};
use crate::train::predictions::{confusion, write_predictions, Prediction};

pub const LEARNING_CURVE: &str = "learning_curve.csv";
/// Version of the `metrics.json` a training stage writes.
pub const TRAIN_METRICS_SCHEMA: u32 = 1;

/// `fold`, `target` (filled by the pipeline matrix) and the optimiser.
pub fn cell_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(
            "fold",
            ParamKind::Int,
            0,
            "fold of splits.parquet to train on (a matrix axis)",
        ),
        ParamSpec::new(
            "target",
            ParamKind::choice(&["arousal", "valence"]),
            "arousal",
            "binary label to predict (a matrix axis)",
        ),
        ParamSpec::new(
            "subject",
            ParamKind::Int,
            -1,
            "train and test on this subject's trials only (-1: all subjects); a `subject` matrix axis gives per-subject models (subject-dependent protocol)",
        ),
        ParamSpec::new("lr", ParamKind::Float, 1e-3, "Adam learning rate"),
        ParamSpec::new(
            "weight_decay",
            ParamKind::Float,
            0.0,
            "Adam L2 weight decay (0 = none)",
        ),
    ]
}

/// The fold and target of this instance.
pub fn cell(p: &Params) -> Result<(u16, Target), StageError> {
    let fold = p.usize("fold")?;
    let fold = u16::try_from(fold)
        .map_err(|_| StageError::Param(format!("parameter `fold` = {fold} is too large")))?;
    Ok((fold, Target::parse(p.str("target")?)?))
}

/// Adam with the spec's defaults (β = 0.9, 0.999; ε = 1e-8) and learning rate `lr_key`.
pub fn adam(p: &Params, lr_key: &str) -> Result<AdamConfig, StageError> {
    let lr = p.f64(lr_key)?;
    if lr.is_nan() || lr <= 0.0 {
        return Err(StageError::Param(format!(
            "parameter `{lr_key}` must be positive, got {lr}"
        )));
    }
    let wd = p.f64("weight_decay")?;
    Ok(AdamConfig {
        lr,
        weight_decay: (wd > 0.0).then_some(WeightDecay::L2(wd)),
        ..AdamConfig::default()
    })
}

/// The error of a `backend: cuda` request in a build without the `cuda` feature
/// (refused rather than silently run on the CPU: the backend is part of the key).
#[cfg_attr(feature = "cuda", allow(dead_code))]
pub fn cuda_not_built(stage: &str) -> StageError {
    StageError::Param(format!(
        "{stage}: backend cuda needs pipe built with the `cuda` feature (cargo build --release --features cuda)"
    ))
}

/// The upstream `windows.parquet` and `splits.parquet`.
pub fn input_tables(ctx: &Context) -> Result<(PathBuf, PathBuf), StageError> {
    Ok((ctx.input_file(WINDOWS)?, ctx.input_file(SPLITS)?))
}

/// Load this cell's data with `modalities` (one subject's if `subject` is set).
pub fn load_data(ctx: &Context, modalities: &[Modality]) -> Result<FoldData, StageError> {
    let (fold, target) = cell(&ctx.params)?;
    let (w, s) = input_tables(ctx)?;
    let subject = match ctx.params.i64("subject")? {
        s if s < 0 => None,
        s => Some(u16::try_from(s).map_err(|_| {
            StageError::Param(format!("parameter `subject` = {s} is not a subject id"))
        })?),
    };
    FoldData::load_subject(&w, &s, fold, target, modalities, subject)
}

/// The test role's predictions from P(high) per row.
pub fn predictions(data: &FoldData, role: Role, p_high: &[f32]) -> Vec<Prediction> {
    let set = data.role(role);
    set.ids
        .iter()
        .zip(&set.labels)
        .zip(p_high)
        .map(|((&id, &y), &p)| Prediction { id, y, p_high: p })
        .collect()
}

/// Writes `file` (predictions) and returns the test metrics as JSON.
pub fn write_test_predictions(
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
pub fn finish(
    ctx: &Context,
    stage: &str,
    data: &FoldData,
    report: &FitReport,
    test: Map<String, Value>,
    extra: Map<String, Value>,
) -> Result<Map<String, Value>, StageError> {
    write_curve(&ctx.out_dir.join(LEARNING_CURVE), &report.curve)?;
    let (fold, target) = cell(&ctx.params)?;
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
        "fold": fold,
        "target": target.as_str(),
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
