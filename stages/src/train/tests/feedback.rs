//! The dynamic feedback: the meta-gradient against a brute-force derivative, the
//! dropout masks it relies on, and what feedback changes and what it must not.

use dfdx::optim::AdamConfig;
use dfdx::prelude::*;

use super::support::*;
use crate::model::{Mode, ParamTreeExt, ParamVec, Student, Teacher};
use crate::train::dataset::{FoldData, Role};
use crate::train::distill_loop::{
    paired, student_forward, DistillOptions, Distiller, Feedback, FeedbackConfig, KdBatch,
    QuizSource, StudentSide,
};
use crate::train::fit::Trainee;
use crate::train::losses::{teaching_loss, KdWeights};

fn distiller<E: crate::model::Float>(
    feedback: FeedbackConfig,
    student_dropout: f64,
) -> Distiller<E, Cpu>
where
    Cpu: crate::model::NetDevice<E>,
{
    let dev = Cpu::seed_from_u64(0);
    let teacher = Teacher::<E, Cpu>::new(&dev, &tiny_teacher(), 11).unwrap();
    let student: StudentSide<E, Cpu> = (
        Student::new(&dev, &tiny_student(student_dropout), 12).unwrap(),
        None,
    );
    let opts = DistillOptions {
        adam: AdamConfig {
            lr: 1e-2,
            ..AdamConfig::default()
        },
        mask_seed: 5,
        quiz_seed: 6,
        eval_batch: 32,
    };
    Distiller::new(&dev, student, teacher, KdWeights::default(), feedback, opts).unwrap()
}

#[test]
fn the_same_mask_seed_draws_the_same_dropout_masks() {
    let dir = tempfile::tempdir().unwrap();
    let data = load(dir.path());
    let mut d = distiller::<f32>(FeedbackConfig::default(), 0.3);
    let b = KdBatch::<f32>::from_rows(&data, Role::Train, &[0, 1, 2, 3], 42).unwrap();
    let run = |d: &mut Distiller<f32, Cpu>, b: &KdBatch<f32>| {
        d.student
            .0
            .forward(b.student_input(&d.dev), Mode::Train)
            .unwrap()
            .logits
            .as_vec()
    };
    let first = run(&mut d, &b);
    assert_eq!(first, run(&mut d, &b));
    let other = KdBatch {
        mask_seed: 43,
        ..b.clone()
    };
    assert_ne!(
        first,
        run(&mut d, &other),
        "dropout is on: another seed must give other masks"
    );
}

fn cosine_and_relative_error(a: &[f64], b: &[f64]) -> (f64, f64) {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    (dot / (norm(a) * norm(b)), norm(&diff) / norm(b))
}

/// The meta-gradient (finite-difference HVP, one teacher backward) against central
/// differences of `L_q(θ_S'(θ_T))` in every teacher parameter, in f64, with dropout
/// on in the student. With ε = 10⁻⁴/‖v‖ every parameter matches to 1 %; with the
/// default ε = 0.01/‖v‖ the ReLU kinks the ±εv students cross make single entries
/// of this tiny network less exact (up to tens of percent) while the vector stays
/// within a few percent of the derivative.
#[test]
fn meta_gradient_matches_a_brute_force_derivative() {
    let dir = tempfile::tempdir().unwrap();
    let data = load(dir.path());
    let fb = FeedbackConfig {
        eta: 0.5,
        ..FeedbackConfig::default()
    };
    let mut d = distiller::<f64>(fb, 0.2);
    let b = KdBatch::<f64>::from_rows(&data, Role::Train, &[0, 3, 5, 7, 9, 11], 7).unwrap();
    let q = KdBatch::<f64>::from_rows(&data, Role::Train, &[1, 2, 4, 6, 8], 8).unwrap();
    let meta_default = d.meta_gradient(&b, &q).unwrap().to_vec();
    d.feedback.eps_factor = 1e-4;
    let meta = d.meta_gradient(&b, &q).unwrap().to_vec();
    let theta = d.teacher.param_vec();
    let n = theta.len();
    assert_eq!(meta.len(), n);
    let h = 1e-5;
    let mut numeric = vec![0.0; n];
    let original = d.teacher.clone();
    for (j, num) in numeric.iter_mut().enumerate() {
        let mut lq = [0.0; 2];
        for (k, sign) in [1.0, -1.0].into_iter().enumerate() {
            let mut e = vec![0.0; n];
            e[j] = sign * h;
            let step = ParamVec::from_values(&theta, &e).unwrap();
            d.teacher = original.clone();
            d.teacher.add_scaled(&step, 1.0).unwrap();
            lq[k] = d.quiz_loss_after_pilot(&b, &q).unwrap();
        }
        *num = (lq[0] - lq[1]) / (2.0 * h);
    }
    let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(
        scale > 1e-6,
        "the quiz loss does not depend on the teacher (max |∂L_q/∂θ_T| = {scale})"
    );
    let names: Vec<String> = original
        .tensors()
        .into_iter()
        .filter(|t| t.trainable)
        .flat_map(|t| vec![t.name.clone(); t.tensor.numel()])
        .collect();
    for j in 0..n {
        let err = (meta[j] - numeric[j]).abs() / (numeric[j].abs() + 1e-3 * scale);
        assert!(
            err < 1e-2,
            "relative error {err:.3e} at teacher parameter {j} ({}): meta {:.6e}, numeric {:.6e}",
            names[j],
            meta[j],
            numeric[j]
        );
    }
    let (cos, rel) = cosine_and_relative_error(&meta_default, &numeric);
    eprintln!("default ε: cosine {cos}, relative error {rel}");
    assert!(
        cos > 0.99 && rel < 0.1,
        "default ε: cosine {cos}, relative error {rel}"
    );
}

fn run_steps(d: &mut Distiller<f32, Cpu>, data: &FoldData, steps: usize) -> Vec<f64> {
    let n = data.role(Role::Train).len();
    let mut losses = Vec::new();
    for s in 0..steps {
        let idx: Vec<usize> = (0..8).map(|i| (s * 8 + i) % n).collect();
        losses.push(d.step(data, &idx).unwrap());
    }
    losses
}

#[test]
fn feedback_moves_the_teacher_and_none_leaves_everything_as_v2() {
    let dir = tempfile::tempdir().unwrap();
    let data = load(dir.path());
    let none = FeedbackConfig {
        mode: Feedback::None,
        ..FeedbackConfig::default()
    };
    let mut v2 = distiller::<f32>(none.clone(), 0.2);
    let teacher0 = v2.teacher.param_vec().to_vec();
    let l_v2 = run_steps(&mut v2, &data, 4);
    assert_eq!(
        v2.teacher.param_vec().to_vec(),
        teacher0,
        "without feedback the teacher is frozen"
    );
    assert_eq!(v2.teacher_updates, 0);

    // Same seeds again: bit-identical.
    let mut again = distiller::<f32>(none, 0.2);
    assert_eq!(run_steps(&mut again, &data, 4), l_v2);
    assert_eq!(
        again.student.param_vec().to_vec(),
        v2.student.param_vec().to_vec()
    );

    // Feedback machinery with zero weights (zero teacher gradient, so Adam does not
    // move it): the student must come out bit-identical to V2 — the quiz draws and
    // copies disturb nothing.
    let silent = FeedbackConfig {
        lambda_ce: 0.0,
        lambda_fb: 0.0,
        ..FeedbackConfig::default()
    };
    let mut quiet = distiller::<f32>(silent, 0.2);
    assert_eq!(run_steps(&mut quiet, &data, 4), l_v2);
    assert_eq!(
        quiet.student.param_vec().to_vec(),
        v2.student.param_vec().to_vec()
    );
    assert_eq!(quiet.teacher.param_vec().to_vec(), teacher0);
    assert_eq!(quiet.teacher_updates, 4);

    for mode in [Feedback::Meta, Feedback::FirstOrder] {
        let mut v3 = distiller::<f32>(
            FeedbackConfig {
                mode,
                every: 2,
                ..FeedbackConfig::default()
            },
            0.2,
        );
        let l_v3 = run_steps(&mut v3, &data, 4);
        assert_eq!(v3.teacher_updates, 2, "{mode:?}: k = 2 → steps 0 and 2");
        let t = v3.teacher.param_vec().to_vec();
        let moved = t.iter().zip(&teacher0).filter(|(a, b)| a != b).count();
        assert!(
            moved > t.len() / 2,
            "{mode:?}: only {moved} of {} teacher parameters moved",
            t.len()
        );
        // the teacher is updated before the first teaching step
        assert_ne!(
            l_v3[0], l_v2[0],
            "{mode:?}: an updated teacher changes the teaching loss"
        );
    }
}

#[test]
fn meta_only_feedback_differs_from_ce_only_feedback() {
    // λ_fb = 0 reduces the teacher update to its CE gradient; the meta-gradient must
    // change that update.
    let dir = tempfile::tempdir().unwrap();
    let data = load(dir.path());
    let fb = FeedbackConfig {
        eta: 0.5,
        ..FeedbackConfig::default()
    };
    let d = distiller::<f32>(fb.clone(), 0.0);
    let b = KdBatch::<f32>::from_rows(&data, Role::Train, &[0, 1, 2, 3], 1).unwrap();
    let q = KdBatch::<f32>::from_rows(&data, Role::Train, &[4, 5, 6, 7], 2).unwrap();
    let (mut g1, stats) = d.meta_teacher_grads(&b, &q, 1.0, 0.0).unwrap();
    let (mut g2, _) = d.meta_teacher_grads(&b, &q, 1.0, 1.0).unwrap();
    let meta = d.meta_gradient(&b, &q).unwrap();
    let ce = d.teacher.grad_vec(&mut g1).unwrap();
    let both = d.teacher.grad_vec(&mut g2).unwrap();
    assert!(stats.v_norm > 0.0 && stats.quiz_loss.is_finite());
    let sum = ce.add_scaled(&meta, 1.0).unwrap();
    let diff = both.add_scaled(&sum, -1.0).unwrap().norm().unwrap();
    assert!(
        diff <= 1e-4 * both.norm().unwrap(),
        "λ_ce·CE + λ_fb·meta is not linear: {diff}"
    );
    assert!(meta.norm().unwrap() > 1e-6 * ce.norm().unwrap());
}

/// The pilot step is one plain SGD step of a student copy, θ_S' = θ_S − η·∇L_S, with
/// the gradient taken here on the same batch, masks and teacher outputs and the update
/// done element by element; the student itself is untouched.
#[test]
fn the_pilot_step_is_theta_minus_eta_times_the_gradient() {
    let dir = tempfile::tempdir().unwrap();
    let data = load(dir.path());
    let eta = 0.3;
    let fb = FeedbackConfig {
        eta,
        ..FeedbackConfig::default()
    };
    let d = distiller::<f64>(fb, 0.2);
    let b = KdBatch::<f64>::from_rows(&data, Role::Train, &[0, 1, 2, 3, 4, 5], 9).unwrap();
    let (zt, ft) = d.teacher_targets(&b).unwrap();
    let theta = d.student.param_vec().to_vec();
    let pilot = d.pilot(&b, &zt, ft.as_ref()).unwrap().param_vec().to_vec();
    assert_eq!(
        d.student.param_vec().to_vec(),
        theta,
        "the student is not moved"
    );

    let mut s = d.student.deep_copy().unwrap();
    let grads = s.alloc_grads().unwrap();
    let (zs, fs) = student_forward(
        &mut s,
        b.student_input(&d.dev).traced(grads),
        Mode::Train,
        d.uses_features(),
    )
    .unwrap();
    let loss = teaching_loss(&d.weights, &b.y, zs, zt.clone(), paired(fs, ft));
    let mut grads = loss.backward();
    let g = s.grad_vec(&mut grads).unwrap().to_vec();
    let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!(norm > 1e-6, "a gradient to step along (‖g‖ = {norm})");
    let by_hand: Vec<f64> = theta.iter().zip(&g).map(|(t, g)| t - eta * g).collect();
    let worst = pilot
        .iter()
        .zip(&by_hand)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-12, "pilot differs from θ − η∇L_S by {worst}");
}

/// The meta-gradient in f32 (what training uses) against f64 from the same weights and
/// data, at the default ε = 0.01/‖v‖: the finite difference does not drown in f32
/// rounding.
#[test]
fn the_f32_meta_gradient_matches_f64_at_the_default_epsilon() {
    let dir = tempfile::tempdir().unwrap();
    let data = load(dir.path());
    let fb = FeedbackConfig {
        eta: 0.5,
        ..FeedbackConfig::default()
    };
    let (rows, quiz) = ([0, 3, 5, 7, 9, 11], [1, 2, 4, 6, 8]);
    let d64 = distiller::<f64>(fb.clone(), 0.2);
    let m64 = d64
        .meta_gradient(
            &KdBatch::<f64>::from_rows(&data, Role::Train, &rows, 7).unwrap(),
            &KdBatch::<f64>::from_rows(&data, Role::Train, &quiz, 8).unwrap(),
        )
        .unwrap()
        .to_vec();
    let d32 = distiller::<f32>(fb, 0.2);
    let m32: Vec<f64> = d32
        .meta_gradient(
            &KdBatch::<f32>::from_rows(&data, Role::Train, &rows, 7).unwrap(),
            &KdBatch::<f32>::from_rows(&data, Role::Train, &quiz, 8).unwrap(),
        )
        .unwrap()
        .to_vec()
        .into_iter()
        .map(f64::from)
        .collect();
    let (cos, rel) = cosine_and_relative_error(&m32, &m64);
    eprintln!("f32 vs f64 meta-gradient at the default ε: cosine {cos}, relative error {rel}");
    assert!(
        cos > 0.9999 && rel < 1e-3,
        "cosine {cos}, relative error {rel}"
    );
}

/// Each epoch's line of the learning curve carries the feedback phase's mean quiz loss
/// and the size of the meta term next to the CE term; without feedback both are NaN.
#[test]
fn the_learning_curve_logs_the_quiz_loss_and_the_meta_to_ce_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let data = load(dir.path());
    let mut v3 = distiller::<f32>(FeedbackConfig::default(), 0.2);
    run_steps(&mut v3, &data, 3);
    let (quiz, ratio) = v3.epoch_feedback();
    assert!(quiz.is_finite() && quiz > 0.0, "quiz loss {quiz}");
    assert!(ratio.is_finite() && ratio > 0.0, "ratio {ratio}");
    // the log restarts with the next epoch
    let (q2, r2) = v3.epoch_feedback();
    assert!(q2.is_nan() && r2.is_nan());
    let none = FeedbackConfig {
        mode: Feedback::None,
        ..FeedbackConfig::default()
    };
    let mut v2 = distiller::<f32>(none, 0.2);
    run_steps(&mut v2, &data, 3);
    let (q, r) = v2.epoch_feedback();
    assert!(q.is_nan() && r.is_nan());
}

/// The quiz batch's rows, as indices into `role` (matched by their EOG values).
fn rows_of(data: &FoldData, role: Role, q: &KdBatch<f32>) -> Vec<Option<usize>> {
    let n = data.role(role).len();
    let row = q.eog.len() / q.len();
    let all = data.gather(role, 1, &(0..n).collect::<Vec<_>>());
    q.eog
        .chunks(row)
        .map(|r| all.chunks(row).position(|a| a == r))
        .collect()
}

#[test]
fn quiz_batches_come_from_the_val_role_or_from_training_rows_outside_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let data = load(dir.path());
    let batch: Vec<usize> = (0..4).collect();
    let fb = FeedbackConfig {
        quiz_batch: 3,
        ..FeedbackConfig::default()
    };
    assert_eq!(fb.quiz_from, QuizSource::Val, "held out by default");
    let mut d = distiller::<f32>(fb.clone(), 0.0);
    let q = d.quiz_batch(&data, &batch).unwrap();
    assert_eq!(q.len(), 3);
    let rows = rows_of(&data, Role::Val, &q);
    assert!(
        rows.iter().all(Option::is_some),
        "quiz rows outside the val role: {rows:?}"
    );
    let mut d = distiller::<f32>(
        FeedbackConfig {
            quiz_from: QuizSource::Train,
            ..fb
        },
        0.0,
    );
    for _ in 0..5 {
        let q = d.quiz_batch(&data, &batch).unwrap();
        for r in rows_of(&data, Role::Train, &q) {
            let r = r.expect("a training row");
            assert!(!batch.contains(&r), "quiz row {r} is in the step's batch");
        }
    }
}
