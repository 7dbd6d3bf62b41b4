//! `pipe run FILE`.

use crate::cli::RunArgs;
use crate::exec::scheduler::{self, RunOptions};
use crate::exit_codes;
use crate::report;

use super::Failure;

pub fn run(args: RunArgs, quiet: bool) -> Result<i32, Failure> {
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
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = RunOptions {
        jobs,
        force: args.force.clone(),
        only: args.only.clone(),
        fail_fast: args.fail_fast,
        quiet,
    };
    let summary = scheduler::run(p, &dag, &cache, &opts).map_err(Failure::Other)?;
    println!("{}", report::table::instances(&summary, p.variations.len()));
    let scores = report::table::scores(&report::collect::collect(&summary, p.variations.len()));
    if !scores.is_empty() {
        println!("{scores}");
    }
    println!("{}", report::table::totals(&summary));
    let report_dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| p.root.join("reports").join(&p.name));
    match report::write::write(&report_dir, p, &summary) {
        Ok(path) => println!("report: {}", path.display()),
        Err(e) => eprintln!(
            "warning: could not write the report to {}: {e}",
            report_dir.display()
        ),
    }
    let failed = summary.failed();
    if failed > 0 {
        eprintln!("error: {failed} instance{} failed; completed ones are cached (rerun to retry only what is missing)", if failed == 1 { "" } else { "s" });
        return Ok(exit_codes::STAGE_FAILED);
    }
    Ok(exit_codes::OK)
}
