//! The training stages end to end on tiny networks: outputs, checkpoint round trip
//! from `train-teacher` into `distill`, `evaluate` over them, determinism.

use dfdx::prelude::*;
use serde_json::Value;

use super::support::*;
use crate::model::{Student, Teacher};
use crate::stage::{Context, Outcome, Stage};
use crate::test_support::input;
use crate::train::dataset::{FoldData, Modality, Role, Target};
use crate::train::distill_loop::evaluate_teacher;
use crate::train::distill_stage::{Distill, UPDATED_TEACHER};
use crate::train::evaluate::Evaluate;
use crate::train::predictions::{read_predictions, PREDICTIONS, TEACHER_PREDICTIONS};
use crate::train::supervised_stages::{TrainDeepConvNet, TrainStudent, TrainTeacher};

fn with_sizes(extra: &[(&'static str, Value)]) -> Vec<(&'static str, Value)> {
    let mut p = tiny_size_params();
    p.extend([
        ("epochs", Value::from(2)),
        ("batch_size", Value::from(8)),
        ("fold", Value::from(1)),
    ]);
    p.extend(extra.iter().cloned());
    p
}

/// The blake3 digest of a file (hex), to compare outputs without printing them.
fn digest(path: &std::path::Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap())
        .to_hex()
        .to_string()
}

fn run(stage: &dyn Stage, ctx: &Context) -> Outcome {
    stage
        .run(ctx)
        .unwrap_or_else(|e| panic!("{} failed: {e}", stage.name()))
}

#[test]
fn teacher_checkpoint_goes_through_distill_and_evaluate() {
    let root = tempfile::tempdir().unwrap();
    let data = write_tables(root.path(), 1);
    let tables = input("windows", &data, 1, "arousal");
    let teacher_ctx = context(
        root.path(),
        "teacher",
        params(&TrainTeacher, &with_sizes(&[])),
        vec![tables.clone()],
        1,
        1,
    );
    let tm = run(&TrainTeacher, &teacher_ctx);
    for f in [
        "teacher.safetensors",
        "learning_curve.csv",
        PREDICTIONS,
        "metrics.json",
    ] {
        assert!(
            teacher_ctx.out_dir.join(f).exists(),
            "train-teacher did not write {f}"
        );
    }
    assert_eq!(tm.metrics["epochs"], 2);
    let curve = std::fs::read_to_string(teacher_ctx.out_dir.join("learning_curve.csv")).unwrap();
    assert_eq!(curve.lines().count(), 3, "{curve}");

    // The checkpoint reloads into the same predictions.
    let fd = FoldData::load(
        &data.join("windows.parquet"),
        &data.join("splits.parquet"),
        1,
        Target::Arousal,
        &[Modality::Eeg, Modality::Eog],
    )
    .unwrap();
    let dev = Cpu::default();
    let t =
        Teacher::<f32, Cpu>::load(&dev, &teacher_ctx.out_dir.join("teacher.safetensors")).unwrap();
    let (_, p) = evaluate_teacher(&t, &fd, Role::Test, 7, &dev).unwrap();
    let written = read_predictions(&teacher_ctx.out_dir.join(PREDICTIONS)).unwrap();
    assert_eq!(written.len(), p.len());
    for (w, p) in written.iter().zip(&p) {
        assert!((w.p_high - p).abs() < 1e-6, "{} vs {p}", w.p_high);
    }

    // V3 distillation from that teacher.
    let teacher_in = input("teacher", &teacher_ctx.out_dir, 1, "arousal");
    let distill_params = params(
        &Distill,
        &with_sizes(&[("epochs", Value::from(1)), ("quiz_batch", Value::from(8))]),
    );
    let dctx = context(
        root.path(),
        "distill",
        distill_params.clone(),
        vec![teacher_in.clone(), tables.clone()],
        2,
        1,
    );
    let dm = run(&Distill, &dctx);
    for f in [
        "student.safetensors",
        PREDICTIONS,
        UPDATED_TEACHER,
        TEACHER_PREDICTIONS,
        "metrics.json",
    ] {
        assert!(dctx.out_dir.join(f).exists(), "distill did not write {f}");
    }
    assert!(dm.metrics["teacher_updates"].as_u64().unwrap() > 0);
    assert!(dm.metrics["teacher"]["accuracy"].is_number());
    Student::<f32, Cpu>::load(&dev, &dctx.out_dir.join("student.safetensors")).unwrap();
    let updated = Teacher::<f32, Cpu>::load(&dev, &dctx.out_dir.join(UPDATED_TEACHER)).unwrap();
    use crate::model::ParamTreeExt;
    assert_ne!(updated.param_vec().to_vec(), t.param_vec().to_vec());

    // A teacher of another fold is refused.
    let wrong = input("teacher", &teacher_ctx.out_dir, 0, "arousal");
    let bad = context(
        root.path(),
        "bad",
        distill_params,
        vec![wrong, tables],
        2,
        1,
    );
    let e = Distill.run(&bad).unwrap_err().to_string();
    assert!(e.contains("fold 1") && e.contains("fold 0"), "{e}");

    // evaluate gathers the student's and the updated teacher's predictions.
    let ectx = context(
        root.path(),
        "evaluate",
        params(&Evaluate, &[]),
        vec![teacher_in, input("distill", &dctx.out_dir, 1, "arousal")],
        0,
        1,
    );
    let em = run(&Evaluate, &ectx);
    assert_eq!(em.metrics["teacher"]["arousal"]["folds"], 1);
    assert_eq!(
        em.metrics["distill"]["arousal"]["accuracy"]["mean"],
        dm.metrics["accuracy"]
    );
    assert_eq!(
        em.metrics["distill/teacher"]["arousal"]["accuracy"]["mean"],
        dm.metrics["teacher"]["accuracy"]
    );
}

#[test]
fn same_seed_same_results_whatever_the_thread_count() {
    let root = tempfile::tempdir().unwrap();
    let data = write_tables(root.path(), 2);
    let tables = input("windows", &data, 1, "arousal");
    let p = params(
        &TrainStudent,
        &with_sizes(&[("front_dropout", Value::from(0.3))]),
    );
    let mut outs = Vec::new();
    for (name, threads) in [("a", 1), ("b", 2), ("c", 2)] {
        let ctx = context(
            root.path(),
            name,
            p.clone(),
            vec![tables.clone()],
            9,
            threads,
        );
        let m = run(&TrainStudent, &ctx);
        let ckpt = digest(&ctx.out_dir.join("student.safetensors"));
        let preds = std::fs::read_to_string(ctx.out_dir.join(PREDICTIONS)).unwrap();
        outs.push((m.metrics, ckpt, preds));
    }
    assert_eq!(outs[0], outs[1], "1 vs 2 threads");
    assert_eq!(outs[1], outs[2], "same seed, same threads");
    let ctx = context(root.path(), "d", p, vec![tables], 10, 2);
    run(&TrainStudent, &ctx);
    assert_ne!(
        digest(&ctx.out_dir.join("student.safetensors")),
        outs[0].1,
        "another seed"
    );
}

#[test]
fn distill_runs_are_deterministic() {
    let root = tempfile::tempdir().unwrap();
    let data = write_tables(root.path(), 4);
    let tables = input("windows", &data, 1, "valence");
    let tp = params(
        &TrainTeacher,
        &with_sizes(&[
            ("target", Value::from("valence")),
            ("epochs", Value::from(1)),
        ]),
    );
    let tctx = context(root.path(), "teacher", tp, vec![tables.clone()], 1, 1);
    run(&TrainTeacher, &tctx);
    let teacher_in = input("teacher", &tctx.out_dir, 1, "valence");
    let dp = params(
        &Distill,
        &with_sizes(&[
            ("target", Value::from("valence")),
            ("epochs", Value::from(1)),
            ("quiz_batch", Value::from(8)),
            ("dropout", Value::from(0.2)),
        ]),
    );
    let mut outs = Vec::new();
    for (name, threads) in [("x", 2), ("y", 1)] {
        let ctx = context(
            root.path(),
            name,
            dp.clone(),
            vec![teacher_in.clone(), tables.clone()],
            5,
            threads,
        );
        let m = run(&Distill, &ctx);
        outs.push((
            m.metrics,
            digest(&ctx.out_dir.join("student.safetensors")),
            digest(&ctx.out_dir.join(UPDATED_TEACHER)),
        ));
    }
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn distill_with_a_regressor_and_a_smaller_student() {
    let root = tempfile::tempdir().unwrap();
    let data = write_tables(root.path(), 6);
    let tables = input("windows", &data, 1, "arousal");
    let tp = params(&TrainTeacher, &with_sizes(&[("epochs", Value::from(1))]));
    let tctx = context(root.path(), "teacher", tp, vec![tables.clone()], 1, 1);
    run(&TrainTeacher, &tctx);
    let teacher_in = input("teacher", &tctx.out_dir, 1, "arousal");
    // A student of width 2 and stride 8 (2 tokens) cannot use the fixed alignment…
    let smaller = [
        ("epochs", Value::from(1)),
        ("feedback", Value::from("none")),
        ("dim", Value::from(2)),
        ("heads", Value::from(1)),
        ("stride", Value::from(8)),
    ];
    let p = params(&Distill, &with_sizes(&smaller));
    let ctx = context(
        root.path(),
        "plain",
        p,
        vec![teacher_in.clone(), tables.clone()],
        3,
        1,
    );
    let e = Distill.run(&ctx).unwrap_err().to_string();
    assert!(e.contains("regressor"), "{e}");
    // …but can with a learned regressor onto the raw F_T (6 tokens × 4).
    let mut with_reg = smaller.to_vec();
    with_reg.push(("regressor", Value::from(true)));
    let p = params(&Distill, &with_sizes(&with_reg));
    let ctx = context(root.path(), "regressor", p, vec![teacher_in, tables], 3, 1);
    let m = run(&Distill, &ctx);
    assert_eq!(m.metrics["teacher_updates"], 0);
    assert!(!ctx.out_dir.join(UPDATED_TEACHER).exists());
    Student::<f32, Cpu>::load(&Cpu::default(), &ctx.out_dir.join("student.safetensors")).unwrap();
}

#[test]
fn student_and_deepconvnet_baselines_run() {
    let root = tempfile::tempdir().unwrap();
    let data = write_tables(root.path(), 5);
    let tables = input("windows", &data, 1, "arousal");
    let ctx = context(
        root.path(),
        "student",
        params(&TrainStudent, &with_sizes(&[])),
        vec![tables.clone()],
        1,
        1,
    );
    let m = run(&TrainStudent, &ctx);
    assert!(
        m.metrics["accuracy"].is_number()
            && m.metrics["f1"].is_number()
            && m.metrics["macro_f1"].is_number()
    );
    let dcn = params(
        &TrainDeepConvNet,
        &[
            ("filters", Value::from(vec!["4", "4"])),
            ("kernel", Value::from(3)),
            ("pool", Value::from(2)),
            ("epochs", Value::from(2)),
            ("batch_size", Value::from(8)),
            ("fold", Value::from(1)),
        ],
    );
    let ctx = context(root.path(), "dcn", dcn, vec![tables.clone()], 1, 1);
    run(&TrainDeepConvNet, &ctx);
    assert!(ctx.out_dir.join("deepconvnet.safetensors").exists());
    // Without the `cuda` feature a CUDA request is refused, not run on the CPU.
    let mut ctx = context(
        root.path(),
        "cuda",
        params(&TrainStudent, &with_sizes(&[])),
        vec![tables],
        1,
        1,
    );
    ctx.backend = crate::stage::Backend::Cuda;
    if cfg!(not(feature = "cuda")) {
        let e = TrainStudent.run(&ctx).unwrap_err().to_string();
        assert!(e.contains("`cuda` feature"), "{e}");
    }
    // Missing inputs are a clear error.
    let ctx = context(
        root.path(),
        "none",
        params(&TrainStudent, &with_sizes(&[])),
        vec![],
        1,
        1,
    );
    let e = TrainStudent.run(&ctx).unwrap_err().to_string();
    assert!(e.contains("windows.parquet"), "{e}");
}

/// Per-subject models (the subject-dependent protocol): with `subject` set a stage
/// trains and tests on that subject's trials only.
#[test]
fn a_subject_parameter_trains_and_tests_one_subject() {
    let root = tempfile::tempdir().unwrap();
    let data = write_tables(root.path(), 6);
    let tables = input("windows", &data, 1, "arousal");
    let all =
        read_predictions(&run_student(root.path(), "all", &tables, -1).join(PREDICTIONS)).unwrap();
    let subjects: std::collections::BTreeSet<u16> = all.iter().map(|p| p.id.subject).collect();
    assert!(subjects.len() > 1, "the fixture has several subjects");
    let one = *subjects.iter().next().unwrap();
    let mine = read_predictions(
        &run_student(root.path(), "one", &tables, i64::from(one)).join(PREDICTIONS),
    )
    .unwrap();
    assert!(!mine.is_empty() && mine.iter().all(|p| p.id.subject == one));
    assert_eq!(
        mine.len(),
        all.iter().filter(|p| p.id.subject == one).count()
    );
    let ctx = context(
        root.path(),
        "none",
        params(&TrainStudent, &with_sizes(&[("subject", Value::from(99))])),
        vec![tables],
        1,
        1,
    );
    let e = TrainStudent.run(&ctx).unwrap_err().to_string();
    assert!(e.contains("subject 99 has no trials in fold 1"), "{e}");
}

fn run_student(
    root: &std::path::Path,
    name: &str,
    tables: &crate::stage::Input,
    subject: i64,
) -> std::path::PathBuf {
    let ctx = context(
        root,
        name,
        params(
            &TrainStudent,
            &with_sizes(&[("subject", Value::from(subject))]),
        ),
        vec![tables.clone()],
        1,
        1,
    );
    run(&TrainStudent, &ctx);
    ctx.out_dir
}

/// The band-power baseline writes what the networks write (test predictions,
/// metrics), with 4 band features per channel of its inputs.
#[test]
fn the_band_power_baseline_predicts_the_test_role() {
    use crate::train::band_power::BandPower;
    let root = tempfile::tempdir().unwrap();
    let data = write_tables(root.path(), 7);
    let tables = input("windows", &data, 1, "arousal");
    for (inputs, channels) in [("eeg+eog", 5), ("eog", 2)] {
        let ctx = context(
            root.path(),
            inputs,
            params(
                &BandPower,
                &[("fold", Value::from(1)), ("inputs", Value::from(inputs))],
            ),
            vec![tables.clone()],
            1,
            1,
        );
        let m = run(&BandPower, &ctx).metrics;
        assert_eq!(m["features"], 4 * channels, "{inputs}");
        assert!(m["accuracy"].is_number() && m["l2"].is_number());
        let preds = read_predictions(&ctx.out_dir.join(PREDICTIONS)).unwrap();
        let fold = FoldData::load(
            &data.join("windows.parquet"),
            &data.join("splits.parquet"),
            1,
            Target::Arousal,
            &[Modality::Eog],
        )
        .unwrap();
        assert_eq!(preds.len(), fold.role(Role::Test).len());
        assert!(preds.iter().all(|p| (0.0..=1.0).contains(&p.p_high)));
    }
}

/// `distill` with `kl: 0, feature: 0, feedback: none` is the plain EOG student:
/// the same seed gives `train-student`'s weights and predictions bit for bit, so the
/// KD contrasts against this control are exactly paired (and an ablation needs only
/// one of the two arms).
#[test]
fn the_no_kd_control_inside_distill_is_train_student() {
    let root = tempfile::tempdir().unwrap();
    let data = write_tables(root.path(), 1);
    let tables = input("windows", &data, 1, "arousal");
    let tctx = context(
        root.path(),
        "teacher",
        params(&TrainTeacher, &with_sizes(&[])),
        vec![tables.clone()],
        1,
        1,
    );
    run(&TrainTeacher, &tctx);
    let dropout = ("front_dropout", Value::from(0.3));
    let sctx = context(
        root.path(),
        "student",
        params(&TrainStudent, &with_sizes(std::slice::from_ref(&dropout))),
        vec![tables.clone()],
        5,
        1,
    );
    run(&TrainStudent, &sctx);
    let no_kd = with_sizes(&[
        dropout,
        ("kl", Value::from(0.0)),
        ("feature", Value::from(0.0)),
        ("feedback", Value::from("none")),
    ]);
    let teacher_in = input("teacher", &tctx.out_dir, 1, "arousal");
    let dctx = context(
        root.path(),
        "kd-none",
        params(&Distill, &no_kd),
        vec![teacher_in, tables],
        5,
        1,
    );
    run(&Distill, &dctx);
    assert_eq!(
        std::fs::read_to_string(sctx.out_dir.join(PREDICTIONS)).unwrap(),
        std::fs::read_to_string(dctx.out_dir.join(PREDICTIONS)).unwrap()
    );
    let weights = |dir: &std::path::Path| {
        use crate::model::ParamTreeExt;
        Student::<f32, Cpu>::load(&Cpu::default(), &dir.join("student.safetensors"))
            .unwrap()
            .param_vec()
            .to_vec()
    };
    assert_eq!(weights(&sctx.out_dir), weights(&dctx.out_dir));
}
