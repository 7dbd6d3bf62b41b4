//! The EEG + EOG teacher.

use std::path::Path;

use dfdx::prelude::*;

use super::branch::Branch;
use super::checkpoint;
use super::classifier::Classifier;
use super::config::TeacherConfig;
use super::device::{Float, NetDevice, T2, T3};
use super::error::ModelError;
use super::fusion::{align_teacher_feature, CrossModalFusion};
use super::init::Init;
use super::{split_outputs, Mode, NetOutput};

/// EEG branch + EOG branch → gated multi-depth cross-modal fusion `F_T` → classifier.
#[derive(Clone, Debug)]
pub struct Teacher<E, D: Storage<E>> {
    pub eeg: Branch<E, D>,
    pub eog: Branch<E, D>,
    pub fusion: CrossModalFusion<E, D>,
    pub classifier: Classifier<E, D>,
    pub config: TeacherConfig,
}

crate::impl_params!(Teacher {
    eeg,
    eog,
    fusion,
    classifier
});

impl<E: Float, D: NetDevice<E>> Teacher<E, D> {
    /// Builds the network on `dev`, initialised from `seed`.
    pub fn new(dev: &D, cfg: &TeacherConfig, seed: u64) -> Result<Self, ModelError> {
        cfg.validate()?;
        let mut init = Init::new(dev, seed);
        let b = &cfg.branch;
        let eeg = Branch::new(&mut init, cfg.eeg_channels, b)?;
        let eog = Branch::new(&mut init, cfg.eog_channels, b)?;
        let tokens = 2 * b.tokens();
        let fusion = CrossModalFusion::new(&mut init, b.layers, tokens, b)?;
        let classifier = Classifier::new(&mut init, tokens * b.dim, &cfg.classifier)?;
        Ok(Teacher {
            eeg,
            eog,
            fusion,
            classifier,
            config: cfg.clone(),
        })
    }

    /// `eeg: (B, eeg_channels, samples)` (carries the tape, if any) and
    /// `eog: (B, eog_channels, samples)` → logits `(B, classes)` with the tape,
    /// `feature` = the aligned `F_T' = F_T[EEG] + F_T[EOG]` `(B, tokens, dim)` and
    /// `fusion` = `F_T` `(B, 2·tokens, dim)`.
    pub fn forward<T: Tape<E, D>>(
        &mut self,
        eeg: T3<E, D, T>,
        eog: T3<E, D>,
        mode: Mode,
    ) -> Result<NetOutput<E, D, T>, ModelError> {
        self.eeg.check_input("teacher EEG", *eeg.shape())?;
        self.eog.check_input("teacher EOG", *eog.shape())?;
        if eeg.shape().0 != eog.shape().0 {
            return Err(ModelError::Shape(format!(
                "teacher EEG batch has {} windows, EOG batch {}",
                eeg.shape().0,
                eog.shape().0
            )));
        }
        let run = |s: &mut Self| -> Result<NetOutput<E, D, T>, D::Err> {
            let he = s.eeg.forward(eeg, mode)?;
            let ho = s.eog.forward(eog.put_tape(T::default()), mode)?;
            let f = s.fusion.forward(he, ho, mode)?;
            let (f, tape) = f.split_tape();
            let aligned = align_teacher_feature(f.clone().put_tape(tape))?;
            let (aligned, tape) = aligned.split_tape();
            let logits = s.classifier.forward(f.clone().put_tape(tape), mode)?;
            Ok(split_outputs(logits, aligned, f))
        };
        run(self).map_err(ModelError::device)
    }

    /// Eval-mode forward without mutating `self` (the tape, if any, still records:
    /// the feedback phase differentiates through the eval-mode teacher).
    pub fn forward_eval<T: Tape<E, D>>(
        &self,
        eeg: T3<E, D, T>,
        eog: T3<E, D>,
    ) -> Result<NetOutput<E, D, T>, ModelError> {
        self.clone().forward(eeg, eog, Mode::Eval)
    }

    /// Eval-mode logits, no tape.
    pub fn predict(&self, eeg: T3<E, D>, eog: T3<E, D>) -> Result<T2<E, D>, ModelError> {
        Ok(self.forward_eval(eeg, eog)?.logits)
    }

    /// Writes the parameters and the configuration to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        checkpoint::save(self, path, "teacher", &self.config)
    }

    /// Rebuilds a teacher from a file written by [`Teacher::save`].
    pub fn load(dev: &D, path: &Path) -> Result<Self, ModelError> {
        let cfg: TeacherConfig = checkpoint::read_config(path, "teacher")?;
        let mut t = Teacher::new(dev, &cfg, 0)?;
        checkpoint::load_into(&mut t, path)?;
        Ok(t)
    }
}
