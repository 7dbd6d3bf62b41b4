//! Helpers for the data stages' tests: contexts with resolved parameters and
//! upstream folders, and Parquet metadata.

use std::path::Path;

use serde_json::{Map, Value};

use crate::stage::{Context, Input, Params, Stage};

/// The stage's defaults overridden by `overrides` (a JSON object), coerced as the
/// engine would.
pub fn params_for(stage: &dyn Stage, overrides: Value) -> Params {
    let mut m = Map::new();
    for spec in stage.params() {
        let v = overrides
            .get(&spec.name)
            .cloned()
            .or(spec.default.clone())
            .unwrap_or(Value::Null);
        let v = if v.is_null() {
            v
        } else {
            spec.kind
                .coerce(&v)
                .unwrap_or_else(|e| panic!("{}: {e}", spec.name))
        };
        m.insert(spec.name.clone(), v);
    }
    if let Value::Object(o) = &overrides {
        for k in o.keys() {
            assert!(m.contains_key(k), "{} has no parameter {k}", stage.name());
        }
    }
    Params(m)
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
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    r.metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}
