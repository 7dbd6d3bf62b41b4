//! The network size parameters every training stage takes (defaults = the model
//! configs' defaults = docs/method.md) and the model configs built from them.

use crate::model::{BranchConfig, ClassifierConfig, ScoreBn, StudentConfig, TeacherConfig};
use crate::stage::{ParamKind, ParamSpec, Params, StageError};
use crate::train::dataset::{FoldData, Modality};

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
