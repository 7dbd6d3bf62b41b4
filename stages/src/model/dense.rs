//! Fully connected layer with runtime sizes.

use dfdx::prelude::*;

use super::device::{Float, NetDevice, T1, T2, T3};
use super::error::ModelError;
use super::init::Init;

/// `y = x · weight + bias`. The weight is stored `(in, out)` (the transpose of
/// PyTorch's layout) so the forward pass is a plain matmul.
#[derive(Clone, Debug)]
pub struct Dense<E, D: Storage<E>> {
    pub weight: T2<E, D>,
    pub bias: Option<T1<E, D>>,
}

crate::impl_params!(Dense { weight, bias });

impl<E: Float, D: NetDevice<E>> Dense<E, D> {
    /// PyTorch's `nn.Linear` initialisation: weight and bias `U(±1/√in)`.
    pub fn new(
        init: &mut Init<D>,
        input: usize,
        output: usize,
        bias: bool,
    ) -> Result<Self, ModelError> {
        let bound = 1.0 / (input as f64).sqrt();
        let weight = init.uniform2(input, output, bound)?;
        let bias = if bias {
            Some(init.uniform1(output, bound)?)
        } else {
            None
        };
        Ok(Dense { weight, bias })
    }

    /// Input width.
    pub fn input(&self) -> usize {
        self.weight.shape().0
    }

    /// Output width.
    pub fn output(&self) -> usize {
        self.weight.shape().1
    }

    /// `(N, in) -> (N, out)`.
    pub fn forward<T: Tape<E, D>>(&self, x: T2<E, D, T>) -> Result<T2<E, D, T>, D::Err> {
        D::linear(x, &self.weight, self.bias.as_ref())
    }

    /// `(B, S, in) -> (B, S, out)`, as one `(B·S, in)` matmul.
    pub fn forward3<T: Tape<E, D>>(&self, x: T3<E, D, T>) -> Result<T3<E, D, T>, D::Err> {
        let (b, s, i) = *x.shape();
        let y = self.forward(x.try_reshape_like(&(b * s, i))?)?;
        y.try_reshape_like(&(b, s, self.output()))
    }
}
