//! The table `pipe run` ends with: every instance, cached or ran, and its time.

use comfy_table::{presets, ContentArrangement, Table};

use crate::exec::summary::{RunSummary, Status};

/// `0.4s`, `12.3s`, `3m05s`, `1h02m`.
pub fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else if seconds < 3600.0 {
        format!(
            "{}m{:02}s",
            (seconds / 60.0) as u64,
            (seconds % 60.0) as u64
        )
    } else {
        format!(
            "{}h{:02}m",
            (seconds / 3600.0) as u64,
            ((seconds % 3600.0) / 60.0) as u64
        )
    }
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled);
    t
}

/// The results table (mean ± std over folds, in %), one row per model; empty when
/// no instance wrote evaluation scores.
pub fn scores(c: &super::collect::Collected) -> String {
    if c.scores.is_empty() {
        return String::new();
    }
    let mut t = table();
    t.set_header(vec![
        "model", "target", "accuracy", "F1", "macro-F1", "folds",
    ]);
    for r in &c.scores {
        t.add_row(vec![
            r.label(),
            r.target.clone(),
            super::write::pm(r.accuracy),
            super::write::pm(r.f1),
            super::write::pm(r.macro_f1),
            r.folds.to_string(),
        ]);
    }
    t.to_string()
}

/// The instances table. Times of cached instances are those of the run that made them.
pub fn instances(summary: &RunSummary, variation_count: usize) -> String {
    let mut t = table();
    let show_variations = variation_count > 1;
    let mut header = vec!["instance", "status", "time"];
    if show_variations {
        header.insert(1, "variations");
    }
    t.set_header(header);
    for r in &summary.instances {
        if r.status == Status::NotSelected {
            continue;
        }
        let time = match r.status {
            Status::Ran => duration(r.seconds),
            Status::Cached => format!("({})", duration(r.seconds)),
            _ => "-".into(),
        };
        let mut row = vec![r.label.clone(), r.status.word().to_string(), time];
        if show_variations {
            let v = if r.variations.len() == variation_count {
                "all".to_string()
            } else {
                r.variations.join(", ")
            };
            row.insert(1, v);
        }
        t.add_row(row);
    }
    t.to_string()
}

/// One line: counts and wall time.
pub fn totals(summary: &RunSummary) -> String {
    let count =
        |f: &dyn Fn(&Status) -> bool| summary.instances.iter().filter(|r| f(&r.status)).count();
    let ran = count(&|s| *s == Status::Ran);
    let cached = count(&|s| *s == Status::Cached);
    let failed = count(&|s| matches!(s, Status::Failed(_)));
    let skipped = count(&|s| matches!(s, Status::Skipped(_)));
    let mut s = format!("{ran} ran, {cached} cached");
    if failed > 0 {
        s.push_str(&format!(", {failed} failed"));
    }
    if skipped > 0 {
        s.push_str(&format!(", {skipped} skipped"));
    }
    format!("{s} in {}", duration(summary.seconds))
}
