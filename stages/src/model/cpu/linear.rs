//! Fused linear layer: one GEMM with the bias pre-filled into the output, one
//! GEMM per gradient, column sums for the bias (dfdx broadcasts the bias through a
//! strided iterator and reduces it back the same way).

use dfdx::prelude::*;

use super::host::{
    add_column_sums, add_rows, grad_mut, matmul, param_values, restore_grad, take_grad, values, Buf,
};
use crate::model::device::{Float, T1, T2};

pub(crate) fn linear<E: Float, T: Tape<E, Cpu>>(
    x: T2<E, Cpu, T>,
    w: &T2<E, Cpu>,
    b: Option<&T1<E, Cpu>>,
) -> Result<T2<E, Cpu, T>, CpuError>
where
    Cpu: Device<E>,
{
    let (n, i) = *x.shape();
    let o = w.shape().1;
    assert_eq!(w.shape().0, i, "linear: input width");
    let (x, mut tape) = x.try_contiguous()?.split_tape();
    let dev = x.device().clone();
    let xv = values(&x);
    let wv = param_values(w)?;
    // From the device's allocation cache: when it is enabled, a reused (zeroed)
    // buffer is cheaper than fresh pages.
    let mut y = Buf::zeros(&dev, n * o)?;
    matmul((n, i, o), &xv, false, &wv, false, &mut y, false, true);
    if let Some(b) = b {
        add_rows(&mut y, &param_values(b)?);
    }
    let out = dev.try_tensor_from_vec(y.into_vec(), (n, o))?;
    if T::OWNS_TAPE {
        let (xg, wg, bg, og) = (x.ghost(), w.ghost(), b.map(|b| b.ghost()), out.ghost());
        tape.add_backward_op(move |grads| {
            let dy = take_grad!(grads, og);
            // dx += dy · wᵀ
            matmul(
                (n, o, i),
                &dy,
                false,
                &wv,
                true,
                grad_mut!(grads, xg),
                true,
                true,
            );
            // dw += xᵀ · dy
            matmul(
                (i, n, o),
                &xv,
                true,
                &dy,
                false,
                grad_mut!(grads, wg),
                true,
                true,
            );
            if let Some(bg) = bg {
                add_column_sums(&dy, o, grad_mut!(grads, bg));
            }
            restore_grad!(grads, og, dy);
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}
