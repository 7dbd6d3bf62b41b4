//! Row kernels of the fused CPU ops, compiled twice: for the baseline x86-64 target
//! and with AVX2 + FMA, picked at run time (`is_x86_feature_detected!`). The crate
//! is built for the baseline target, where these loops would only get SSE2.
//!
//! Loops are written as `y[j] += a·x[j]` over contiguous rows (no floating-point
//! reductions in the inner loop, which the compiler may not reorder), so they
//! vectorise.

use crate::model::device::Float;

/// Defines `$vis fn $name<E: Float>(args)` whose body is compiled for the
/// baseline target and for AVX2 + FMA, and runs the AVX2 build when the CPU has it.
macro_rules! dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident<E: Float>($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<E: Float>($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn generic<E: Float>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2<E: Float>($($arg: $ty),*) {
                    generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

pub(crate) use dispatch;

/// `Σ a·b` with eight partial sums (so the loop vectorises).
#[inline(always)]
pub(crate) fn dot<E: Float>(a: &[E], b: &[E]) -> E {
    let n = a.len().min(b.len());
    let mut acc = [E::zero(); 8];
    let (a8, b8) = (a[..n].chunks_exact(8), b[..n].chunks_exact(8));
    let (ar, br) = (a8.remainder(), b8.remainder());
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = acc.iter().fold(E::zero(), |s, v| s + *v);
    for (x, y) in ar.iter().zip(br) {
        s += *x * *y;
    }
    s
}

dispatch! {
    /// Per-column `Σx` and `Σx²` (in f64) of the rows of `m` (row width = `s1.len()`).
    pub(crate) fn column_sums_sq<E: Float>(m: &[E], s1: &mut [f64], s2: &mut [f64]) {
        let cols = s1.len();
        for row in m.chunks_exact(cols) {
            for ((a, q), v) in s1.iter_mut().zip(s2.iter_mut()).zip(row) {
                let v = v.wide();
                *a += v;
                *q += v * v;
            }
        }
    }
}

dispatch! {
    /// `out = max(z·scale + shift, 0)` row by row (per-column scale and shift).
    pub(crate) fn affine_relu_rows<E: Float>(z: &[E], scale: &[E], shift: &[E], out: &mut [E]) {
        let cols = scale.len();
        for (o, zr) in out.chunks_exact_mut(cols).zip(z.chunks_exact(cols)) {
            for (((ov, zv), a), c) in o.iter_mut().zip(zr).zip(scale).zip(shift) {
                let v = *zv * *a + *c;
                *ov = if v > E::zero() { v } else { E::zero() };
            }
        }
    }
}

dispatch! {
    /// In place: `z = max(z·scale + shift, 0)` row by row.
    pub(crate) fn affine_relu_rows_in_place<E: Float>(z: &mut [E], scale: &[E], shift: &[E]) {
        let cols = scale.len();
        for zr in z.chunks_exact_mut(cols) {
            for ((zv, a), c) in zr.iter_mut().zip(scale).zip(shift) {
                let v = *zv * *a + *c;
                *zv = if v > E::zero() { v } else { E::zero() };
            }
        }
    }
}

dispatch! {
    /// Zeroes `g` where the ReLU output `act` is not positive, and accumulates per
    /// column `Σg` and `Σg·x̂` with `x̂ = (z − mean)·inv`.
    pub(crate) fn relu_mask_bn_sums<E: Float>(
        g: &mut [E],
        act: &[E],
        z: &[E],
        mean: &[E],
        inv: &[E],
        s1: &mut [f64],
        s2: &mut [f64],
    ) {
        let cols = mean.len();
        let mut r1 = vec![E::zero(); cols];
        let mut r2 = vec![E::zero(); cols];
        let rows = g.len() / cols.max(1);
        for r in 0..rows {
            let (gr, ar, zr) = (&mut g[r * cols..(r + 1) * cols], &act[r * cols..(r + 1) * cols], &z[r * cols..(r + 1) * cols]);
            for j in 0..cols {
                let gv = if ar[j] > E::zero() { gr[j] } else { E::zero() };
                gr[j] = gv;
                r1[j] += gv;
                r2[j] += gv * ((zr[j] - mean[j]) * inv[j]);
            }
            // Flush the element-type partial sums to f64 every 64 rows.
            if r % 64 == 63 || r + 1 == rows {
                for j in 0..cols {
                    s1[j] += r1[j].wide();
                    s2[j] += r2[j].wide();
                    r1[j] = E::zero();
                    r2[j] = E::zero();
                }
            }
        }
    }
}

dispatch! {
    /// Batch-norm input gradient, in place: `g ← scale·(g − c1 − x̂·c2)` with
    /// `x̂ = (z − mean)·inv` (per-column constants).
    pub(crate) fn bn_input_grad_rows<E: Float>(g: &mut [E], z: &[E], mean: &[E], inv: &[E], scale: &[E], c1: &[E], c2: &[E]) {
        let cols = mean.len();
        for (gr, zr) in g.chunks_exact_mut(cols).zip(z.chunks_exact(cols)) {
            for j in 0..cols {
                let xh = (zr[j] - mean[j]) * inv[j];
                gr[j] = scale[j] * (gr[j] - c1[j] - xh * c2[j]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::masks::hash_u32;

    /// The hash behaves as independent uniform draws for dropout purposes: the
    /// dropped fraction matches `p`, neighbours are uncorrelated, seeds differ.
    #[test]
    fn hash_draws_look_uniform_and_independent() {
        let n = 1u32 << 20;
        for (p, seed) in [(0.1, 7u64), (0.5, 0x1234_5678_9abc_def0)] {
            let t = (p * 4_294_967_296.0) as u32;
            let drops: Vec<bool> = (0..n).map(|i| hash_u32(i, seed) < t).collect();
            let frac = drops.iter().filter(|d| **d).count() as f64 / n as f64;
            assert!((frac - p).abs() < 0.002, "dropped {frac} for p {p}");
            let both = drops.windows(2).filter(|w| w[0] && w[1]).count() as f64 / (n - 1) as f64;
            assert!(
                (both - p * p).abs() < 0.002,
                "adjacent pairs {both} vs {}",
                p * p
            );
            let stride = drops
                .iter()
                .step_by(64)
                .zip(drops.iter().skip(1).step_by(64));
            let agree = stride.filter(|(a, b)| a == b).count() as f64 / (n / 64) as f64;
            assert!((agree - (p * p + (1.0 - p) * (1.0 - p))).abs() < 0.02);
        }
        let a: Vec<u32> = (0..64).map(|i| hash_u32(i, 1)).collect();
        let b: Vec<u32> = (0..64).map(|i| hash_u32(i, 2)).collect();
        assert!(a.iter().zip(&b).filter(|(x, y)| x == y).count() < 2);
    }
}
