//! Laws of the cache key: invariant to YAML formatting, key order and comments;
//! changed by any semantic edit.

use proptest::prelude::*;

fn ids(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, text).unwrap();
    pipe::instance_identities(&file).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The same pipeline in block style, keys in the given order.
fn block(params: &[(String, i64)], folds: u8) -> String {
    let mut s = String::from("name: law\nparams:\n");
    for (k, v) in params {
        s.push_str(&format!("  {k}: {v}\n"));
    }
    let refs: Vec<String> = params
        .iter()
        .map(|(k, _)| format!("${{params.{k}}}"))
        .collect();
    s.push_str(&format!(
        "stages:\n  a:\n    run: echo {} > $PIPE_OUT/x\n    outs: [x]\n    matrix:\n      fold: \"range({folds})\"\n  b:\n    needs: [a]\n    run: cat $PIPE_IN_A/x > $PIPE_OUT/y\n    outs: [y]\n",
        refs.join(" ")
    ));
    s
}

/// The same pipeline in flow style, keys reversed, with comments and blank lines.
fn flow(params: &[(String, i64)], folds: u8) -> String {
    let mut rev = params.to_vec();
    rev.reverse();
    let p: Vec<String> = rev.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let refs: Vec<String> = params
        .iter()
        .map(|(k, _)| format!("${{params.{k}}}"))
        .collect();
    format!(
        "# a comment\nstages:\n\n  b: {{ outs: [y], run: 'cat $PIPE_IN_A/x > $PIPE_OUT/y', needs: [a] }}   # trailing\n  a:\n    matrix: {{ fold: 'range({folds})' }}\n    outs:\n      - x\n    run: \"echo {} > $PIPE_OUT/x\"\nparams: {{ {} }}\nname:   law\n",
        refs.join(" "),
        p.join(", ")
    )
}

fn params() -> impl Strategy<Value = Vec<(String, i64)>> {
    prop::collection::btree_map("[a-z]{1,6}", -1000i64..1000, 1..5)
        .prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn formatting_and_key_order_do_not_change_keys(ps in params(), folds in 1u8..4) {
        prop_assert_eq!(ids(&block(&ps, folds)), ids(&flow(&ps, folds)));
    }

    #[test]
    fn any_semantic_edit_changes_keys(ps in params(), folds in 1u8..4, which in 0usize..4, delta in 1i64..5) {
        let mut edited = ps.clone();
        let i = which % edited.len();
        edited[i].1 += delta;
        let before = ids(&block(&ps, folds));
        let after = ids(&block(&edited, folds));
        // the instances' identities change (cache keys of `b` would not: they use a's output)
        prop_assert_ne!(&before, &after);
        let more = ids(&block(&ps, folds + 1));
        prop_assert_ne!(before.len(), more.len());
    }
}

/// A distillation pipeline whose two variations differ only in `feedback_every`.
fn distill_variations(feedback: &str) -> String {
    format!(
        "name: inert\nstages:\n  data: {{ uses: synthetic-deap }}\n  recordings: {{ uses: ingest-deap, needs: [data] }}\n  windows: {{ uses: windows, needs: [recordings] }}\n  splits: {{ uses: folds, needs: [windows] }}\n  teacher: {{ uses: train-teacher, needs: [windows, splits] }}\n  student:\n    uses: distill\n    needs: [teacher, windows, splits]\n    with: {{ feedback: {feedback} }}\nvariations:\n  a: {{ student.feedback_every: 2, student.eps_factor: 0.5 }}\n  b: {{ student.feedback_every: 3, student.eps_factor: 0.25 }}\n"
    )
}

#[test]
fn parameters_a_stage_declares_inert_stay_out_of_the_key() {
    // feedback: none — the feedback constants cannot change the student: one instance
    // serves both variations.
    let none = ids(&distill_variations("none"));
    // data, recordings, windows, splits, teacher, one student
    assert_eq!(none.len(), 6, "{none:?}");
    // with feedback they matter: a student per variation
    let meta = ids(&distill_variations("meta"));
    assert_eq!(meta.len(), 7, "{meta:?}");
    let first_order = ids(&distill_variations("first-order"));
    assert_eq!(first_order.len(), 7, "{first_order:?}");
    // first-order ignores eps_factor alone: variations differing only there share it
    let only_eps = distill_variations("first-order")
        .replace("student.feedback_every: 3", "student.feedback_every: 2");
    assert_eq!(ids(&only_eps).len(), 6);
}

/// The static identity (stage, version, parameters in the key, cell, upstream) of
/// every instance of every built-in pipeline, pinned: a refactor that changes one
/// would silently invalidate every user's cache. Bump a stage's version on purpose
/// and update this snapshot in the same commit.
#[test]
fn built_in_pipelines_keep_their_keys() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut all = String::new();
    for file in files {
        let ids = pipe::instance_identities(&file).unwrap_or_else(|e| panic!("{e}"));
        all.push_str(&format!(
            "{}: {} instances\n",
            file.file_name().unwrap().to_string_lossy(),
            ids.len()
        ));
        for id in ids {
            all.push_str(&format!("  {id}\n"));
        }
    }
    insta::assert_snapshot!(all);
}
