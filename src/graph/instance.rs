//! One stage instance: a stage at one matrix cell with fully resolved parameters.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde_json::{Map, Value};
use stages::Backend;

use crate::spec::Action;

/// A file or folder an instance reads from outside the cache (a `path` parameter or
/// a `run:` stage's `deps`). Its content digest goes into the cache key.
#[derive(Debug, Clone)]
pub(crate) struct External {
    /// `param path`, `deps[0]`...
    pub what: String,
    /// The parameter it fills, for `Path` parameters.
    pub param: Option<String>,
    pub path: PathBuf,
    /// What it should be (the parameter's doc), shown when it is missing.
    pub hint: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Instance {
    /// The stage's name in the pipeline file.
    pub stage: String,
    pub action: Action,
    pub version: u32,
    pub cell: IndexMap<String, Value>,
    /// Resolved parameters as written (defaults filled, types checked). For `run:`
    /// stages: `command`, `deps`, `outs`.
    pub params: Map<String, Value>,
    /// Parameters the stage declares irrelevant given the others
    /// (`ParamSet::inert`, through `Stage::schema`): passed to the stage, left out of the cache key.
    pub inert: Vec<String>,
    pub externals: Vec<External>,
    /// Upstream instances, in `needs` order.
    pub needs: Vec<usize>,
    /// The variations this instance belongs to (it is shared when identical).
    pub variations: Vec<String>,
    /// Identity before running: stage, version, params, cell, backend, upstream ids.
    /// Equal ids across variations are merged into one instance.
    pub static_id: String,
    pub backend: Backend,
    pub seed: u64,
    /// What a cluster executor asks for: the stage's defaults with the file's
    /// `resources:`. Not part of the cache key.
    pub resources: stages::Resources,
}

impl Instance {
    /// The parameters that identify the outputs: `params` without the inert ones.
    pub(crate) fn key_params(&self) -> Map<String, Value> {
        self.params
            .iter()
            .filter(|(k, _)| !self.inert.iter().any(|i| i == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// `teacher[target=arousal, fold=0]`.
    pub(crate) fn label(&self) -> String {
        if self.cell.is_empty() {
            return self.stage.clone();
        }
        let cell: Vec<String> = self
            .cell
            .iter()
            .map(|(k, v)| format!("{k}={}", show(v)))
            .collect();
        format!("{}[{}]", self.stage, cell.join(", "))
    }

    /// `train-teacher` or `run`.
    pub(crate) fn uses(&self) -> &str {
        match &self.action {
            Action::Uses(s) => s.name(),
            Action::Run(_) => "run",
        }
    }
}

/// A JSON value as a user would write it (strings unquoted).
pub(crate) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
