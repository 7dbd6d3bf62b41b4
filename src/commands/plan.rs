//! `pipe plan FILE`: what would run and why.

use comfy_table::{presets, Table};

use crate::cache::Cache;
use crate::cli::PlanArgs;
use crate::exec::plan as scheduler;
use crate::exit_codes;
use crate::graph::Dag;
use crate::spec::Pipeline;

use super::Failure;

pub(super) fn plan(args: PlanArgs) -> Result<i32, Failure> {
    let (loaded, dag) = super::load(&args.pipeline)?;
    let cache = super::open_cache(&args.cache, Some(&loaded.pipeline.root))?;
    print_plan(&loaded.pipeline, &dag, &cache, &args.force, &args.only)
}

pub(crate) fn print_plan(
    p: &Pipeline,
    dag: &Dag,
    cache: &Cache,
    force: &[String],
    only: &[String],
) -> Result<i32, Failure> {
    let lines = scheduler::plan(p, dag, cache, force, only);
    let mut t = Table::new();
    t.load_preset(presets::UTF8_BORDERS_ONLY);
    let multi = p.variations.len() > 1;
    let mut header = vec!["instance", "action", "why"];
    if multi {
        header.insert(1, "variations");
    }
    t.set_header(header);
    for l in &lines {
        let mut row = vec![l.label.clone(), l.action.to_string(), l.reason.clone()];
        if multi {
            let v = if l.variations.len() == p.variations.len() {
                "all".into()
            } else {
                l.variations.join(", ")
            };
            row.insert(1, v);
        }
        t.add_row(row);
    }
    println!("{t}");
    let run = lines.iter().filter(|l| l.action == "run").count();
    let cached = lines.iter().filter(|l| l.action == "cached").count();
    let errors = lines.iter().filter(|l| l.action == "error").count();
    println!(
        "{run} to run, {cached} cached{}",
        if errors > 0 {
            format!(", {errors} with errors")
        } else {
            String::new()
        }
    );
    Ok(if errors > 0 {
        exit_codes::USAGE
    } else {
        exit_codes::OK
    })
}
