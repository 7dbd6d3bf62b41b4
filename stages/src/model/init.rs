//! Seeded parameter initialisation.
//!
//! Values are drawn on the host from one `StdRng` per model, in a fixed order, as
//! `f64` and then converted, so a seed gives the same network on every device and in
//! `f32` and `f64` alike. The schemes follow PyTorch's defaults (documented where used).

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};

use super::device::{Float, NetDevice, T1, T2};
use super::error::ModelError;

/// Draws the initial values of one model.
pub struct Init<'a, D> {
    dev: &'a D,
    rng: StdRng,
}

impl<'a, D> Init<'a, D> {
    pub fn new(dev: &'a D, seed: u64) -> Self {
        Init {
            dev,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The device the tensors are created on.
    pub fn device(&self) -> &'a D {
        self.dev
    }

    fn draw(&mut self, n: usize, dist: impl Distribution<f64>) -> Vec<f64> {
        (0..n).map(|_| dist.sample(&mut self.rng)).collect()
    }

    /// `U(-bound, bound)` matrix.
    pub fn uniform2<E: Float>(
        &mut self,
        rows: usize,
        cols: usize,
        bound: f64,
    ) -> Result<T2<E, D>, ModelError>
    where
        D: NetDevice<E>,
    {
        let v = self.draw(rows * cols, Uniform::new_inclusive(-bound, bound));
        self.matrix(rows, cols, v)
    }

    /// `U(-bound, bound)` vector.
    pub fn uniform1<E: Float>(&mut self, n: usize, bound: f64) -> Result<T1<E, D>, ModelError>
    where
        D: NetDevice<E>,
    {
        let v = self.draw(n, Uniform::new_inclusive(-bound, bound));
        self.vector(v)
    }

    /// `N(0, std²)` matrix.
    pub fn normal2<E: Float>(
        &mut self,
        rows: usize,
        cols: usize,
        std: f64,
    ) -> Result<T2<E, D>, ModelError>
    where
        D: NetDevice<E>,
    {
        let dist =
            Normal::new(0.0, std).map_err(|e| ModelError::Config(format!("normal init: {e}")))?;
        let v = self.draw(rows * cols, dist);
        self.matrix(rows, cols, v)
    }

    /// A constant vector (`0` for biases and shifts, `1` for scales and variances).
    pub fn constant1<E: Float>(&mut self, n: usize, value: f64) -> Result<T1<E, D>, ModelError>
    where
        D: NetDevice<E>,
    {
        self.vector(vec![value; n])
    }

    fn matrix<E: Float>(
        &self,
        rows: usize,
        cols: usize,
        v: Vec<f64>,
    ) -> Result<T2<E, D>, ModelError>
    where
        D: NetDevice<E>,
    {
        let v = v.into_iter().map(E::c).collect();
        self.dev
            .try_tensor_from_vec(v, (rows, cols))
            .map_err(ModelError::device)
    }

    fn vector<E: Float>(&self, v: Vec<f64>) -> Result<T1<E, D>, ModelError>
    where
        D: NetDevice<E>,
    {
        let n = v.len();
        let v = v.into_iter().map(E::c).collect();
        self.dev
            .try_tensor_from_vec(v, (n,))
            .map_err(ModelError::device)
    }
}
