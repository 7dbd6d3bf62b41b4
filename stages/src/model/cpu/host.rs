//! Host-side plumbing for the fused CPU kernels: reading tensors, the GEMM call,
//! reductions, and access to gradient buffers inside backward closures.
//!
//! dfdx 0.13 keeps a tensor's buffer crate-private, so a kernel reads its inputs with
//! one `copy_into` (after `try_contiguous`, which is free for contiguous tensors),
//! writes its output into a `Vec` that becomes the tensor without a copy
//! (`tensor_from_vec`), and reaches gradient buffers through
//! `Gradients::get_or_alloc_mut` (a `CachableVec` that dereferences to a `Vec`).

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use dfdx::prelude::*;
use rayon::prelude::*;

use super::simd::dispatch;
use crate::model::device::Float;

/// Rows per parallel task for row-wise kernels: enough work to amortise scheduling,
/// fixed (not derived from the thread count) so reductions are deterministic.
pub(crate) const ROW_BLOCK_ELEMS: usize = 1 << 14;

/// A host buffer drawn from (and, when dropped, returned to) the device's
/// allocation cache when it is enabled (`Cache::enable_cache`). Large kernel
/// buffers otherwise come fresh from the allocator every step, and the page faults
/// and zeroing showed up as ~15% of a training step in profiles.
pub(crate) struct Buf<E: Float> {
    v: <Cpu as Storage<E>>::Vec,
}

impl<E: Float> Buf<E>
where
    Cpu: Device<E>,
{
    /// `n` zeros.
    pub(crate) fn zeros(dev: &Cpu, n: usize) -> Result<Self, CpuError> {
        Ok(Buf {
            v: Storage::<E>::try_alloc_len(dev, n)?,
        })
    }

    /// The buffer as a plain `Vec` (to become a tensor with `tensor_from_vec`, which
    /// hands it back to the cache when that tensor is dropped).
    pub(crate) fn into_vec(mut self) -> Vec<E> {
        let v = std::mem::take(E::cpu_vec(&mut self.v));
        // The emptied wrapper would insert a zero-length allocation into the cache
        // when dropped; there is nothing to return, so skip its destructor.
        std::mem::forget(self);
        v
    }
}

impl<E: Float> std::ops::Deref for Buf<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        E::cpu_slice(&self.v)
    }
}

impl<E: Float> std::ops::DerefMut for Buf<E> {
    fn deref_mut(&mut self) -> &mut [E] {
        E::cpu_vec(&mut self.v)
    }
}

/// Free scratch buffers (`Vec<f32>`, `Vec<f64>`), reused without zeroing.
static SCRATCH_POOL: Mutex<Vec<Box<dyn Any + Send>>> = Mutex::new(Vec::new());
/// Bytes held by [`SCRATCH_POOL`]; beyond [`SCRATCH_POOL_MAX_BYTES`] a returned
/// buffer is freed instead.
static SCRATCH_POOL_BYTES: AtomicUsize = AtomicUsize::new(0);
const SCRATCH_POOL_MAX_BYTES: usize = 1 << 30;

/// A kernel's internal buffer of unspecified (initialised, possibly stale) values,
/// taken from a process-wide pool and returned to it on drop. Every user overwrites
/// it completely before reading; zeroing the large front-end and attention buffers
/// cost ~10% of a forward pass in profiles.
pub(crate) struct Scratch<E: Float>(Vec<E>);

impl<E: Float> Scratch<E> {
    pub(crate) fn new(n: usize) -> Self {
        let reused = {
            let mut pool = SCRATCH_POOL.lock().unwrap_or_else(|e| e.into_inner());
            let fits = |b: &Box<dyn Any + Send>| b.downcast_ref::<Vec<E>>().map(|v| v.len());
            let best = pool
                .iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    fits(b)
                        .filter(|&len| len >= n && len <= n + n / 4)
                        .map(|len| (len, i))
                })
                .min();
            best.map(|(_, i)| pool.swap_remove(i))
        };
        match reused.and_then(|b| b.downcast::<Vec<E>>().ok()) {
            Some(mut v) => {
                SCRATCH_POOL_BYTES.fetch_sub(v.len() * size_of::<E>(), Ordering::Relaxed);
                v.truncate(n);
                Scratch(*v)
            }
            None => Scratch(vec![E::zero(); n]),
        }
    }
}

impl<E: Float> Drop for Scratch<E> {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        let bytes = v.len() * size_of::<E>();
        if bytes == 0 || SCRATCH_POOL_BYTES.load(Ordering::Relaxed) + bytes > SCRATCH_POOL_MAX_BYTES
        {
            return;
        }
        SCRATCH_POOL_BYTES.fetch_add(bytes, Ordering::Relaxed);
        SCRATCH_POOL
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(v));
    }
}

impl<E: Float> std::ops::Deref for Scratch<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        &self.0
    }
}

impl<E: Float> std::ops::DerefMut for Scratch<E> {
    fn deref_mut(&mut self) -> &mut [E] {
        &mut self.0
    }
}

/// The values of a tensor in row-major order (it must be contiguous: callers pass
/// tensors through `try_contiguous` or own them).
pub(crate) fn values<S: Shape, E: Float, T>(t: &Tensor<S, E, Cpu, T>) -> Scratch<E> {
    let mut v = Scratch::new(t.shape().num_elements());
    t.copy_into(&mut v);
    v
}

/// The values of a parameter (parameters are created contiguous and stay so).
pub(crate) fn param_values<S: Shape, E: Float>(t: &Tensor<S, E, Cpu>) -> Result<Vec<E>, CpuError>
where
    Cpu: Device<E>,
{
    let t = t.clone().try_contiguous()?;
    let mut v = vec![E::zero(); t.shape().num_elements()];
    t.copy_into(&mut v);
    Ok(v)
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

/// Sums per-block partial results in block order. (A parallel `reduce` combines
/// them in an order that depends on work stealing, so float results would vary
/// from run to run; the same seed must give the same numbers.)
pub(crate) trait SumParts {
    type Out;
    fn sum_parts(self, n: usize) -> Self::Out;
}

impl SumParts for Vec<Vec<f64>> {
    type Out = Vec<f64>;
    fn sum_parts(self, n: usize) -> Vec<f64> {
        let mut acc = vec![0.0; n];
        for part in self {
            for (a, v) in acc.iter_mut().zip(part) {
                *a += v;
            }
        }
        acc
    }
}

/// Pairs of partial sums, summed in block order.
pub(crate) trait SumPairs {
    fn sum_pairs(self, n: usize) -> (Vec<f64>, Vec<f64>);
}

impl SumPairs for Vec<(Vec<f64>, Vec<f64>)> {
    fn sum_pairs(self, n: usize) -> (Vec<f64>, Vec<f64>) {
        let (a, b): (Vec<_>, Vec<_>) = self.into_iter().unzip();
        (a.sum_parts(n), b.sum_parts(n))
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
        .collect::<Vec<_>>()
        .sum_parts(cols)
}

/// Adds `row` to every row of a row-major matrix (a bias after a GEMM; written as
/// an add so it is not turned into one `memcpy` call per row).
pub(crate) fn add_rows<E: Float>(out: &mut [E], row: &[E]) {
    let cols = row.len();
    if cols == 0 {
        return;
    }
    let rows = (ROW_BLOCK_ELEMS / cols).max(1);
    out.par_chunks_mut(rows * cols)
        .for_each(|block| add_rows_block(block, row));
}

dispatch! {
    fn add_rows_block<E: Float>(block: &mut [E], row: &[E]) {
        for r in block.chunks_exact_mut(row.len()) {
            for (o, b) in r.iter_mut().zip(row) {
                *o += *b;
            }
        }
    }
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
