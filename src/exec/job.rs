//! A job: everything needed to run one instance in its own process, from a file.
//! This is the boundary a cluster executor (Slurm) will use: submit the job file,
//! poll, cancel, read the log; the scheduler, locks and publishing stay in `pipe run`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use stages::{Backend, Input};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Job {
    pub key: String,
    pub label: String,
    /// Built-in stage name; `None` for `run:` stages.
    pub uses: Option<String>,
    /// Shell command of a `run:` stage.
    pub command: Option<String>,
    /// Files a `run:` stage must write, relative to `out_dir`.
    pub outs: Vec<String>,
    pub params: Map<String, Value>,
    pub cell: Map<String, Value>,
    pub variations: Vec<String>,
    pub inputs: Vec<Input>,
    pub out_dir: PathBuf,
    pub scratch_dir: PathBuf,
    /// Where the job writes its [`JobResult`].
    pub result_path: PathBuf,
    /// Working folder of `run:` commands (the project root).
    pub root: PathBuf,
    pub seed: u64,
    pub backend: Backend,
    pub threads: usize,
}

/// What a finished job reports back.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub(crate) struct JobResult {
    pub ok: bool,
    pub metrics: Map<String, Value>,
    pub error: Option<String>,
}

impl Job {
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(
            path,
            serde_json::to_vec_pretty(self).expect("jobs serialize"),
        )
    }
    pub(crate) fn read(path: &Path) -> Result<Job, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a job file: {e}", path.display()))
    }
}

/// One line of the progress protocol a job writes to its standard output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub(crate) enum ProgressLine {
    Start { phase: String, total: u64 },
    Update { done: u64, message: String },
}
