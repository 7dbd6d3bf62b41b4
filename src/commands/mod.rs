//! One module per subcommand; `dispatch` is the only match over commands.

mod bench;
mod dag;
mod diff;
mod gc;
mod hash;
mod plan;
mod run;
mod show;
mod stages;
mod verify;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::cache::{Cache, CacheError};
use crate::cli::{CacheArgs, Cli, Command, PipelineArgs};
use crate::exit_codes;
use crate::graph::Dag;
use crate::spec::{self, LoadError, Loaded};

/// Why a command failed; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The pipeline file could not be read or is invalid (exit 2).
    #[error(transparent)]
    Pipeline(#[from] LoadError),
    /// The cache is unusable (exit 3).
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The scheduler could not go on (its own exit code).
    #[error(transparent)]
    Run(Box<crate::exec::scheduler::RunError>),
    /// A bad command line (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

impl Failure {
    /// The documented exit code ([`crate::exit_codes`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Pipeline(_) | Failure::Usage(_) => exit_codes::USAGE,
            Failure::Cache(_) => exit_codes::CACHE,
            Failure::Run(e) => e.exit_code(),
            Failure::Other(_) => exit_codes::STAGE_FAILED,
        }
    }

    /// The message users see, with caret excerpts for pipeline-file errors.
    pub fn render(&self) -> String {
        match self {
            Failure::Pipeline(LoadError::Invalid(errs)) => {
                let mut out: String = errs.errors.iter().map(|e| render_diagnostic(e)).collect();
                let n = errs.errors.len();
                out.push_str(&format!(
                    "error: {n} error{} in {}; nothing ran\n",
                    if n == 1 { "" } else { "s" },
                    errs.file
                ));
                out
            }
            other => format!("error: {other}\n"),
        }
    }
}

/// Colours on standard error: a terminal, and `NO_COLOR` unset or empty.
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

fn render_diagnostic(d: &dyn miette::Diagnostic) -> String {
    let theme = if color_enabled() {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    if handler.render_report(&mut out, d).is_err() {
        out = format!("error: {d}\n");
    }
    out
}

/// Run the command `cli` names; `Ok` holds the exit code.
pub fn dispatch(cli: Cli) -> Result<i32, Failure> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Run(args) => run::run(args, quiet),
        Command::Plan(args) => plan::plan(args),
        Command::Dag(args) => dag::dag(args),
        Command::Show(args) => show::show(args),
        Command::Stages(args) => stages::stages(args),
        Command::Gc(args) => gc::gc(args),
        Command::Verify(args) => verify::verify(args),
        Command::Diff(args) => diff::diff(args),
        Command::Bench(args) => bench::bench(args),
        Command::Exec { job } => Ok(crate::exec::child::execute(&job)),
        Command::Hash { paths } => hash::hash(&paths),
    }
}

/// Load, check and expand a pipeline file.
pub(crate) fn load(args: &PipelineArgs) -> Result<(Loaded, Dag), Failure> {
    let loaded = spec::load(&args.file, &args.sets, args.variation.as_deref())?;
    let dag = Dag::build(&loaded).map_err(LoadError::Invalid)?;
    Ok((loaded, dag))
}

/// `--cache-dir`, `PIPE_CACHE_DIR`, or `cache/` in the project root.
pub(crate) fn cache_dir(args: &CacheArgs, root: Option<&Path>) -> PathBuf {
    match (&args.cache_dir, root) {
        (Some(d), _) => d.clone(),
        (None, Some(r)) => r.join("cache"),
        (None, None) => PathBuf::from("cache"),
    }
}

pub(crate) fn open_cache(args: &CacheArgs, root: Option<&Path>) -> Result<Cache, Failure> {
    Ok(Cache::open(&cache_dir(args, root))?)
}
