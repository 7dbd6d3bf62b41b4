//! `pipe run FILE`.

use std::time::Duration;

use crate::cli::RunArgs;
use crate::exec::attempt::Env;
use crate::exec::executor::Executor;
use crate::exec::local::LocalExecutor;
use crate::exec::scheduler::{self, RunOptions};
use crate::exec::slurm::SlurmExecutor;
use crate::exit_codes;
use crate::report;
use crate::report::progress::Ui;
use crate::spec::ExecutorKind;

use super::Failure;

pub(super) fn run(args: RunArgs, quiet: bool) -> Result<i32, Failure> {
    let (loaded, dag) = super::load(&args.pipeline)?;
    let p = &loaded.pipeline;
    for s in args.only.iter().chain(&args.force) {
        if !p.stages.contains_key(s) {
            return Err(Failure::Usage(format!(
                "no stage `{s}` in {}; {}",
                p.file.display(),
                crate::spec::diagnostic::suggest(s, p.stages.keys().map(String::as_str))
            )));
        }
    }
    let cache = super::open_cache(&args.cache, Some(&p.root))?;
    if args.dry_run {
        return super::plan::print_plan(p, &dag, &cache, &args.force, &args.only);
    }
    let kind = args.executor.or(p.executor).unwrap_or_default();
    let (mut exec, default_jobs, grace): (Box<dyn Executor>, usize, u64) = match kind {
        ExecutorKind::Local => (
            Box::new(
                LocalExecutor::new()
                    .map_err(|e| Failure::Other(format!("cannot find the pipe executable: {e}")))?,
            ),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            15,
        ),
        ExecutorKind::Slurm => (
            Box::new(
                SlurmExecutor::new()
                    .map_err(|e| Failure::Usage(format!("--executor slurm: {e}")))?,
            ),
            64,
            // Slurm's KillWait (30 s by default) plus a few polls
            60,
        ),
    };
    let opts = RunOptions {
        jobs: args.jobs.unwrap_or(default_jobs),
        force: args.force.clone(),
        only: args.only.clone(),
        fail_fast: args.fail_fast,
        cancel_grace: Duration::from_secs(grace),
    };
    let interrupt = crate::exec::signals::interrupt_flag()
        .map_err(|e| Failure::Other(format!("cannot handle SIGINT/SIGTERM: {e}")))?;
    let ui = Ui::new(
        scheduler::selection(&dag, &opts.only)
            .iter()
            .filter(|s| **s)
            .count() as u64,
        quiet,
    );
    let env = Env {
        pipeline: p,
        dag: &dag,
        cache: &cache,
    };
    let summary = scheduler::run(env, &opts, exec.as_mut(), &ui, &interrupt)
        .map_err(|e| Failure::Run(Box::new(e)))?;
    println!("{}", report::table::instances(&summary, p.variations.len()));
    // what the instances declared for the report: read once, printed and written
    let collected = report::collect::collect(&summary, p.variations.len());
    let scores = report::table::console_tables(&collected);
    if !scores.is_empty() {
        println!("{scores}");
    }
    println!("{}", report::table::totals(&summary));
    let report_dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| p.root.join("reports").join(&p.name));
    match report::write::write(&report_dir, p, &summary, &collected) {
        Ok(path) => println!("report: {}", path.display()),
        Err(e) => eprintln!(
            "warning: could not write the report to {}: {e}",
            report_dir.display()
        ),
    }
    if summary.interrupted {
        eprintln!("error: interrupted; completed instances are cached, cancelled ones left nothing behind (rerun to continue)");
        return Ok(exit_codes::INTERRUPTED);
    }
    let failed = summary.failed();
    if failed > 0 {
        eprintln!("error: {failed} instance{} failed; completed ones are cached (rerun to retry only what is missing)", if failed == 1 { "" } else { "s" });
        return Ok(exit_codes::STAGE_FAILED);
    }
    Ok(exit_codes::OK)
}
