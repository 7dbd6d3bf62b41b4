//! A corpus of broken pipeline files, each with the error users must see: the
//! message, a position (file:line:col with a caret excerpt) and a hint.

use std::path::PathBuf;

use crate::util::Project;

fn corpus() -> Vec<(String, String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/malformed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .expect("first line: # expect: ...")
                .to_string();
            (
                f.file_name().unwrap().to_string_lossy().into_owned(),
                text,
                expect,
            )
        })
        .collect()
}

#[test]
fn every_malformed_file_gets_its_error_with_a_position_and_no_panic() {
    let cases = corpus();
    assert!(cases.len() >= 40, "the corpus has {} files", cases.len());
    let p = Project::new();
    let mut all = String::new();
    let mut failures = Vec::new();
    for (name, text, expect) in &cases {
        p.write(name, text);
        let r = p.pipe(&["plan", name]);
        let positioned = r.stderr.contains(&format!("[{name}:"));
        if r.code != 2
            || !r.stderr.contains(expect.as_str())
            || !positioned
            || r.stderr.contains("panicked")
        {
            failures.push(format!(
                "{name}: exit {} (want 2), want {expect:?} with a position, got:\n{}",
                r.code, r.stderr
            ));
        }
        all.push_str(&format!("===== {name}\n{}\n", r.stderr.trim_end()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    insta::assert_snapshot!("malformed_corpus", all);
}

#[test]
fn command_line_mistakes_are_usage_errors() {
    let p = Project::new();
    p.write(
        "ok.yaml",
        "stages:\n  a:\n    uses: test-concat\nvariations:\n  one: {}\n",
    );
    for (args, expect) in [
        (
            vec!["plan", "ok.yaml", "--set", "a.txt=1"],
            "has no parameter `txt`",
        ),
        (
            vec!["plan", "ok.yaml", "--set", "nodot=1"],
            "expected STAGE.PARAM=VALUE",
        ),
        (
            vec!["plan", "ok.yaml", "--set", "a.repeat=lots"],
            "expected int",
        ),
        (
            vec!["plan", "ok.yaml", "--variation", "onе"],
            "no such variation",
        ),
        (vec!["run", "ok.yaml", "--only", "b"], "no stage `b`"),
        (
            vec!["plan", "missing.yaml"],
            "cannot read pipeline file missing.yaml",
        ),
    ] {
        let r = p.pipe(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(expect),
            "{args:?}: want {expect:?}, got {}",
            r.stderr
        );
    }
}
