//! Networks in dfdx 0.13: the per-modality branch, gated fusion, teacher, student,
//! DeepConvNet, and what training needs around them.
//!
//! # Public API (for the training code)
//!
//! Element type `E: Float` (`f32`, `f64`), device `D: NetDevice<E>` (`Cpu`; `Cuda`
//! with the `cuda` feature). Inputs are `T3<E, D, T> = Tensor<(usize, usize, usize)>`
//! shaped `(batch, channels, samples)`.
//!
//! - Build: [`Teacher::new`]`(&dev, &TeacherConfig, seed)`, [`Student::new`],
//!   [`DeepConvNet::new`], [`Regressor::new`]. Configs ([`TeacherConfig`],
//!   [`StudentConfig`], [`DeepConvNetConfig`], [`RegressorConfig`], with
//!   [`BranchConfig`] and [`ClassifierConfig`] inside) are serde structs whose
//!   defaults are the spec's sizes.
//! - Forward: `student.forward(x, Mode::Train)` → [`NetOutput`] `{ logits, feature,
//!   fusion }`. The tape (if `x` carries one, e.g. `x.traced(model.alloc_grads()?)`)
//!   rides on `logits`; `feature`/`fusion` carry none but their ops are on that tape:
//!   use `out.feature.retaped::<T>()` in a loss and add it to a logits-based loss.
//!   `teacher.forward(eeg, eog, mode)` takes the tape on `eeg`. `feature` is
//!   `F_S` for the student and the aligned `F_T'` for the teacher (both `(B, 61, 64)`);
//!   `fusion` is `F_S` / the raw `F_T` `(B, 122, 64)`. [`Mode::Train`] applies dropout
//!   and batch statistics (and updates running statistics, hence `&mut self`);
//!   [`Mode::Eval`] uses running statistics and stays differentiable.
//!   `forward_eval(&self, ..)` and `predict(&self, ..)` (logits, no tape) do not mutate.
//! - Parameters ([`ParamTreeExt`], for any model or pair `(student, regressor)`):
//!   `num_trainable_params`, `alloc_grads`, `tensors` (names, trainable flags),
//!   `param_vec`, `grad_vec(&mut grads)` (this model's gradients as a [`ParamVec`]),
//!   `grads_from_vec(&v)` (a `Gradients` holding `v`), `add_scaled(&v, α)`
//!   (θ ← θ + α·v over trainable tensors, in place, running statistics untouched —
//!   the θ ± ε·v of the Hessian-vector product), `deep_copy` (fresh tensor ids: a
//!   `clone` shares ids, so both copies' gradients would collide in one
//!   `Gradients`), `copy_values_from`. [`ParamVec`]: `dot`, `norm`, `scale`,
//!   `add_scaled`, `from_values`, `to_vec`, `len`.
//! - Optimiser: [`Adam`]`::new(&dev, &model, AdamConfig)`, `step(&mut model, &mut grads)`,
//!   `step_vec(&mut model, &ParamVec)`.
//! - Checkpoints: `model.save(path)` / `Teacher::load(&dev, path)` (safetensors with
//!   the config in the metadata); [`checkpoint::save`] / [`checkpoint::load_into`]
//!   for any [`ParamTree`].
//! - DeepConvNet: `net.forward(x, mode)` → logits `(B, classes)`; `predict`, `save`,
//!   `load` as above.
//! - Dropout randomness: each call's mask seed comes from
//!   [`NetDevice::mask_seed`]; a training step fixes its masks by building its inputs
//!   on [`NetDevice::step_device`]`(seed)` ([`masks`]). A seed gives identical
//!   parameters, outputs and gradients whatever the number of rayon threads.
//!
//! # Speed
//!
//! The heavy blocks go through [`NetDevice`] kernels: on the CPU fused kernels
//! ([`cpu`]), elsewhere compositions of dfdx ops ([`composed`]). Keep one device for
//! a whole training run and call `dev.enable_cache()` (dfdx's `Cache` trait): buffers
//! are then reused across steps (≈8% faster teacher steps in `benches/train_step.rs`).
//! Threads come from the current rayon pool. `benches/train_step.rs` and its PyTorch
//! twin `benches/torch_step.py` time one training step of the spec's networks.

pub(crate) mod adam;
pub(crate) mod attention;
pub(crate) mod batchnorm;
pub(crate) mod branch;
pub(crate) mod checkpoint;
pub(crate) mod classifier;
pub(crate) mod composed;
pub(crate) mod config;
pub mod cpu;
pub(crate) mod deepconvnet;
pub(crate) mod dense;
pub mod device;
pub mod error;
pub(crate) mod fusion;
pub mod init;
pub(crate) mod layer_norm;
pub(crate) mod masks;
pub(crate) mod param_tree;
pub(crate) mod regressor;
pub mod score;
pub(crate) mod student;
pub mod teacher;

#[cfg(test)]
mod tests;

use dfdx::prelude::*;

pub use adam::Adam;
pub use config::{
    BranchConfig, ClassifierConfig, DeepConvNetConfig, RegressorConfig, ScoreBn, StudentConfig,
    TeacherConfig,
};
pub use deepconvnet::DeepConvNet;
pub use device::{Float, NetDevice, T1, T2, T3};
pub use error::ModelError;
pub use param_tree::{Buffer, ParamPath, ParamTree, ParamTreeExt, ParamVec};
pub use regressor::Regressor;
pub use student::Student;
pub use teacher::Teacher;

/// Train or eval behaviour of dropout and batch norm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// What a forward pass returns: logits for the loss and the fusion features the
/// distillation needs.
pub struct NetOutput<E, D: Storage<E>, T> {
    /// `(B, classes)`; carries the tape.
    pub logits: T2<E, D, T>,
    /// The distillation feature `(B, tokens, dim)`: `F_S` (student) or the aligned
    /// `F_T'` (teacher). No tape of its own (see the module docs).
    pub feature: T3<E, D>,
    /// The raw fusion output: `F_S` (student) or `F_T` `(B, 2·tokens, dim)` (teacher).
    pub fusion: T3<E, D>,
}

fn split_outputs<E: Float, D: NetDevice<E>, T: Tape<E, D>>(
    logits: T2<E, D, T>,
    feature: T3<E, D>,
    fusion: T3<E, D>,
) -> NetOutput<E, D, T> {
    NetOutput {
        logits,
        feature,
        fusion,
    }
}

/// Dropout with probability `p` in train mode; identity otherwise.
pub fn dropout<S: Shape, E: Float, D: NetDevice<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
    p: f64,
    mode: Mode,
) -> Result<Tensor<S, E, D, T>, D::Err> {
    if mode == Mode::Train && p > 0.0 {
        D::dropout(x, p)
    } else {
        Ok(x)
    }
}
