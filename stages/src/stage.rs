//! The one interface between the engine and the stage library.
//!
//! A stage is a named, versioned unit of work with a declared parameter schema. The
//! engine resolves parameters, hashes inputs, creates an empty output folder and calls
//! [`Stage::run`] with a [`Context`]. A stage never sees the cache, the DAG or the
//! pipeline file: it reads the folders of its upstream instances, writes files into
//! its own output folder and returns metrics.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::params::{ParamSchema, ParamSet, Params};

/// A built-in stage.
pub trait Stage: Send + Sync {
    /// The name used after `uses:` in a pipeline file (kebab-case).
    fn name(&self) -> &'static str;
    /// Implementation version: bump it whenever the same inputs and parameters would
    /// give different outputs. It is part of the cache key.
    fn version(&self) -> u32;
    /// One line shown by `pipe stages`.
    fn doc(&self) -> &'static str;
    /// Every parameter the stage accepts (`with:` is checked against it before
    /// anything runs) and which of them are inert given the others: the engine leaves
    /// those out of the cache key, so changing one reruns nothing (`distill` with
    /// `feedback: none` ignores the feedback constants). One line:
    /// `ParamSchema::of::<MyParams>()`, the set declared with [`crate::stage_params!`].
    fn schema(&self) -> ParamSchema;
    /// The files this stage reads from upstream instances (e.g. `windows.parquet`).
    fn consumes(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// The files this stage writes into its output folder.
    fn produces(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// What one instance asks a cluster for (`sbatch` options) unless the pipeline
    /// file's `resources:` says otherwise. Not part of the cache key.
    fn resources(&self) -> crate::Resources {
        crate::Resources::data()
    }
    /// Do the work.
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError>;
}

/// The output folder of one upstream instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Input {
    /// The upstream stage's name in the pipeline file. (Which variations an instance
    /// belongs to is deliberately not given to stages: it is not part of the cache
    /// key, and the engine's report labels results by variation.)
    pub stage: String,
    /// The upstream instance's matrix cell (axis → value), empty without a matrix.
    pub cell: Map<String, Value>,
    /// Its (read-only) output folder.
    pub dir: PathBuf,
}

/// The compute backend a stage should use. Part of the cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Cpu,
    Cuda,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
        })
    }
}

/// Progress of long work (epochs, subjects). Implementations must be cheap.
pub trait Progress: Send + Sync {
    /// Start a phase with `total` steps (0 when unknown).
    fn start(&self, phase: &str, total: u64);
    /// `done` of `total` steps finished; `message` is shown next to the bar
    /// (e.g. "loss 0.412 val acc 61.3%").
    fn update(&self, done: u64, message: &str);
}

/// A reporter that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn update(&self, _: u64, _: &str) {}
}

/// Everything a stage gets from the engine.
pub struct Context {
    pub params: Params,
    /// The matrix cell of this instance (axis → value).
    pub cell: Map<String, Value>,
    /// Upstream output folders, in `needs` order, cells in matrix order.
    pub inputs: Vec<Input>,
    /// Empty folder for this instance's outputs.
    pub out_dir: PathBuf,
    /// Folder for scratch files (deleted afterwards, never cached).
    pub scratch_dir: PathBuf,
    /// Seed for this instance: the `seed` parameter when the stage has one,
    /// otherwise derived from the pipeline file's `seed` param and the cell.
    pub seed: u64,
    pub backend: Backend,
    /// Worker threads this instance may use.
    pub threads: usize,
    pub progress: Arc<dyn Progress>,
    pub cancel: Arc<AtomicBool>,
}

impl Context {
    /// A context for tests and benchmarks: no inputs, no progress.
    pub fn for_test(params: Params, out_dir: &Path) -> Context {
        Context {
            params,
            cell: Map::new(),
            inputs: Vec::new(),
            out_dir: out_dir.to_path_buf(),
            scratch_dir: std::env::temp_dir(),
            seed: 0,
            backend: Backend::Cpu,
            threads: 1,
            progress: Arc::new(NoProgress),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    /// This instance's parameters, typed: `let p: DistillParams = ctx.params()?`.
    pub fn params<P: ParamSet>(&self) -> Result<P, StageError> {
        P::read(&self.params)
    }

    /// A pool of the [`Context::threads`] worker threads this instance may use.
    pub fn thread_pool(&self) -> Result<rayon::ThreadPool, StageError> {
        thread_pool(self.threads)
    }

    /// Err(Cancelled) once the user asked to stop (Ctrl-C); call it between steps.
    pub fn check_cancelled(&self) -> Result<(), StageError> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(StageError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// The first upstream folder that holds `file`.
    pub fn input_file(&self, file: &str) -> Result<PathBuf, StageError> {
        self.input_files(file)?
            .into_iter()
            .next()
            .map(|(_, p)| p)
            .ok_or_else(|| self.missing_input(file))
    }

    /// Every upstream instance that holds `file`, with the instance (for fan-in).
    pub fn input_files(&self, file: &str) -> Result<Vec<(&Input, PathBuf)>, StageError> {
        let found: Vec<_> = self
            .inputs
            .iter()
            .filter_map(|i| {
                let p = i.dir.join(file);
                p.exists().then_some((i, p))
            })
            .collect();
        if found.is_empty() {
            return Err(self.missing_input(file));
        }
        Ok(found)
    }

    fn missing_input(&self, file: &str) -> StageError {
        let have: Vec<String> = self.inputs.iter().map(|i| i.stage.clone()).collect();
        StageError::MissingInput {
            file: file.to_string(),
            upstream: if have.is_empty() {
                "none".into()
            } else {
                have.join(", ")
            },
        }
    }

    /// A matrix cell value as a string (e.g. `target` → "arousal").
    pub fn cell_str(&self, axis: &str) -> Option<String> {
        self.cell.get(axis).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// A rayon pool of `threads` workers (at least one).
pub(crate) fn thread_pool(threads: usize) -> Result<rayon::ThreadPool, StageError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| StageError::Data(format!("cannot start {threads} worker threads: {e}")))
}

/// What a successful run returns besides its files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// Metrics to record in the run's manifest and the report (flat or nested JSON).
    pub metrics: Map<String, Value>,
}

impl Outcome {
    pub fn with_metrics(metrics: Map<String, Value>) -> Self {
        Outcome { metrics }
    }
}

/// Why a stage failed. Messages name the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Param(String),
    #[error("no upstream stage provides `{file}` (upstream: {upstream}); add the stage that writes it to `needs`")]
    MissingInput { file: String, upstream: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    #[error("{0}")]
    Data(String),
    #[error("{0}")]
    Model(String),
    #[error("cancelled")]
    Cancelled,
}

impl StageError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StageError::Io {
            path: path.into(),
            source,
        }
    }
    pub fn bad_file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        StageError::BadFile {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Extension to attach a path to `std::io::Result`s.
pub trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T, StageError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T, StageError> {
        self.map_err(|e| StageError::io(path, e))
    }
}
