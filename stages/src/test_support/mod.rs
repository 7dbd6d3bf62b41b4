//! The one home of the stage library's test helpers: contexts with parameters
//! resolved as the engine resolves them and upstream folders, Parquet metadata, and
//! small `windows.parquet` / `splits.parquet` tables ([`windows`]).
//!
//! The convention for tests in this crate: a module's unit tests are in its
//! `#[cfg(test)] mod tests` (inline, or in a sibling `<module>_tests.rs` / `tests.rs`
//! when they outgrow the file); tests that exercise several modules of one area
//! together are in that area's `tests/` folder (`model/tests/`, `train/tests/`);
//! helpers shared by more than one test module are here.

pub(crate) mod windows;

use std::path::Path;

use serde_json::{Map, Value};

use crate::params::Params;
use crate::stage::{Context, Input, Stage};

/// The stage's defaults overridden by `overrides` (a JSON object), coerced as the
/// engine would.
pub(crate) fn params_for(stage: &dyn Stage, overrides: Value) -> Params {
    Params::resolve(stage, &overrides).unwrap_or_else(|e| panic!("{e}"))
}

/// A context whose upstream folders are `inputs` (stage name, folder).
pub(crate) fn context(
    stage: &dyn Stage,
    overrides: Value,
    inputs: &[(&str, &Path)],
    out: &Path,
) -> Context {
    let mut ctx = Context::for_test(params_for(stage, overrides.clone()), out);
    ctx.inputs = inputs
        .iter()
        .map(|(name, dir)| Input {
            stage: name.to_string(),
            cell: Map::new(),
            dir: dir.to_path_buf(),
        })
        .collect();
    if let Some(seed) = overrides.get("seed").and_then(Value::as_u64) {
        ctx.seed = seed;
    }
    ctx
}

/// A Parquet file's key-value metadata.
pub(crate) fn parquet_metadata(path: &Path) -> std::collections::BTreeMap<String, String> {
    crate::data::provenance::parquet_metadata(path).unwrap()
}

/// An upstream folder as a context input, from the cell (`fold`, `target`) of a
/// training instance.
pub(crate) fn input(stage: &str, dir: &Path, fold: i64, target: &str) -> Input {
    let mut cell = Map::new();
    cell.insert("fold".into(), Value::from(fold));
    cell.insert("target".into(), Value::from(target));
    Input {
        stage: stage.into(),
        cell,
        dir: dir.to_path_buf(),
    }
}
