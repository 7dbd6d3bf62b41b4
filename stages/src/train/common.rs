//! What every training stage shares: the `fold` / `target` / optimiser parameters,
//! the network size parameters (defaults = the model configs' defaults = docs/method.md),
//! loading the cell's data, and writing checkpoint, learning curve, test
//! predictions and `metrics.json`.

use std::path::PathBuf;

use dfdx::optim::{AdamConfig, WeightDecay};
use serde_json::{Map, Value};

use crate::data::tables::{SPLITS, WINDOWS};
use crate::model::{BranchConfig, ClassifierConfig, ScoreBn, StudentConfig, TeacherConfig};
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

/// Size parameters of the per-modality branch and the classifier head.
pub fn network_params() -> Vec<ParamSpec> {
    let b = BranchConfig::default();
    let c = ClassifierConfig::default();
    vec![
        ParamSpec::new(
            "temporal_filters",
            ParamKind::Int,
            b.temporal_filters,
            "branch: temporal conv filters",
        ),
        ParamSpec::new(
            "kernel",
            ParamKind::Int,
            b.kernel,
            "branch: temporal conv kernel (samples)",
        ),
        ParamSpec::new(
            "stride",
            ParamKind::Int,
            b.stride,
            "branch: temporal conv stride (samples)",
        ),
        ParamSpec::new(
            "dim",
            ParamKind::Int,
            b.dim,
            "branch: token width / transformer model dim",
        ),
        ParamSpec::new("heads", ParamKind::Int, b.heads, "branch: attention heads"),
        ParamSpec::new(
            "ffn_dim",
            ParamKind::Int,
            b.ffn_dim,
            "branch: transformer feed-forward width",
        ),
        ParamSpec::new(
            "layers",
            ParamKind::Int,
            b.layers,
            "branch: transformer blocks (depths kept)",
        ),
        ParamSpec::new(
            "front_dropout",
            ParamKind::Float,
            b.front_dropout,
            "branch: dropout after the spatial conv",
        ),
        ParamSpec::new(
            "dropout",
            ParamKind::Float,
            b.dropout,
            "branch: transformer dropout",
        ),
        ParamSpec::new(
            "attn_dropout",
            ParamKind::Float,
            b.attn_dropout,
            "branch: dropout on attention weights",
        ),
        ParamSpec::new(
            "bn_momentum",
            ParamKind::Float,
            b.bn_momentum,
            "batch-norm momentum",
        ),
        ParamSpec::new(
            "score_bn",
            ParamKind::choice(&["tokens", "features"]),
            b.score_bn.name(),
            "score blocks' batch norms: per token (BatchNorm1d(tokens), the spec's parameter counts) or per feature (Keras' BatchNormalization on the last axis, EmotionKD's code)",
        ),
        ParamSpec::new(
            "hidden",
            ParamKind::Int,
            c.hidden,
            "classifier: dense width",
        ),
        ParamSpec::new(
            "dense_layers",
            ParamKind::Int,
            c.layers,
            "classifier: hidden dense layers",
        ),
        ParamSpec::new(
            "dense_relu",
            ParamKind::Bool,
            c.relu,
            "classifier: ReLU between dense layers (our choice where the paper is silent: docs/method.md)",
        ),
        ParamSpec::new(
            "classifier_dropout",
            ParamKind::Float,
            c.dropout,
            "classifier: dropout on the flattened feature",
        ),
    ]
}

/// The branch and classifier configs from [`network_params`], for windows of `samples`.
pub fn network_configs(
    p: &Params,
    samples: usize,
) -> Result<(BranchConfig, ClassifierConfig), StageError> {
    let branch = BranchConfig {
        samples,
        temporal_filters: p.usize("temporal_filters")?,
        kernel: p.usize("kernel")?,
        stride: p.usize("stride")?,
        dim: p.usize("dim")?,
        heads: p.usize("heads")?,
        ffn_dim: p.usize("ffn_dim")?,
        layers: p.usize("layers")?,
        front_dropout: p.f64("front_dropout")?,
        dropout: p.f64("dropout")?,
        attn_dropout: p.f64("attn_dropout")?,
        bn_momentum: p.f64("bn_momentum")?,
        score_bn: ScoreBn::parse(p.str("score_bn")?).ok_or_else(|| {
            StageError::Param("parameter `score_bn` must be `tokens` or `features`".into())
        })?,
        ..BranchConfig::default()
    };
    let classifier = ClassifierConfig {
        hidden: p.usize("hidden")?,
        layers: p.usize("dense_layers")?,
        relu: p.bool("dense_relu")?,
        dropout: p.f64("classifier_dropout")?,
        ..ClassifierConfig::default()
    };
    Ok((branch, classifier))
}

pub fn teacher_config(p: &Params, data: &FoldData) -> Result<TeacherConfig, StageError> {
    let (branch, classifier) = network_configs(p, data.samples())?;
    Ok(TeacherConfig {
        eeg_channels: channels_of(data, Modality::Eeg)?,
        eog_channels: channels_of(data, Modality::Eog)?,
        branch,
        classifier,
    })
}

pub fn student_config(p: &Params, data: &FoldData) -> Result<StudentConfig, StageError> {
    let (branch, classifier) = network_configs(p, data.samples())?;
    Ok(StudentConfig {
        channels: channels_of(data, Modality::Eog)?,
        branch,
        classifier,
    })
}

fn channels_of(data: &FoldData, m: Modality) -> Result<usize, StageError> {
    data.modalities
        .iter()
        .position(|&x| x == m)
        .map(|i| data.n_channels(i))
        .ok_or_else(|| StageError::Model(format!("the {} channels were not loaded", m.kind())))
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
