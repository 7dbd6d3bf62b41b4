//! Adam over a [`ParamTree`] collection, using dfdx's Adam kernel.
//!
//! dfdx's `optim::Adam` needs a `TensorCollection`, which runtime-sized networks
//! cannot implement (see [`super::param_tree`]); this keeps one pair of moment
//! buffers per trainable tensor, in visit order, and calls the same kernel.

use dfdx::optim::AdamConfig;
use dfdx::prelude::*;

use super::device::{Float, NetDevice};
use super::error::ModelError;
use super::param_tree::{ParamPath, ParamTree, ParamTreeExt, ParamVec, TensorMut};

/// Adam state for one model (or a pair of models trained together).
pub struct Adam<E, D: Storage<E>> {
    pub cfg: AdamConfig,
    /// Steps taken (the bias correction uses `t` after incrementing, as dfdx/PyTorch).
    pub t: i32,
    moments: Vec<(D::Vec, D::Vec)>,
    sizes: Vec<usize>,
}

impl<E: Float, D: NetDevice<E>> Adam<E, D> {
    /// Zero moments for every trainable tensor of `model`.
    pub fn new<M: ParamTree<E, D>>(
        dev: &D,
        model: &M,
        cfg: AdamConfig,
    ) -> Result<Self, ModelError> {
        let sizes: Vec<usize> = model
            .tensors()
            .iter()
            .filter(|t| t.trainable)
            .map(|t| t.tensor.numel())
            .collect();
        let moments = sizes
            .iter()
            .map(|&n| {
                Ok((
                    Storage::<E>::try_alloc_len(dev, n)?,
                    Storage::<E>::try_alloc_len(dev, n)?,
                ))
            })
            .collect::<Result<_, D::Err>>()
            .map_err(ModelError::device)?;
        Ok(Adam {
            cfg,
            t: 0,
            moments,
            sizes,
        })
    }

    /// One step with the model's gradients from `grads` (a parameter the loss did not
    /// reach gets a zero gradient).
    pub fn step<M: ParamTree<E, D>>(
        &mut self,
        model: &mut M,
        grads: &mut Gradients<E, D>,
    ) -> Result<(), ModelError> {
        self.t = self.t.saturating_add(1);
        let (t, cfg) = (self.t, self.cfg);
        let sizes = &self.sizes;
        let mut i = 0;
        let mut err = None;
        let moments = &mut self.moments;
        model.visit_mut(&mut ParamPath::default(), &mut |name, trainable, p| {
            if !trainable || err.is_some() {
                return;
            }
            let numel: usize = p.dims().iter().product();
            let (Some((m1, m2)), Some(&size)) = (moments.get_mut(i), sizes.get(i)) else {
                err = Some(format!(
                    "{name}: the model has more trainable tensors than the optimizer"
                ));
                return;
            };
            i += 1;
            if numel != size {
                err = Some(format!(
                    "{name}: {numel} values, the optimizer expects {size}"
                ));
                return;
            }
            let r = match p {
                TensorMut::Vector(x) => grads
                    .get_or_alloc_mut(&*x)
                    .and_then(|g| cfg.try_update(t, x, m1, m2, g)),
                TensorMut::Matrix(x) => grads
                    .get_or_alloc_mut(&*x)
                    .and_then(|g| cfg.try_update(t, x, m1, m2, g)),
            };
            if let Err(e) = r {
                err = Some(format!("{name}: {e:?}"));
            }
        });
        match err {
            Some(e) => Err(ModelError::Params(e)),
            None if i != self.sizes.len() => Err(ModelError::Params(format!(
                "the model has {i} trainable tensors, the optimizer {}",
                self.sizes.len()
            ))),
            None => Ok(()),
        }
    }

    /// One step with an explicit gradient vector in the model's layout (e.g. a
    /// cross-entropy gradient plus a meta-gradient).
    pub fn step_vec<M: ParamTree<E, D>>(
        &mut self,
        model: &mut M,
        g: &ParamVec<E, D>,
    ) -> Result<(), ModelError> {
        let mut grads = model.grads_from_vec(g)?;
        self.step(model, &mut grads)
    }
}
