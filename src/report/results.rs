//! `results.json`: every instance of a run with its metrics, for reports and `pipe diff`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::exec::summary::{RunSummary, Status};

pub(crate) const RESULTS_SCHEMA: u32 = 1;

/// Write `results.json` into `dir`; returns its path.
pub(crate) fn write(dir: &Path, pipeline: &str, summary: &RunSummary) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let instances: Vec<Value> = summary
        .instances
        .iter()
        .filter(|r| matches!(r.status, Status::Ran | Status::Cached))
        .map(|r| {
            json!({
                "label": r.label,
                "stage": r.stage,
                "uses": r.uses,
                "cell": r.cell,
                "variations": r.variations,
                "key": r.key,
                "status": r.status.word(),
                "seconds": r.seconds,
                "metrics": r.metrics,
            })
        })
        .collect();
    let doc = json!({
        "schema_version": RESULTS_SCHEMA,
        "pipeline": pipeline,
        "finished": crate::cache::manifest::rfc3339(std::time::SystemTime::now()),
        "instances": instances,
    });
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).expect("json"))?;
    Ok(path)
}
