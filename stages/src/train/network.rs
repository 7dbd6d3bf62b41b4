//! The networks of `crate::model` behind the one interface the supervised loop
//! needs, and the conversion of data rows into input tensors.
//!
//! Dropout masks come from the RNG of the device the *input* tensor lives on (every
//! kernel allocates its output on the input's device). So each training step builds
//! its inputs on a device seeded with a per-step seed: runs are reproducible, and two
//! forward passes given the same seed draw the same masks (the finite-difference
//! Hessian-vector product of the feedback phase relies on this).

use std::path::Path;

use dfdx::prelude::*;

use crate::model::{
    DeepConvNet, Float, Mode, ModelError, NetDevice, ParamTreeExt, Student, Teacher, T2, T3,
};
use crate::stage::StageError;
use crate::train::dataset::{FoldData, Modality, Role};

/// A network trained with cross-entropy by the shared loop.
pub(crate) trait Network<E: Float, D: NetDevice<E>>:
    ParamTreeExt<E, D> + Clone + Sized
{
    /// Name used for the checkpoint file (`<kind>.safetensors`).
    const KIND: &'static str;
    /// The modalities it reads, in order; the first input carries the tape.
    const MODALITIES: &'static [Modality];

    /// Logits `(B, classes)`; `inputs` in [`Network::MODALITIES`] order.
    fn logits<T: Tape<E, D>>(
        &mut self,
        first: T3<E, D, T>,
        rest: &[T3<E, D>],
        mode: Mode,
    ) -> Result<T2<E, D, T>, ModelError>;

    fn save_to(&self, path: &Path) -> Result<(), ModelError>;
}

fn one_rest<'a, E: Float, D: NetDevice<E>>(
    rest: &'a [T3<E, D>],
    what: &str,
) -> Result<&'a T3<E, D>, ModelError> {
    rest.first()
        .ok_or_else(|| ModelError::Shape(format!("{what} needs a second input")))
}

impl<E: Float, D: NetDevice<E>> Network<E, D> for Teacher<E, D> {
    const KIND: &'static str = "teacher";
    const MODALITIES: &'static [Modality] = &[Modality::Eeg, Modality::Eog];
    fn logits<T: Tape<E, D>>(
        &mut self,
        first: T3<E, D, T>,
        rest: &[T3<E, D>],
        mode: Mode,
    ) -> Result<T2<E, D, T>, ModelError> {
        let eog = one_rest(rest, "the teacher")?.clone();
        Ok(self.forward(first, eog, mode)?.logits)
    }
    fn save_to(&self, path: &Path) -> Result<(), ModelError> {
        self.save(path)
    }
}

impl<E: Float, D: NetDevice<E>> Network<E, D> for Student<E, D> {
    const KIND: &'static str = "student";
    const MODALITIES: &'static [Modality] = &[Modality::Eog];
    fn logits<T: Tape<E, D>>(
        &mut self,
        first: T3<E, D, T>,
        _rest: &[T3<E, D>],
        mode: Mode,
    ) -> Result<T2<E, D, T>, ModelError> {
        Ok(self.forward(first, mode)?.logits)
    }
    fn save_to(&self, path: &Path) -> Result<(), ModelError> {
        self.save(path)
    }
}

impl<E: Float, D: NetDevice<E>> Network<E, D> for DeepConvNet<E, D> {
    const KIND: &'static str = "deepconvnet";
    const MODALITIES: &'static [Modality] = &[Modality::Eog];
    fn logits<T: Tape<E, D>>(
        &mut self,
        first: T3<E, D, T>,
        _rest: &[T3<E, D>],
        mode: Mode,
    ) -> Result<T2<E, D, T>, ModelError> {
        self.forward(first, mode)
    }
    fn save_to(&self, path: &Path) -> Result<(), ModelError> {
        self.save(path)
    }
}

/// The input tensor `(idx.len(), channels, samples)` of modality number `m` for rows
/// `idx` of `role`, on `dev`.
pub(crate) fn input_tensor<E: Float, D: NetDevice<E>>(
    data: &FoldData,
    role: Role,
    m: usize,
    idx: &[usize],
    dev: &D,
) -> T3<E, D> {
    let values: Vec<E> = data
        .gather(role, m, idx)
        .into_iter()
        .map(|v| E::c(v as f64))
        .collect();
    dev.tensor_from_vec(values, (idx.len(), data.n_channels(m), data.samples()))
}

/// The inputs of `modalities` (each must be loaded in `data`) for rows `idx`.
pub(crate) fn inputs<E: Float, D: NetDevice<E>>(
    data: &FoldData,
    modalities: &[Modality],
    role: Role,
    idx: &[usize],
    dev: &D,
) -> Result<Vec<T3<E, D>>, StageError> {
    modalities
        .iter()
        .map(|want| {
            let m = data
                .modalities
                .iter()
                .position(|have| have == want)
                .ok_or_else(|| {
                    StageError::Model(format!("the {} channels were not loaded", want.kind()))
                })?;
            Ok(input_tensor(data, role, m, idx, dev))
        })
        .collect()
}

/// Row-wise softmax of logits `(n, classes)` on the host: (P(class 1) per row, the
/// summed cross-entropy against `labels`), accumulated in f64.
pub(crate) fn softmax_high_and_ce(
    logits: &[f64],
    classes: usize,
    labels: &[u8],
) -> (Vec<f32>, f64) {
    let mut p_high = Vec::with_capacity(labels.len());
    let mut ce = 0.0;
    for (row, &y) in logits.chunks_exact(classes.max(1)).zip(labels) {
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|z| (z - max).exp()).sum();
        let log_z = max + sum.ln();
        p_high.push(row.get(1).map_or(0.0, |z| (z - log_z).exp()) as f32);
        ce += log_z - row.get(y as usize).copied().unwrap_or(f64::NEG_INFINITY);
    }
    (p_high, ce)
}

/// Eval-mode pass over a whole role in batches of `batch`: (mean cross-entropy,
/// P(high) per row). `forward` maps the inputs of one batch to logits.
pub(crate) fn evaluate_role<E: Float, D: NetDevice<E>>(
    data: &FoldData,
    modalities: &[Modality],
    role: Role,
    batch: usize,
    dev: &D,
    mut forward: impl FnMut(Vec<T3<E, D>>) -> Result<T2<E, D>, StageError>,
) -> Result<(f64, Vec<f32>), StageError> {
    let set = data.role(role);
    let mut p_high = Vec::with_capacity(set.len());
    let mut ce = 0.0;
    for idx in crate::train::dataset::ordered_batches(set.len(), batch) {
        let logits = forward(inputs(data, modalities, role, &idx, dev)?)?;
        let classes = logits.shape().1;
        let values: Vec<f64> = logits
            .as_vec()
            .into_iter()
            .map(|v| v.to_f64().unwrap_or(f64::NAN))
            .collect();
        let labels = data.gather_labels(role, &idx);
        let (p, c) = softmax_high_and_ce(&values, classes, &labels);
        p_high.extend(p);
        ce += c;
    }
    Ok((ce / set.len().max(1) as f64, p_high))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_softmax_and_cross_entropy() {
        let (p, ce) = softmax_high_and_ce(&[0.0, 0.0, 2.0, -1.0], 2, &[1, 0]);
        assert!((p[0] - 0.5).abs() < 1e-7);
        let p1 = 1.0 / (1.0 + 3f64.exp());
        assert!((p[1] as f64 - p1).abs() < 1e-7);
        let want = -(0.5f64.ln()) - (1.0 - p1).ln();
        assert!((ce - want).abs() < 1e-12);
    }
}
