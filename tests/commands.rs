//! `stages`, `show`, `gc`, `dag` as users call them.

use crate::util::Project;

#[test]
fn stages_lists_every_param_with_type_default_and_doc() {
    let p = Project::new();
    let r = p.pipe(&["stages", "test-concat"]);
    r.ok();
    for want in [
        "test-concat (v1)",
        "repeat",
        "int",
        "how many times to write it",
        "one of a|b",
        "(none)",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?} in\n{}", r.stdout);
    }
    let j = p.pipe(&["stages", "--json"]);
    j.ok();
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert!(v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "test-concat"));
    let r = p.pipe(&["stages", "test-concta"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("did you mean `test-concat`?"),
        "{}",
        r.stderr
    );
}

#[test]
fn show_finds_runs_by_stage_and_key() {
    let p = Project::new();
    p.write(
        "s.yaml",
        "stages:\n  hello:\n    uses: test-concat\n    with: { text: hi }\n",
    );
    p.pipe(&["run", "s.yaml"]).ok();
    let r = p.pipe(&["show", "hello"]);
    r.ok();
    assert!(
        r.stdout.contains("hello  (test-concat v1, pipeline s)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("out.txt (2 bytes)"), "{}", r.stdout);
    let key = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("key        "))
        .unwrap()
        .to_string();
    let j = p.pipe(&["show", &key[..8], "--json"]);
    j.ok();
    let m: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(m["key"], key.as_str());
    assert_eq!(m["params"]["text"], "hi");
    assert_eq!(m["metrics"]["length"], 2);
    assert_eq!(m["schema_version"], 1);
    assert!(m["host"]["cpus"].as_u64().unwrap() >= 1);
    assert_eq!(p.pipe(&["show", "nothing-like-this"]).code, 2);
}

#[test]
fn gc_keeps_what_pipelines_use_and_removes_the_rest() {
    let p = Project::new();
    p.write("g.yaml", "params: { t: a }\nstages:\n  s:\n    uses: test-concat\n    with: { text: \"${params.t}\" }\n");
    p.pipe(&["run", "g.yaml"]).ok();
    p.pipe(&["run", "g.yaml", "--set", "params.t=b"]).ok();
    assert_eq!(
        std::fs::read_dir(p.path().join("cache/runs"))
            .unwrap()
            .count(),
        2
    );
    let gc = p.pipe(&["gc", "g.yaml"]);
    gc.ok();
    assert!(gc.stdout.contains("removed 1 runs"), "{}", gc.stdout);
    let r = p.pipe(&["run", "g.yaml"]);
    assert!(r.stdout.contains("0 ran, 1 cached"), "{}", r.stdout);
    assert_eq!(
        p.pipe(&["gc"]).code,
        2,
        "gc without anything to keep refuses"
    );
}

#[test]
fn json_logs_and_quiet() {
    let p = Project::new();
    p.write("q.yaml", "stages:\n  s:\n    uses: test-concat\n");
    let r = p.pipe(&["run", "-q", "q.yaml"]);
    r.ok();
    assert!(!r.stderr.contains("ran      s"), "{}", r.stderr);
    let r = p.pipe(&["-v", "--log-format", "json", "run", "q.yaml"]);
    r.ok();
}

#[test]
fn diff_passes_on_equal_runs_and_fails_on_a_regression() {
    let p = Project::new();
    p.write(
        "d.yaml",
        "name: d\nstages:\n  s:\n    uses: test-concat\n    with: { text: abcd, scale: 1.0 }\n",
    );
    p.pipe(&["run", "d.yaml"]).ok();
    std::fs::copy(
        p.path().join("reports/d/results.json"),
        p.path().join("baseline.json"),
    )
    .unwrap();
    let same = p.pipe(&["diff", "baseline.json", "reports/d"]);
    same.ok();
    assert!(same.stdout.contains("0 failing"), "{}", same.stdout);
    // shorter text: `length` drops → regression
    p.pipe(&["run", "d.yaml", "--set", "s.text=ab"]).ok();
    let worse = p.pipe(&["diff", "baseline.json", "reports/d/results.json"]);
    assert_eq!(worse.code, 4, "{}", worse.stdout);
    assert!(
        worse.stdout.contains("s / length") && worse.stdout.contains("REGRESSION"),
        "{}",
        worse.stdout
    );
    // within tolerance, or ignored
    p.pipe(&["diff", "baseline.json", "reports/d", "--tol", "*length=2"])
        .ok();
    p.pipe(&["diff", "baseline.json", "reports/d", "--ignore", "*length"])
        .ok();
    // longer text is an improvement (fails only with --strict)
    p.pipe(&["run", "d.yaml", "--set", "s.text=abcdef"]).ok();
    p.pipe(&["diff", "baseline.json", "reports/d"]).ok();
    assert_eq!(
        p.pipe(&["diff", "baseline.json", "reports/d", "--strict"])
            .code,
        4
    );
    // not a results file
    p.write("junk.json", "{\"a\": 1}");
    assert_eq!(p.pipe(&["diff", "junk.json", "reports/d"]).code, 2);
}

#[test]
fn hash_matches_the_blake3_test_vector_and_covers_folders() {
    let p = Project::new();
    p.write("abc.txt", "abc");
    let r = p.pipe(&["hash", "abc.txt"]);
    r.ok();
    // BLAKE3("abc"), the reference test vector
    assert_eq!(
        r.stdout.split_whitespace().next(),
        Some("6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85")
    );
    p.write("d/one.txt", "1").write("d/sub/two.txt", "2");
    let before = p.pipe(&["hash", "d"]).stdout;
    std::fs::rename(p.path().join("d/one.txt"), p.path().join("d/uno.txt")).unwrap();
    assert_ne!(
        p.pipe(&["hash", "d"]).stdout,
        before,
        "a renamed file changes a folder's digest"
    );
    assert_eq!(p.pipe(&["hash", "missing"]).code, 2);
}

#[test]
fn a_renamed_stage_is_named_with_its_new_name() {
    let p = Project::new();
    p.write(
        "old.yaml",
        "name: old\nstages:\n  baseline:\n    uses: deepconvnet\n",
    );
    let r = p.pipe(&["plan", "old.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("unknown stage `deepconvnet`")
            && r.stderr
                .contains("`deepconvnet` was renamed: write `uses: train-deepconvnet`"),
        "{}",
        r.stderr
    );
}
