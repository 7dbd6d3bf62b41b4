//! The supervised training stages: `train-teacher` (EEG + EOG), `train-student`
//! (EOG, cross-entropy only = the EmotionNet row) and `deepconvnet` (EOG baseline).
//! Each trains with Adam on the cell's training role, stops early on its val role,
//! keeps the best weights, and writes `<network>.safetensors`, `learning_curve.csv`,
//! `predictions.csv` (test role) and `metrics.json`.

use dfdx::prelude::*;
use serde_json::{Map, Value};

use crate::data::tables::{SPLITS, WINDOWS};
use crate::model::{DeepConvNet, DeepConvNetConfig, NetDevice, ParamTreeExt, Student, Teacher};
use crate::stage::{Backend, Context, Outcome, ParamKind, ParamSpec, Stage, StageError};
use crate::train::dataset::{FoldData, Role};
use crate::train::evaluate::METRICS_JSON;
use crate::train::fit::{fit, with_threads, FitConfig, Trainee};
use crate::train::network::Network;
use crate::train::network_params::{network_params, student_config, teacher_config};
use crate::train::predictions::PREDICTIONS;
use crate::train::seeds::{derive_seed, Stream};
use crate::train::supervised::Supervised;
use crate::train::training_stage::{
    adam, cell_params, finish, load_data, predictions, write_test_predictions, LEARNING_CURVE,
};

/// Default maximum number of epochs of the supervised stages.
pub const DEFAULT_EPOCHS: usize = 50;

/// The checkpoint file of a network kind.
pub fn checkpoint_file(kind: &str) -> String {
    format!("{kind}.safetensors")
}

/// A network a supervised stage trains, buildable on any device.
pub trait Trained: Sync {
    type Net<D: NetDevice<f32>>: Network<f32, D>;
    fn build<D: NetDevice<f32>>(
        &self,
        ctx: &Context,
        dev: &D,
        data: &FoldData,
    ) -> Result<Self::Net<D>, StageError>;
}

/// Train `kind`'s network on the instance's cell, on the device `backend` names, and
/// write its outputs.
pub fn run_supervised<K: Trained>(
    ctx: &Context,
    stage: &str,
    kind: &K,
) -> Result<Outcome, StageError> {
    with_threads(ctx.threads, || match ctx.backend {
        Backend::Cpu => train_on::<K, Cpu>(ctx, stage, kind),
        #[cfg(feature = "cuda")]
        Backend::Cuda => train_on::<K, dfdx::tensor::Cuda>(ctx, stage, kind),
        #[cfg(not(feature = "cuda"))]
        Backend::Cuda => Err(crate::train::training_stage::cuda_not_built(stage)),
    })?
}

fn train_on<K: Trained, D: NetDevice<f32>>(
    ctx: &Context,
    stage: &str,
    kind: &K,
) -> Result<Outcome, StageError> {
    let data = load_data(ctx, K::Net::<D>::MODALITIES)?;
    let dev = D::open(derive_seed(ctx.seed, Stream::Device))?;
    let net = kind.build(ctx, &dev, &data)?;
    let cfg = FitConfig::from_params(&ctx.params)?;
    let mut trainee = Supervised::new(
        &dev,
        net,
        adam(&ctx.params, "lr")?,
        derive_seed(ctx.seed, Stream::Dropout),
        cfg.eval_batch_size,
    )?;
    let report = fit(
        ctx,
        stage,
        &cfg,
        derive_seed(ctx.seed, Stream::Batches),
        &data,
        &mut trainee,
    )?;
    let (_, p_high) = trainee.evaluate(&data, Role::Test)?;
    let net = trainee.into_net();
    net.save_to(&ctx.out_dir.join(checkpoint_file(K::Net::<D>::KIND)))?;
    let test = write_test_predictions(ctx, PREDICTIONS, &predictions(&data, Role::Test, &p_high))?;
    let mut extra = Map::new();
    extra.insert("parameters".into(), Value::from(net.num_trainable_params()));
    Ok(Outcome::with_metrics(finish(
        ctx, stage, &data, &report, test, extra,
    )?))
}

fn supervised_params(extra: Vec<ParamSpec>) -> Vec<ParamSpec> {
    let mut p = cell_params();
    p.extend(FitConfig::params(DEFAULT_EPOCHS));
    p.extend(extra);
    p
}

fn produces(kind: &'static str) -> Vec<&'static str> {
    vec![kind, LEARNING_CURVE, PREDICTIONS, METRICS_JSON]
}

/// `train-teacher`: the EEG + EOG teacher with cross-entropy.
pub struct TrainTeacher;

impl Stage for TrainTeacher {
    fn name(&self) -> &'static str {
        "train-teacher"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "pre-train the EEG+EOG teacher (cross-entropy, Adam, early stopping on val)"
    }
    fn params(&self) -> Vec<ParamSpec> {
        supervised_params(network_params())
    }
    fn consumes(&self) -> Vec<&'static str> {
        vec![WINDOWS, SPLITS]
    }
    fn produces(&self) -> Vec<&'static str> {
        produces("teacher.safetensors")
    }
    fn resources(&self) -> crate::Resources {
        crate::Resources::training()
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        run_supervised(ctx, self.name(), self)
    }
}

impl Trained for TrainTeacher {
    type Net<D: NetDevice<f32>> = Teacher<f32, D>;
    fn build<D: NetDevice<f32>>(
        &self,
        ctx: &Context,
        dev: &D,
        data: &FoldData,
    ) -> Result<Teacher<f32, D>, StageError> {
        Ok(Teacher::new(
            dev,
            &teacher_config(&ctx.params, data)?,
            ctx.seed,
        )?)
    }
}

/// `train-student`: the EOG student alone with cross-entropy (EmotionNet).
pub struct TrainStudent;

impl Stage for TrainStudent {
    fn name(&self) -> &'static str {
        "train-student"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "train the EOG student alone with cross-entropy (the EmotionNet baseline)"
    }
    fn params(&self) -> Vec<ParamSpec> {
        supervised_params(network_params())
    }
    fn consumes(&self) -> Vec<&'static str> {
        vec![WINDOWS, SPLITS]
    }
    fn produces(&self) -> Vec<&'static str> {
        produces("student.safetensors")
    }
    fn resources(&self) -> crate::Resources {
        crate::Resources::training()
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        run_supervised(ctx, self.name(), self)
    }
}

impl Trained for TrainStudent {
    type Net<D: NetDevice<f32>> = Student<f32, D>;
    fn build<D: NetDevice<f32>>(
        &self,
        ctx: &Context,
        dev: &D,
        data: &FoldData,
    ) -> Result<Student<f32, D>, StageError> {
        Ok(Student::new(
            dev,
            &student_config(&ctx.params, data)?,
            ctx.seed,
        )?)
    }
}

/// `deepconvnet`: Schirrmeister et al.'s DeepConvNet on the EOG channels.
pub struct TrainDeepConvNet;

fn deepconvnet_params() -> Vec<ParamSpec> {
    let d = DeepConvNetConfig::default();
    let filters: Vec<String> = d.filters.iter().map(|f| f.to_string()).collect();
    vec![
        ParamSpec::new(
            "filters",
            ParamKind::StrList,
            filters,
            "filters of the conv-pool blocks",
        ),
        ParamSpec::new(
            "kernel",
            ParamKind::Int,
            d.kernel,
            "temporal kernel (samples; 10 or 5 at 128 Hz)",
        ),
        ParamSpec::new("pool", ParamKind::Int, d.pool, "max-pool size and stride"),
        ParamSpec::new(
            "dropout",
            ParamKind::Float,
            d.dropout,
            "dropout before blocks 2..n",
        ),
        ParamSpec::new(
            "bn_momentum",
            ParamKind::Float,
            d.bn_momentum,
            "batch-norm momentum",
        ),
    ]
}

fn deepconvnet_config(ctx: &Context, data: &FoldData) -> Result<DeepConvNetConfig, StageError> {
    let p = &ctx.params;
    let filters = p
        .str_list("filters")?
        .iter()
        .map(|f| {
            f.trim().parse::<usize>().map_err(|_| {
                StageError::Param(format!(
                    "parameter `filters`: {f:?} is not a positive integer"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DeepConvNetConfig {
        channels: data.n_channels(0),
        samples: data.samples(),
        filters,
        kernel: p.usize("kernel")?,
        pool: p.usize("pool")?,
        dropout: p.f64("dropout")?,
        bn_momentum: p.f64("bn_momentum")?,
        ..DeepConvNetConfig::default()
    })
}

impl Stage for TrainDeepConvNet {
    fn name(&self) -> &'static str {
        "deepconvnet"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "train the DeepConvNet baseline on EOG (cross-entropy, Adam, early stopping on val)"
    }
    fn params(&self) -> Vec<ParamSpec> {
        supervised_params(deepconvnet_params())
    }
    fn consumes(&self) -> Vec<&'static str> {
        vec![WINDOWS, SPLITS]
    }
    fn produces(&self) -> Vec<&'static str> {
        produces("deepconvnet.safetensors")
    }
    fn resources(&self) -> crate::Resources {
        crate::Resources::training()
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        run_supervised(ctx, self.name(), self)
    }
}

impl Trained for TrainDeepConvNet {
    type Net<D: NetDevice<f32>> = DeepConvNet<f32, D>;
    fn build<D: NetDevice<f32>>(
        &self,
        ctx: &Context,
        dev: &D,
        data: &FoldData,
    ) -> Result<DeepConvNet<f32, D>, StageError> {
        Ok(DeepConvNet::new(
            dev,
            &deepconvnet_config(ctx, data)?,
            ctx.seed,
        )?)
    }
}
