//! The network size parameters every training stage takes (defaults = the model
//! configs' defaults = docs/method.md) and the model configs built from them.

use crate::model::{BranchConfig, ClassifierConfig, ScoreBn, StudentConfig, TeacherConfig};
use crate::stage::StageError;
use crate::train::dataset::{FoldData, Modality};

crate::stage_params! {
    /// Size parameters of the per-modality branch and the classifier head.
    pub(crate) struct NetworkParams {
        /// branch: temporal conv filters
        temporal_filters: usize = BranchConfig::default().temporal_filters;
        /// branch: temporal conv kernel (samples)
        kernel: usize = BranchConfig::default().kernel;
        /// branch: temporal conv stride (samples)
        stride: usize = BranchConfig::default().stride;
        /// branch: token width / transformer model dim
        dim: usize = BranchConfig::default().dim;
        /// branch: attention heads
        heads: usize = BranchConfig::default().heads;
        /// branch: transformer feed-forward width
        ffn_dim: usize = BranchConfig::default().ffn_dim;
        /// branch: transformer blocks (depths kept)
        layers: usize = BranchConfig::default().layers;
        /// branch: dropout after the spatial conv
        front_dropout: f64 = BranchConfig::default().front_dropout;
        /// branch: transformer dropout
        dropout: f64 = BranchConfig::default().dropout;
        /// branch: dropout on attention weights
        attn_dropout: f64 = BranchConfig::default().attn_dropout;
        /// batch-norm momentum
        bn_momentum: f64 = BranchConfig::default().bn_momentum;
        /// score blocks' batch norms: per token (BatchNorm1d(tokens), the spec's parameter counts) or per feature (Keras' BatchNormalization on the last axis, EmotionKD's code)
        score_bn: ScoreBn = BranchConfig::default().score_bn;
        /// classifier: dense width
        hidden: usize = ClassifierConfig::default().hidden;
        /// classifier: hidden dense layers
        dense_layers: usize = ClassifierConfig::default().layers;
        /// classifier: ReLU between dense layers (our choice where the paper is silent: docs/method.md)
        dense_relu: bool = ClassifierConfig::default().relu;
        /// classifier: dropout on the flattened feature
        classifier_dropout: f64 = ClassifierConfig::default().dropout;
    }
}

impl NetworkParams {
    /// The branch and classifier configs for windows of `samples`.
    pub(crate) fn configs(&self, samples: usize) -> (BranchConfig, ClassifierConfig) {
        let branch = BranchConfig {
            samples,
            temporal_filters: self.temporal_filters,
            kernel: self.kernel,
            stride: self.stride,
            dim: self.dim,
            heads: self.heads,
            ffn_dim: self.ffn_dim,
            layers: self.layers,
            front_dropout: self.front_dropout,
            dropout: self.dropout,
            attn_dropout: self.attn_dropout,
            bn_momentum: self.bn_momentum,
            score_bn: self.score_bn,
            ..BranchConfig::default()
        };
        let classifier = ClassifierConfig {
            hidden: self.hidden,
            layers: self.dense_layers,
            relu: self.dense_relu,
            dropout: self.classifier_dropout,
            ..ClassifierConfig::default()
        };
        (branch, classifier)
    }

    /// The teacher for `data`'s EEG and EOG channels.
    pub(crate) fn teacher_config(&self, data: &FoldData) -> Result<TeacherConfig, StageError> {
        let (branch, classifier) = self.configs(data.samples());
        Ok(TeacherConfig {
            eeg_channels: channels_of(data, Modality::Eeg)?,
            eog_channels: channels_of(data, Modality::Eog)?,
            branch,
            classifier,
        })
    }

    /// The student for `data`'s EOG channels.
    pub(crate) fn student_config(&self, data: &FoldData) -> Result<StudentConfig, StageError> {
        let (branch, classifier) = self.configs(data.samples());
        Ok(StudentConfig {
            channels: channels_of(data, Modality::Eog)?,
            branch,
            classifier,
        })
    }
}

fn channels_of(data: &FoldData, m: Modality) -> Result<usize, StageError> {
    data.modalities
        .iter()
        .position(|&x| x == m)
        .map(|i| data.n_channels(i))
        .ok_or_else(|| StageError::Model(format!("the {} channels were not loaded", m.kind())))
}
