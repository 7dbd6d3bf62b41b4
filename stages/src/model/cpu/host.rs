//! Host-side plumbing for the fused CPU kernels: reading tensors, the GEMM call,
//! reductions, and access to gradient buffers inside backward closures.
//!
//! dfdx 0.13 keeps a tensor's buffer crate-private, so a kernel reads its inputs with
//! one `copy_into` (after `try_contiguous`, which is free for contiguous tensors),
//! writes its output into a `Vec` that becomes the tensor without a copy
//! (`tensor_from_vec`), and reaches gradient buffers through
//! `Gradients::get_or_alloc_mut` (a `CachableVec` that dereferences to a `Vec`).

use dfdx::prelude::*;
use rayon::prelude::*;

use crate::model::device::Float;

/// Rows per parallel task for row-wise kernels: enough work to amortise scheduling,
/// fixed (not derived from the thread count) so reductions are deterministic.
pub(crate) const ROW_BLOCK_ELEMS: usize = 1 << 14;

/// The values of a tensor in row-major order (it must be contiguous: callers pass
/// tensors through `try_contiguous` or own them).
pub(crate) fn values<S: Shape, E: Float, T>(t: &Tensor<S, E, Cpu, T>) -> Vec<E> {
    let mut v = vec![E::zero(); t.shape().num_elements()];
    t.copy_into(&mut v);
    v
}

/// The values of a parameter (parameters are created contiguous and stay so).
pub(crate) fn param_values<S: Shape, E: Float>(t: &Tensor<S, E, Cpu>) -> Result<Vec<E>, CpuError>
where
    Cpu: Device<E>,
{
    Ok(values(&t.clone().try_contiguous()?))
}

/// `c (m×n) [+]= a (m×k) · b (k×n)`, all row-major. `a_t`: the slice holds `aᵀ`
/// (a `k×m` row-major matrix); `b_t` likewise. `parallel`: let GEMM use the rayon
/// pool (off inside an outer parallel loop).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul<E: Float>(
    (m, k, n): (usize, usize, usize),
    a: &[E],
    a_t: bool,
    b: &[E],
    b_t: bool,
    c: &mut [E],
    accumulate: bool,
    parallel: bool,
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "matmul operand sizes"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(E::zero());
        }
        return;
    }
    let (a_rs, a_cs) = if a_t {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (b_rs, b_cs) = if b_t {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    let par = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above bound every access: row-major strides over slices of
    // at least m·k, k·n and m·n elements; `c` is exclusively borrowed.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            E::one(),
            E::one(),
            false,
            false,
            false,
            par,
        )
    }
}

/// A strided matrix view for [`matmul_strided`]: element `(r, c)` is
/// `data[offset + r·rs + c·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View {
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

impl View {
    /// Row-major `cols`-wide matrix starting at `offset`.
    pub(crate) fn rows(offset: usize, row_stride: usize) -> Self {
        View {
            offset,
            rs: row_stride,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with row stride `row_stride`.
    pub(crate) fn transposed(offset: usize, row_stride: usize) -> Self {
        View {
            offset,
            rs: 1,
            cs: row_stride,
        }
    }

    /// One past the largest index touched by an `r × c` view.
    fn end(&self, r: usize, c: usize) -> usize {
        if r == 0 || c == 0 {
            self.offset
        } else {
            self.offset + (r - 1) * self.rs + (c - 1) * self.cs + 1
        }
    }
}

/// `c [+]= scale · a · b` on strided views (`a`: m×k, `b`: k×n, `c`: m×n), single
/// threaded (for use inside parallel loops over small products).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_strided<E: Float>(
    (m, k, n): (usize, usize, usize),
    a: &[E],
    av: View,
    b: &[E],
    bv: View,
    c: &mut [E],
    cv: View,
    scale: E,
    accumulate: bool,
) {
    assert!(
        av.end(m, k) <= a.len() && bv.end(k, n) <= b.len() && cv.end(m, n) <= c.len(),
        "matmul_strided operand bounds"
    );
    assert!(
        cv.rs != 0 && cv.cs != 0 && (cv.rs >= n || cv.cs >= m),
        "matmul_strided: output views must not overlap"
    );
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    // SAFETY: the asserts above bound every access of the three views; `c` is
    // exclusively borrowed and its view maps distinct (r, c) to distinct elements.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr().add(cv.offset),
            cv.cs as isize,
            cv.rs as isize,
            accumulate,
            a.as_ptr().add(av.offset),
            av.cs as isize,
            av.rs as isize,
            b.as_ptr().add(bv.offset),
            bv.cs as isize,
            bv.rs as isize,
            E::one(),
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// `acc[j] += Σ_i m[i, j]` for a row-major `rows × cols` matrix (f64 partial sums).
pub(crate) fn add_column_sums<E: Float>(m: &[E], cols: usize, acc: &mut [E]) {
    let sums = column_sums(m, cols);
    for (a, s) in acc.iter_mut().zip(sums) {
        *a += E::c(s);
    }
}

/// Column sums of a row-major matrix, accumulated in f64 over fixed row blocks.
pub(crate) fn column_sums<E: Float>(m: &[E], cols: usize) -> Vec<f64> {
    if cols == 0 {
        return Vec::new();
    }
    let rows_per = (ROW_BLOCK_ELEMS / cols).max(1);
    m.par_chunks(rows_per * cols)
        .map(|block| {
            let mut s = vec![0.0f64; cols];
            for row in block.chunks_exact(cols) {
                for (a, v) in s.iter_mut().zip(row) {
                    *a += v.to_f64().unwrap_or(f64::NAN);
                }
            }
            s
        })
        // Partial sums folded in block order: rayon's `reduce` adds them in a
        // tree shaped by work stealing, which can change the rounding between
        // runs and thread counts.
        .collect::<Vec<_>>()
        .into_iter()
        .fold(vec![0.0f64; cols], |mut a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
            a
        })
}

/// Fills every row of a row-major `rows × cols` matrix with `row`.
pub(crate) fn broadcast_rows<E: Float>(out: &mut [E], row: &[E]) {
    let cols = row.len();
    if cols == 0 {
        return;
    }
    out.par_chunks_mut(cols)
        .for_each(|r| r.copy_from_slice(row));
}

/// Borrows the gradient buffer of a tensor (or ghost) as `&mut Vec<E>`, allocating
/// zeros on first use. Usable inside `add_backward_op` closures of functions
/// generic over an element type named `E`.
macro_rules! grad_mut {
    ($grads:expr, $t:expr) => {
        E::cpu_vec($grads.get_or_alloc_mut(&$t)?)
    };
}

/// Takes the gradient of an op's output out of the store (to read it while writing
/// the inputs' gradients); put it back with [`restore_grad!`].
macro_rules! take_grad {
    ($grads:expr, $t:expr) => {
        std::mem::take(E::cpu_vec($grads.get_or_alloc_mut(&$t)?))
    };
}

macro_rules! restore_grad {
    ($grads:expr, $t:expr, $v:expr) => {
        *E::cpu_vec($grads.get_or_alloc_mut(&$t)?) = $v
    };
}

pub(crate) use {grad_mut, restore_grad, take_grad};
