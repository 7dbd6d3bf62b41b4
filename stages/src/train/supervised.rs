//! Cross-entropy training of one network (teacher pre-training, the student alone =
//! EmotionNet, DeepConvNet): the [`Trainee`] the shared loop drives.

use dfdx::optim::AdamConfig;
use dfdx::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::model::{Adam, Float, Mode, NetDevice};
use crate::stage::StageError;
use crate::train::dataset::{FoldData, Role};
use crate::train::fit::Trainee;
use crate::train::losses::cross_entropy;
use crate::train::network::{evaluate_role, inputs, Network};

/// A network, its optimiser and the best weights so far.
pub(crate) struct Supervised<E: Float, D: NetDevice<E>, N: Network<E, D>> {
    pub net: N,
    best: N,
    opt: Adam<E, D>,
    /// Seeds of the per-step input devices (dropout masks).
    masks: StdRng,
    dev: D,
    eval_batch: usize,
}

impl<E: Float, D: NetDevice<E>, N: Network<E, D>> Supervised<E, D, N> {
    /// `seed` drives the dropout masks (the batch order is the loop's).
    pub(crate) fn new(
        dev: &D,
        net: N,
        adam: AdamConfig,
        seed: u64,
        eval_batch: usize,
    ) -> Result<Self, StageError> {
        let opt = Adam::new(dev, &net, adam)?;
        Ok(Supervised {
            best: net.clone(),
            net,
            opt,
            masks: StdRng::seed_from_u64(seed),
            dev: dev.clone(),
            eval_batch,
        })
    }

    /// The network with the best weights (after [`crate::train::fit::fit`]: the kept ones).
    pub(crate) fn into_net(self) -> N {
        self.net
    }
}

impl<E: Float, D: NetDevice<E>, N: Network<E, D>> Trainee for Supervised<E, D, N> {
    fn step(&mut self, data: &FoldData, idx: &[usize]) -> Result<f64, StageError> {
        let dev = self.dev.step_device(self.masks.gen());
        let mut x = inputs::<E, D>(data, N::MODALITIES, Role::Train, idx, &dev)?;
        let first = x.remove(0);
        let y = data.gather_labels(Role::Train, idx);
        let grads = self.net.alloc_grads()?;
        let logits = self.net.logits(first.traced(grads), &x, Mode::Train)?;
        let loss = cross_entropy(logits, &y);
        let value = loss.array().to_f64().unwrap_or(f64::NAN);
        let mut grads = loss.backward();
        self.opt.step(&mut self.net, &mut grads)?;
        Ok(value)
    }

    fn evaluate(&self, data: &FoldData, role: Role) -> Result<(f64, Vec<f32>), StageError> {
        let mut net = self.net.clone();
        evaluate_role(
            data,
            N::MODALITIES,
            role,
            self.eval_batch,
            &self.dev,
            |mut x| {
                let first = x.remove(0);
                Ok(net.logits(first, &x, Mode::Eval)?)
            },
        )
    }

    fn keep_best(&mut self) {
        self.best = self.net.clone();
    }

    fn restore_best(&mut self) {
        self.net = self.best.clone();
    }
}
