//! Losses of the method (docs/method.md, "Training"): cross-entropy on class indices, the
//! Hinton KD term `T²·KL(p_T^τ ‖ p_S^τ)`, the feature term `MSE(F_T', F_S)` and the
//! weighted teaching loss `L_S = e₁·CE + e₂·T²·KL + e₃·MSE`.
//!
//! All are generic over the dtype (f64 for the meta-gradient checks) and over which
//! side carries the autodiff tape: the student (teaching step), the teacher
//! (meta-gradient, first-order feedback) or both. The tape of the left operand must
//! be able to absorb the right one (`Merge`); give a constant an empty `OwnedTape`
//! with `retaped()` when the other side is taped.
//!
//! The KL target goes through a logarithm: dfdx's `kl_div_with_logits_loss` takes
//! probabilities and applies `ln`, which gives NaN for a zero probability. Here
//! `ln p_T` is computed as `log_softmax(z_T/τ)` instead, which is exact and finite
//! for any finite logits, so no clamp is needed.

use dfdx::prelude::*;

/// Logits `(batch, classes)` (class 0 = low, 1 = high), the networks' output shape.
pub type Logits<E, D, T = NoneTape> = Tensor<(usize, usize), E, D, T>;
/// A scalar loss.
pub type Loss<E, D, T> = Tensor<Rank0, E, D, T>;

fn scalar<E: Dtype>(v: f64) -> E {
    E::from_f64(v).expect("a finite f64 converts to the dtype")
}

/// One-hot targets `(batch, classes)` from class labels (a label ≥ `classes` gets
/// no hot entry; labels come from the 0/1 columns, checked when read).
pub fn one_hot<E: Dtype, D: Device<E>>(dev: &D, y: &[u8], classes: usize) -> Logits<E, D> {
    let mut v = vec![E::default(); classes * y.len()];
    for (row, &l) in y.iter().enumerate() {
        if (l as usize) < classes {
            v[row * classes + l as usize] = E::ONE;
        }
    }
    dev.tensor_from_vec(v, (y.len(), classes))
}

/// Mean cross-entropy of `logits` against class labels `y`.
pub fn cross_entropy<E: Dtype, D: Device<E>, T: Tape<E, D>>(
    logits: Logits<E, D, T>,
    y: &[u8],
) -> Loss<E, D, T> {
    let target = one_hot(logits.device(), y, logits.shape().1);
    cross_entropy_with_logits_loss(logits, target)
}

/// `KL(p ‖ q)` with `p = softmax(p_logits/τ)`, `q = softmax(q_logits/τ)`, summed over
/// classes and averaged over the batch. The result carries `q_logits`' tape merged
/// with `p_logits`'; gradients flow to both sides.
pub fn kl_logits<E, D, TQ, TP>(
    q_logits: Logits<E, D, TQ>,
    p_logits: Logits<E, D, TP>,
    tau: f64,
) -> Loss<E, D, TQ>
where
    E: Dtype,
    D: Device<E>,
    TQ: Tape<E, D> + Merge<TP>,
    TP: Tape<E, D>,
{
    let inv = scalar::<E>(1.0 / tau);
    let log_q = (q_logits * inv).log_softmax::<Axis<1>>();
    let log_p = (p_logits * inv).log_softmax::<Axis<1>>();
    // A second handle on log p with its own (empty) tape, merged back below, so the
    // gradient reaches p's logits through both p and ln p.
    let p = log_p.with_empty_tape().exp();
    // Σ p (ln p − ln q) = −Σ p (ln q − ln p)
    let per_row = ((log_q - log_p) * p).sum::<(usize,), Axis<1>>();
    per_row.mean::<Rank0, _>().negate()
}

/// The Hinton KD term `τ²·KL(p_T^τ ‖ p_S^τ)`.
pub fn kd_kl<E, D, TS, TT>(
    student: Logits<E, D, TS>,
    teacher: Logits<E, D, TT>,
    tau: f64,
) -> Loss<E, D, TS>
where
    E: Dtype,
    D: Device<E>,
    TS: Tape<E, D> + Merge<TT>,
    TT: Tape<E, D>,
{
    kl_logits(student, teacher, tau) * scalar::<E>(tau * tau)
}

/// Mean squared error over every element of two feature tensors of one shape.
pub fn feature_mse<S, E, D, TS, TT>(
    student: Tensor<S, E, D, TS>,
    teacher: Tensor<S, E, D, TT>,
) -> Loss<E, D, TS>
where
    S: Shape,
    E: Dtype,
    D: Device<E>,
    TS: Tape<E, D> + Merge<TT>,
    TT: Tape<E, D>,
{
    (student - teacher).square().mean()
}

/// Weights of the teaching loss (EmotionKD: e₁ = 1, e₂ = 0.1, e₃ = 1, T = 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KdWeights {
    /// e₁: cross-entropy with the labels.
    pub ce: f64,
    /// e₂: the KL term (already multiplied by T² inside [`kd_kl`]).
    pub kl: f64,
    /// e₃: the feature term; 0 skips the features altogether (V1).
    pub feature: f64,
    /// T: softmax temperature of the KL term.
    pub temperature: f64,
}

impl Default for KdWeights {
    fn default() -> Self {
        KdWeights {
            ce: 1.0,
            kl: 0.1,
            feature: 1.0,
            temperature: 1.0,
        }
    }
}

/// Student and teacher feature tensors of one shape (the feature term's inputs).
pub type FeaturePair<S, E, D, TS, TT> = (Tensor<S, E, D, TS>, Tensor<S, E, D, TT>);

/// `L_S = e₁·CE(y, p_S) + e₂·T²·KL(p_T^τ ‖ p_S^τ) + e₃·MSE(F_T', F_S)`.
/// `features` (student, teacher) are only read when `w.feature != 0`; a zero
/// weight skips its term. The student logits' own tape always ends up in the result
/// (the other uses get empty tapes that are merged back).
pub fn teaching_loss<S, E, D, TS, TT>(
    w: &KdWeights,
    y: &[u8],
    student_logits: Logits<E, D, TS>,
    teacher_logits: Logits<E, D, TT>,
    features: Option<FeaturePair<S, E, D, TS, TT>>,
) -> Loss<E, D, TS>
where
    S: Shape,
    E: Dtype,
    D: Device<E>,
    TS: Tape<E, D> + Merge<TT>,
    TT: Tape<E, D>,
{
    let second = student_logits.with_empty_tape();
    let mut loss = kd_kl(student_logits, teacher_logits, w.temperature) * scalar::<E>(w.kl);
    if w.ce != 0.0 {
        loss = loss + cross_entropy(second, y) * scalar::<E>(w.ce);
    }
    if w.feature != 0.0 {
        if let Some((fs, ft)) = features {
            loss = loss + feature_mse(fs, ft) * scalar::<E>(w.feature);
        }
    }
    loss
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    fn softmax(z: [f64; 2], tau: f64) -> [f64; 2] {
        let (a, b) = ((z[0] / tau).exp(), (z[1] / tau).exp());
        [a / (a + b), b / (a + b)]
    }

    #[test]
    fn ce_and_kl_match_hand_computed_values() {
        let dev: Cpu = Default::default();
        let zs = [[1.0, -0.5], [0.2, 0.3]];
        let zt = [[2.0, 0.0], [-1.0, 1.5]];
        let y = [0u8, 1];
        let s: Logits<f64, Cpu> = dev.tensor_from_vec(zs.concat(), (2, 2));
        let t: Logits<f64, Cpu> = dev.tensor_from_vec(zt.concat(), (2, 2));
        // CE = mean(−ln p_S[y])
        let want_ce = -(softmax(zs[0], 1.0)[0].ln() + softmax(zs[1], 1.0)[1].ln()) / 2.0;
        assert!(close(cross_entropy(s.clone(), &y).array(), want_ce, 1e-12));
        for tau in [1.0, 2.0, 4.0] {
            let mut want = 0.0;
            for r in 0..2 {
                let (p, q) = (softmax(zt[r], tau), softmax(zs[r], tau));
                want += (0..2).map(|c| p[c] * (p[c] / q[c]).ln()).sum::<f64>();
            }
            want = tau * tau * want / 2.0;
            let got = kd_kl(s.clone(), t.clone(), tau).array();
            assert!(close(got, want, 1e-12), "tau {tau}: {got} vs {want}");
        }
        // KL of a distribution with itself is 0
        assert!(kd_kl(s.clone(), s.clone(), 1.0).array().abs() < 1e-15);
        // e1·CE + e2·T²·KL + e3·MSE
        let fs: Tensor<Rank2<2, 3>, f64, Cpu> = dev.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]);
        let ft: Tensor<Rank2<2, 3>, f64, Cpu> = dev.tensor([[1.0, 0.0, 3.0], [1.0, 0.0, -1.0]]);
        let want_mse = (4.0 + 1.0 + 1.0) / 6.0;
        assert!(close(
            feature_mse(fs.clone(), ft.clone()).array(),
            want_mse,
            1e-12
        ));
        let w = KdWeights {
            ce: 1.0,
            kl: 0.1,
            feature: 2.0,
            temperature: 2.0,
        };
        let want = want_ce + 0.1 * kd_kl(s.clone(), t.clone(), 2.0).array() + 2.0 * want_mse;
        let got = teaching_loss(&w, &y, s.clone(), t.clone(), Some((fs, ft))).array();
        assert!(close(got, want, 1e-12));
    }

    #[test]
    fn the_student_tape_survives_every_weighting() {
        // With e1 = 0 (pure KD) or e2 = 0 the student's gradient must still arrive.
        let dev: Cpu = Default::default();
        let s: Logits<f64, Cpu> = dev.tensor_from_vec(vec![0.5, -0.5, 1.0, 0.0], (2, 2));
        let t: Logits<f64, Cpu> = dev.tensor_from_vec(vec![-1.0, 1.0, 2.0, 0.0], (2, 2));
        for (ce, kl) in [(0.0, 1.0), (1.0, 0.0), (1.0, 0.1)] {
            let w = KdWeights {
                ce,
                kl,
                feature: 0.0,
                temperature: 2.0,
            };
            let loss = teaching_loss::<Rank1<1>, _, _, _, _>(
                &w,
                &[1, 0],
                s.leaky_trace(),
                t.clone(),
                None,
            );
            let g = loss.backward().get(&s).as_vec();
            assert!(
                g.iter().any(|v| v.abs() > 1e-6),
                "ce {ce} kl {kl}: no gradient {g:?}"
            );
        }
    }

    #[test]
    fn kl_is_finite_for_saturated_teachers() {
        let dev: Cpu = Default::default();
        let s: Logits<f32, Cpu> = dev.tensor_from_vec(vec![0.0, 0.0], (1, 2));
        let t: Logits<f32, Cpu> = dev.tensor_from_vec(vec![-200.0, 200.0], (1, 2));
        let kl = kd_kl(s.leaky_trace(), t, 1.0);
        assert!((kl.array() - 2f32.ln()).abs() < 1e-5, "{}", kl.array());
        let g = kl.backward();
        assert!(g.get(&s).as_vec().iter().all(|v| v.is_finite()));
    }

    #[test]
    fn gradients_reach_the_teacher_through_both_p_and_ln_p() {
        // d/dz_T of KL(p_T ‖ p_S) for one row, τ = 1: with p = softmax(z_T),
        // ∂KL/∂z_T[c] = p_c·(ln p_c − ln q_c − KL)
        let dev: Cpu = Default::default();
        let (zs, zt) = ([0.3, -0.2], [1.0, -1.0]);
        let s: Logits<f64, Cpu> = dev.tensor_from_vec(zs.to_vec(), (1, 2));
        let t: Logits<f64, Cpu> = dev.tensor_from_vec(zt.to_vec(), (1, 2));
        let loss = kd_kl(s.retaped::<OwnedTape<f64, Cpu>>(), t.leaky_trace(), 1.0);
        let kl = loss.array();
        let g = loss.backward();
        let (p, q) = (softmax(zt, 1.0), softmax(zs, 1.0));
        let gt = g.get(&t).as_vec();
        for c in 0..2 {
            let want = p[c] * (p[c].ln() - q[c].ln() - kl);
            assert!(close(gt[c], want, 1e-10), "{c}: {} vs {want}", gt[c]);
        }
    }
}
