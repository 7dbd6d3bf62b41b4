//! Tiny networks and data for the tests.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::model::{BranchConfig, ClassifierConfig, StudentConfig, TeacherConfig};
use crate::params::Params;
use crate::stage::{Context, Input, Stage};
use crate::test_support::windows::{kfold_splits, write_splits, write_windows, WindowsFixture};

/// Channels of the test tables: 3 EEG, 2 EOG, 1 other.
pub(super) const CHANNELS: [&str; 6] = ["Fp1", "AF3", "F3", "hEOG", "vEOG", "Status"];
/// Samples per window.
pub(super) const SAMPLES: usize = 16;

/// 16 samples, kernel 8, stride 4 → 3 tokens of width 4, 2 heads, 2 layers.
pub(super) fn tiny_branch(dropout: f64) -> BranchConfig {
    BranchConfig {
        samples: SAMPLES,
        temporal_filters: 2,
        kernel: 8,
        stride: 4,
        dim: 4,
        heads: 2,
        ffn_dim: 4,
        layers: 2,
        front_dropout: dropout,
        dropout,
        attn_dropout: dropout,
        ..BranchConfig::default()
    }
}

pub(super) fn tiny_classifier(dropout: f64) -> ClassifierConfig {
    ClassifierConfig {
        hidden: 4,
        layers: 1,
        relu: true,
        dropout,
        classes: 2,
    }
}

pub(super) fn tiny_teacher() -> TeacherConfig {
    TeacherConfig {
        eeg_channels: 3,
        eog_channels: 2,
        branch: tiny_branch(0.0),
        classifier: tiny_classifier(0.0),
    }
}

pub(super) fn tiny_student(dropout: f64) -> StudentConfig {
    StudentConfig {
        channels: 2,
        branch: tiny_branch(dropout),
        classifier: tiny_classifier(dropout),
    }
}

/// The size parameters of the training stages for the tiny networks.
pub(super) fn tiny_size_params() -> Vec<(&'static str, Value)> {
    vec![
        ("temporal_filters", Value::from(2)),
        ("kernel", Value::from(8)),
        ("stride", Value::from(4)),
        ("dim", Value::from(4)),
        ("heads", Value::from(2)),
        ("ffn_dim", Value::from(4)),
        ("layers", Value::from(2)),
        ("hidden", Value::from(4)),
        ("dense_layers", Value::from(1)),
    ]
}

/// Writes learnable windows (2 subjects × 10 trials × 3 windows) and a 5-fold split
/// into `dir`; returns the folder.
pub(super) fn write_tables(dir: &Path, seed: u64) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let fix = WindowsFixture::random(2, 10, 3, &CHANNELS, SAMPLES, seed)
        .with_signal(&["Fp1", "F3", "vEOG"], 1.5);
    write_windows(&data.join("windows.parquet"), &fix).unwrap();
    write_splits(&data.join("splits.parquet"), &kfold_splits(2, 10, 5)).unwrap();
    data
}

/// The stage's defaults with `overrides`, resolved as the engine resolves them.
pub(super) fn params(stage: &dyn Stage, overrides: &[(&str, Value)]) -> Params {
    let given: Map<String, Value> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    crate::test_support::params_for(stage, Value::Object(given))
}

/// A context writing into a fresh `out` folder under `root`.
pub(super) fn context(
    root: &Path,
    name: &str,
    params: Params,
    inputs: Vec<Input>,
    seed: u64,
    threads: usize,
) -> Context {
    let out = root.join(name);
    std::fs::create_dir_all(&out).unwrap();
    let mut ctx = Context::for_test(params, &out);
    ctx.inputs = inputs;
    ctx.seed = seed;
    ctx.threads = threads;
    ctx
}

/// Fold 0, valence, EEG + EOG of [`write_tables`]`(dir, 3)`.
pub(super) fn load(dir: &Path) -> crate::train::dataset::FoldData {
    use crate::train::dataset::{FoldData, Modality, Target};
    let data = write_tables(dir, 3);
    FoldData::load(
        &data.join("windows.parquet"),
        &data.join("splits.parquet"),
        0,
        Target::Valence,
        &[Modality::Eeg, Modality::Eog],
    )
    .unwrap()
}
