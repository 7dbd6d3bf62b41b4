//! Dynamic feedback (docs/method.md, "Training"): the teacher is adjusted
//! according to how well a copy of the student learns from it.
//!
//! `meta`, per feedback step with batch (x, y) and quiz batch (x_q, y_q):
//! 1. θ_S' = θ_S − η·∇_{θ_S} L_S(θ_S; θ_T) on a copy of the student (pilot step);
//! 2. v = ∇_{θ_S'} CE(y_q, student(x_q; θ_S'));
//! 3. meta-gradient ∂L_q/∂θ_T = −η·∇_{θ_T}(∇_{θ_S} L_S · v), by the finite-difference
//!    Hessian-vector product
//!    `−η·[∇_{θ_T} L_S(θ_S + εv) − ∇_{θ_T} L_S(θ_S − εv)] / (2ε)`, ε = 0.01/‖v‖;
//! 4. teacher Adam step on `λ_ce·∇CE(y, p_T) + λ_fb·meta-gradient`.
//!
//! Cost: `L_S` depends on θ_T only through the teacher's outputs (z_T, F_T'), which
//! do not depend on θ_S. So `∇_{θ_T} L_S(θ_S ± εv) = J_Tᵀ·δ±` with one teacher
//! Jacobian J_T and the output cotangents δ±, and the whole update gradient
//! `λ_ce·∇CE + λ_fb·c·(J_Tᵀδ₊ − J_Tᵀδ₋)` (c = −η/(2ε)) is ONE teacher forward and
//! ONE backward of the scalar `λ_ce·CE(z_T) + λ_fb·c·(L_S(z_T; θ_S+εv) − L_S(z_T; θ_S−εv))`
//! — mathematically the same formula, not an approximation of it. The two students
//! θ_S ± εv only run forward. The teacher's outputs of that forward (as constants)
//! also feed the pilot step.
//!
//! The student runs in train mode in the pilot step and both HVP passes with the
//! batch's dropout masks (see [`KdBatch::student_input`]), so the three evaluate one
//! function `L_S(·; θ_T)`; the teacher runs in eval mode throughout (it is frozen
//! between feedback steps, and finite differences need a deterministic teacher).
//!
//! `first-order`: teacher step on `λ_ce·CE(y, p_T) + λ_fb·KL(p_T ‖ stopgrad(p_S'))`
//! with p_S' the pilot student's prediction on the batch (same temperature as KD).

use dfdx::prelude::*;

use crate::model::{Mode, ModelError, ParamTreeExt, ParamVec, T3};
use crate::train::distill_loop::{
    paired, student_forward, teacher_ce, teacher_forward, Distiller, Feedback, KdBatch, Outputs,
};
use crate::train::losses::{cross_entropy, kl_logits, teaching_loss, KdWeights};

/// What one meta feedback step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeedbackStats {
    /// Quiz loss of the pilot student.
    pub quiz_loss: f64,
    /// ‖v‖.
    pub v_norm: f64,
}

impl<E: crate::model::Float, D: crate::model::NetDevice<E>> Distiller<E, D> {
    /// One feedback step (before the student's teaching step on `b`).
    pub fn feedback_step(
        &mut self,
        b: &KdBatch<E>,
        q: &KdBatch<E>,
    ) -> Result<FeedbackStats, ModelError> {
        let (lce, lfb) = (self.feedback.lambda_ce, self.feedback.lambda_fb);
        let (mut grads, stats) = match self.feedback.mode {
            Feedback::None => {
                return Ok(FeedbackStats {
                    quiz_loss: f64::NAN,
                    v_norm: f64::NAN,
                })
            }
            Feedback::Meta => self.meta_teacher_grads(b, q, lce, lfb)?,
            Feedback::FirstOrder => self.first_order_teacher_grads(b, lce, lfb)?,
        };
        if self.fb_log.ratio.is_nan() && self.feedback.mode == Feedback::Meta {
            // First feedback step of the epoch: how large the meta term is next to the
            // teacher's own cross-entropy term (one extra teacher pass, once per epoch).
            let total = self.teacher.grad_vec(&mut grads)?;
            let ce = self.ce_teacher_grad(b, lce)?;
            let ce_norm = ce.norm()?;
            self.fb_log.ratio = total.add_scaled(&ce, -1.0)?.norm()? / ce_norm;
        }
        if stats.quiz_loss.is_finite() {
            self.fb_log.quiz_sum += stats.quiz_loss;
            self.fb_log.quiz_n += 1;
        }
        let opt = self.teacher_opt.as_mut().ok_or_else(|| {
            ModelError::Params("feedback is on but the teacher has no optimiser".into())
        })?;
        opt.step(&mut self.teacher, &mut grads)?;
        self.teacher_updates += 1;
        Ok(stats)
    }

    /// `λ_ce·∇CE(y, p_T)` for the teacher alone.
    fn ce_teacher_grad(
        &self,
        b: &KdBatch<E>,
        lambda_ce: f64,
    ) -> Result<ParamVec<E, D>, ModelError> {
        let (zt, _) = self.taped_teacher(b)?;
        let mut grads = (teacher_ce(zt, &b.y) * E::c(lambda_ce)).backward();
        self.teacher.grad_vec(&mut grads)
    }

    /// The teacher's forward on `b` (eval mode) with a fresh tape on its parameters:
    /// logits and, when the feature term is on, the features to match.
    fn taped_teacher(&self, b: &KdBatch<E>) -> Result<Outputs<E, D, OwnedTape<E, D>>, ModelError> {
        let (eeg, eog) = b.teacher_inputs(&self.dev);
        teacher_forward(
            &self.teacher,
            eeg.traced(self.teacher.alloc_grads()?),
            eog,
            self.uses_features(),
            self.student.1.is_some(),
        )
    }

    /// The gradient store of `λ_ce·∇CE(y, p_T) + λ_fb·meta-gradient` for the teacher.
    pub fn meta_teacher_grads(
        &self,
        b: &KdBatch<E>,
        q: &KdBatch<E>,
        lambda_ce: f64,
        lambda_fb: f64,
    ) -> Result<(Gradients<E, D>, FeedbackStats), ModelError> {
        let feat = self.uses_features();
        // Teacher forward with a tape: its values feed the pilot step, its tape the
        // final backward.
        let (zt, ft) = self.taped_teacher(b)?;
        let (zt, tape) = zt.split_tape();
        let ft_const: Option<T3<E, D>> = ft.as_ref().map(|f| f.retaped::<NoneTape>());

        // 1-2: pilot step and quiz gradient.
        let pilot = self.pilot(b, &zt, ft_const.as_ref())?;
        let (quiz_loss, v) = quiz_gradient(pilot, q, &self.dev)?;
        let v_norm = v.norm()?;
        let stats = FeedbackStats { quiz_loss, v_norm };

        let mut total = teacher_ce(zt.clone().put_tape(tape), &b.y) * E::c(lambda_ce);
        if v_norm > 0.0 && v_norm.is_finite() && lambda_fb != 0.0 {
            // 3: the two perturbed students, forward only, same dropout masks.
            let eps = self.feedback.eps_factor / v_norm;
            let mut outs = Vec::with_capacity(2);
            for sign in [1.0, -1.0] {
                let mut s = self.student.deep_copy()?;
                s.add_scaled(&v, sign * eps)?;
                outs.push(student_forward(
                    &mut s,
                    b.student_input(&self.dev),
                    Mode::Train,
                    feat,
                )?);
            }
            let c = -self.feedback.eta / (2.0 * eps) * lambda_fb;
            // Terms of L_S that involve the teacher (the CE term has no θ_T).
            let w = KdWeights {
                ce: 0.0,
                ..self.weights
            };
            for ((zs, fs), coef) in outs.into_iter().zip([c, -c]) {
                let pair = paired(
                    fs.map(|f| f.retaped::<OwnedTape<E, D>>()),
                    ft.as_ref().map(|f| f.retaped::<OwnedTape<E, D>>()),
                );
                let l = teaching_loss(
                    &w,
                    &b.y,
                    zs.retaped::<OwnedTape<E, D>>(),
                    zt.retaped::<OwnedTape<E, D>>(),
                    pair,
                );
                total = total + l * E::c(coef);
            }
        }
        Ok((total.backward(), stats))
    }

    /// The meta-gradient `∂L_q/∂θ_T` alone (λ_ce = 0, λ_fb = 1), in the teacher's
    /// parameter layout — what the feedback adds to the teacher's gradient.
    pub fn meta_gradient(
        &self,
        b: &KdBatch<E>,
        q: &KdBatch<E>,
    ) -> Result<ParamVec<E, D>, ModelError> {
        let (mut grads, _) = self.meta_teacher_grads(b, q, 0.0, 1.0)?;
        self.teacher.grad_vec(&mut grads)
    }

    /// `L_q(θ_S'(θ_T))` for the current teacher: the quiz loss after the pilot step
    /// (the function whose θ_T-derivative [`Distiller::meta_gradient`] approximates).
    pub fn quiz_loss_after_pilot(&self, b: &KdBatch<E>, q: &KdBatch<E>) -> Result<f64, ModelError> {
        let (zt, ft) = self.teacher_targets(b)?;
        let pilot = self.pilot(b, &zt, ft.as_ref())?;
        Ok(quiz_gradient(pilot, q, &self.dev)?.0)
    }

    /// `λ_ce·∇CE(y, p_T) + λ_fb·∇KL(p_T ‖ stopgrad(p_S'))` for the teacher.
    pub fn first_order_teacher_grads(
        &self,
        b: &KdBatch<E>,
        lambda_ce: f64,
        lambda_fb: f64,
    ) -> Result<(Gradients<E, D>, FeedbackStats), ModelError> {
        let (zt, ft) = self.taped_teacher(b)?;
        let (zt, tape) = zt.split_tape();
        let ft_const: Option<T3<E, D>> = ft.map(|f| f.retaped::<NoneTape>());
        let mut pilot = self.pilot(b, &zt, ft_const.as_ref())?;
        let (zs, _) = student_forward(&mut pilot, b.student_input(&self.dev), Mode::Train, false)?;
        let ce = teacher_ce(zt.clone().put_tape(tape), &b.y) * E::c(lambda_ce);
        // KL(p_T ‖ p_S'): the teacher is the `p` side, the pilot student a constant.
        let kl = kl_logits(
            zs.retaped::<OwnedTape<E, D>>(),
            zt.retaped::<OwnedTape<E, D>>(),
            self.weights.temperature,
        );
        let total = ce + kl * E::c(lambda_fb);
        Ok((
            total.backward(),
            FeedbackStats {
                quiz_loss: f64::NAN,
                v_norm: f64::NAN,
            },
        ))
    }
}

/// Quiz loss of `student` on `q` (train mode, `q`'s dropout masks) and its gradient
/// with respect to the student side.
fn quiz_gradient<E: crate::model::Float, D: crate::model::NetDevice<E>>(
    mut student: crate::train::distill_loop::StudentSide<E, D>,
    q: &KdBatch<E>,
    student_dev: &D,
) -> Result<(f64, ParamVec<E, D>), ModelError> {
    let grads = student.alloc_grads()?;
    let (zq, _) = student_forward(
        &mut student,
        q.student_input(student_dev).traced(grads),
        Mode::Train,
        false,
    )?;
    let lq = cross_entropy(zq, &q.y);
    let value = lq.array().to_f64().unwrap_or(f64::NAN);
    let mut grads = lq.backward();
    Ok((value, student.grad_vec(&mut grads)?))
}
