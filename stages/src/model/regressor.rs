//! Optional learned regressor for the feature-distillation term (the alternative to
//! the fixed shape alignment `F_T' = F_T[EEG] + F_T[EOG]`).

use dfdx::prelude::*;

use super::config::RegressorConfig;
use super::dense::Dense;
use super::device::{Float, NetDevice, T3};
use super::error::ModelError;
use super::init::Init;

/// `R(F) = A · (F · W + b)` on `F: (B, tokens_in, dim_in)`: `W`, `b` map features
/// (`dim_in → dim_out`), `A` mixes tokens (`tokens_in → tokens_out`). Trained with
/// the student (e.g. as the pair `(student, regressor)` in one optimizer).
#[derive(Clone, Debug)]
pub struct Regressor<E, D: Storage<E>> {
    /// `(tokens_in, tokens_out)`, no bias.
    pub tokens: Dense<E, D>,
    /// `(dim_in, dim_out)` + bias.
    pub features: Dense<E, D>,
    pub config: RegressorConfig,
}

crate::impl_params!(Regressor { tokens, features });

impl<E: Float, D: NetDevice<E>> Regressor<E, D> {
    pub fn new(dev: &D, cfg: &RegressorConfig, seed: u64) -> Result<Self, ModelError> {
        cfg.validate()?;
        let mut init = Init::new(dev, seed);
        Ok(Regressor {
            tokens: Dense::new(&mut init, cfg.tokens_in, cfg.tokens_out, false)?,
            features: Dense::new(&mut init, cfg.dim_in, cfg.dim_out, true)?,
            config: cfg.clone(),
        })
    }

    /// `(B, tokens_in, dim_in) -> (B, tokens_out, dim_out)`.
    pub fn forward<T: Tape<E, D>>(&self, f: T3<E, D, T>) -> Result<T3<E, D, T>, ModelError> {
        let (b, ti, di) = *f.shape();
        let c = &self.config;
        if ti != c.tokens_in || di != c.dim_in {
            return Err(ModelError::Shape(format!(
                "regressor input is {b}×{ti}×{di}, expected batch × {} × {}",
                c.tokens_in, c.dim_in
            )));
        }
        let run = || -> Result<T3<E, D, T>, D::Err> {
            let fw = self.features.forward3(f)?; // (B, Ti, Do)
            let per_feature = fw
                .try_permute::<_, Axes3<0, 2, 1>>()?
                .try_reshape_like(&(b * c.dim_out, ti))?;
            let mixed = self.tokens.forward(per_feature)?; // (B·Do, To)
            mixed
                .try_reshape_like(&(b, c.dim_out, c.tokens_out))?
                .try_permute::<_, Axes3<0, 2, 1>>()?
                .try_reshape_like(&(b, c.tokens_out, c.dim_out))
        };
        run().map_err(ModelError::device)
    }
}
