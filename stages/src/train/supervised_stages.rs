//! The supervised training stages: `train-teacher` (EEG + EOG), `train-student`
//! (EOG, cross-entropy only = the EmotionNet row) and `train-deepconvnet` (EOG baseline).
//! Each trains with Adam on the cell's training role, stops early on its val role,
//! keeps the best weights, and writes `<network>.safetensors`, `learning_curve.csv`,
//! `predictions.csv` (test role) and `metrics.json`.

use dfdx::prelude::*;
use serde_json::{Map, Value};

use crate::data::tables::{SPLITS, WINDOWS};
use crate::model::{DeepConvNet, DeepConvNetConfig, NetDevice, ParamTreeExt, Student, Teacher};
use crate::params::ParamSchema;
use crate::stage::{Backend, Context, Outcome, Stage, StageError};
use crate::train::dataset::{FoldData, Role};
use crate::train::evaluate::METRICS_JSON;
use crate::train::fit::{fit, with_threads, FitConfig, Trainee};
use crate::train::network::Network;
use crate::train::network_params::NetworkParams;
use crate::train::predictions::PREDICTIONS;
use crate::train::seeds::{derive_seed, Stream};
use crate::train::supervised::Supervised;
use crate::train::training_stage::{
    finish, load_data, predictions, write_test_predictions, CellParams, OptimiserParams,
    LEARNING_CURVE,
};

/// The checkpoint file of a network kind.
pub(crate) fn checkpoint_file(kind: &str) -> String {
    format!("{kind}.safetensors")
}

/// A network a supervised stage trains, buildable on any device.
pub(crate) trait Trained: Sync {
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
pub(crate) fn run_supervised<K: Trained>(
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
    let cfg: FitConfig = ctx.params()?;
    let optimiser: OptimiserParams = ctx.params()?;
    let mut trainee = Supervised::new(
        &dev,
        net,
        optimiser.adam()?,
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

crate::stage_params! {
    /// What `train-teacher` and `train-student` take.
    pub(crate) struct SupervisedParams {
        ..cell: CellParams,
        ..optimiser: OptimiserParams,
        ..fit: FitConfig,
        ..network: NetworkParams,
    }
}

fn produces(kind: &'static str) -> Vec<&'static str> {
    vec![kind, LEARNING_CURVE, PREDICTIONS, METRICS_JSON]
}

/// `train-teacher`: the EEG + EOG teacher with cross-entropy.
pub(crate) struct TrainTeacher;

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
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<SupervisedParams>()
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
            &ctx.params::<NetworkParams>()?.teacher_config(data)?,
            ctx.seed,
        )?)
    }
}

/// `train-student`: the EOG student alone with cross-entropy (EmotionNet).
pub(crate) struct TrainStudent;

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
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<SupervisedParams>()
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
            &ctx.params::<NetworkParams>()?.student_config(data)?,
            ctx.seed,
        )?)
    }
}

/// `train-deepconvnet`: Schirrmeister et al.'s DeepConvNet on the EOG channels.
pub(crate) struct TrainDeepConvNet;

crate::stage_params! {
    /// What `train-deepconvnet` takes.
    pub(crate) struct DeepConvNetParams {
        ..cell: CellParams,
        ..optimiser: OptimiserParams,
        ..fit: FitConfig,
        /// filters of the conv-pool blocks
        filters: Vec<String> = DeepConvNetConfig::default().filters.iter().map(usize::to_string).collect();
        /// temporal kernel (samples; 10 or 5 at 128 Hz)
        kernel: usize = DeepConvNetConfig::default().kernel;
        /// max-pool size and stride
        pool: usize = DeepConvNetConfig::default().pool;
        /// dropout before blocks 2..n
        dropout: f64 = DeepConvNetConfig::default().dropout;
        /// batch-norm momentum
        bn_momentum: f64 = DeepConvNetConfig::default().bn_momentum;
    }
}

impl DeepConvNetParams {
    /// The network for `data`'s channels and window length.
    fn config(&self, data: &FoldData) -> Result<DeepConvNetConfig, StageError> {
        let filters = self
            .filters
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
            kernel: self.kernel,
            pool: self.pool,
            dropout: self.dropout,
            bn_momentum: self.bn_momentum,
            ..DeepConvNetConfig::default()
        })
    }
}

impl Stage for TrainDeepConvNet {
    fn name(&self) -> &'static str {
        "train-deepconvnet"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "train the DeepConvNet baseline on EOG (cross-entropy, Adam, early stopping on val)"
    }
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<DeepConvNetParams>()
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
            &ctx.params::<DeepConvNetParams>()?.config(data)?,
            ctx.seed,
        )?)
    }
}
