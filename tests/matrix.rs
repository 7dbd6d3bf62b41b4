//! Matrices, fan-in, variations and their deduplication.

use crate::util::Project;

const ABLATION: &str = r#"
name: mini-ablation
params: { folds: 3 }
stages:
  data:
    run: echo data >> count_data && echo d > $PIPE_OUT/d
    outs: [d]
  teacher:
    run: echo ${matrix.target}-${matrix.fold} >> count_teacher && echo t${matrix.fold} > $PIPE_OUT/t
    needs: [data]
    outs: [t]
    matrix: { target: [arousal, valence], fold: "range(${params.folds})" }
  student:
    uses: test-concat
    needs: [teacher]
    matrix: { target: [arousal, valence], fold: "range(${params.folds})" }
    with: { text: "s", mode: a }
  scores:
    uses: test-concat
    needs: [student]
variations:
  v1: { student.text: b }
  v2: { student.repeat: 2 }
  v3: {}
"#;

#[test]
fn variations_share_identical_instances() {
    let p = Project::new();
    p.write("abl.yaml", ABLATION);
    let r = p.pipe(&["run", "abl.yaml"]);
    r.ok();
    // data once, teacher once per cell (6), student 6 per variation, scores once per variation
    assert_eq!(p.count("count_data"), 1);
    assert_eq!(p.count("count_teacher"), 6);
    assert!(
        r.stdout
            .contains(&format!("{} ran, 0 cached", 1 + 6 + 18 + 3)),
        "{}",
        r.stdout
    );
    // --variation runs one: everything cached
    let r = p.pipe(&["run", "abl.yaml", "--variation", "v2"]);
    r.ok();
    assert!(r.stdout.contains("0 ran, 14 cached"), "{}", r.stdout);
}

#[test]
fn matching_cells_are_joined_and_fan_in_gathers_all() {
    let p = Project::new();
    p.write("abl.yaml", ABLATION);
    let dag = p.pipe(&["dag", "abl.yaml", "--variation", "v3"]);
    dag.ok();
    // the student cell reads exactly its own teacher cell
    let block: Vec<&str> = dag
        .stdout
        .split("\n")
        .skip_while(|l| !l.starts_with("student[target=valence, fold=1]"))
        .take(3)
        .collect();
    assert_eq!(
        block[1].trim(),
        "<- teacher[target=valence, fold=1]",
        "{}",
        dag.stdout
    );
    assert!(
        !block[2].trim().starts_with("<-"),
        "only one upstream cell: {}",
        dag.stdout
    );
    // scores gathers all six student cells
    let scores: Vec<&str> = dag
        .stdout
        .split("\n")
        .skip_while(|l| !l.starts_with("scores"))
        .skip(1)
        .take_while(|l| l.starts_with("  <-"))
        .collect();
    assert_eq!(scores.len(), 6, "{}", dag.stdout);
    for fmt in ["dot", "mermaid"] {
        let out = p.pipe(&["dag", "abl.yaml", "--format", fmt]);
        out.ok();
        assert!(out.stdout.contains("teacher[target=arousal, fold=0]"));
    }
}

#[test]
fn cell_values_reach_stage_params() {
    let p = Project::new();
    p.write(
        "cells.yaml",
        "stages:\n  s:\n    uses: test-concat\n    matrix: { text: [x, y], repeat: \"range(1, 3)\" }\n  all:\n    uses: test-concat\n    needs: [s]\n",
    );
    p.pipe(&["run", "cells.yaml"]).ok();
    let results: serde_json::Value =
        serde_json::from_str(&p.read("reports/cells/results.json")).unwrap();
    let all = results["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["label"] == "all")
        .unwrap()
        .clone();
    // "" + "|x" + "|xx" + "|y" + "|yy" = 10 characters
    assert_eq!(all["metrics"]["length"], 10, "{results}");
}

#[test]
fn dedupe_is_by_identity_not_by_name() {
    // two variations giving the same value by different routes are one instance
    let p = Project::new();
    p.write(
        "same.yaml",
        "params: { t: a }\nstages:\n  s:\n    uses: test-concat\n    with: { text: \"${params.t}\" }\nvariations:\n  one: { params.t: a }\n  two: { s.text: a }\n",
    );
    let r = p.pipe(&["run", "same.yaml"]);
    r.ok();
    assert!(r.stdout.contains("1 ran, 0 cached"), "{}", r.stdout);
}

#[test]
fn a_shared_axis_routes_each_cell_to_the_upstream_that_has_its_value() {
    let p = Project::new();
    p.write(
        "swap.yaml",
        r#"
stages:
  x:
    run: echo from-x > $PIPE_OUT/rows
    outs: [rows]
    matrix: { dataset: [x] }
  y:
    run: echo from-y > $PIPE_OUT/rows
    outs: [rows]
    matrix: { dataset: [y] }
  use:
    run: for d in $(echo $PIPE_IN_X $PIPE_IN_Y | tr ':' ' '); do cat $d/rows; done | tee $PIPE_OUT/got > got_${matrix.dataset}
    needs: [x, y]
    outs: [got]
    matrix: { dataset: [x, y] }
"#,
    );
    let r = p.pipe(&["run", "swap.yaml"]);
    r.ok();
    let dag = p.pipe(&["dag", "swap.yaml"]);
    dag.ok();
    assert!(
        dag.stdout.contains(
            "use[dataset=x] (run)\n  <- x[dataset=x]\nuse[dataset=y] (run)\n  <- y[dataset=y]\n"
        ),
        "{}",
        dag.stdout
    );
    // each cell read only its own upstream's rows
    assert_eq!(p.read("got_x"), "from-x\n");
    assert_eq!(p.read("got_y"), "from-y\n");

    // a value that no upstream has is still an error, naming the cell
    p.write(
        "bad.yaml",
        &std::fs::read_to_string(p.path().join("swap.yaml"))
            .unwrap()
            .replace(
                "matrix: { dataset: [x, y] }",
                "matrix: { dataset: [x, y, z] }",
            ),
    );
    let r = p.pipe(&["plan", "bad.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("use[dataset=z]: no cell of `x` matches this cell"),
        "{}",
        r.stderr
    );
}
