//! An instance's cache key, once its upstream outputs are known.

use serde_json::Value;

use crate::cache::key::{self, KeyInput};
use crate::cache::manifest::{ExternalRecord, InputRecord};
use crate::cache::Cache;
use crate::graph::{Dag, Instance};

/// The upstream output an instance reads: key and content digest.
#[derive(Debug, Clone)]
pub(crate) struct Produced {
    pub key: String,
    pub digest: String,
}

/// A key with what went into it (for the manifest and for `plan` reasons).
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub key: String,
    pub inputs: Vec<InputRecord>,
    pub externals: Vec<ExternalRecord>,
}

/// The key of instance `i` given its upstream outputs (`produced[u]` for each need).
/// Fails when an external input cannot be read.
pub(crate) fn resolve(
    cache: &Cache,
    dag: &Dag,
    i: usize,
    produced: &[Option<Produced>],
) -> Result<Option<Resolved>, String> {
    let inst = &dag.instances[i];
    let mut inputs = Vec::with_capacity(inst.needs.len());
    for &u in &inst.needs {
        let Some(p) = &produced[u] else {
            return Ok(None);
        };
        inputs.push(InputRecord {
            label: dag.instances[u].label(),
            key: p.key.clone(),
            digest: p.digest.clone(),
        });
    }
    let externals = external_digests(cache, inst)?;
    let key_inputs: Vec<KeyInput> = inputs
        .iter()
        .map(|r| KeyInput {
            label: &r.label,
            digest: &r.digest,
        })
        .collect();
    let ext: Vec<(String, String)> = externals
        .iter()
        .map(|e| (e.what.clone(), e.digest.clone()))
        .collect();
    Ok(Some(Resolved {
        key: key::compute(inst, &key_inputs, &ext),
        inputs,
        externals,
    }))
}

fn external_digests(cache: &Cache, inst: &Instance) -> Result<Vec<ExternalRecord>, String> {
    inst.externals
        .iter()
        .map(|e| {
            let digest = cache.stat.digest(&e.path).map_err(|err| {
                if err.kind() == std::io::ErrorKind::NotFound {
                    let hint = e
                        .hint
                        .as_deref()
                        .map(|h| format!(" — {h}"))
                        .unwrap_or_default();
                    format!("{}: {} does not exist{hint}", e.what, e.path.display())
                } else {
                    format!("{}: cannot read {}: {err}", e.what, e.path.display())
                }
            })?;
            Ok(ExternalRecord {
                what: e.what.clone(),
                path: e.path.display().to_string(),
                digest,
            })
        })
        .collect()
}

/// Why an instance must run, compared with the last run of the same instance.
pub(crate) fn reason(cache: &Cache, pipeline: &str, inst: &Instance, now: &Resolved) -> String {
    let Some(r) = crate::cache::refs::read(cache, pipeline, &inst.label(), &inst.variations) else {
        return "new".into();
    };
    if r.key == now.key {
        return "output missing".into();
    }
    let Some(old) = cache.manifest(&r.key) else {
        return "new (earlier run no longer cached)".into();
    };
    let mut why = Vec::new();
    if old.version != inst.version {
        why.push(format!("version bumped {} → {}", old.version, inst.version));
    }
    let mut keys: Vec<&String> = old.params.keys().chain(inst.params.keys()).collect();
    keys.sort();
    keys.dedup();
    // Inert parameters (given the current values) are not in the key: not a reason.
    keys.retain(|k| !inst.inert.contains(k));
    for k in keys {
        let (a, b) = (old.params.get(k), inst.params.get(k));
        if a != b {
            let show =
                |v: Option<&Value>| v.map_or("(unset)".to_string(), crate::graph::instance::show);
            why.push(format!("param {k}: {} → {}", show(a), show(b)));
        }
    }
    if old.backend != inst.backend.to_string() {
        why.push(format!("backend {} → {}", old.backend, inst.backend));
    }
    for input in &now.inputs {
        match old.inputs.iter().find(|o| o.label == input.label) {
            Some(o) if o.digest == input.digest => {}
            Some(_) => why.push(format!("input {} changed", input.label)),
            None => why.push(format!("new input {}", input.label)),
        }
    }
    for e in &now.externals {
        match old.externals.iter().find(|o| o.what == e.what) {
            Some(o) if o.digest == e.digest => {}
            _ => why.push(format!("{} changed ({})", e.what, e.path)),
        }
    }
    if why.is_empty() {
        why.push("key changed".into());
    }
    why.join("; ")
}
