//! What `evaluate` puts into the run report ([`crate::report`]): the results table
//! (one row per model, a column pair per target), the same scores one row per model
//! and target (printed after the run, and `results.csv`), test accuracy per fold, our
//! accuracies next to the paper's, the learning curves of the evaluated training
//! instances, the statistics section, and the paper's published numbers.

use std::collections::BTreeMap;

use crate::report::{
    Cell, Figure, FigureKind, Panel, ReportFile, Row, Section, Series, Show, Table,
};
use crate::train::dataset::Target;
use crate::train::evaluate::{Curve, GroupScore, InstanceScore};
use crate::train::paper;

/// The label of an evaluated model: its stage, `stage/teacher` for the teacher a
/// distillation stage updated.
pub(crate) fn model_label(stage: &str, model: &str) -> String {
    if model == "teacher" && !stage.contains("teacher") {
        format!("{stage}/teacher")
    } else {
        stage.to_string()
    }
}

fn percent(v: f64) -> f64 {
    if v.abs() <= 1.0 {
        v * 100.0
    } else {
        v
    }
}

/// The labels of `summary`'s models, in first-seen order, with their stage.
fn models(summary: &[GroupScore]) -> Vec<(String, String)> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for g in summary {
        let m = (model_label(&g.stage, &g.model), g.stage.clone());
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    seen
}

/// The scores of the model labelled `label` (see [`model_label`]) on `target`.
fn score<'a>(summary: &'a [GroupScore], label: &str, target: &str) -> Option<&'a GroupScore> {
    summary
        .iter()
        .find(|g| g.target == target && model_label(&g.stage, &g.model) == label)
}

/// One row per model; accuracy and F1 per target; the cells (fold × repeat).
fn results_by_target(summary: &[GroupScore]) -> Table {
    let mut columns = vec!["model".to_string()];
    for t in Target::NAMES {
        columns.push(format!("{t} acc"));
        columns.push(format!("{t} F1"));
    }
    columns.push("folds".into());
    let rows = models(summary)
        .into_iter()
        .map(|(label, stage)| {
            let of = |t: &str| score(summary, &label, t);
            let mut values = Vec::new();
            for t in Target::NAMES {
                match of(t) {
                    Some(g) => {
                        values.push(Cell::mean_std(g.accuracy.mean, g.accuracy.std));
                        values.push(Cell::mean_std(g.f1.mean, g.f1.std));
                    }
                    None => values.extend([Cell::Empty(None), Cell::Empty(None)]),
                }
            }
            let folds = Target::NAMES
                .iter()
                .find_map(|t| of(t))
                .map_or(0, |g| g.folds);
            values.push(Cell::Number(folds as f64));
            Row {
                label: Some(label),
                source: Some(stage),
                values,
            }
        })
        .collect();
    Table {
        id: "results".into(),
        title: "Results (this run; mean ± sample std over cells = fold × repeat, %)".into(),
        intro: String::new(),
        columns,
        rows,
        csv: None,
        show: vec![Show::Markdown],
        merge_axes: Vec::new(),
        order: 0,
    }
}

/// One row per model and target, with macro-F1: the table printed after the run and
/// written as `results.csv`.
fn results_long(summary: &[GroupScore]) -> Table {
    let rows = summary
        .iter()
        .map(|g| Row {
            label: Some(model_label(&g.stage, &g.model)),
            source: Some(g.stage.clone()),
            values: vec![
                Cell::Text(g.target.clone()),
                Cell::Number(g.folds as f64),
                Cell::mean_std(g.accuracy.mean, g.accuracy.std),
                Cell::mean_std(g.f1.mean, g.f1.std),
                Cell::mean_std(g.macro_f1.mean, g.macro_f1.std),
            ],
        })
        .collect();
    Table {
        id: "results-per-target".into(),
        title: "Results per model and target".into(),
        intro: String::new(),
        columns: ["model", "target", "folds", "accuracy", "f1", "macro_f1"]
            .map(String::from)
            .to_vec(),
        rows,
        csv: Some("results.csv".into()),
        show: vec![Show::Console],
        merge_axes: Vec::new(),
        order: 0,
    }
}

/// Test accuracy of every cell, a panel per target, a line per model.
fn per_fold(instances: &[InstanceScore]) -> Figure {
    let mut panels = Vec::new();
    for t in Target::NAMES {
        let mut series: BTreeMap<(String, String), Series> = BTreeMap::new();
        for i in instances
            .iter()
            .filter(|i| i.target == *t && i.fold.is_some())
        {
            let label = model_label(&i.stage, &i.model);
            let s = series
                .entry((label.clone(), i.stage.clone()))
                .or_insert_with(|| Series::named(&label, Some(&i.stage)));
            if let Some(fold) = i.fold {
                s.point(fold as f64, percent(i.accuracy));
            }
        }
        if !series.is_empty() {
            panels.push(Panel {
                title: format!("Test accuracy per fold — {t}"),
                categories: Vec::new(),
                series: series.into_values().collect(),
            });
        }
    }
    Figure {
        file: "per_fold_accuracy.png".into(),
        title: "Test accuracy per fold".into(),
        kind: FigureKind::Markers,
        x_label: "fold".into(),
        y_label: "accuracy (%)".into(),
        range: Some((0.0, 100.0)),
        integer_x: true,
        mean_of_same_label: false,
        panels,
        merge_axes: Vec::new(),
        order: 1,
    }
}

/// Our mean test accuracy (left) next to the paper's real-DEAP numbers (right), per
/// target: two panels, never one mixed axis.
fn versus_paper(summary: &[GroupScore]) -> Figure {
    let ours = models(summary);
    let mut left = Panel {
        title: "Ours (this run's data), mean test accuracy".into(),
        categories: ours
            .iter()
            .map(|(label, stage)| Series::named(label, Some(stage)))
            .collect(),
        series: Vec::new(),
    };
    let mut right = Panel {
        title: "Paper (REAL DEAP, published), accuracy".into(),
        categories: paper::rows().map(|r| Series::named(r.0, None)).collect(),
        series: Vec::new(),
    };
    for (k, t) in Target::NAMES.iter().enumerate() {
        let mut s = Series::named(t, None);
        s.values = ours
            .iter()
            .map(|(label, _)| {
                score(summary, label, t)
                    .map(|g| percent(g.accuracy.mean))
                    .filter(|v| v.is_finite())
            })
            .collect();
        left.series.push(s);
        let mut s = Series::named(t, None);
        s.values = paper::rows()
            .map(|r| Some(if k == 0 { r.1 } else { r.3 }))
            .collect();
        right.series.push(s);
    }
    Figure {
        file: "versus_paper.png".into(),
        title: "Ours next to the paper's published numbers".into(),
        kind: FigureKind::Bars,
        x_label: "accuracy (%)".into(),
        y_label: String::new(),
        range: Some((0.0, 100.0)),
        integer_x: false,
        mean_of_same_label: false,
        panels: vec![left, right],
        merge_axes: Vec::new(),
        order: 1,
    }
}

/// Validation accuracy per epoch of the upstream training instances: a panel per
/// target, a line per stage (the mean over folds and repeats).
fn learning_curves(curves: &[Curve]) -> Figure {
    let panels = Target::NAMES
        .iter()
        .filter(|t| curves.iter().any(|c| c.target == **t))
        .map(|t| Panel {
            title: format!("Learning curves — {t} (mean over folds)"),
            categories: Vec::new(),
            series: curves
                .iter()
                .filter(|c| c.target == *t)
                .map(|c| {
                    let mut s = Series::named(&c.label, Some(&c.stage));
                    for &(epoch, acc) in &c.points {
                        // `fit` writes validation accuracy in percent
                        s.point(epoch, acc);
                    }
                    s
                })
                .collect(),
        })
        .collect();
    Figure {
        file: "learning_curves.png".into(),
        title: "Learning curves".into(),
        kind: FigureKind::Lines,
        x_label: "epoch".into(),
        y_label: "validation accuracy (%)".into(),
        range: Some((0.0, 100.0)),
        integer_x: true,
        mean_of_same_label: true,
        panels,
        merge_axes: Vec::new(),
        order: 2,
    }
}

/// The paper's published numbers, labelled as such.
fn paper_table() -> Table {
    Table {
        id: "paper".into(),
        title: "The paper's numbers (REAL DEAP — not comparable with synthetic data)".into(),
        intro: format!("Source: {}.", paper::SOURCE),
        columns: [
            "method (paper, real DEAP)",
            "arousal acc",
            "arousal F1",
            "valence acc",
            "valence F1",
        ]
        .map(String::from)
        .to_vec(),
        rows: paper::rows()
            .map(|(m, aa, af, va, vf)| Row {
                label: Some(m.to_string()),
                source: None,
                values: [aa, af, va, vf].map(Cell::Number).to_vec(),
            })
            .collect(),
        csv: None,
        show: vec![Show::Markdown],
        merge_axes: Vec::new(),
        order: 4,
    }
}

/// Everything `evaluate` shows; `statistics` is its data, protocol and contrasts
/// section (Markdown).
pub(crate) fn build(
    instances: &[InstanceScore],
    summary: &[GroupScore],
    curves: &[Curve],
    statistics: String,
) -> ReportFile {
    let mut r = ReportFile::new();
    if curves.iter().any(|c| !c.points.is_empty()) {
        r.figures.push(learning_curves(curves));
    }
    if !summary.is_empty() {
        r.tables.push(results_by_target(summary));
        r.tables.push(results_long(summary));
        r.figures.push(per_fold(instances));
        r.figures.push(versus_paper(summary));
        r.tables.push(paper_table());
    }
    if !statistics.trim().is_empty() {
        r.sections.push(Section {
            title: None,
            markdown: statistics,
            order: 3,
        });
    }
    r
}
