//! The classifier head shared by teacher and student.

use dfdx::prelude::*;

use super::config::ClassifierConfig;
use super::dense::Dense;
use super::device::{Float, NetDevice, T2, T3};
use super::error::ModelError;
use super::init::Init;
use super::{dropout, Mode};

/// flatten → Dropout → Dense(hidden) ×layers (ReLU after each if enabled) → Dense(classes).
#[derive(Clone, Debug)]
pub struct Classifier<E, D: Storage<E>> {
    pub hidden: Vec<Dense<E, D>>,
    pub out: Dense<E, D>,
    pub relu: bool,
    pub dropout: f64,
}

crate::impl_params!(Classifier { hidden, out });

impl<E: Float, D: NetDevice<E>> Classifier<E, D> {
    /// A head for `features`-wide flattened inputs.
    pub fn new(
        init: &mut Init<D>,
        features: usize,
        cfg: &ClassifierConfig,
    ) -> Result<Self, ModelError> {
        cfg.validate()?;
        let mut hidden = Vec::with_capacity(cfg.layers);
        let mut width = features;
        for _ in 0..cfg.layers {
            hidden.push(Dense::new(init, width, cfg.hidden, true)?);
            width = cfg.hidden;
        }
        let out = Dense::new(init, width, cfg.classes, true)?;
        Ok(Classifier {
            hidden,
            out,
            relu: cfg.relu,
            dropout: cfg.dropout,
        })
    }

    /// `(B, N, dim) -> (B, classes)` logits.
    pub fn forward<T: Tape<E, D>>(
        &self,
        x: T3<E, D, T>,
        mode: Mode,
    ) -> Result<T2<E, D, T>, D::Err> {
        let (b, n, d) = *x.shape();
        let mut h = dropout(x.try_reshape_like(&(b, n * d))?, self.dropout, mode)?;
        for layer in &self.hidden {
            h = layer.forward(h)?;
            if self.relu {
                h = h.try_relu()?;
            }
        }
        self.out.forward(h)
    }
}
