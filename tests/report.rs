//! The report every run writes: index.md, results.csv, plots.

use crate::util::Project;

/// A `run:` stage standing in for `evaluate`: it writes the same metrics.json layout.
const EVAL: &str = r#"{"schema_version":1,"instances":[
 {"stage":"student","model":"student","variation":"","fold":0,"target":"arousal","accuracy":0.6,"f1":0.55,"macro_f1":0.58,"n":10,"confusion":[[3,2],[2,3]]},
 {"stage":"student","model":"student","variation":"","fold":1,"target":"arousal","accuracy":0.7,"f1":0.65,"macro_f1":0.68,"n":10,"confusion":[[3,2],[1,4]]}],
 "summary":[{"stage":"student","model":"student","variation":"","target":"arousal","folds":2,
   "accuracy":{"mean":0.65,"std":0.05},"f1":{"mean":0.6,"std":0.05},"macro_f1":{"mean":0.63,"std":0.05}}]}"#;

#[test]
fn a_run_writes_index_csv_and_plots() {
    let p = Project::new();
    p.write("eval.json", EVAL);
    p.write(
        "r.yaml",
        r#"
name: rep
stages:
  student:
    run: "printf 'epoch,train_loss,val_loss,val_acc\n1,0.7,0.69,0.5\n2,0.6,0.65,0.6\n' > $PIPE_OUT/learning_curve.csv"
    outs: [learning_curve.csv]
    matrix: { target: [arousal], fold: [0, 1] }
  scores:
    run: cp eval.json $PIPE_OUT/metrics.json
    deps: [eval.json]
    needs: [student]
    outs: [metrics.json]
"#,
    );
    let r = p.pipe(&["run", "r.yaml"]);
    r.ok();
    assert!(r.stdout.contains("report: "), "{}", r.stdout);
    let index = p.read("reports/rep/index.md");
    assert!(
        index.contains("| student | 65.00 ± 5.00 | 60.00 ± 5.00 | - | - | 2 |"),
        "{index}"
    );
    assert!(
        index.contains("REAL DEAP"),
        "the paper's numbers are labelled: {index}"
    );
    assert!(
        index.contains("| Proposed | 60.41 | 61.01 | 70.38 | 70.16 |"),
        "{index}"
    );
    let csv = p.read("reports/rep/results.csv");
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("student,,arousal,2,0.65,0.05"),
        "{csv}"
    );
    for png in [
        "per_fold_accuracy.png",
        "versus_paper.png",
        "learning_curves.png",
    ] {
        let bytes = std::fs::read(p.path().join("reports/rep").join(png)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png} is a PNG");
        assert!(
            bytes.len() > 10_000,
            "{png} has content ({} bytes)",
            bytes.len()
        );
        assert!(index.contains(png));
    }
}

#[test]
fn rows_of_a_matrix_over_something_else_than_fold_and_target_are_told_apart() {
    let p = Project::new();
    p.write("eval.json", EVAL);
    p.write(
        "r.yaml",
        r#"
name: swap
stages:
  scores:
    run: cp eval.json $PIPE_OUT/metrics.json
    deps: [eval.json]
    outs: [metrics.json]
    matrix: { dataset: [deap, mahnob] }
"#,
    );
    p.pipe(&["run", "r.yaml"]).ok();
    let index = p.read("reports/swap/index.md");
    for ds in ["deap", "mahnob"] {
        assert!(
            index.contains(&format!("| student (dataset={ds}) | 65.00 ± 5.00 |")),
            "{index}"
        );
    }
}
