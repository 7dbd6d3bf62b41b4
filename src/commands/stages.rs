//! `pipe stages [NAME]`: the stage library, self-documented.

use comfy_table::{presets, ContentArrangement, Table};
use serde_json::json;

use crate::cli::StagesArgs;
use crate::exit_codes;

use super::Failure;

pub(super) fn stages(args: StagesArgs) -> Result<i32, Failure> {
    let all = stages::registry::all();
    let chosen: Vec<_> = match &args.name {
        Some(n) => {
            let s = stages::registry::find(n).ok_or_else(|| {
                Failure::Usage(format!(
                    "no built-in stage `{n}`; {}",
                    crate::spec::diagnostic::suggest(n, all.iter().map(|s| s.name()))
                ))
            })?;
            vec![s]
        }
        None => all,
    };
    if args.json {
        let v: Vec<_> = chosen
            .iter()
            .map(|s| json!({"name": s.name(), "version": s.version(), "doc": s.doc(), "params": s.schema().specs, "consumes": s.consumes(), "produces": s.produces(), "resources": s.resources()}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"schema_version": 1, "stages": v})).expect("json")
        );
        return Ok(exit_codes::OK);
    }
    for s in chosen {
        println!("{} (v{}) — {}", s.name(), s.version(), s.doc());
        if !s.consumes().is_empty() {
            println!("  reads:  {}", s.consumes().join(", "));
        }
        if !s.produces().is_empty() {
            println!("  writes: {}", s.produces().join(", "));
        }
        println!("  resources (Slurm): {}", s.resources().describe());
        let params = s.schema().specs;
        if !params.is_empty() {
            let mut t = Table::new();
            t.load_preset(presets::NOTHING)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(110);
            t.set_header(vec!["  param", "type", "default", "meaning"]);
            for p in params {
                let default = match &p.default {
                    None => "(required)".to_string(),
                    Some(serde_json::Value::Null) => "(none)".to_string(),
                    Some(v) => crate::graph::instance::show(v),
                };
                t.add_row(vec![
                    format!("  {}", p.name),
                    p.kind.describe(),
                    default,
                    p.doc,
                ]);
            }
            println!("{t}");
        }
        println!();
    }
    Ok(exit_codes::OK)
}
