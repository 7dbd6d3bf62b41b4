//! The table `pipe run` ends with: every instance, cached or ran, and its time.

use comfy_table::{presets, ContentArrangement, Table};

use crate::exec::summary::{RunSummary, Status};

/// `0.4s`, `12.3s`, `3m05s`, `1h02m`.
pub(crate) fn duration(seconds: f64) -> String {
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

/// The tables instances asked to print after the run (`show: [console]`); empty
/// when there are none.
pub(crate) fn console_tables(c: &super::collect::Collected) -> String {
    let mut out = Vec::new();
    for t in c
        .tables()
        .filter(|t| t.show.contains(&stages::report::Show::Console))
    {
        let mut table = table();
        table.set_header(t.columns.clone());
        for r in &t.rows {
            let mut row = vec![r.shown_label()];
            row.extend(r.values.iter().map(super::write::cell));
            table.add_row(row);
        }
        out.push(table.to_string());
    }
    out.join("\n")
}

/// The instances table. Times of cached instances are those of the run that made them.
pub(crate) fn instances(summary: &RunSummary, variation_count: usize) -> String {
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
pub(crate) fn totals(summary: &RunSummary) -> String {
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
