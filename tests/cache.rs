//! What reruns and what stays cached.

use crate::util::Project;

/// a → b → c, and d on its own. Each `run:` stage appends to a counter file.
const CHAIN: &str = r#"
name: chain
params:
  greeting: hello
  unused: 1
stages:
  a:
    run: echo ${params.greeting} > $PIPE_OUT/a.txt && echo a >> count_a
    outs: [a.txt]
  b:
    run: cat $PIPE_IN_A/a.txt > $PIPE_OUT/b.txt && echo b >> count_b
    needs: [a]
    outs: [b.txt]
  c:
    uses: test-concat
    needs: [b]
    with: { text: "c" }
  d:
    run: echo d > $PIPE_OUT/d.txt && echo d >> count_d
    outs: [d.txt]
"#;

#[test]
fn second_run_is_all_cached() {
    let p = Project::new();
    p.write("chain.yaml", CHAIN);
    let first = p.pipe(&["run", "chain.yaml"]);
    first.ok();
    assert!(first.stdout.contains("4 ran, 0 cached"), "{}", first.stdout);
    let second = p.pipe(&["run", "chain.yaml"]);
    second.ok();
    assert!(
        second.stdout.contains("0 ran, 4 cached"),
        "{}",
        second.stdout
    );
    assert_eq!(
        (p.count("count_a"), p.count("count_b"), p.count("count_d")),
        (1, 1, 1)
    );
}

#[test]
fn changed_param_reruns_only_that_stage_and_dependents() {
    let p = Project::new();
    p.write("chain.yaml", CHAIN);
    p.pipe(&["run", "chain.yaml"]).ok();
    let r = p.pipe(&["run", "chain.yaml", "--set", "params.greeting=bonjour"]);
    r.ok();
    assert_eq!(
        (p.count("count_a"), p.count("count_b"), p.count("count_d")),
        (2, 2, 1)
    );
    assert!(r.status_of("c").unwrap().contains("ran"), "{}", r.stdout);
    assert!(r.status_of("d").unwrap().contains("cached"), "{}", r.stdout);
    // a parameter nothing uses changes nothing
    let r = p.pipe(&[
        "run",
        "chain.yaml",
        "--set",
        "params.greeting=bonjour",
        "--set",
        "params.unused=2",
    ]);
    r.ok();
    assert!(r.stdout.contains("0 ran, 4 cached"), "{}", r.stdout);
    // a built-in stage's parameter: only c
    let r = p.pipe(&["run", "chain.yaml", "--set", "c.text=C"]);
    r.ok();
    assert!(r.stdout.contains("1 ran, 3 cached"), "{}", r.stdout);
    assert!(r.status_of("c").unwrap().contains("ran"));
}

#[test]
fn early_cutoff_keeps_dependents_cached_when_output_is_identical() {
    let p = Project::new();
    // `a`'s command depends on a parameter only through a comment: its key changes,
    // its output does not.
    p.write(
        "cut.yaml",
        r#"
params: { note: one }
stages:
  a:
    run: "echo same > $PIPE_OUT/a.txt; echo a >> count_a # ${params.note}"
    outs: [a.txt]
  b:
    run: cat $PIPE_IN_A/a.txt > $PIPE_OUT/b.txt && echo b >> count_b
    needs: [a]
    outs: [b.txt]
"#,
    );
    p.pipe(&["run", "cut.yaml"]).ok();
    let r = p.pipe(&["run", "cut.yaml", "--set", "params.note=two"]);
    r.ok();
    assert_eq!(p.count("count_a"), 2, "a reran");
    assert_eq!(p.count("count_b"), 1, "b stayed cached: {}", r.stdout);
    // --force reruns a; identical bytes again keep b cached
    let r = p.pipe(&["run", "cut.yaml", "--force", "a"]);
    r.ok();
    assert_eq!((p.count("count_a"), p.count("count_b")), (3, 1));
}

#[test]
fn external_dep_change_reruns_and_touch_without_change_does_not() {
    let p = Project::new();
    p.write("input.txt", "v1");
    p.write(
        "ext.yaml",
        "stages:\n  read:\n    run: cat input.txt > $PIPE_OUT/o && echo r >> count\n    deps: [input.txt]\n    outs: [o]\n",
    );
    p.pipe(&["run", "ext.yaml"]).ok();
    // rewriting the same bytes (new mtime) must not rerun
    std::thread::sleep(std::time::Duration::from_millis(20));
    p.write("input.txt", "v1");
    p.pipe(&["run", "ext.yaml"]).ok();
    assert_eq!(p.count("count"), 1);
    p.write("input.txt", "v2");
    let plan = p.pipe(&["plan", "ext.yaml"]);
    assert!(plan.stdout.contains("deps[0] changed"), "{}", plan.stdout);
    p.pipe(&["run", "ext.yaml"]).ok();
    assert_eq!(p.count("count"), 2);
}

#[test]
fn plan_says_why() {
    let p = Project::new();
    p.write("chain.yaml", CHAIN);
    let plan = p.pipe(&["plan", "chain.yaml"]);
    plan.ok();
    assert!(plan.stdout.contains("new"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("4 to run, 0 cached"),
        "{}",
        plan.stdout
    );
    p.pipe(&["run", "chain.yaml"]).ok();
    let plan = p.pipe(&["plan", "chain.yaml", "--set", "c.text=x"]);
    assert!(plan.stdout.contains("param text: c → x"), "{}", plan.stdout);
    let plan = p.pipe(&["plan", "chain.yaml", "--set", "params.greeting=hi"]);
    assert!(plan.stdout.contains("after a"), "{}", plan.stdout);
    let plan = p.pipe(&["plan", "chain.yaml", "--force", "d"]);
    assert!(plan.stdout.contains("forced"), "{}", plan.stdout);
    // run with the new text, then go back: the input of c changed reason
    p.pipe(&["run", "chain.yaml", "--set", "params.greeting=hi"])
        .ok();
    let plan = p.pipe(&["plan", "chain.yaml"]);
    assert!(
        plan.stdout.contains("0 to run"),
        "old results are still cached: {}",
        plan.stdout
    );
    // output removed from the cache
    for key_dir in std::fs::read_dir(p.path().join("cache/out")).unwrap() {
        for f in std::fs::read_dir(key_dir.unwrap().path()).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
    }
    let plan = p.pipe(&["plan", "chain.yaml"]);
    assert!(plan.stdout.contains("output missing"), "{}", plan.stdout);
}

#[test]
fn metrics_are_collected_into_results_json() {
    let p = Project::new();
    p.write(
        "m.yaml",
        "name: m\nstages:\n  s:\n    uses: test-concat\n    with: { text: abc, scale: 2.5 }\n  r:\n    run: \"echo '{\\\"acc\\\": 0.75}' > $PIPE_OUT/metrics.json\"\n    outs: [metrics.json]\n",
    );
    p.pipe(&["run", "m.yaml"]).ok();
    let results: serde_json::Value =
        serde_json::from_str(&p.read("reports/m/results.json")).unwrap();
    assert_eq!(results["schema_version"], 1);
    let inst = results["instances"].as_array().unwrap();
    let s = inst.iter().find(|i| i["label"] == "s").unwrap();
    assert_eq!(s["metrics"]["length"], 3);
    assert_eq!(s["metrics"]["scale"], 2.5);
    let r = inst.iter().find(|i| i["label"] == "r").unwrap();
    assert_eq!(r["metrics"]["acc"], 0.75);
}

#[test]
fn plan_reports_a_version_bump() {
    let p = Project::new();
    p.write(
        "v.yaml",
        "name: v\nstages:\n  s:\n    uses: test-concat\n    with: { text: a }\n",
    );
    p.pipe(&["run", "v.yaml"]).ok();
    // pretend the cached run was made by version 0 of the stage
    let runs = p.path().join("cache/runs");
    let manifest = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("\"version\": 1", "\"version\": 0");
    std::fs::write(&manifest, text).unwrap();
    let plan = p.pipe(&["plan", "v.yaml", "--set", "s.text=b"]);
    assert!(
        plan.stdout.contains("version bumped 0 → 1") && plan.stdout.contains("param text: a → b"),
        "{}",
        plan.stdout
    );
}
