//! The `distill` stage: teacher checkpoint (from `train-teacher`) + windows + splits →
//! the distilled EOG student. `feature: 0, feedback: none` is V1 (Hinton KD),
//! `feedback: none` V2, the default (`feedback: meta`) V3; with feedback the updated
//! teacher is an output too (checkpoint, test predictions, test metrics).

use dfdx::prelude::*;
use serde_json::{Map, Value};

use crate::data::tables::{SPLITS, WINDOWS};
use crate::model::{NetDevice, ParamTreeExt, Regressor, RegressorConfig, Student, Teacher};
use crate::stage::{Backend, Context, Outcome, ParamKind, ParamSpec, Params, Stage, StageError};
use crate::train::dataset::{FoldData, Modality, Role};
use crate::train::distill_loop::{
    evaluate_teacher, DistillOptions, Distiller, Feedback, FeedbackConfig, QuizSource, StudentSide,
};
use crate::train::evaluate::METRICS_JSON;
use crate::train::fit::{fit, with_threads, FitConfig, Trainee};
use crate::train::losses::KdWeights;
use crate::train::network_params::{network_params, student_config};
use crate::train::predictions::{PREDICTIONS, TEACHER_PREDICTIONS};
use crate::train::seeds::{derive_seed, Stream};
use crate::train::supervised_stages::{checkpoint_file, DEFAULT_EPOCHS};
use crate::train::training_stage::{
    adam, cell, cell_params, finish, load_data, predictions, write_test_predictions, LEARNING_CURVE,
};

/// The teacher checkpoint the stage reads (written by `train-teacher`).
pub const TEACHER_CHECKPOINT: &str = "teacher.safetensors";
/// The teacher after the feedback phase (only with feedback).
pub const UPDATED_TEACHER: &str = "teacher_updated.safetensors";

pub struct Distill;

fn distill_params() -> Vec<ParamSpec> {
    let w = KdWeights::default();
    let f = FeedbackConfig::default();
    let mut p = cell_params();
    p.extend(FitConfig::params(DEFAULT_EPOCHS));
    p.extend(network_params());
    p.extend([
        ParamSpec::new("ce", ParamKind::Float, w.ce, "e1: weight of CE(y, p_S)"),
        ParamSpec::new(
            "kl",
            ParamKind::Float,
            w.kl,
            "e2: weight of T²·KL(p_T^τ ‖ p_S^τ)",
        ),
        ParamSpec::new(
            "feature",
            ParamKind::Float,
            w.feature,
            "e3: weight of MSE(F_T', F_S) (0 = V1)",
        ),
        ParamSpec::new(
            "temperature",
            ParamKind::Float,
            w.temperature,
            "T: softmax temperature of the KL term",
        ),
        ParamSpec::new(
            "regressor",
            ParamKind::Bool,
            false,
            "learn a linear regressor R with MSE(F_T, R(F_S)) instead of the fixed alignment F_T'",
        ),
        ParamSpec::new(
            "feedback",
            ParamKind::choice(&["meta", "first-order", "none"]),
            "meta",
            "teacher feedback during distillation (none = V1/V2, meta = V3)",
        ),
        ParamSpec::new(
            "feedback_every",
            ParamKind::Int,
            f.every,
            "k: a feedback step every k student steps",
        ),
        ParamSpec::new(
            "pilot_lr",
            ParamKind::Float,
            f.eta,
            "η: SGD step size of the pilot student step (our choice where the paper is silent: docs/method.md)",
        ),
        ParamSpec::new(
            "eps_factor",
            ParamKind::Float,
            f.eps_factor,
            "ε = eps_factor / ‖v‖ in the Hessian-vector product",
        ),
        ParamSpec::new(
            "lambda_ce",
            ParamKind::Float,
            f.lambda_ce,
            "λ_ce: weight of the teacher's CE gradient",
        ),
        ParamSpec::new(
            "lambda_fb",
            ParamKind::Float,
            f.lambda_fb,
            "λ_fb: weight of the meta-gradient (first-order: of KL(p_T ‖ p_S'))",
        ),
        ParamSpec::new(
            "teacher_lr",
            ParamKind::Float,
            f.teacher_lr,
            "Adam learning rate of the teacher updates (our choice where the paper is silent: docs/method.md)",
        ),
        ParamSpec::new(
            "quiz_batch",
            ParamKind::Int,
            f.quiz_batch,
            "windows in a quiz batch",
        ),
        ParamSpec::new(
            "quiz_from",
            ParamKind::choice(&QuizSource::NAMES),
            "val",
            "role the quiz batches come from: `val` (held out from training; also the early-stopping role) or `train` (other training windows than the step's batch)",
        ),
    ]);
    p
}

fn kd_weights(ctx: &Context) -> Result<KdWeights, StageError> {
    let p = &ctx.params;
    let w = KdWeights {
        ce: p.f64("ce")?,
        kl: p.f64("kl")?,
        feature: p.f64("feature")?,
        temperature: p.f64("temperature")?,
    };
    if w.temperature.is_nan() || w.temperature <= 0.0 {
        return Err(StageError::Param(format!(
            "parameter `temperature` must be positive, got {}",
            w.temperature
        )));
    }
    Ok(w)
}

/// The parameters of the feedback phase alone (read by [`feedback_config`]).
const FEEDBACK_CONSTANTS: [&str; 8] = [
    "feedback_every",
    "pilot_lr",
    "eps_factor",
    "lambda_ce",
    "lambda_fb",
    "teacher_lr",
    "quiz_batch",
    "quiz_from",
];

fn feedback_config(ctx: &Context) -> Result<FeedbackConfig, StageError> {
    let p = &ctx.params;
    let cfg = FeedbackConfig {
        mode: Feedback::parse(p.str("feedback")?)?,
        every: p.usize("feedback_every")?,
        eta: p.f64("pilot_lr")?,
        eps_factor: p.f64("eps_factor")?,
        lambda_ce: p.f64("lambda_ce")?,
        lambda_fb: p.f64("lambda_fb")?,
        teacher_lr: p.f64("teacher_lr")?,
        quiz_batch: p.usize("quiz_batch")?,
        quiz_from: QuizSource::parse(p.str("quiz_from")?)?,
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

/// The upstream teacher checkpoint, checking that it was trained on this cell.
fn teacher_checkpoint(ctx: &Context) -> Result<std::path::PathBuf, StageError> {
    let (fold, target) = cell(&ctx.params)?;
    let found = ctx.input_files(TEACHER_CHECKPOINT)?;
    let mut mismatch = Vec::new();
    for (input, path) in &found {
        let upstream = upstream_cell(input)?;
        let fold_ok = upstream.0.is_none_or(|f| f == fold as i64);
        let target_ok = upstream.1.as_deref().is_none_or(|t| t == target.as_str());
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
        target.as_str(),
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
    dev: &D,
    data: &FoldData,
    teacher: &Teacher<f32, D>,
    feature: bool,
) -> Result<StudentSide<f32, D>, StageError> {
    let cfg = student_config(&ctx.params, data)?;
    let student = Student::new(dev, &cfg, ctx.seed)?;
    let (sb, tb) = (&cfg.branch, &teacher.config.branch);
    let regressor = if ctx.params.bool("regressor")? {
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
    fn params(&self) -> Vec<ParamSpec> {
        distill_params()
    }
    fn inert_params(&self, params: &Params) -> Vec<&'static str> {
        match params.str("feedback") {
            // V1/V2: no feedback step runs, so none of its constants matters.
            Ok("none") => FEEDBACK_CONSTANTS.to_vec(),
            // No finite-difference HVP; the quiz batch is drawn (from its own seeded
            // stream) but not used.
            Ok("first-order") => vec!["eps_factor", "quiz_batch", "quiz_from"],
            _ => Vec::new(),
        }
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
    let weights = kd_weights(ctx)?;
    let feedback = feedback_config(ctx)?;
    let cfg = FitConfig::from_params(&ctx.params)?;
    let data = load_data(ctx, &[Modality::Eeg, Modality::Eog])?;
    let dev = D::open(derive_seed(ctx.seed, Stream::Device))?;
    let tpath = teacher_checkpoint(ctx)?;
    let teacher = Teacher::<f32, D>::load(&dev, &tpath)?;
    check_teacher(&tpath, &teacher, &data)?;
    let student = build_student(ctx, &dev, &data, &teacher, weights.feature != 0.0)?;
    let mode = feedback.mode;
    let mut distiller = Distiller::new(
        &dev,
        student,
        teacher,
        weights,
        feedback,
        DistillOptions {
            adam: adam(&ctx.params, "lr")?,
            mask_seed: derive_seed(ctx.seed, Stream::Dropout),
            quiz_seed: derive_seed(ctx.seed, Stream::Quiz),
            eval_batch: cfg.eval_batch_size,
        },
    )?;
    let report = fit(
        ctx,
        stage,
        &cfg,
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
