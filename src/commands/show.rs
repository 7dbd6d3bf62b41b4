//! `pipe show KEY|STAGE`: a run's manifest.

use comfy_table::{presets, Table};

use crate::cache::{refs, Manifest};
use crate::cli::ShowArgs;
use crate::exit_codes;

use super::Failure;

pub(super) fn show(args: ShowArgs) -> Result<i32, Failure> {
    let cache = super::open_cache(&args.cache, std::env::current_dir().ok().as_deref())?;
    let what = args.what.as_str();
    let mut found: Vec<Manifest> = Vec::new();
    if what.len() >= 4 && what.chars().all(|c| c.is_ascii_hexdigit()) {
        found = cache
            .manifests()?
            .into_iter()
            .filter(|m| m.key.starts_with(what))
            .collect();
    }
    if found.is_empty() {
        let mut keys: Vec<String> = refs::all(&cache)
            .into_iter()
            .filter(|r| r.label == what || r.label.split('[').next() == Some(what))
            .map(|r| r.key)
            .collect();
        keys.sort();
        keys.dedup();
        found = keys.iter().filter_map(|k| cache.manifest(k)).collect();
    }
    if found.is_empty() {
        return Err(Failure::Usage(format!(
            "nothing in the cache matches `{what}` (give a key prefix of 4+ hex digits, a stage name or an instance label)"
        )));
    }
    found.sort_by(|a, b| a.label.cmp(&b.label));
    if args.json {
        let v: Vec<_> = found
            .iter()
            .map(|m| serde_json::to_value(m).expect("json"))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&if v.len() == 1 { v[0].clone() } else { v.into() })
                .expect("json")
        );
        return Ok(exit_codes::OK);
    }
    for m in &found {
        print_manifest(m, &cache.out_dir(&m.key));
    }
    Ok(exit_codes::OK)
}

fn print_manifest(m: &Manifest, out: &std::path::Path) {
    println!(
        "{}  ({} v{}, pipeline {})",
        m.label, m.uses, m.version, m.pipeline
    );
    println!("key        {}", m.key);
    println!("variations {}", m.variations.join(", "));
    println!(
        "started    {} ({:.1}s on {}, {} cpus)",
        m.timings.started, m.timings.seconds, m.host.hostname, m.host.cpus
    );
    if let Some(j) = &m.job {
        println!(
            "job        {} job {}: {}{}{}{}",
            j.executor,
            j.id,
            j.state,
            j.node
                .as_deref()
                .map(|n| format!(" on {n}"))
                .unwrap_or_default(),
            j.elapsed
                .as_deref()
                .map(|e| format!(", elapsed {e}"))
                .unwrap_or_default(),
            if j.submissions > 1 {
                format!(" ({} submissions)", j.submissions)
            } else {
                String::new()
            }
        );
    }
    println!("outputs    {}", out.display());
    let mut t = Table::new();
    t.load_preset(presets::UTF8_BORDERS_ONLY)
        .set_header(vec!["", "name", "value / digest"]);
    for (k, v) in &m.params {
        t.add_row(vec![
            "param".to_string(),
            k.clone(),
            crate::graph::instance::show(v),
        ]);
    }
    for i in &m.inputs {
        t.add_row(vec!["input".to_string(), i.label.clone(), short(&i.digest)]);
    }
    for e in &m.externals {
        t.add_row(vec![
            "external".to_string(),
            format!("{} {}", e.what, e.path),
            short(&e.digest),
        ]);
    }
    for f in &m.outputs.files {
        t.add_row(vec![
            "output".to_string(),
            format!("{} ({} bytes)", f.path, f.size),
            short(&f.digest),
        ]);
    }
    for (k, v) in &m.metrics {
        t.add_row(vec![
            "metric".to_string(),
            k.clone(),
            crate::graph::instance::show(v),
        ]);
    }
    println!("{t}\n");
}

fn short(d: &str) -> String {
    d.chars().take(16).collect()
}
