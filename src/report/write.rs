//! The report every `pipe run` writes: `index.md`, `results.json`, and the CSV files
//! and PNG plots its instances declare, in `reports/<pipeline>/` (or `--report-dir`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use stages::report::{Cell, Show};

use super::collect::{Collected, Item, ShownTable};
use super::{plots, results, table};
use crate::exec::summary::{RunSummary, Status};
use crate::spec::Pipeline;

fn pct(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v.abs() <= 1.0 {
        format!("{:.2}", v * 100.0)
    } else {
        format!("{v:.2}")
    }
}

/// Mean ± std; the mean decides whether both are fractions (a std of 0.09 points
/// next to a mean of 58.7 is not 9 %).
fn pm(ms: (f64, f64)) -> String {
    let std = if ms.1.is_nan() {
        "-".into()
    } else if ms.0.abs() > 1.0 {
        format!("{:.2}", ms.1)
    } else {
        pct(ms.1)
    };
    format!("{} ± {std}", pct(ms.0))
}

/// A cell as Markdown and the console show it.
pub(crate) fn cell(c: &Cell) -> String {
    match c {
        Cell::MeanStd(m) => pm((m.mean.unwrap_or(f64::NAN), m.std.unwrap_or(f64::NAN))),
        Cell::Number(v) if v.is_nan() => "-".into(),
        Cell::Number(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Cell::Number(v) => format!("{v:.2}"),
        Cell::Text(t) => t.clone(),
        Cell::Empty(_) => "-".into(),
    }
}

/// A table in Markdown: the label column (with ` [variation]`), then the values.
pub(crate) fn markdown_table(t: &ShownTable) -> String {
    let mut s = format!(
        "| {} |\n|{}\n",
        t.columns.join(" | "),
        "---|".repeat(t.columns.len())
    );
    for r in &t.rows {
        let values: Vec<String> = r.values.iter().map(cell).collect();
        let _ = writeln!(s, "| {} | {} |", r.shown_label(), values.join(" | "));
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A table as CSV: label, variation, then the values, a mean ± std value as two
/// columns `<column>_mean`, `<column>_std` (raw numbers; NaN when undefined).
pub(crate) fn csv_table(t: &ShownTable) -> String {
    // the value columns that hold a mean ± std somewhere: two CSV columns each
    let pairs: Vec<bool> = (0..t.columns.len().saturating_sub(1))
        .map(|i| {
            t.rows
                .iter()
                .any(|r| matches!(r.values.get(i), Some(Cell::MeanStd(_))))
        })
        .collect();
    let pair = |i: usize| pairs.get(i).copied().unwrap_or(false);
    let mut header = vec![
        csv_field(t.columns.first().map_or("label", String::as_str)),
        "variation".to_string(),
    ];
    for (i, c) in t.columns.iter().skip(1).enumerate() {
        if pair(i) {
            header.push(csv_field(&format!("{c}_mean")));
            header.push(csv_field(&format!("{c}_std")));
        } else {
            header.push(csv_field(c));
        }
    }
    let mut s = header.join(",") + "\n";
    let number = |v: Option<f64>| v.unwrap_or(f64::NAN).to_string();
    for r in &t.rows {
        let mut fields = vec![csv_field(&r.label), csv_field(&r.variation)];
        for (i, v) in r.values.iter().enumerate() {
            match v {
                Cell::MeanStd(m) => {
                    fields.push(number(m.mean));
                    fields.push(number(m.std));
                    continue;
                }
                Cell::Number(x) => fields.push(x.to_string()),
                Cell::Text(x) => fields.push(csv_field(x)),
                Cell::Empty(_) => fields.push(String::new()),
            }
            // a column of mean ± std values is two CSV columns
            if pair(i) {
                fields.push(String::new());
            }
        }
        s.push_str(&fields.join(","));
        s.push('\n');
    }
    s
}

/// Write everything; returns the path of `index.md`.
/// `c`: what the run's instances declared ([`collect::collect`]).
pub(crate) fn write(
    dir: &Path,
    p: &Pipeline,
    summary: &RunSummary,
    c: &Collected,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    results::write(dir, &p.name, summary)?;
    let mut files = vec!["`results.json` (every instance with its metrics)".to_string()];
    for t in c.tables() {
        if let Some(name) = &t.csv {
            std::fs::write(dir.join(name), csv_table(t))?;
            files.push(format!("`{name}` ({})", t.title.to_lowercase()));
        }
    }
    let mut md = format!("# {} — report\n\n", p.name);
    if !p.description.is_empty() {
        let _ = writeln!(md, "{}\n", p.description);
    }
    let _ = writeln!(
        md,
        "Pipeline file: `{}`. Finished {}. {}.\n",
        p.file.display(),
        crate::cache::manifest::rfc3339(std::time::SystemTime::now()),
        table::totals(summary)
    );
    for item in &c.items {
        match item {
            Item::Table(t) if t.show.contains(&Show::Markdown) => {
                let _ = write!(md, "## {}\n\n", t.title);
                if !t.intro.is_empty() {
                    let _ = write!(md, "{}\n\n", t.intro);
                }
                let _ = writeln!(md, "{}", markdown_table(t));
            }
            Item::Table(_) => {}
            Item::Figure(f) => match plots::draw(f, &dir.join(&f.file)) {
                Ok(()) => {
                    let _ = writeln!(md, "### {}\n\n![{}]({})\n", f.title, f.title, f.file);
                }
                Err(e) => tracing::warn!(file = %f.file, error = %e, "could not draw plot"),
            },
            Item::Section(text) => {
                let _ = writeln!(md, "## {}\n\n{}\n", text.title, text.markdown.trim_end());
            }
        }
    }
    for (instance, why) in &c.unreadable {
        tracing::warn!(instance, error = %why, "report.json not shown");
        let _ = writeln!(
            md,
            "> `{instance}`: its `report.json` could not be read ({why}); not shown.\n"
        );
    }
    let _ = writeln!(
        md,
        "## Instances\n\n| instance | variations | status | time |\n|---|---|---|---|"
    );
    for r in &summary.instances {
        if r.status == Status::NotSelected {
            continue;
        }
        let vars = if r.variations.len() >= p.variations.len() {
            "all".to_string()
        } else {
            r.variations.join(", ")
        };
        let _ = writeln!(
            md,
            "| `{}` | {vars} | {} | {} |",
            r.label,
            r.status.word(),
            table::duration(r.seconds)
        );
    }
    let _ = writeln!(md, "\nFiles: {}.", files.join(", "));
    let index = dir.join("index.md");
    std::fs::write(&index, md)?;
    Ok(index)
}

#[cfg(test)]
mod tests {
    use stages::report::{Cell, Show};

    use super::super::collect::{ShownRow, ShownTable};

    #[test]
    fn a_mean_std_column_is_two_csv_columns_in_every_row() {
        let t = ShownTable {
            id: "t".into(),
            title: "t".into(),
            intro: String::new(),
            columns: vec!["model".into(), "acc".into(), "note".into()],
            rows: vec![
                ShownRow {
                    label: "a, b".into(),
                    variation: "v2".into(),
                    values: vec![Cell::mean_std(0.5, f64::NAN), Cell::Text("x".into())],
                },
                ShownRow {
                    label: "c".into(),
                    variation: String::new(),
                    values: vec![Cell::Number(3.0), Cell::Empty(None)],
                },
            ],
            csv: Some("t.csv".into()),
            show: vec![Show::Markdown],
        };
        assert_eq!(
            super::csv_table(&t),
            "model,variation,acc_mean,acc_std,note\n\"a, b\",v2,0.5,NaN,x\nc,,3,,\n"
        );
        assert_eq!(
            super::markdown_table(&t),
            "| model | acc | note |\n|---|---|---|\n| a, b [v2] | 50.00 ± - | x |\n| c | 3 | - |\n"
        );
    }

    #[test]
    fn a_small_std_next_to_a_percent_mean_stays_in_points() {
        assert_eq!(super::pm((58.75, 0.091)), "58.75 ± 0.09");
        assert_eq!(super::pm((0.5875, 0.00091)), "58.75 ± 0.09");
        assert_eq!(super::pm((f64::NAN, f64::NAN)), "- ± -");
    }
}
