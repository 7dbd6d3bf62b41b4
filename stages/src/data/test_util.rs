//! Helpers for the data stages' tests: contexts with resolved parameters and
//! upstream folders, and Parquet metadata.

use std::path::Path;

use serde_json::{Map, Value};

use crate::stage::{Context, Input, Params, Stage};

/// The stage's defaults overridden by `overrides` (a JSON object), coerced as the
/// engine would.
pub fn params_for(stage: &dyn Stage, overrides: Value) -> Params {
    Params::resolve(stage, &overrides).unwrap_or_else(|e| panic!("{e}"))
}

/// A context whose upstream folders are `inputs` (stage name, folder).
pub fn context(
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
pub fn parquet_metadata(path: &Path) -> std::collections::BTreeMap<String, String> {
    crate::data::provenance::parquet_metadata(path).unwrap()
}
