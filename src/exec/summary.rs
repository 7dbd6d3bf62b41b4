//! What a run did, per instance: the scheduler fills it, the tables and the report
//! read it.

use std::path::PathBuf;

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Status {
    Cached,
    Ran,
    Failed(String),
    /// Not run because something it needs failed, `--fail-fast` or an interrupt
    /// stopped the run.
    Skipped(String),
    /// Left out by `--only`.
    NotSelected,
}

impl Status {
    pub(crate) fn word(&self) -> &'static str {
        match self {
            Status::Cached => "cached",
            Status::Ran => "ran",
            Status::Failed(_) => "FAILED",
            Status::Skipped(_) => "skipped",
            Status::NotSelected => "not selected",
        }
    }
}

/// What happened to one instance.
#[derive(Debug, Clone)]
pub(crate) struct InstanceReport {
    pub label: String,
    pub stage: String,
    pub uses: String,
    pub variations: Vec<String>,
    pub cell: Map<String, Value>,
    pub status: Status,
    pub seconds: f64,
    pub key: Option<String>,
    pub metrics: Map<String, Value>,
    pub log: Option<PathBuf>,
    /// Output folder in the cache (where the report reads the instance's `report.json`).
    pub out_dir: Option<PathBuf>,
}

pub(crate) struct RunSummary {
    pub instances: Vec<InstanceReport>,
    pub seconds: f64,
    /// The run was stopped by SIGINT / SIGTERM.
    pub interrupted: bool,
}

impl RunSummary {
    pub(crate) fn failed(&self) -> usize {
        self.instances
            .iter()
            .filter(|r| matches!(r.status, Status::Failed(_)))
            .count()
    }
}
