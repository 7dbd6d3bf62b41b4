//! The report every run writes (index.md, CSV, plots, the console table) from what
//! instances declare in `report.json` (docs/report.md): the engine lays it out and
//! knows nothing else about the results.

use crate::util::Project;

/// A `run:` stage's `report.json`: what `evaluate` writes, in small.
const SCORES: &str = r#"{"schema_version": 1,
 "tables": [
  {"id": "results", "title": "Results", "columns": ["model", "acc", "folds"],
   "rows": [{"label": "student", "source": "student", "values": [{"mean": 0.65, "std": 0.05}, 2]},
            {"label": "chance", "values": [null, 2]}]},
  {"id": "long", "title": "Per target", "columns": ["model", "target", "acc"], "csv": "results.csv", "show": ["console"],
   "rows": [{"label": "student", "source": "student", "values": ["arousal", {"mean": 0.65, "std": null}]}]},
  {"id": "published", "title": "Published", "intro": "Source: a paper.", "columns": ["method", "acc"], "order": 4,
   "rows": [{"label": "Proposed", "values": [60.41]}]}
 ],
 "figures": [
  {"file": "per_fold.png", "title": "Per fold", "kind": "markers", "x_label": "fold", "y_label": "accuracy (%)",
   "range": [0, 100], "integer_x": true,
   "panels": [{"title": "arousal", "series": [{"label": "student", "source": "student", "points": [[0, 60], [1, 70]]}]}]},
  {"file": "bars.png", "title": "Bars", "kind": "bars", "x_label": "accuracy (%)",
   "panels": [{"title": "ours", "categories": [{"label": "student", "source": "student"}],
               "series": [{"label": "arousal", "values": [65]}]}]}
 ],
 "sections": [{"markdown": "**Statistics** go here."}]
}"#;

/// A training stage's learning curve: label left out (= the instance's stage),
/// one line per target, the mean over folds; and a table whose rows merge over the
/// cell's axes.
const CURVE: &str = r#"{"schema_version": 1,
 "tables": [{"id": "epochs", "title": "Epochs", "columns": ["model", "epochs"],
   "merge_axes": ["fold", "target"], "order": 3, "rows": [{"values": [2]}]}],
 "figures": [
 {"file": "learning_curves.png", "title": "Learning curves", "kind": "lines", "x_label": "epoch",
  "integer_x": true, "mean_of_same_label": true, "merge_axes": ["fold", "target"], "order": 2,
  "panels": [{"title": "arousal", "series": [{"points": [[1, 50], [2, 60]]}]}]}]}"#;

const PIPELINE: &str = r#"
name: rep
params: { n: 1 }
stages:
  student:
    run: cp curve.json $PIPE_OUT/report.json && echo ${params.n} > $PIPE_OUT/n
    deps: [curve.json]
    outs: [report.json, n]
    matrix: { target: [arousal], fold: [0, 1] }
  scores:
    run: cp scores.json $PIPE_OUT/report.json
    deps: [scores.json]
    needs: [student]
    outs: [report.json]
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("scores.json", SCORES);
    p.write("curve.json", CURVE);
    p.write("r.yaml", PIPELINE);
    p
}

#[test]
fn a_run_lays_out_what_instances_declare() {
    let p = project();
    let r = p.pipe(&["run", "r.yaml"]);
    r.ok();
    assert!(r.stdout.contains("report: "), "{}", r.stdout);
    // the console table
    assert!(
        r.stdout.contains("│ student ") && r.stdout.contains("65.00 ± -"),
        "{}",
        r.stdout
    );
    let index = p.read("reports/rep/index.md");
    for want in [
        "## Results\n\n| model | acc | folds |\n|---|---|---|\n| student | 65.00 ± 5.00 | 2 |\n| chance | - | 2 |",
        "## Published\n\nSource: a paper.\n\n| method | acc |\n|---|---|\n| Proposed | 60.41 |",
        "## scores (run)\n\n**Statistics** go here.",
        "![Per fold](per_fold.png)",
        "![Learning curves](learning_curves.png)",
        "`results.csv` (per target)",
        // both `student` instances' rows: no cell tag for merged axes, shown once
        "## Epochs\n\n| model | epochs |\n|---|---|\n| student | 2 |\n",
    ] {
        assert!(index.contains(want), "no {want:?} in\n{index}");
    }
    // layout: by `order`, then first appearance; console-only tables stay out
    let at = |s: &str| index.find(s).unwrap_or_else(|| panic!("{s}"));
    assert!(at("## Results") < at("### Per fold"));
    assert!(at("### Bars") < at("### Learning curves"));
    assert!(at("### Learning curves") < at("## Published"));
    assert!(!index.contains("Per target"), "{index}");
    assert_eq!(
        p.read("reports/rep/results.csv"),
        "model,variation,target,acc_mean,acc_std\nstudent,,arousal,0.65,NaN\n"
    );
    for png in ["per_fold.png", "bars.png", "learning_curves.png"] {
        let bytes = std::fs::read(p.path().join("reports/rep").join(png)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png} is a PNG");
        assert!(bytes.len() > 10_000, "{png}: {} bytes", bytes.len());
    }
}

#[test]
fn labels_are_told_apart_by_variation_and_matrix_cell() {
    let p = project();
    p.write(
        "r.yaml",
        &format!(
            "{PIPELINE}    matrix: {{ dataset: [deap, mahnob] }}\nvariations:\n  a: {{}}\n  b: {{ params.n: 2 }}\n"
        ),
    );
    let r = p.pipe(&["run", "r.yaml"]);
    r.ok();
    let index = p.read("reports/rep/index.md");
    for variation in ["a", "b"] {
        for ds in ["deap", "mahnob"] {
            // `student` differs between the variations, `chance` names no stage
            let want = format!("| student (dataset={ds}) [{variation}] | 65.00 ± 5.00 | 2 |");
            assert!(index.contains(&want), "no {want:?} in\n{index}");
        }
    }
    assert_eq!(index.matches("| chance (").count(), 0, "{index}");
    // identical rows from several instances are shown once
    assert_eq!(index.matches("| Proposed | 60.41 |").count(), 1, "{index}");
}

#[test]
fn an_unreadable_report_json_is_named_and_the_rest_is_shown() {
    let p = project();
    p.write(
        "scores.json",
        r#"{"schema_version": 1, "tables": [{"id": "x"}]}"#,
    );
    let r = p.pipe(&["run", "r.yaml"]);
    r.ok();
    let index = p.read("reports/rep/index.md");
    assert!(
        index.contains("> `scores`: its `report.json` could not be read (missing field `title`"),
        "{index}"
    );
    assert!(
        index.contains("![Learning curves](learning_curves.png)"),
        "{index}"
    );
}
