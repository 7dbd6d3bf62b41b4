//! The command line (clap derive). One subcommand, one module in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::graph::render::Format;

#[derive(Debug, Parser)]
#[command(
    name = "pipe",
    version,
    about = "Declarative, content-hashed pipelines for multimodal knowledge-distillation emotion recognition"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors and the final table.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Options shared by commands that read a pipeline file.
#[derive(Debug, Args, Clone)]
pub struct PipelineArgs {
    /// The pipeline file (YAML).
    pub file: PathBuf,
    /// Override a parameter: STAGE.PARAM=VALUE or params.NAME=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Only this variation.
    #[arg(long)]
    pub variation: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct CacheArgs {
    /// Cache folder [default: cache/ in the project root].
    #[arg(long, env = "PIPE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run what is not cached, then print the results table and write the report.
    Run(RunArgs),
    /// Show what would run and why, without running anything.
    Plan(PlanArgs),
    /// Print the instance graph.
    Dag(DagArgs),
    /// Show a run's manifest: parameters, inputs, outputs, metrics.
    Show(ShowArgs),
    /// List the built-in stages with every parameter.
    Stages(StagesArgs),
    /// Remove cache entries no pipeline refers to.
    Gc(GcArgs),
    /// Re-hash the cache and report corrupt entries.
    Verify(VerifyArgs),
    /// Compare the metrics of two runs (or a run and a baseline); exit 4 on a regression.
    Diff(DiffArgs),
    /// Benchmarks of the engine (no-op rerun, hashing, planning).
    Bench(BenchArgs),
    /// Print the content digest the cache uses for a file or folder (blake3; like b3sum for a file).
    Hash { paths: Vec<PathBuf> },
    /// Run one job file (used by executors).
    #[command(hide = true)]
    Exec { job: PathBuf },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Instances run at once; with the Slurm executor, jobs queued at once
    /// [default: number of cores; Slurm: 64].
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Where instances run: child processes here, or one `sbatch` job each on a Slurm
    /// cluster sharing the cache's filesystem [default: the pipeline file's
    /// `executor:`, else local].
    #[arg(long, value_enum, env = "PIPE_EXECUTOR")]
    pub executor: Option<crate::spec::ExecutorKind>,
    /// Run only these stages and what they need.
    #[arg(long, value_name = "STAGE")]
    pub only: Vec<String>,
    /// Rerun this stage's instances even if cached (dependents rerun only if its outputs change).
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<String>,
    /// Show the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop starting new instances after the first failure (default: independent
    /// instances still run; only dependents of a failed instance are skipped).
    #[arg(long)]
    pub fail_fast: bool,
    /// Where to write results.json [default: reports/<pipeline> in the project root].
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[arg(long, value_name = "STAGE")]
    pub only: Vec<String>,
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DagArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A cache key (or a unique prefix of one), or a stage name / instance label.
    pub what: String,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Print the manifest JSON as is.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StagesArgs {
    /// Only this stage.
    pub name: Option<String>,
    /// As JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Keep what these pipeline files (with their variations) refer to.
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Also keep runs used in the last N days.
    #[arg(long, value_name = "N")]
    pub keep_days: Option<u64>,
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Remove corrupt entries so the next run recomputes them.
    #[arg(long)]
    pub fix: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Size of the file hashed, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub hash_mib: u64,
    /// Instances in the no-op rerun benchmark.
    #[arg(long, default_value_t = 100)]
    pub instances: usize,
    /// Cells in the planning benchmark.
    #[arg(long, default_value_t = 10_000)]
    pub plan_cells: usize,
    /// Folder for the benchmark's files [default: a temporary folder].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Write the numbers as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The reference: a results.json (a committed baseline) or a report folder.
    pub baseline: PathBuf,
    /// The run to check: a results.json or a report folder.
    pub current: PathBuf,
    /// Tolerance for metrics matching a pattern (`*` wildcards), e.g. `--tol '*accuracy*=0.5'`;
    /// later ones win.
    #[arg(long = "tol", value_name = "PATTERN=ABS")]
    pub tolerance: Vec<String>,
    /// Tolerance for every other metric.
    #[arg(long, default_value_t = 1e-9)]
    pub default_tolerance: f64,
    /// Leave out metrics matching these patterns (e.g. timings).
    #[arg(long, value_name = "PATTERN")]
    pub ignore: Vec<String>,
    /// Fail on any change beyond tolerance, improvements included.
    #[arg(long)]
    pub strict: bool,
    /// Do not fail when a baseline metric is missing from the current run.
    #[arg(long)]
    pub allow_missing: bool,
    /// Also list metrics within tolerance.
    #[arg(long)]
    pub all: bool,
}
