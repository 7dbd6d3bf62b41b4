//! The last key each instance of each pipeline had, so `pipe plan` can say *why*
//! an instance reruns (parameter changed, input changed, version bumped...) and
//! `pipe show STAGE` can find runs by name.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::store::{atomic_write, Cache};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Ref {
    pub pipeline: String,
    pub label: String,
    pub variations: Vec<String>,
    pub key: String,
}

fn slot(cache: &Cache, pipeline: &str, label: &str, variations: &[String]) -> PathBuf {
    let id = blake3::hash(format!("{label}\0{}", variations.join(",")).as_bytes()).to_hex();
    let dir: String = pipeline
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    cache.root.join("refs").join(dir).join(&id.as_str()[..32])
}

pub(crate) fn read(
    cache: &Cache,
    pipeline: &str,
    label: &str,
    variations: &[String],
) -> Option<Ref> {
    let bytes = fs::read(slot(cache, pipeline, label, variations)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(crate) fn write(cache: &Cache, r: &Ref) {
    let path = slot(cache, &r.pipeline, &r.label, &r.variations);
    if let Some(parent) = path.parent() {
        let _ = fs::create_dir_all(parent);
    }
    if let Ok(json) = serde_json::to_vec(r) {
        // refs only explain; losing one must not fail a run
        let _ = atomic_write(&path, &json, &cache.tmp_dir());
    }
}

/// Every ref in the cache.
pub(crate) fn all(cache: &Cache) -> Vec<Ref> {
    let mut out = Vec::new();
    let Ok(dirs) = fs::read_dir(cache.root.join("refs")) else {
        return out;
    };
    for d in dirs.flatten() {
        let Ok(files) = fs::read_dir(d.path()) else {
            continue;
        };
        for f in files.flatten() {
            if let Some(r) = fs::read(f.path())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                out.push(r);
            }
        }
    }
    out
}
