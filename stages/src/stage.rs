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

/// A built-in stage.
pub trait Stage: Send + Sync {
    /// The name used after `uses:` in a pipeline file (kebab-case).
    fn name(&self) -> &'static str;
    /// Implementation version: bump it whenever the same inputs and parameters would
    /// give different outputs. It is part of the cache key.
    fn version(&self) -> u32;
    /// One line shown by `pipe stages`.
    fn doc(&self) -> &'static str;
    /// Every parameter the stage accepts; `with:` is checked against this before
    /// anything runs.
    fn params(&self) -> Vec<ParamSpec>;
    /// The parameters that cannot change this stage's outputs, given the values of
    /// all of them (resolved, defaults filled): the engine leaves these out of the
    /// cache key, so changing one reruns nothing. `distill` with `feedback: none`
    /// ignores the feedback constants. Default: none.
    fn inert_params(&self, _params: &Params) -> Vec<&'static str> {
        Vec::new()
    }
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

/// The type of a parameter value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "of")]
pub enum ParamKind {
    Int,
    Float,
    Bool,
    Str,
    /// One of a fixed set of strings.
    Choice(Vec<String>),
    /// A list of strings (e.g. channel names).
    StrList,
    /// A file or folder read from outside the cache. The engine hashes its content
    /// (with a stat cache) into the cache key, and passes the absolute path.
    Path,
}

impl ParamKind {
    pub fn choice(options: &[&str]) -> Self {
        ParamKind::Choice(options.iter().map(|s| s.to_string()).collect())
    }

    /// Human-readable type name (`int`, `float`, `one of a|b`...).
    pub fn describe(&self) -> String {
        match self {
            ParamKind::Int => "int".into(),
            ParamKind::Float => "float".into(),
            ParamKind::Bool => "bool".into(),
            ParamKind::Str => "string".into(),
            ParamKind::Choice(o) => format!("one of {}", o.join("|")),
            ParamKind::StrList => "list of strings".into(),
            ParamKind::Path => "path".into(),
        }
    }

    /// Check and normalise a value: ints given where floats are expected become
    /// floats, numeric strings (from `${...}` interpolation or `--set`) become numbers.
    pub fn coerce(&self, v: &Value) -> Result<Value, String> {
        let wrong = || format!("expected {}, found {}", self.describe(), show_value(v));
        match self {
            ParamKind::Int => match v {
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
                Value::Number(n) => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Value::from(f as i64)),
                    _ => Err(wrong()),
                },
                Value::String(s) => s
                    .trim()
                    .parse::<i64>()
                    .map(Value::from)
                    .map_err(|_| wrong()),
                _ => Err(wrong()),
            },
            ParamKind::Float => match v {
                Value::Number(n) => n
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(Value::from)
                    .ok_or_else(wrong),
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Value::from)
                    .ok_or_else(wrong),
                _ => Err(wrong()),
            },
            ParamKind::Bool => match v {
                Value::Bool(_) => Ok(v.clone()),
                Value::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
                _ => Err(wrong()),
            },
            ParamKind::Str | ParamKind::Path => match v {
                Value::String(_) => Ok(v.clone()),
                Value::Number(n) => Ok(Value::String(n.to_string())),
                _ => Err(wrong()),
            },
            ParamKind::Choice(options) => match v {
                Value::String(s) if options.iter().any(|o| o == s) => Ok(v.clone()),
                _ => Err(wrong()),
            },
            ParamKind::StrList => match v {
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::String(_) => Ok(i.clone()),
                        Value::Number(n) => Ok(Value::String(n.to_string())),
                        _ => Err(wrong()),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array),
                Value::String(s) => Ok(Value::Array(
                    s.split(',')
                        .map(|p| Value::String(p.trim().to_string()))
                        .filter(|p| p.as_str() != Some(""))
                        .collect(),
                )),
                _ => Err(wrong()),
            },
        }
    }
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("bool {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// One declared parameter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub kind: ParamKind,
    /// `None`: required.
    pub default: Option<Value>,
    pub doc: String,
    /// For a `path` parameter: what to tell a user whose path does not exist (what
    /// to download, where to put it). The engine shows it instead of `doc`.
    pub if_missing: Option<String>,
}

impl ParamSpec {
    pub fn new(name: &str, kind: ParamKind, default: impl Into<Value>, doc: &str) -> Self {
        ParamSpec {
            name: name.into(),
            kind,
            default: Some(default.into()),
            doc: doc.into(),
            if_missing: None,
        }
    }
    pub fn required(name: &str, kind: ParamKind, doc: &str) -> Self {
        ParamSpec {
            name: name.into(),
            kind,
            default: None,
            doc: doc.into(),
            if_missing: None,
        }
    }
    /// Sets [`ParamSpec::if_missing`].
    pub fn if_missing(mut self, hint: &str) -> Self {
        self.if_missing = Some(hint.into());
        self
    }
    /// An optional parameter without a default (absent from `Params` when not given).
    pub fn optional(name: &str, kind: ParamKind, doc: &str) -> Self {
        ParamSpec {
            name: name.into(),
            kind,
            default: Some(Value::Null),
            doc: doc.into(),
            if_missing: None,
        }
    }
}

/// Resolved, type-checked parameters (every declared parameter present).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// `stage`'s parameters as the engine resolves them, for running a stage outside a
    /// pipeline (examples, benches, tests): the defaults, overridden by the entries of
    /// `overrides` (a JSON object), each checked and coerced by its declared kind. A
    /// parameter without default and not given is null.
    pub fn resolve(stage: &dyn Stage, overrides: &Value) -> Result<Params, String> {
        let given = match overrides {
            Value::Object(o) => o.clone(),
            Value::Null => Map::new(),
            other => return Err(format!("overrides must be an object, got {other}")),
        };
        let specs = stage.params();
        if let Some(k) = given.keys().find(|k| !specs.iter().any(|s| &s.name == *k)) {
            return Err(format!("{} has no parameter `{k}`", stage.name()));
        }
        let mut m = Map::new();
        for spec in specs {
            let v = given
                .get(&spec.name)
                .or(spec.default.as_ref())
                .cloned()
                .unwrap_or(Value::Null);
            let v = if v.is_null() {
                v
            } else {
                spec.kind
                    .coerce(&v)
                    .map_err(|e| format!("parameter `{}`: {e}", spec.name))?
            };
            m.insert(spec.name, v);
        }
        Ok(Params(m))
    }

    fn get(&self, name: &str) -> Result<&Value, StageError> {
        self.0
            .get(name)
            .ok_or_else(|| StageError::Param(format!("parameter `{name}` is missing")))
    }
    pub fn is_set(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|v| !v.is_null())
    }
    pub fn f64(&self, name: &str) -> Result<f64, StageError> {
        self.get(name)?
            .as_f64()
            .ok_or_else(|| StageError::Param(format!("parameter `{name}` is not a number")))
    }
    pub fn f32(&self, name: &str) -> Result<f32, StageError> {
        self.f64(name).map(|v| v as f32)
    }
    pub fn i64(&self, name: &str) -> Result<i64, StageError> {
        self.get(name)?
            .as_i64()
            .ok_or_else(|| StageError::Param(format!("parameter `{name}` is not an integer")))
    }
    /// A non-negative integer.
    pub fn usize(&self, name: &str) -> Result<usize, StageError> {
        let v = self.i64(name)?;
        usize::try_from(v)
            .map_err(|_| StageError::Param(format!("parameter `{name}` must be >= 0, got {v}")))
    }
    pub fn bool(&self, name: &str) -> Result<bool, StageError> {
        self.get(name)?
            .as_bool()
            .ok_or_else(|| StageError::Param(format!("parameter `{name}` is not a bool")))
    }
    pub fn str(&self, name: &str) -> Result<&str, StageError> {
        self.get(name)?
            .as_str()
            .ok_or_else(|| StageError::Param(format!("parameter `{name}` is not a string")))
    }
    pub fn str_list(&self, name: &str) -> Result<Vec<String>, StageError> {
        match self.get(name)? {
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_string).ok_or_else(|| {
                        StageError::Param(format!("parameter `{name}` is not a list of strings"))
                    })
                })
                .collect(),
            _ => Err(StageError::Param(format!(
                "parameter `{name}` is not a list of strings"
            ))),
        }
    }
    pub fn path(&self, name: &str) -> Result<PathBuf, StageError> {
        self.str(name).map(PathBuf::from)
    }
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
