//! The pipeline files users run (`pipelines/`), run by the real binary in a copy of
//! the project. The ablation runs at a tiny size and is compared with a committed
//! baseline (`tests/baselines/ablation-tiny.json`): the reproducible CI benchmark.

use std::path::PathBuf;

use crate::util::Project;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary project holding the repository's pipeline files (and the example
/// converter that dataset-swap.yaml lists as a dependency).
fn project() -> Project {
    let p = Project::new();
    for f in [
        "ablation",
        "deap",
        "deap-subject-dependent",
        "feedback-controls",
        "mahnob",
        "dataset-swap",
    ] {
        let text = std::fs::read_to_string(repo().join(format!("pipelines/{f}.yaml")))
            .expect("pipeline file");
        p.write(&format!("pipelines/{f}.yaml"), &text);
    }
    let example = std::fs::read_to_string(repo().join("src/bin/own-format.rs")).expect("example");
    p.write("src/bin/own-format.rs", &example);
    p
}

/// The tiny ablation: every stage, a few seconds of data, one epoch.
const TINY: &[&str] = &[
    "--set",
    "data.subjects=2",
    "--set",
    "data.trials=8",
    "--set",
    "data.seconds=12",
    "--set",
    "params.folds=2",
    "--set",
    "params.epochs=1",
    // V3's quiz batch needs training windows outside the batch
    "--set",
    "v3.batch_size=8",
];

fn with_tiny<'a>(args: &[&'a str]) -> Vec<&'a str> {
    args.iter().chain(TINY).copied().collect()
}

/// On one machine the run is bit-for-bit repeatable (the stages' determinism tests);
/// these tolerances are for CPUs whose SIMD paths round differently (AVX2 vs
/// AVX-512), where a tiny run's few test windows can flip: one window moves an
/// accuracy by ~4 points. Confusion counts are left out (accuracy and F1 carry them,
/// and a count has no better or worse direction).
const DIFF_TOLERANCES: &[&str] = &[
    "--tol",
    "*accuracy*=9",
    "--tol",
    "*f1*=12",
    "--tol",
    "*val_acc*=20",
    "--tol",
    "*loss*=0.1",
    "--ignore",
    "*confusion*",
    "--ignore",
    "*seconds*",
    "--ignore",
    "*mb_per_s*",
];

#[test]
fn the_tiny_ablation_matches_the_committed_baseline_and_reruns_only_what_changed() {
    let p = project();
    let r = p.pipe(&with_tiny(&["run", "pipelines/ablation.yaml", "-j", "2"]));
    r.ok();
    // every arm of section 4.5 is in the results table
    for row in [
        "teacher",
        "emotionnet",
        "deepconvnet",
        "kd-none",
        "v1",
        "v2",
        "v3",
        "v3/teacher",
        "bandpower",
        "bandpower-eog",
    ] {
        assert!(
            r.stdout.contains(&format!("│ {row} ")),
            "no `{row}` row:\n{}",
            r.stdout
        );
    }
    // the paired contrasts, with a verdict each; the no-KD control is the plain EOG
    // student (same seeds, same loop, no teacher terms)
    let report =
        std::fs::read_to_string(p.path().join("reports/ablation/index.md")).expect("report");
    for want in [
        "| v3 − v2 | arousal |",
        "| v1 − kd-none | valence |",
        "| teacher − constant |",
    ] {
        assert!(report.contains(want), "no {want:?} in\n{report}");
    }
    for line in report
        .lines()
        .filter(|l| l.starts_with("| kd-none − emotionnet |"))
    {
        assert!(
            line.contains("no difference: equal accuracy in every cell"),
            "{line}"
        );
    }
    let current = p.path().join("reports/ablation/results.json");
    let baseline = repo().join("tests/baselines/ablation-tiny.json");
    if std::env::var_os("PIPE_UPDATE_BASELINE").is_some() {
        std::fs::copy(&current, &baseline).expect("update the baseline");
    }
    let mut args = vec![
        "diff",
        baseline.to_str().expect("utf-8 path"),
        current.to_str().expect("utf-8 path"),
    ];
    args.extend(DIFF_TOLERANCES);
    let d = p.pipe(&args);
    assert_eq!(
        d.code, 0,
        "the tiny ablation moved away from tests/baselines/ablation-tiny.json \
         (rerun with PIPE_UPDATE_BASELINE=1 if the change is intended):\n{}\n{}",
        d.stdout, d.stderr
    );

    // warm: nothing runs
    let warm = p.pipe(&with_tiny(&["run", "pipelines/ablation.yaml"]));
    warm.ok();
    assert!(
        warm.stdout.contains("\n0 ran, 78 cached"),
        "{}",
        warm.stdout
    );
    // a distillation parameter of one arm: only that arm's students (2 targets × 2
    // folds × 2 repeats) and the evaluation rerun
    let to_run = planned(&p, "v1.temperature=2");
    assert_eq!(to_run.len(), 2 * 2 * 2 + 1, "{to_run:#?}");
    assert!(
        to_run
            .iter()
            .all(|l| l.contains("│ v1[") || l.contains("scores")),
        "{to_run:#?}"
    );
    // a feedback constant is inert without feedback: on V2 it changes no key
    let to_run = planned(&p, "v2.feedback_every=1");
    assert!(to_run.is_empty(), "{to_run:#?}");
    // the teacher on the GPU: `STAGE.backend` sets the stage's backend, which is in
    // the key, so the teachers and what they feed rerun and the data stages do not
    let to_run = planned(&p, "teacher.backend=cuda");
    let teachers: Vec<_> = to_run
        .iter()
        .filter(|l| {
            l.trim_start_matches('│')
                .trim_start()
                .starts_with("teacher[")
        })
        .collect();
    assert_eq!(teachers.len(), 2 * 2 * 2, "{to_run:#?}");
    assert!(
        teachers.iter().all(|l| l.contains("backend cpu → cuda")),
        "{to_run:#?}"
    );
    assert!(
        to_run.iter().all(|l| ["teacher[", "student[", "scores"]
            .iter()
            .any(|s| l.contains(s))),
        "{to_run:#?}"
    );
    let mut args = with_tiny(&["plan", "pipelines/ablation.yaml"]);
    args.extend(["--set", "teacher.backend=gpu"]);
    let bad = p.pipe(&args);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("`backend` must be `cpu` or `cuda`"),
        "{}",
        bad.stderr
    );
    if cfg!(not(feature = "cuda")) {
        // a build without the feature refuses, naming it, and runs nothing on the CPU
        let mut args = with_tiny(&["run", "pipelines/ablation.yaml", "--only", "teacher"]);
        args.extend(["--set", "teacher.backend=cuda"]);
        let r = p.pipe(&args);
        assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(all.contains("`cuda` feature"), "{all}");
    }
}

/// The lines of `pipe plan` (tiny ablation, one `--set`) for instances that would run.
fn planned(p: &Project, set: &str) -> Vec<String> {
    let mut args = with_tiny(&["plan", "pipelines/ablation.yaml"]);
    args.extend(["--set", set]);
    let plan = p.pipe(&args);
    plan.ok();
    plan.stdout
        .lines()
        .filter(|l| l.contains(" run "))
        .map(String::from)
        .collect()
}

#[test]
fn a_regression_against_the_baseline_fails_the_diff() {
    let p = project();
    let baseline = repo().join("tests/baselines/ablation-tiny.json");
    let text = std::fs::read_to_string(&baseline).expect("baseline");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    // every teacher's accuracy twenty points worse
    for inst in v["instances"].as_array_mut().expect("instances") {
        if inst["stage"] == "teacher" {
            let acc = inst["metrics"]["accuracy"].as_f64().expect("accuracy");
            inst["metrics"]["accuracy"] = serde_json::json!(acc - 20.0);
        }
    }
    p.write("worse.json", &v.to_string());
    let mut args = vec!["diff", baseline.to_str().expect("utf-8 path"), "worse.json"];
    args.extend(DIFF_TOLERANCES);
    let d = p.pipe(&args);
    assert_eq!(d.code, 4, "{}\n{}", d.stdout, d.stderr);
    let line = d
        .stdout
        .lines()
        .find(|l| {
            l.contains("teacher[target=arousal, fold=0, repeat=0]") && l.contains("/ accuracy")
        })
        .unwrap_or_default();
    assert!(line.contains("REGRESSION"), "{}", d.stdout);
}

#[test]
fn the_real_data_pipelines_say_what_to_download_when_the_folder_is_missing() {
    let p = project();
    for (file, needle) in [
        ("deap", "https://www.eecs.qmul.ac.uk/mmv/datasets/deap/"),
        ("mahnob", "https://mahnob-db.eu/hci-tagging/"),
    ] {
        let r = p.pipe(&[
            "run",
            &format!("pipelines/{file}.yaml"),
            "--only",
            "recordings",
        ]);
        assert_eq!(r.code, 1, "{file}: {}\n{}", r.stdout, r.stderr);
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(
            all.contains("does not exist") && all.contains(needle),
            "{file}: {all}"
        );
    }
    // an existing but wrong folder: the reader's own message says what it expected
    std::fs::create_dir_all(p.path().join("empty")).expect("mkdir");
    let r = p.pipe(&[
        "run",
        "pipelines/deap.yaml",
        "--only",
        "recordings",
        "--set",
        "params.deap=empty",
    ]);
    assert_eq!(r.code, 1);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("no DEAP subject files"), "{all}");
    // both plan the whole method (20 target × fold cells per arm)
    for file in ["deap", "mahnob"] {
        let r = p.pipe(&["dag", &format!("pipelines/{file}.yaml"), "--format", "text"]);
        r.ok();
        assert!(
            r.stdout.contains("teacher[target=valence, fold=9]"),
            "{}",
            r.stdout
        );
    }
    // deap.yaml offers the protocols as variations: loso has one fold per subject
    let r = p.pipe(&[
        "dag",
        "pipelines/deap.yaml",
        "--variation",
        "loso",
        "--format",
        "text",
    ]);
    r.ok();
    assert!(
        r.stdout.contains("v3[target=valence, fold=31]"),
        "{}",
        r.stdout
    );
    let r = p.pipe(&[
        "plan",
        "pipelines/deap.yaml",
        "--variation",
        "leave-video-out",
    ]);
    assert!(r.stdout.contains("splits"), "{}", r.stdout);
    // per-subject models: a subject axis on every arm
    let r = p.pipe(&[
        "dag",
        "pipelines/deap-subject-dependent.yaml",
        "--format",
        "text",
    ]);
    r.ok();
    assert!(
        r.stdout.contains("v3[target=valence, fold=4, subject=32]"),
        "{}",
        r.stdout
    );
    let r = p.pipe(&[
        "dag",
        "pipelines/feedback-controls.yaml",
        "--format",
        "text",
    ]);
    r.ok();
    assert!(
        r.stdout
            .contains("v3-ce-only[target=valence, fold=2, repeat=1]"),
        "{}",
        r.stdout
    );
}

/// The example converter that `dataset-swap.yaml` runs (a binary of this package).
fn converter() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_own-format"))
}

#[test]
fn dataset_swap_routes_each_dataset_cell_to_its_own_ingest() {
    let p = project();
    let conv = converter();
    assert!(conv.exists(), "{} was not built", conv.display());
    let set_conv = format!("params.converter={}", conv.display());
    let r = p.pipe(&[
        "run",
        "pipelines/dataset-swap.yaml",
        "--only",
        "splits",
        "--set",
        &set_conv,
        "--set",
        "deap_files.subjects=1",
        "--set",
        "deap_files.trials=4",
        "--set",
        "deap_files.seconds=8",
        "--set",
        "mahnob_files.subjects=1",
        "--set",
        "mahnob_files.sessions=4",
        "--set",
        "mahnob_files.stimulus_s=10",
    ]);
    r.ok();
    for ds in ["deap", "mahnob", "own"] {
        let line = r
            .status_of(&format!("windows[dataset={ds}]"))
            .unwrap_or_default();
        assert!(line.contains("ran"), "windows[{ds}]: {}", r.stdout);
    }
    // each windows cell needs exactly its own dataset's ingest
    let dag = p.pipe(&[
        "dag",
        "pipelines/dataset-swap.yaml",
        "--format",
        "text",
        "--set",
        &set_conv,
    ]);
    dag.ok();
    let lines: Vec<&str> = dag.stdout.lines().collect();
    for (ds, up) in [
        ("deap", "deap[dataset=deap]"),
        ("mahnob", "mahnob[dataset=mahnob]"),
        ("own", "own[dataset=own]"),
    ] {
        let at = lines
            .iter()
            .position(|l| l.starts_with(&format!("windows[dataset={ds}] ")))
            .expect("windows cell in the dag");
        let needs: Vec<&str> = lines[at + 1..]
            .iter()
            .take_while(|l| l.starts_with("  <- "))
            .map(|l| l.trim_start_matches("  <- "))
            .collect();
        assert_eq!(needs, vec![up], "{}", dag.stdout);
    }
}
