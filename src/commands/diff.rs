//! `pipe diff A B`: compare the metrics of two runs (or a run and a committed
//! baseline) with per-metric tolerances; exit 4 on a regression. The reproducible
//! CI benchmark: CPU results are deterministic, so a tight tolerance works.

use std::collections::BTreeMap;
use std::path::Path;

use comfy_table::{presets, Table};
use serde_json::Value;

use crate::cli::DiffArgs;
use crate::exit_codes;

use super::Failure;

/// `label {variations} / metric.path` → value, for every numeric metric.
fn flatten(results: &Value) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for inst in results["instances"].as_array().into_iter().flatten() {
        let label = inst["label"].as_str().unwrap_or("?");
        let vars: Vec<&str> = inst["variations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let id = if vars.is_empty() || vars == ["default"] {
            label.to_string()
        } else {
            format!("{label} {{{}}}", vars.join(","))
        };
        walk(&inst["metrics"], &mut String::new(), &mut |path, v| {
            out.insert(format!("{id} / {path}"), v);
        });
    }
    out
}

fn walk(v: &Value, path: &mut String, f: &mut dyn FnMut(&str, f64)) {
    match v {
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                f(path, x);
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk(item, path, f);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, f);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn read(p: &Path) -> Result<Value, Failure> {
    let file = if p.is_dir() {
        p.join("results.json")
    } else {
        p.to_path_buf()
    };
    let bytes =
        std::fs::read(&file).map_err(|e| Failure::Usage(format!("{}: {e}", file.display())))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::Usage(format!("{}: not a results.json: {e}", file.display())))?;
    if v.get("instances").and_then(Value::as_array).is_none() {
        return Err(Failure::Usage(format!(
            "{}: no `instances` list: not a pipe results.json",
            file.display()
        )));
    }
    Ok(v)
}

/// Simple glob: `*` matches any run of characters.
fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

/// Metrics where lower is better.
fn lower_is_better(path: &str) -> bool {
    let last = path.rsplit(['/', '.']).next().unwrap_or(path);
    ["loss", "error", "seconds", "std"]
        .iter()
        .any(|w| last.contains(w))
}

pub(super) fn diff(args: DiffArgs) -> Result<i32, Failure> {
    let (a, b) = (
        flatten(&read(&args.baseline)?),
        flatten(&read(&args.current)?),
    );
    let mut tolerances: Vec<(String, f64)> = Vec::new();
    for t in &args.tolerance {
        let (pat, v) = t.split_once('=').ok_or_else(|| {
            Failure::Usage(format!(
                "--tol {t:?}: expected PATTERN=VALUE, e.g. '*accuracy*=0.5'"
            ))
        })?;
        let v: f64 = v
            .parse()
            .map_err(|_| Failure::Usage(format!("--tol {t:?}: {v:?} is not a number")))?;
        tolerances.push((pat.to_string(), v));
    }
    let tol_for = |path: &str| {
        tolerances
            .iter()
            .rev()
            .find(|(p, _)| glob(p, path))
            .map_or(args.default_tolerance, |(_, v)| *v)
    };
    let ignored = |path: &str| args.ignore.iter().any(|p| glob(p, path));
    let mut t = Table::new();
    t.load_preset(presets::UTF8_BORDERS_ONLY)
        .set_header(vec!["metric", "baseline", "current", "change", "verdict"]);
    let (mut regressions, mut changed, mut missing, mut compared) = (0, 0, 0, 0);
    for (path, &va) in &a {
        if ignored(path) {
            continue;
        }
        let Some(&vb) = b.get(path) else {
            missing += 1;
            t.add_row(vec![
                path.clone(),
                format!("{va}"),
                "missing".into(),
                "".into(),
                "MISSING".into(),
            ]);
            continue;
        };
        compared += 1;
        let d = vb - va;
        let tol = tol_for(path);
        if d.abs() <= tol {
            if args.all {
                t.add_row(vec![
                    path.clone(),
                    format!("{va}"),
                    format!("{vb}"),
                    format!("{d:+.4}"),
                    "same".into(),
                ]);
            }
            continue;
        }
        changed += 1;
        let worse = if lower_is_better(path) {
            d > 0.0
        } else {
            d < 0.0
        };
        let verdict = if worse || args.strict {
            regressions += 1;
            if worse {
                "REGRESSION"
            } else {
                "CHANGED"
            }
        } else {
            "better"
        };
        t.add_row(vec![
            path.clone(),
            format!("{va}"),
            format!("{vb}"),
            format!("{d:+.4} (tol {tol})"),
            verdict.into(),
        ]);
    }
    let new_metrics = b
        .keys()
        .filter(|k| !a.contains_key(*k) && !ignored(k))
        .count();
    if t.row_count() > 0 {
        println!("{t}");
    }
    println!(
        "{compared} metrics compared: {changed} beyond tolerance, {regressions} failing, {missing} missing in {}, {new_metrics} new",
        args.current.display()
    );
    if regressions > 0 || (missing > 0 && !args.allow_missing) {
        return Ok(exit_codes::REGRESSION);
    }
    Ok(exit_codes::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*accuracy*", "scores {v1} / arousal.accuracy.mean"));
        assert!(glob("scores*", "scores / x"));
        assert!(!glob("scores*", "teacher / x"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXcYYb"));
    }

    #[test]
    fn direction_by_name() {
        assert!(lower_is_better("x / val_loss"));
        assert!(lower_is_better("x / accuracy.std"));
        assert!(!lower_is_better("x / accuracy.mean"));
    }
}
