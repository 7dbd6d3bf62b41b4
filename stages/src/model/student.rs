//! The EOG-only student (the deployed model; trained alone it is the EmotionNet
//! baseline).

use std::path::Path;

use dfdx::prelude::*;

use super::branch::Branch;
use super::checkpoint;
use super::classifier::Classifier;
use super::config::StudentConfig;
use super::device::{Float, NetDevice, T2, T3};
use super::error::ModelError;
use super::fusion::DepthFusion;
use super::init::Init;
use super::{split_outputs, Mode, NetOutput};

/// Branch on the EOG channels → `F_S = Σ_ℓ E_ℓ(H^ℓ)` → classifier.
#[derive(Clone, Debug)]
pub struct Student<E, D: Storage<E>> {
    pub branch: Branch<E, D>,
    pub fusion: DepthFusion<E, D>,
    pub classifier: Classifier<E, D>,
    pub config: StudentConfig,
}

crate::impl_params!(Student {
    branch,
    fusion,
    classifier
});

impl<E: Float, D: NetDevice<E>> Student<E, D> {
    /// Builds the network on `dev`, initialised from `seed`.
    pub fn new(dev: &D, cfg: &StudentConfig, seed: u64) -> Result<Self, ModelError> {
        cfg.validate()?;
        let mut init = Init::new(dev, seed);
        let b = &cfg.branch;
        let branch = Branch::new(&mut init, cfg.channels, b)?;
        let fusion = DepthFusion::new(&mut init, b.layers, b.tokens(), b)?;
        let classifier = Classifier::new(&mut init, b.tokens() * b.dim, &cfg.classifier)?;
        Ok(Student {
            branch,
            fusion,
            classifier,
            config: cfg.clone(),
        })
    }

    /// `eog: (B, channels, samples)` → logits `(B, classes)` (carrying the tape) and
    /// `F_S: (B, tokens, dim)` as both `feature` and `fusion`. Train mode applies
    /// dropout and updates the batch-norm running statistics.
    pub fn forward<T: Tape<E, D>>(
        &mut self,
        eog: T3<E, D, T>,
        mode: Mode,
    ) -> Result<NetOutput<E, D, T>, ModelError> {
        self.branch.check_input("student EOG", *eog.shape())?;
        let run = |s: &mut Self| -> Result<NetOutput<E, D, T>, D::Err> {
            let depths = s.branch.forward(eog, mode)?;
            let f = s.fusion.forward(depths, mode)?;
            let (f, tape) = f.split_tape();
            let logits = s.classifier.forward(f.clone().put_tape(tape), mode)?;
            Ok(split_outputs(logits, f.clone(), f))
        };
        run(self).map_err(ModelError::device)
    }

    /// Eval-mode forward without mutating `self` (the tape, if any, still records).
    pub fn forward_eval<T: Tape<E, D>>(
        &self,
        eog: T3<E, D, T>,
    ) -> Result<NetOutput<E, D, T>, ModelError> {
        self.clone().forward(eog, Mode::Eval)
    }

    /// Eval-mode logits, no tape.
    pub fn predict(&self, eog: T3<E, D>) -> Result<T2<E, D>, ModelError> {
        Ok(self.forward_eval(eog)?.logits)
    }

    /// Writes the parameters and the configuration to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        checkpoint::save(self, path, "student", &self.config)
    }

    /// Rebuilds a student from a file written by [`Student::save`].
    pub fn load(dev: &D, path: &Path) -> Result<Self, ModelError> {
        let cfg: StudentConfig = checkpoint::read_config(path, "student")?;
        let mut s = Student::new(dev, &cfg, 0)?;
        checkpoint::load_into(&mut s, path)?;
        Ok(s)
    }
}
