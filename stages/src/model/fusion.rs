//! Multi-depth gated fusion: the teacher's cross-modal fusion over depth pairs and
//! the student's single-modality sum over depths, plus the teacher→student shape
//! alignment.

use dfdx::prelude::*;

use super::config::BranchConfig;
use super::device::{Float, NetDevice, T3};
use super::error::ModelError;
use super::init::Init;
use super::score::ScoreBlock;
use super::Mode;

/// Moves the tapes of several tensors onto one (merged) tape.
fn merge_tapes<E: Float, D: NetDevice<E>, T: Tape<E, D>>(
    xs: Vec<T3<E, D, T>>,
) -> (Vec<T3<E, D>>, T) {
    let mut tape = T::default();
    let mut plain = Vec::with_capacity(xs.len());
    for x in xs {
        let (x, t) = x.split_tape();
        tape = tape.merge(t);
        plain.push(x);
    }
    (plain, tape)
}

/// The tensor with the merged tape on its first use, an empty tape afterwards.
fn taped<E: Float, D: NetDevice<E>, T: Tape<E, D>>(
    x: &T3<E, D>,
    tape: &mut Option<T>,
) -> T3<E, D, T> {
    match tape.take() {
        Some(t) => x.clone().put_tape(t),
        None => x.retaped::<T>(),
    }
}

/// The two score blocks of one depth pair (ℓ, ℓ+1).
#[derive(Clone, Debug)]
pub struct PairGates<E, D: Storage<E>> {
    /// `E_a`, applied to depth ℓ.
    pub lower: ScoreBlock<E, D>,
    /// `E_b`, applied to depth ℓ+1.
    pub upper: ScoreBlock<E, D>,
}

crate::impl_params!(PairGates { lower, upper });

/// Teacher fusion: `IMF_ℓ = E_a([H^ℓ_EEG ; H^ℓ_EOG]) + E_b([H^{ℓ+1}_EEG ; H^{ℓ+1}_EOG])`
/// for ℓ = 1..L−1 and `F_T = Σ_ℓ IMF_ℓ` (`[A; B]` concatenates along tokens).
#[derive(Clone, Debug)]
pub struct CrossModalFusion<E, D: Storage<E>> {
    pub pairs: Vec<PairGates<E, D>>,
}

crate::impl_params!(CrossModalFusion { pairs });

impl<E: Float, D: NetDevice<E>> CrossModalFusion<E, D> {
    /// For `depths ≥ 2` depths of `tokens` concatenated tokens (EEG + EOG) of width `b.dim`.
    pub fn new(
        init: &mut Init<D>,
        depths: usize,
        tokens: usize,
        b: &BranchConfig,
    ) -> Result<Self, ModelError> {
        let pairs = (1..depths)
            .map(|_| {
                Ok(PairGates {
                    lower: ScoreBlock::new(init, tokens, b)?,
                    upper: ScoreBlock::new(init, tokens, b)?,
                })
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(CrossModalFusion { pairs })
    }

    /// `eeg`, `eog`: the depths of both branches (`(B, L, dim)` each, same count);
    /// returns `F_T: (B, 2L, dim)` with EEG tokens first.
    pub fn forward<T: Tape<E, D>>(
        &mut self,
        eeg: Vec<T3<E, D, T>>,
        eog: Vec<T3<E, D, T>>,
        mode: Mode,
    ) -> Result<T3<E, D, T>, D::Err> {
        let cats = eeg
            .into_iter()
            .zip(eog)
            .map(|(a, b)| (a, b).try_concat_along(Axis::<1>))
            .collect::<Result<Vec<_>, _>>()?;
        let (cats, tape) = merge_tapes(cats);
        let mut tape = Some(tape);
        let mut total: Option<T3<E, D, T>> = None;
        for (l, pair) in self.pairs.iter_mut().enumerate() {
            let a = pair.lower.forward(taped(&cats[l], &mut tape), mode)?;
            let b = pair.upper.forward(taped(&cats[l + 1], &mut tape), mode)?;
            let imf = a.try_add(b)?;
            total = Some(match total {
                Some(t) => t.try_add(imf)?,
                None => imf,
            });
        }
        Ok(total.expect("the config check guarantees at least one depth pair"))
    }
}

/// Student fusion: `F_S = Σ_ℓ E_ℓ(H^ℓ)`.
#[derive(Clone, Debug)]
pub struct DepthFusion<E, D: Storage<E>> {
    pub gates: Vec<ScoreBlock<E, D>>,
}

crate::impl_params!(DepthFusion { gates });

impl<E: Float, D: NetDevice<E>> DepthFusion<E, D> {
    pub fn new(
        init: &mut Init<D>,
        depths: usize,
        tokens: usize,
        b: &BranchConfig,
    ) -> Result<Self, ModelError> {
        let gates = (0..depths)
            .map(|_| ScoreBlock::new(init, tokens, b))
            .collect::<Result<_, _>>()?;
        Ok(DepthFusion { gates })
    }

    /// `depths`: `(B, L, dim)` each; returns `F_S: (B, L, dim)`.
    pub fn forward<T: Tape<E, D>>(
        &mut self,
        depths: Vec<T3<E, D, T>>,
        mode: Mode,
    ) -> Result<T3<E, D, T>, D::Err> {
        let (hs, tape) = merge_tapes(depths);
        let mut tape = Some(tape);
        let mut total: Option<T3<E, D, T>> = None;
        for (h, gate) in hs.iter().zip(self.gates.iter_mut()) {
            let e = gate.forward(taped(h, &mut tape), mode)?;
            total = Some(match total {
                Some(t) => t.try_add(e)?,
                None => e,
            });
        }
        Ok(total.expect("a branch has at least one depth"))
    }
}

/// DECISION (docs/method.md) shape alignment: `F_T' = F_T[EEG tokens] + F_T[EOG tokens]`,
/// `(B, 2L, dim) -> (B, L, dim)`, so the student feature matches without a regressor.
///
/// Written as a reshape to `(B, 2, L·dim)` and a sum over the middle axis, not as two
/// slices: dfdx 0.13's slice backward overwrites the input gradient instead of adding
/// to it, which would erase the classifier's gradient of `F_T`.
pub(crate) fn align_teacher_feature<E: Float, D: NetDevice<E>, T: Tape<E, D>>(
    f: T3<E, D, T>,
) -> Result<T3<E, D, T>, D::Err> {
    let (b, n, d) = *f.shape();
    let l = n / 2;
    f.try_reshape_like(&(b, 2, l * d))?
        .try_sum::<(usize, usize), Axis<1>>()?
        .try_reshape_like(&(b, l, d))
}
