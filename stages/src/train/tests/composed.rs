//! The path a GPU takes, run on the CPU: the training loop with the composed
//! (dfdx-primitive) blocks instead of the fused CPU kernels
//! ([`crate::model::cpu::with_composed_blocks`]) gives the fused run's losses,
//! validation metrics and test predictions — to 1e-9 (relative) in f64, to 2e-3 in
//! f32 — including dropout (both paths draw the same masks) and the V3 meta-gradient.

use dfdx::optim::AdamConfig;
use dfdx::prelude::*;

use super::support::*;
use crate::model::cpu::with_composed_blocks;
use crate::model::{Float, NetDevice, Student, Teacher, TeacherConfig};
use crate::train::dataset::{FoldData, Role};
use crate::train::distill_loop::{DistillOptions, Distiller, Feedback, FeedbackConfig};
use crate::train::fit::{fit, FitConfig, FitReport, Monitor, Trainee};
use crate::train::losses::KdWeights;
use crate::train::supervised::Supervised;

fn fit_cfg() -> FitConfig {
    FitConfig {
        epochs: 2,
        batch_size: 8,
        patience: 0,
        monitor: Monitor::ValLoss,
        eval_batch_size: 16,
    }
}

fn adam() -> AdamConfig {
    AdamConfig {
        lr: 1e-2,
        ..AdamConfig::default()
    }
}

/// Learning curve and test P(high) of `trainee` after [`fit_cfg`]'s loop.
fn train(
    dir: &std::path::Path,
    data: &FoldData,
    trainee: &mut dyn Trainee,
) -> (FitReport, Vec<f32>) {
    let ctx = context(
        dir,
        "fit",
        params(&crate::train::supervised_stages::TrainTeacher, &[]),
        vec![],
        1,
        1,
    );
    let report = fit(&ctx, "test", &fit_cfg(), 9, data, trainee).unwrap();
    (report, trainee.evaluate(data, Role::Test).unwrap().1)
}

/// A teacher with dropout everywhere, trained by the supervised loop.
fn teacher_run<E: Float>(dir: &std::path::Path, data: &FoldData) -> (FitReport, Vec<f32>)
where
    Cpu: NetDevice<E>,
{
    let cfg = TeacherConfig {
        branch: tiny_branch(0.2),
        classifier: tiny_classifier(0.2),
        ..tiny_teacher()
    };
    let dev = Cpu::open(1).unwrap();
    let net = Teacher::<E, Cpu>::new(&dev, &cfg, 11).unwrap();
    let mut t = Supervised::new(&dev, net, adam(), 5, 16).unwrap();
    train(dir, data, &mut t)
}

/// V3 (meta feedback every step, feature term on) with a dropout student.
fn distill_run<E: Float>(dir: &std::path::Path, data: &FoldData) -> (FitReport, Vec<f32>)
where
    Cpu: NetDevice<E>,
{
    let dev = Cpu::open(1).unwrap();
    let teacher = Teacher::<E, Cpu>::new(&dev, &tiny_teacher(), 11).unwrap();
    let student = Student::new(&dev, &tiny_student(0.2), 12).unwrap();
    let opts = DistillOptions {
        adam: adam(),
        mask_seed: 5,
        quiz_seed: 6,
        eval_batch: 16,
    };
    let feedback = FeedbackConfig {
        mode: Feedback::Meta,
        quiz_batch: 8,
        ..FeedbackConfig::default()
    };
    let mut d = Distiller::new(
        &dev,
        (student, None),
        teacher,
        KdWeights::default(),
        feedback,
        opts,
    )
    .unwrap();
    let out = train(dir, data, &mut d);
    assert!(d.teacher_updates > 0, "the feedback phase ran");
    out
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

/// The two runs agree to `tol`; returns whether they are bit-identical. A val
/// window whose P(high) sits within rounding of 0.5 may be classified differently by
/// the two paths: validation accuracies may then differ by one window (`one_window`
/// points) while the validation losses agree to `tol`.
fn compare(
    what: &str,
    fused: &(FitReport, Vec<f32>),
    composed: &(FitReport, Vec<f32>),
    tol: f64,
    one_window: f64,
) -> bool {
    let (a, b) = (&fused.0.curve, &composed.0.curve);
    assert_eq!(a.len(), b.len(), "{what}: epochs");
    for (x, y) in a.iter().zip(b) {
        assert!(
            close(x.train_loss, y.train_loss, tol),
            "{what}: train loss {x:?} vs {y:?}"
        );
        assert!(
            close(x.val_loss, y.val_loss, tol),
            "{what}: val loss {x:?} vs {y:?}"
        );
        assert!(
            close(x.val_acc, y.val_acc, tol) || (x.val_acc - y.val_acc).abs() <= one_window + 1e-9,
            "{what}: val acc {x:?} vs {y:?}"
        );
    }
    assert_eq!(
        fused.0.best_epoch, composed.0.best_epoch,
        "{what}: best epoch"
    );
    for (p, q) in fused.1.iter().zip(&composed.1) {
        assert!(
            close(*p as f64, *q as f64, tol),
            "{what}: test P(high) {p} vs {q}"
        );
    }
    a.iter().zip(b).all(|(x, y)| {
        x.train_loss.to_bits() == y.train_loss.to_bits()
            && x.val_loss.to_bits() == y.val_loss.to_bits()
    })
}

#[test]
fn composed_blocks_train_the_teacher_as_the_fused_kernels_do() {
    let dir = tempfile::tempdir().unwrap();
    let data = load(dir.path());
    let fused = teacher_run::<f64>(dir.path(), &data);
    let composed = with_composed_blocks(|| teacher_run::<f64>(dir.path(), &data));
    let one_window = 100.0 / data.role(Role::Val).len() as f64;
    compare("teacher f64", &fused, &composed, 1e-9, 0.0);
    let fused = teacher_run::<f32>(dir.path(), &data);
    let composed = with_composed_blocks(|| teacher_run::<f32>(dir.path(), &data));
    let identical = compare("teacher f32", &fused, &composed, 2e-3, one_window);
    assert!(
        !identical,
        "f32 rounding differs between the paths: the composed blocks ran"
    );
}

#[test]
fn composed_blocks_distil_with_meta_feedback_as_the_fused_kernels_do() {
    let dir = tempfile::tempdir().unwrap();
    let data = load(dir.path());
    let fused = distill_run::<f64>(dir.path(), &data);
    let composed = with_composed_blocks(|| distill_run::<f64>(dir.path(), &data));
    let one_window = 100.0 / data.role(Role::Val).len() as f64;
    compare("V3 f64", &fused, &composed, 1e-9, 0.0);
    let fused = distill_run::<f32>(dir.path(), &data);
    let composed = with_composed_blocks(|| distill_run::<f32>(dir.path(), &data));
    let identical = compare("V3 f32", &fused, &composed, 2e-3, one_window);
    assert!(
        !identical,
        "f32 rounding differs between the paths: the composed blocks ran"
    );
}
