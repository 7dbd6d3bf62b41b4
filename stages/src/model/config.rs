//! Network configurations: every size is a field whose default is the spec's value
//! (`docs/method.md`), deserialisable with serde so training stages can expose them.

use serde::{Deserialize, Serialize};

use super::error::ModelError;

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), ModelError> {
    if ok {
        Ok(())
    } else {
        Err(ModelError::Config(msg()))
    }
}

fn check_prob(name: &str, p: f64) -> Result<(), ModelError> {
    check((0.0..1.0).contains(&p), || {
        format!("{name} must be in [0, 1), got {p}")
    })
}

/// The per-modality branch (shared by teacher and student; the channel count is
/// given by the network that owns the branch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BranchConfig {
    /// Window length in samples (4 s at 128 Hz).
    pub samples: usize,
    /// Temporal convolution: number of filters.
    pub temporal_filters: usize,
    /// Temporal convolution: kernel length in samples.
    pub kernel: usize,
    /// Temporal convolution: stride in samples.
    pub stride: usize,
    /// Token width after the spatial convolution (transformer model width).
    pub dim: usize,
    /// Attention heads (must divide `dim`).
    pub heads: usize,
    /// Hidden width of the transformer feed-forward layer.
    pub ffn_dim: usize,
    /// Number of encoder blocks (= number of depths H¹..Hᴸ kept).
    pub layers: usize,
    /// Dropout after the spatial convolution.
    pub front_dropout: f64,
    /// Dropout inside the encoder blocks (residual branches, feed-forward).
    pub dropout: f64,
    /// Dropout on the attention weights (PyTorch's encoder layer uses `dropout`).
    pub attn_dropout: f64,
    /// Batch-norm momentum (PyTorch convention: weight of the new statistic).
    pub bn_momentum: f64,
    pub bn_eps: f64,
    pub ln_eps: f64,
    /// The axis the gated score blocks' batch norms normalise (see [`ScoreBn`]).
    pub score_bn: ScoreBn,
}

/// Which axis of a score block's `(B, tokens, dim)` input its two batch norms treat as
/// channels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreBn {
    /// `BatchNorm1d(tokens)`: one γ, β per token, statistics over batch and features —
    /// what gives the spec's parameter counts (teacher 1,354,658, student 648,862).
    #[default]
    Tokens,
    /// One γ, β per feature, statistics over batch and tokens — Keras'
    /// `BatchNormalization()` on `(B, tokens, dim)` (last axis), as in EmotionKD's code.
    Features,
}

crate::choice_param!(ScoreBn { Tokens => "tokens", Features => "features" });

impl Default for BranchConfig {
    fn default() -> Self {
        BranchConfig {
            samples: 512,
            temporal_filters: 64,
            kernel: 32,
            stride: 8,
            dim: 64,
            heads: 8,
            ffn_dim: 64,
            layers: 3,
            front_dropout: 0.3,
            dropout: 0.1,
            attn_dropout: 0.1,
            bn_momentum: 0.1,
            bn_eps: 1e-5,
            ln_eps: 1e-5,
            score_bn: ScoreBn::Tokens,
        }
    }
}

impl BranchConfig {
    /// Number of tokens (temporal windows): `(samples − kernel) / stride + 1`.
    pub fn tokens(&self) -> usize {
        (self.samples - self.kernel) / self.stride + 1
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        for (name, v) in [
            ("samples", self.samples),
            ("temporal_filters", self.temporal_filters),
            ("kernel", self.kernel),
            ("stride", self.stride),
            ("dim", self.dim),
            ("heads", self.heads),
            ("ffn_dim", self.ffn_dim),
            ("layers", self.layers),
        ] {
            check(v > 0, || format!("branch.{name} must be positive"))?;
        }
        check(self.kernel <= self.samples, || {
            format!(
                "branch.kernel ({}) is longer than the window ({} samples)",
                self.kernel, self.samples
            )
        })?;
        check(self.dim.is_multiple_of(self.heads), || {
            format!(
                "branch.heads ({}) must divide branch.dim ({})",
                self.heads, self.dim
            )
        })?;
        check_prob("branch.front_dropout", self.front_dropout)?;
        check_prob("branch.dropout", self.dropout)?;
        check_prob("branch.attn_dropout", self.attn_dropout)?;
        check_prob("branch.bn_momentum", self.bn_momentum)?;
        check(self.bn_eps > 0.0 && self.ln_eps > 0.0, || {
            "branch.bn_eps and branch.ln_eps must be positive".into()
        })
    }
}

/// The classifier head: flatten → Dropout → `layers` × Dense(`hidden`) (ReLU after
/// each if `relu`) → Dense(`classes`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierConfig {
    pub hidden: usize,
    pub layers: usize,
    /// DECISION (docs/method.md): ReLU between the dense layers; EmotionKD's code has none,
    /// which makes the stack one linear map.
    pub relu: bool,
    /// Dropout on the flattened feature.
    pub dropout: f64,
    pub classes: usize,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            hidden: 128,
            layers: 3,
            relu: true,
            dropout: 0.5,
            classes: 2,
        }
    }
}

impl ClassifierConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        check(self.hidden > 0, || {
            "classifier.hidden must be positive".into()
        })?;
        check(self.classes >= 2, || {
            "classifier.classes must be at least 2".into()
        })?;
        check_prob("classifier.dropout", self.dropout)
    }
}

/// The teacher: an EEG and an EOG branch, gated multi-depth cross-modal fusion, and
/// the classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeacherConfig {
    pub eeg_channels: usize,
    pub eog_channels: usize,
    pub branch: BranchConfig,
    pub classifier: ClassifierConfig,
}

impl Default for TeacherConfig {
    fn default() -> Self {
        TeacherConfig {
            eeg_channels: 28,
            eog_channels: 2,
            branch: BranchConfig::default(),
            classifier: ClassifierConfig::default(),
        }
    }
}

impl TeacherConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        check(self.eeg_channels > 0 && self.eog_channels > 0, || {
            "teacher channel counts must be positive".into()
        })?;
        self.branch.validate()?;
        check(self.branch.layers >= 2, || {
            "the teacher fuses depth pairs (l, l+1): branch.layers must be at least 2".into()
        })?;
        self.classifier.validate()
    }
}

/// The EOG-only student: one branch, multi-depth gated fusion, the classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StudentConfig {
    pub channels: usize,
    pub branch: BranchConfig,
    pub classifier: ClassifierConfig,
}

impl Default for StudentConfig {
    fn default() -> Self {
        StudentConfig {
            channels: 2,
            branch: BranchConfig::default(),
            classifier: ClassifierConfig::default(),
        }
    }
}

impl StudentConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        check(self.channels > 0, || {
            "student channels must be positive".into()
        })?;
        self.branch.validate()?;
        self.classifier.validate()
    }
}

/// Optional learned regressor from the student's fusion feature to the teacher's
/// (FitNets-style): `R(F) = A · (F · W + b)`, mixing features with `W`, `b` and
/// tokens with `A`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegressorConfig {
    pub tokens_in: usize,
    pub tokens_out: usize,
    pub dim_in: usize,
    pub dim_out: usize,
}

impl Default for RegressorConfig {
    /// Student `F_S` (61 × 64) to the teacher's unaligned `F_T` (122 × 64).
    fn default() -> Self {
        RegressorConfig {
            tokens_in: 61,
            tokens_out: 122,
            dim_in: 64,
            dim_out: 64,
        }
    }
}

impl RegressorConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        check(
            self.tokens_in > 0 && self.tokens_out > 0 && self.dim_in > 0 && self.dim_out > 0,
            || "regressor sizes must be positive".into(),
        )
    }
}

/// DeepConvNet (Schirrmeister et al. 2017) on the EOG channels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepConvNetConfig {
    pub channels: usize,
    pub samples: usize,
    /// Filters of the four conv-pool blocks.
    pub filters: Vec<usize>,
    /// Temporal kernel length (10 or 5 for 128 Hz).
    pub kernel: usize,
    /// Max-pool size (= stride).
    pub pool: usize,
    pub dropout: f64,
    pub bn_momentum: f64,
    pub bn_eps: f64,
    pub classes: usize,
}

impl Default for DeepConvNetConfig {
    fn default() -> Self {
        DeepConvNetConfig {
            channels: 2,
            samples: 512,
            filters: vec![25, 50, 100, 200],
            kernel: 10,
            pool: 3,
            dropout: 0.5,
            bn_momentum: 0.1,
            bn_eps: 1e-5,
            classes: 2,
        }
    }
}

impl DeepConvNetConfig {
    /// Time steps left after every block (`None` if the window is too short).
    pub fn lengths(&self) -> Option<Vec<usize>> {
        let mut len = self.samples;
        let mut out = Vec::with_capacity(self.filters.len());
        for _ in &self.filters {
            len = len.checked_sub(self.kernel)? + 1;
            len /= self.pool;
            if len == 0 {
                return None;
            }
            out.push(len);
        }
        Some(out)
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        check(self.channels > 0, || {
            "deepconvnet.channels must be positive".into()
        })?;
        check(
            !self.filters.is_empty() && self.filters.iter().all(|&f| f > 0),
            || "deepconvnet.filters must be a non-empty list of positive counts".into(),
        )?;
        check(self.kernel > 0 && self.pool > 0, || {
            "deepconvnet.kernel and deepconvnet.pool must be positive".into()
        })?;
        check(self.lengths().is_some(), || {
            format!(
                "a {}-sample window is too short for {} blocks of kernel {} and pool {}",
                self.samples,
                self.filters.len(),
                self.kernel,
                self.pool
            )
        })?;
        check(self.classes >= 2, || {
            "deepconvnet.classes must be at least 2".into()
        })?;
        check_prob("deepconvnet.dropout", self.dropout)?;
        check_prob("deepconvnet.bn_momentum", self.bn_momentum)
    }
}
