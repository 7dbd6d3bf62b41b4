//! The `distill` stage: teacher checkpoint (from `train-teacher`) + windows + splits →
//! the distilled EOG student. `feature: 0, feedback: none` is V1 (Hinton KD),
//! `feedback: none` V2, the default (`feedback: meta`) V3; with feedback the updated
//! teacher is an output too (checkpoint, test predictions, test metrics).

use dfdx::prelude::*;
use serde_json::{Map, Value};

use crate::data::tables::{SPLITS, WINDOWS};
use crate::model::{NetDevice, ParamTreeExt, Regressor, RegressorConfig, Student, Teacher};
use crate::params::ParamSchema;
use crate::stage::{Backend, Context, Outcome, Stage, StageError};
use crate::train::dataset::{FoldData, Modality, Role};
use crate::train::distill_loop::{
    evaluate_teacher, DistillOptions, Distiller, Feedback, FeedbackConfig, QuizSource, StudentSide,
};
use crate::train::evaluate::METRICS_JSON;
use crate::train::fit::{fit, with_threads, FitConfig, Trainee};
use crate::train::losses::KdWeights;
use crate::train::network_params::NetworkParams;
use crate::train::predictions::{PREDICTIONS, TEACHER_PREDICTIONS};
use crate::train::seeds::{derive_seed, Stream};
use crate::train::supervised_stages::checkpoint_file;
use crate::train::training_stage::{
    finish, load_data, predictions, write_test_predictions, CellParams, OptimiserParams,
    LEARNING_CURVE,
};

/// The teacher checkpoint the stage reads (written by `train-teacher`).
pub(crate) const TEACHER_CHECKPOINT: &str = "teacher.safetensors";
/// The teacher after the feedback phase (only with feedback).
pub(crate) const UPDATED_TEACHER: &str = "teacher_updated.safetensors";

pub(crate) struct Distill;

crate::stage_params! {
    /// What `distill` takes: the training stages' parameters, the loss weights and the
    /// feedback constants (inert when the feedback mode does not use them).
    pub(crate) struct DistillParams {
        ..cell: CellParams,
        ..optimiser: OptimiserParams,
        ..fit: FitConfig,
        ..network: NetworkParams,
        /// e1: weight of CE(y, p_S)
        ce: f64 = KdWeights::default().ce;
        /// e2: weight of T²·KL(p_T^τ ‖ p_S^τ)
        kl: f64 = KdWeights::default().kl;
        /// e3: weight of MSE(F_T', F_S) (0 = V1)
        feature: f64 = KdWeights::default().feature;
        /// T: softmax temperature of the KL term
        temperature: f64 = KdWeights::default().temperature;
        /// learn a linear regressor R with MSE(F_T, R(F_S)) instead of the fixed alignment F_T'
        regressor: bool = false;
        /// teacher feedback during distillation (none = V1/V2, meta = V3)
        feedback: Feedback = Feedback::Meta;
        /// k: a feedback step every k student steps
        feedback_every: usize = FeedbackConfig::default().every, inert_when without_feedback;
        /// η: SGD step size of the pilot student step (our choice where the paper is silent: docs/method.md)
        pilot_lr: f64 = FeedbackConfig::default().eta, inert_when without_feedback;
        /// ε = eps_factor / ‖v‖ in the Hessian-vector product
        eps_factor: f64 = FeedbackConfig::default().eps_factor, inert_when without_meta;
        /// λ_ce: weight of the teacher's CE gradient
        lambda_ce: f64 = FeedbackConfig::default().lambda_ce, inert_when without_feedback;
        /// λ_fb: weight of the meta-gradient (first-order: of KL(p_T ‖ p_S'))
        lambda_fb: f64 = FeedbackConfig::default().lambda_fb, inert_when without_feedback;
        /// Adam learning rate of the teacher updates (our choice where the paper is silent: docs/method.md)
        teacher_lr: f64 = FeedbackConfig::default().teacher_lr, inert_when without_feedback;
        /// windows in a quiz batch
        quiz_batch: usize = FeedbackConfig::default().quiz_batch, inert_when without_meta;
        /// role the quiz batches come from: `val` (held out from training; also the early-stopping role) or `train` (other training windows than the step's batch)
        quiz_from: QuizSource = QuizSource::Val, inert_when without_meta;
    }
}

/// V1/V2: no feedback step runs, so none of its constants matters.
fn without_feedback(p: &DistillParams) -> bool {
    p.feedback == Feedback::None
}

/// Also first-order feedback: no finite-difference HVP; the quiz batch is drawn (from
/// its own seeded stream) but not used.
fn without_meta(p: &DistillParams) -> bool {
    p.feedback != Feedback::Meta
}

impl DistillParams {
    fn kd_weights(&self) -> Result<KdWeights, StageError> {
        let w = KdWeights {
            ce: self.ce,
            kl: self.kl,
            feature: self.feature,
            temperature: self.temperature,
        };
        if w.temperature.is_nan() || w.temperature <= 0.0 {
            return Err(StageError::Param(format!(
                "parameter `temperature` must be positive, got {}",
                w.temperature
            )));
        }
        Ok(w)
    }

    fn feedback_config(&self) -> Result<FeedbackConfig, StageError> {
        let cfg = FeedbackConfig {
            mode: self.feedback,
            every: self.feedback_every,
            eta: self.pilot_lr,
            eps_factor: self.eps_factor,
            lambda_ce: self.lambda_ce,
            lambda_fb: self.lambda_fb,
            teacher_lr: self.teacher_lr,
            quiz_batch: self.quiz_batch,
            quiz_from: self.quiz_from,
        };
        if cfg.every == 0 || cfg.quiz_batch == 0 {
            return Err(StageError::Param(
                "`feedback_every` and `quiz_batch` must be at least 1".into(),
            ));
        }
        if cfg.mode != Feedback::None
            && (cfg.eps_factor.is_nan()
                || cfg.eps_factor <= 0.0
                || cfg.teacher_lr.is_nan()
                || cfg.teacher_lr <= 0.0)
        {
            return Err(StageError::Param(
                "`eps_factor` and `teacher_lr` must be positive".into(),
            ));
        }
        Ok(cfg)
    }
}

/// The upstream teacher checkpoint, checking that it was trained on this cell.
fn teacher_checkpoint(ctx: &Context, cell: &CellParams) -> Result<std::path::PathBuf, StageError> {
    let (fold, target) = (cell.fold, cell.target);
    let found = ctx.input_files(TEACHER_CHECKPOINT)?;
    let mut mismatch = Vec::new();
    for (input, path) in &found {
        let upstream = upstream_cell(input)?;
        let fold_ok = upstream.0.is_none_or(|f| f == fold as i64);
        let target_ok = upstream.1.as_deref().is_none_or(|t| t == target.name());
        if fold_ok && target_ok {
            return Ok(path.clone());
        }
        mismatch.push(format!(
            "{} (fold {}, target {})",
            input.stage,
            upstream.0.map_or("?".into(), |f| f.to_string()),
            upstream.1.unwrap_or_else(|| "?".into())
        ));
    }
    Err(StageError::Data(format!(
        "no upstream teacher was trained on fold {fold}, target {}: found {}; give the teacher and distill stages the same matrix",
        target.name(),
        mismatch.join(", ")
    )))
}

/// Fold and target of an upstream training instance: its matrix cell, else its
/// `metrics.json`.
fn upstream_cell(input: &crate::stage::Input) -> Result<(Option<i64>, Option<String>), StageError> {
    let mut fold = input.cell.get("fold").and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    });
    let mut target = input
        .cell
        .get("target")
        .and_then(Value::as_str)
        .map(str::to_string);
    let path = input.dir.join(METRICS_JSON);
    if (fold.is_none() || target.is_none()) && path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|e| StageError::io(&path, e))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| StageError::bad_file(&path, format!("not JSON: {e}")))?;
        fold = fold.or_else(|| v.get("fold").and_then(Value::as_i64));
        target = target.or_else(|| v.get("target").and_then(Value::as_str).map(str::to_string));
    }
    Ok((fold, target))
}

/// Check that a loaded teacher fits the data and the student's feature shapes.
fn check_teacher<D: NetDevice<f32>>(
    path: &std::path::Path,
    t: &Teacher<f32, D>,
    data: &FoldData,
) -> Result<(), StageError> {
    let c = &t.config;
    let (eeg, eog) = (data.n_channels(0), data.n_channels(1));
    if c.eeg_channels != eeg || c.eog_channels != eog || c.branch.samples != data.samples() {
        return Err(StageError::bad_file(
            path,
            format!(
                "the teacher expects {} EEG + {} EOG channels × {} samples, the windows have {eeg} + {eog} × {}",
                c.eeg_channels,
                c.eog_channels,
                c.branch.samples,
                data.samples()
            ),
        ));
    }
    Ok(())
}

fn build_student<D: NetDevice<f32>>(
    ctx: &Context,
    p: &DistillParams,
    dev: &D,
    data: &FoldData,
    teacher: &Teacher<f32, D>,
) -> Result<StudentSide<f32, D>, StageError> {
    let cfg = p.network.student_config(data)?;
    let student = Student::new(dev, &cfg, ctx.seed)?;
    let (sb, tb) = (&cfg.branch, &teacher.config.branch);
    let feature = p.feature != 0.0;
    let regressor = if p.regressor {
        let rc = RegressorConfig {
            tokens_in: sb.tokens(),
            tokens_out: 2 * tb.tokens(),
            dim_in: sb.dim,
            dim_out: tb.dim,
        };
        Some(Regressor::new(
            dev,
            &rc,
            derive_seed(ctx.seed, Stream::Device),
        )?)
    } else {
        if feature && (sb.tokens() != tb.tokens() || sb.dim != tb.dim) {
            return Err(StageError::Param(format!(
                "the feature term compares F_S ({} × {}) with F_T' ({} × {}): give the student the teacher's sizes or set `regressor: true`",
                sb.tokens(),
                sb.dim,
                tb.tokens(),
                tb.dim
            )));
        }
        None
    };
    Ok((student, regressor))
}

impl Stage for Distill {
    fn name(&self) -> &'static str {
        "distill"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "distil the EEG+EOG teacher into the EOG student (CE + T²·KL + feature MSE), with dynamic feedback"
    }
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<DistillParams>()
    }
    fn consumes(&self) -> Vec<&'static str> {
        vec![TEACHER_CHECKPOINT, WINDOWS, SPLITS]
    }
    fn produces(&self) -> Vec<&'static str> {
        vec![
            "student.safetensors",
            LEARNING_CURVE,
            PREDICTIONS,
            METRICS_JSON,
            UPDATED_TEACHER,
            TEACHER_PREDICTIONS,
        ]
    }
    fn resources(&self) -> crate::Resources {
        crate::Resources::training()
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        with_threads(ctx.threads, || run(ctx, self.name()))?
    }
}

/// Distil on the device `backend` names.
fn run(ctx: &Context, stage: &str) -> Result<Outcome, StageError> {
    match ctx.backend {
        Backend::Cpu => run_on::<Cpu>(ctx, stage),
        #[cfg(feature = "cuda")]
        Backend::Cuda => run_on::<dfdx::tensor::Cuda>(ctx, stage),
        #[cfg(not(feature = "cuda"))]
        Backend::Cuda => Err(crate::train::training_stage::cuda_not_built(stage)),
    }
}

fn run_on<D: NetDevice<f32>>(ctx: &Context, stage: &str) -> Result<Outcome, StageError> {
    let p: DistillParams = ctx.params()?;
    let weights = p.kd_weights()?;
    let feedback = p.feedback_config()?;
    let cfg = &p.fit;
    let data = load_data(ctx, &[Modality::Eeg, Modality::Eog])?;
    let dev = D::open(derive_seed(ctx.seed, Stream::Device))?;
    let tpath = teacher_checkpoint(ctx, &p.cell)?;
    let teacher = Teacher::<f32, D>::load(&dev, &tpath)?;
    check_teacher(&tpath, &teacher, &data)?;
    let student = build_student(ctx, &p, &dev, &data, &teacher)?;
    let mode = feedback.mode;
    let mut distiller = Distiller::new(
        &dev,
        student,
        teacher,
        weights,
        feedback,
        DistillOptions {
            adam: p.optimiser.adam()?,
            mask_seed: derive_seed(ctx.seed, Stream::Dropout),
            quiz_seed: derive_seed(ctx.seed, Stream::Quiz),
            eval_batch: cfg.eval_batch_size,
        },
    )?;
    let report = fit(
        ctx,
        stage,
        cfg,
        derive_seed(ctx.seed, Stream::Batches),
        &data,
        &mut distiller,
    )?;
    let (_, p_high) = distiller.evaluate(&data, Role::Test)?;
    distiller
        .student
        .0
        .save(&ctx.out_dir.join(checkpoint_file("student")))?;
    let test = write_test_predictions(ctx, PREDICTIONS, &predictions(&data, Role::Test, &p_high))?;
    let mut extra = Map::new();
    extra.insert(
        "parameters".into(),
        Value::from(distiller.student.0.num_trainable_params()),
    );
    extra.insert(
        "teacher_updates".into(),
        Value::from(distiller.teacher_updates),
    );
    if mode != Feedback::None {
        distiller.teacher.save(&ctx.out_dir.join(UPDATED_TEACHER))?;
        let (_, tp) = evaluate_teacher(
            &distiller.teacher,
            &data,
            Role::Test,
            cfg.eval_batch_size,
            &dev,
        )?;
        let tm = write_test_predictions(
            ctx,
            TEACHER_PREDICTIONS,
            &predictions(&data, Role::Test, &tp),
        )?;
        extra.insert("teacher".into(), Value::Object(tm));
    }
    Ok(Outcome::with_metrics(finish(
        ctx, stage, &data, &report, test, extra,
    )?))
}
