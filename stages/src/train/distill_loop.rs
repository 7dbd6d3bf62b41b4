//! Knowledge distillation of the EEG + EOG teacher into the EOG student
//! (docs/method.md, "Training"): the teaching step
//! `L_S = e₁·CE(y, p_S) + e₂·T²·KL(p_T^τ ‖ p_S^τ) + e₃·MSE(F_T', F_S)` with the
//! teacher in eval mode, and — every `k` steps when feedback is on — a teacher
//! update from [`crate::train::feedback`] before the student's step (V3).
//!
//! The student side is the pair (student, optional regressor): with the regressor
//! the feature term compares `R(F_S)` with the teacher's raw fusion `F_T`
//! (122 × 64) instead of `F_S` with the aligned `F_T'` (61 × 64).

use dfdx::optim::AdamConfig;
use dfdx::prelude::*;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

use crate::model::{
    Adam, Float, Mode, ModelError, NetDevice, ParamTreeExt, Regressor, Student, Teacher, T2, T3,
};
use crate::stage::StageError;
use crate::train::dataset::{FoldData, Modality, Role};
use crate::train::fit::Trainee;
use crate::train::losses::{cross_entropy, teaching_loss, KdWeights};
use crate::train::network::evaluate_role;

/// The student and its optional feature regressor, trained by one optimiser.
pub type StudentSide<E, D> = (Student<E, D>, Option<Regressor<E, D>>);

/// A network's logits and, when the feature term is on, its distillation feature
/// (both on the logits' tape).
pub type Outputs<E, D, T = NoneTape> = (T2<E, D, T>, Option<T3<E, D, T>>);

/// How the teacher is adjusted during distillation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// The teacher stays frozen (V1, V2).
    None,
    /// Meta-gradient through a pilot step of a student copy (V3).
    Meta,
    /// Teacher update on `CE(y, p_T) + λ·KL(p_T ‖ stopgrad(p_S'))`.
    FirstOrder,
}

crate::choice_param!(Feedback { Meta => "meta", FirstOrder => "first-order", None => "none" });

/// Constants of the feedback phase.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackConfig {
    pub mode: Feedback,
    /// Feedback every `every` student steps (k; 1 = every batch).
    pub every: usize,
    /// η: step size of the pilot SGD step of the student copy.
    pub eta: f64,
    /// ε = `eps_factor` / ‖v‖ for the finite-difference Hessian-vector product.
    pub eps_factor: f64,
    /// λ_ce: weight of the teacher's own cross-entropy gradient.
    pub lambda_ce: f64,
    /// λ_fb: weight of the meta-gradient (or of the KL term in first-order mode).
    pub lambda_fb: f64,
    /// Adam learning rate of the teacher updates.
    pub teacher_lr: f64,
    /// Windows in a quiz batch.
    pub quiz_batch: usize,
    /// The role quiz batches are drawn from.
    pub quiz_from: QuizSource,
}

/// Where the feedback phase's quiz batches come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuizSource {
    /// The val role: windows neither network trains on, so the quiz measures how the
    /// student generalises (the val role also drives early stopping; the test role is
    /// never touched).
    Val,
    /// The training role, outside the step's batch: windows the student trains on in
    /// other steps (the quiz then partly measures memorisation).
    Train,
}

crate::choice_param!(QuizSource { Val => "val", Train => "train" });

impl Default for FeedbackConfig {
    fn default() -> Self {
        FeedbackConfig {
            mode: Feedback::Meta,
            every: 1,
            eta: 1e-2,
            eps_factor: 0.01,
            lambda_ce: 1.0,
            lambda_fb: 1.0,
            teacher_lr: 1e-4,
            quiz_batch: 64,
            quiz_from: QuizSource::Val,
        }
    }
}

/// One mini-batch on the host: EEG and EOG values, labels and the seed of the
/// device its student inputs are built on (which fixes the dropout masks).
#[derive(Debug, Clone)]
pub struct KdBatch<E> {
    pub eeg: Vec<E>,
    pub eog: Vec<E>,
    pub eeg_channels: usize,
    pub eog_channels: usize,
    pub samples: usize,
    pub y: Vec<u8>,
    pub mask_seed: u64,
}

impl<E: Float> KdBatch<E> {
    /// Rows `idx` of `role`; `data` must hold EEG (modality 0) and EOG (modality 1).
    pub fn from_rows(
        data: &FoldData,
        role: Role,
        idx: &[usize],
        mask_seed: u64,
    ) -> Result<Self, StageError> {
        if data.modalities != [Modality::Eeg, Modality::Eog] {
            return Err(StageError::Model(
                "distillation needs the EEG and EOG channels loaded".into(),
            ));
        }
        let conv = |v: Vec<f32>| v.into_iter().map(|x| E::c(x as f64)).collect();
        Ok(KdBatch {
            eeg: conv(data.gather(role, 0, idx)),
            eog: conv(data.gather(role, 1, idx)),
            eeg_channels: data.n_channels(0),
            eog_channels: data.n_channels(1),
            samples: data.samples(),
            y: data.gather_labels(role, idx),
            mask_seed,
        })
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The teacher's inputs (eval mode: no randomness involved).
    pub fn teacher_inputs<D: NetDevice<E>>(&self, dev: &D) -> (T3<E, D>, T3<E, D>) {
        (
            dev.tensor_from_vec(
                self.eeg.clone(),
                (self.len(), self.eeg_channels, self.samples),
            ),
            dev.tensor_from_vec(
                self.eog.clone(),
                (self.len(), self.eog_channels, self.samples),
            ),
        )
    }

    /// The student's input on `dev`'s step device for `mask_seed`: every forward
    /// pass on it draws the same dropout masks.
    pub fn student_input<D: NetDevice<E>>(&self, dev: &D) -> T3<E, D> {
        dev.step_device(self.mask_seed).tensor_from_vec(
            self.eog.clone(),
            (self.len(), self.eog_channels, self.samples),
        )
    }
}

/// Student-side forward: logits (with `x`'s tape) and, if `feature`, the feature
/// for the feature term (`F_S`, or `R(F_S)` with the regressor) on the same tape.
pub fn student_forward<E: Float, D: NetDevice<E>, T: Tape<E, D>>(
    side: &mut StudentSide<E, D>,
    x: T3<E, D, T>,
    mode: Mode,
    feature: bool,
) -> Result<Outputs<E, D, T>, ModelError> {
    let out = side.0.forward(x, mode)?;
    let f = if feature {
        let f = out.feature.retaped::<T>();
        Some(match &side.1 {
            Some(r) => r.forward(f)?,
            None => f,
        })
    } else {
        None
    };
    Ok((out.logits, f))
}

/// Eval-mode teacher forward: logits (with `eeg`'s tape) and, if `feature`, the
/// distillation target (`F_T'`, or the raw `F_T` when `raw`) on the same tape.
pub fn teacher_forward<E: Float, D: NetDevice<E>, T: Tape<E, D>>(
    teacher: &Teacher<E, D>,
    eeg: T3<E, D, T>,
    eog: T3<E, D>,
    feature: bool,
    raw: bool,
) -> Result<Outputs<E, D, T>, ModelError> {
    let out = teacher.forward_eval(eeg, eog)?;
    let f = feature.then(|| (if raw { out.fusion } else { out.feature }).retaped::<T>());
    Ok((out.logits, f))
}

/// Pairs the two feature tensors when the feature term is on.
pub fn paired<A, B>(a: Option<A>, b: Option<B>) -> Option<(A, B)> {
    a.zip(b)
}

/// Optimiser and randomness of a [`Distiller`].
#[derive(Debug, Clone, Copy)]
pub struct DistillOptions {
    /// Adam of the student (the teacher's uses it with `teacher_lr`).
    pub adam: AdamConfig,
    /// Seed of the per-step dropout masks.
    pub mask_seed: u64,
    /// Seed of the quiz batch draws.
    pub quiz_seed: u64,
    /// Batch size of evaluation passes.
    pub eval_batch: usize,
}

/// Per-epoch feedback measurements (see [`Trainee::epoch_feedback`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FeedbackLog {
    pub(crate) quiz_sum: f64,
    pub(crate) quiz_n: usize,
    /// NaN until measured at the epoch's first feedback step.
    pub(crate) ratio: f64,
}

impl Default for FeedbackLog {
    fn default() -> Self {
        FeedbackLog {
            quiz_sum: 0.0,
            quiz_n: 0,
            ratio: f64::NAN,
        }
    }
}

/// The distillation state: student side, teacher, optimisers, step counter.
pub struct Distiller<E: Float, D: NetDevice<E>> {
    pub student: StudentSide<E, D>,
    pub teacher: Teacher<E, D>,
    pub weights: KdWeights,
    pub feedback: FeedbackConfig,
    pub(crate) student_opt: Adam<E, D>,
    pub(crate) teacher_opt: Option<Adam<E, D>>,
    /// Student steps taken.
    pub steps: usize,
    /// Teacher updates taken.
    pub teacher_updates: usize,
    best: Option<(StudentSide<E, D>, Teacher<E, D>)>,
    /// What the feedback steps of the current epoch measured.
    pub(crate) fb_log: FeedbackLog,
    masks: StdRng,
    quiz: StdRng,
    pub(crate) dev: D,
    eval_batch: usize,
}

impl<E: Float, D: NetDevice<E>> Distiller<E, D> {
    pub fn new(
        dev: &D,
        student: StudentSide<E, D>,
        teacher: Teacher<E, D>,
        weights: KdWeights,
        feedback: FeedbackConfig,
        opts: DistillOptions,
    ) -> Result<Self, StageError> {
        let student_adam = opts.adam;
        if feedback.every == 0 {
            return Err(StageError::Param(
                "parameter `feedback_every` must be at least 1".into(),
            ));
        }
        let student_opt = Adam::new(dev, &student, student_adam)?;
        let teacher_opt = match feedback.mode {
            Feedback::None => None,
            _ => Some(Adam::new(
                dev,
                &teacher,
                AdamConfig {
                    lr: feedback.teacher_lr,
                    ..student_adam
                },
            )?),
        };
        Ok(Distiller {
            student,
            teacher,
            weights,
            feedback,
            student_opt,
            teacher_opt,
            steps: 0,
            teacher_updates: 0,
            best: None,
            fb_log: FeedbackLog::default(),
            masks: StdRng::seed_from_u64(opts.mask_seed),
            quiz: StdRng::seed_from_u64(opts.quiz_seed),
            dev: dev.clone(),
            eval_batch: opts.eval_batch,
        })
    }

    /// Whether the feature term is computed.
    pub fn uses_features(&self) -> bool {
        self.weights.feature != 0.0
    }

    fn raw_teacher_feature(&self) -> bool {
        self.student.1.is_some()
    }

    /// The teacher's eval-mode logits and feature target, without a tape.
    pub fn teacher_targets(&self, b: &KdBatch<E>) -> Result<Outputs<E, D>, ModelError> {
        let (eeg, eog) = b.teacher_inputs(&self.dev);
        teacher_forward(
            &self.teacher,
            eeg,
            eog,
            self.uses_features(),
            self.raw_teacher_feature(),
        )
    }

    /// The student's teaching step (the teacher's outputs as constants); returns `L_S`.
    pub fn teaching_step(&mut self, b: &KdBatch<E>) -> Result<f64, ModelError> {
        let (zt, ft) = self.teacher_targets(b)?;
        let grads = self.student.alloc_grads()?;
        let feature = self.uses_features();
        let (zs, fs) = student_forward(
            &mut self.student,
            b.student_input(&self.dev).traced(grads),
            Mode::Train,
            feature,
        )?;
        let loss = teaching_loss(&self.weights, &b.y, zs, zt, paired(fs, ft));
        let value = loss.array().to_f64().unwrap_or(f64::NAN);
        let mut grads = loss.backward();
        self.student_opt.step(&mut self.student, &mut grads)?;
        self.steps += 1;
        Ok(value)
    }

    /// θ_S' = θ_S − η·∇_{θ_S} L_S(θ_S; θ_T) on a copy of the student, with the
    /// teacher outputs `zt`, `ft` (constants) and the batch's dropout masks.
    pub fn pilot(
        &self,
        b: &KdBatch<E>,
        zt: &T2<E, D>,
        ft: Option<&T3<E, D>>,
    ) -> Result<StudentSide<E, D>, ModelError> {
        let mut copy = self.student.deep_copy()?;
        let grads = copy.alloc_grads()?;
        let (zs, fs) = student_forward(
            &mut copy,
            b.student_input(&self.dev).traced(grads),
            Mode::Train,
            self.uses_features(),
        )?;
        let loss = teaching_loss(&self.weights, &b.y, zs, zt.clone(), paired(fs, ft.cloned()));
        let mut grads = loss.backward();
        let g = copy.grad_vec(&mut grads)?;
        copy.add_scaled(&g, -self.feedback.eta)?;
        Ok(copy)
    }

    /// Draw a quiz batch: from the val role, or from the training role avoiding the
    /// rows `batch` (see [`QuizSource`]).
    pub fn quiz_batch(
        &mut self,
        data: &FoldData,
        batch: &[usize],
    ) -> Result<KdBatch<E>, StageError> {
        if self.feedback.quiz_from == QuizSource::Val {
            let n = data.role(Role::Val).len();
            if n == 0 {
                return Err(StageError::Data(
                    "the feedback phase draws its quiz batches from the val role, which is empty in this fold; raise the folds' val_fraction or set quiz_from: train"
                        .into(),
                ));
            }
            let idx = sample(&mut self.quiz, n, self.feedback.quiz_batch.min(n)).into_vec();
            return KdBatch::from_rows(data, Role::Val, &idx, self.quiz.gen());
        }
        let n = data.role(Role::Train).len();
        let mut taken = vec![false; n];
        for &i in batch {
            if let Some(t) = taken.get_mut(i) {
                *t = true;
            }
        }
        let free: Vec<usize> = (0..n).filter(|&i| !taken[i]).collect();
        let size = self.feedback.quiz_batch.min(free.len());
        if size == 0 {
            return Err(StageError::Data(
                "the feedback phase needs training windows outside the batch for its quiz batch; lower batch_size"
                    .into(),
            ));
        }
        let idx: Vec<usize> = sample(&mut self.quiz, free.len(), size)
            .into_iter()
            .map(|i| free[i])
            .collect();
        KdBatch::from_rows(data, Role::Train, &idx, self.quiz.gen())
    }

    /// A snapshot of the current weights.
    pub fn snapshot(&self) -> (StudentSide<E, D>, Teacher<E, D>) {
        (self.student.clone(), self.teacher.clone())
    }
}

impl<E: Float, D: NetDevice<E>> Trainee for Distiller<E, D> {
    fn step(&mut self, data: &FoldData, idx: &[usize]) -> Result<f64, StageError> {
        let b = KdBatch::from_rows(data, Role::Train, idx, self.masks.gen())?;
        if self.feedback.mode != Feedback::None && self.steps.is_multiple_of(self.feedback.every) {
            let q = self.quiz_batch(data, idx)?;
            self.feedback_step(&b, &q)?;
        }
        Ok(self.teaching_step(&b)?)
    }

    fn evaluate(&self, data: &FoldData, role: Role) -> Result<(f64, Vec<f32>), StageError> {
        let mut student = self.student.0.clone();
        evaluate_role(
            data,
            &[Modality::Eog],
            role,
            self.eval_batch,
            &self.dev,
            |mut x| Ok(student.forward(x.remove(0), Mode::Eval)?.logits),
        )
    }

    fn keep_best(&mut self) {
        self.best = Some(self.snapshot());
    }

    fn restore_best(&mut self) {
        if let Some((s, t)) = self.best.clone() {
            self.student = s;
            self.teacher = t;
        }
    }

    fn epoch_feedback(&mut self) -> (f64, f64) {
        let log = std::mem::take(&mut self.fb_log);
        let quiz = if log.quiz_n > 0 {
            log.quiz_sum / log.quiz_n as f64
        } else {
            f64::NAN
        };
        (quiz, log.ratio)
    }
}

/// Eval-mode test pass of a teacher: (mean cross-entropy, P(high) per row).
pub fn evaluate_teacher<E: Float, D: NetDevice<E>>(
    teacher: &Teacher<E, D>,
    data: &FoldData,
    role: Role,
    batch: usize,
    dev: &D,
) -> Result<(f64, Vec<f32>), StageError> {
    evaluate_role(
        data,
        &[Modality::Eeg, Modality::Eog],
        role,
        batch,
        dev,
        |mut x| {
            let eog = x.remove(1);
            Ok(teacher.predict(x.remove(0), eog)?)
        },
    )
}

/// Teacher cross-entropy on a batch, taped (for the teacher updates).
pub(crate) fn teacher_ce<E: Float, D: NetDevice<E>>(
    zt: T2<E, D, OwnedTape<E, D>>,
    y: &[u8],
) -> Tensor<Rank0, E, D, OwnedTape<E, D>> {
    cross_entropy(zt, y)
}
