//! The report every `pipe run` writes: `index.md`, `results.json`, `results.csv`
//! and PNG plots, in `reports/<pipeline>/` (or `--report-dir`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::collect::{self, Collected};
use super::{paper, plots, results, table};
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
pub fn pm(ms: (f64, f64)) -> String {
    let std = if ms.1.is_nan() {
        "-".into()
    } else if ms.0.abs() > 1.0 {
        format!("{:.2}", ms.1)
    } else {
        pct(ms.1)
    };
    format!("{} ± {std}", pct(ms.0))
}

pub fn results_csv(c: &Collected) -> String {
    let mut s = String::from("model,variation,target,folds,accuracy_mean,accuracy_std,f1_mean,f1_std,macro_f1_mean,macro_f1_std\n");
    for r in &c.scores {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{}",
            r.model,
            r.variation,
            r.target,
            r.folds,
            r.accuracy.0,
            r.accuracy.1,
            r.f1.0,
            r.f1.1,
            r.macro_f1.0,
            r.macro_f1.1
        );
    }
    s
}

/// The results table in Markdown (what the README quotes): one row per model.
pub fn results_markdown(c: &Collected) -> String {
    let mut labels: Vec<String> = Vec::new();
    for r in &c.scores {
        if !labels.contains(&r.label()) {
            labels.push(r.label());
        }
    }
    let mut s = String::from("| model | arousal acc | arousal F1 | valence acc | valence F1 | folds |\n|---|---|---|---|---|---|\n");
    for l in labels {
        let get = |t: &str| c.scores.iter().find(|r| r.label() == l && r.target == t);
        let (a, v) = (get("arousal"), get("valence"));
        let folds = a.or(v).map_or(0, |r| r.folds);
        let cell = |r: Option<&collect::ScoreRow>, f: &dyn Fn(&collect::ScoreRow) -> (f64, f64)| {
            r.map_or("-".into(), |r| pm(f(r)))
        };
        let _ = writeln!(
            s,
            "| {l} | {} | {} | {} | {} | {folds} |",
            cell(a, &|r| r.accuracy),
            cell(a, &|r| r.f1),
            cell(v, &|r| r.accuracy),
            cell(v, &|r| r.f1)
        );
    }
    s
}

fn paper_markdown() -> String {
    let mut s = format!("Source: {}.\n\n| method (paper, real DEAP) | arousal acc | arousal F1 | valence acc | valence F1 |\n|---|---|---|---|---|\n", paper::SOURCE);
    for (m, aa, af, va, vf) in paper::DEAP_TABLE.iter().chain(paper::ABLATION_TABLE) {
        let _ = writeln!(s, "| {m} | {aa:.2} | {af:.2} | {va:.2} | {vf:.2} |");
    }
    s
}

/// Write everything; returns the path of `index.md`.
pub fn write(dir: &Path, p: &Pipeline, summary: &RunSummary) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    results::write(dir, &p.name, summary)?;
    let c = collect::collect(summary, p.variations.len());
    std::fs::write(dir.join("results.csv"), results_csv(&c))?;
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
    let mut plots_made = Vec::new();
    if !c.scores.is_empty() {
        let _ = writeln!(
            md,
            "## Results (this run; mean ± sample std over cells = fold × repeat, %)\n\n{}",
            results_markdown(&c)
        );
        for (file, title, f) in [
            (
                "per_fold_accuracy.png",
                "Test accuracy per fold",
                plots::per_fold as fn(&Collected, &Path) -> Result<(), String>,
            ),
            (
                "versus_paper.png",
                "Ours next to the paper's published numbers",
                plots::versus_paper,
            ),
        ] {
            match f(&c, &dir.join(file)) {
                Ok(()) => plots_made.push((file, title)),
                Err(e) => tracing::warn!(file, error = %e, "could not draw plot"),
            }
        }
    }
    if !c.curves.is_empty() {
        match plots::learning_curves(&c, &dir.join("learning_curves.png")) {
            Ok(()) => plots_made.push(("learning_curves.png", "Learning curves")),
            Err(e) => tracing::warn!(error = %e, "could not draw learning curves"),
        }
    }
    for (file, title) in &plots_made {
        let _ = writeln!(md, "### {title}\n\n![{title}]({file})\n");
    }
    // Sections stages wrote for the report (`report.md` in their output folder).
    for r in &summary.instances {
        if !matches!(r.status, Status::Ran | Status::Cached) {
            continue;
        }
        let Some(text) = r
            .out_dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("report.md")).ok())
        else {
            continue;
        };
        let _ = writeln!(md, "## {} ({})\n\n{}\n", r.label, r.uses, text.trim_end());
    }
    if !c.scores.is_empty() {
        let _ = writeln!(
            md,
            "## The paper's numbers (REAL DEAP — not comparable with synthetic data)\n\n{}",
            paper_markdown()
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
    let _ = writeln!(md, "\nFiles: `results.json` (every instance with its metrics), `results.csv` (the results table).");
    let index = dir.join("index.md");
    std::fs::write(&index, md)?;
    Ok(index)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_small_std_next_to_a_percent_mean_stays_in_points() {
        assert_eq!(super::pm((58.75, 0.091)), "58.75 ± 0.09");
        assert_eq!(super::pm((0.5875, 0.00091)), "58.75 ± 0.09");
        assert_eq!(super::pm((f64::NAN, f64::NAN)), "- ± -");
    }
}
