//! The cache key of an instance.
//!
//! blake3 over the canonical JSON of: the stage (built-in name and implementation
//! version, or the shell command), the resolved parameters (less those the stage
//! declares inert given the others, `ParamSet::inert`, through `Stage::schema`), the matrix cell, the
//! compute backend, the content digests of its upstream outputs and of the external
//! files it reads. Input *digests*, not upstream keys: an upstream stage that reran
//! and wrote the same bytes leaves this key unchanged (early cut-off).

use serde_json::{json, Value};

use super::canonical;
use crate::graph::Instance;
use crate::spec::Action;

/// Bump when the key's composition changes (invalidates every cache entry).
pub(crate) const KEY_SCHEMA: u32 = 1;

/// An upstream output as the key sees it.
pub(crate) struct KeyInput<'a> {
    pub label: &'a str,
    pub digest: &'a str,
}

pub(crate) fn compute(
    inst: &Instance,
    inputs: &[KeyInput],
    externals: &[(String, String)],
) -> String {
    let command = match &inst.action {
        Action::Run(_) => inst.params.get("command").cloned().unwrap_or(Value::Null),
        Action::Uses(_) => Value::Null,
    };
    canonical::digest(&json!({
        "key_schema": KEY_SCHEMA,
        "uses": inst.uses(),
        "version": inst.version,
        "command": command,
        "params": Value::Object(inst.key_params()),
        "cell": Value::Object(inst.cell.clone().into_iter().collect()),
        "backend": inst.backend.to_string(),
        "seed": inst.seed,
        "inputs": inputs.iter().map(|i| json!({"label": i.label, "digest": i.digest})).collect::<Vec<_>>(),
        "externals": externals.iter().map(|(what, d)| json!({"what": what, "digest": d})).collect::<Vec<_>>(),
    }))
}
