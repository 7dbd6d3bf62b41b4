//! The element type and device traits every network is generic over, and the
//! handful of kernels that dominate the training step.
//!
//! [`NetDevice`] lists the heavy building blocks of the networks (linear map, the
//! unfolded temporal convolution, batch and layer normalisation, the attention core).
//! Each has a default body composed of dfdx primitives ([`super::composed`]), which is
//! what a CUDA device uses. The CPU overrides them with fused kernels
//! ([`super::cpu`]) because dfdx 0.13's CPU path runs batched matmuls as one small
//! GEMM per batch item and broadcasts through strided iterators, which made a
//! straightforward dfdx version 2.7× slower than PyTorch (see `docs/dfdx-notes.md`).
//! Every override is checked against its composed twin and by finite differences.

use dfdx::prelude::*;
use dfdx::tensor::safetensors::SafeDtype;
use dfdx::tensor::TensorToArray;

use super::composed;
use super::error::ModelError;

/// Rank-1 tensor with a runtime length.
pub type T1<E, D, T = NoneTape> = Tensor<(usize,), E, D, T>;
/// Rank-2 tensor with runtime sizes.
pub type T2<E, D, T = NoneTape> = Tensor<(usize, usize), E, D, T>;
/// Rank-3 tensor with runtime sizes.
pub type T3<E, D, T = NoneTape> = Tensor<(usize, usize, usize), E, D, T>;

/// The element types the networks run in: `f32` (training) and `f64` (numerical
/// gradient checks, meta-gradient tests).
pub trait Float:
    Dtype
    + num_traits::Float
    + SafeDtype
    + rand_distr::uniform::SampleUniform
    + std::iter::Sum
    + std::fmt::Display
{
    /// Lossless-enough conversion from `f64` for constants.
    fn c(x: f64) -> Self {
        <Self as num_traits::NumCast>::from(x).expect("every f64 constant fits f32/f64")
    }

    /// Widening conversion for f64 accumulators (`as`, so it vectorises).
    fn wide(self) -> f64;

    /// `exp(x)` for the attention softmax: an inlinable, vectorisable
    /// approximation for `f32` (range reduction + degree-6 polynomial, relative
    /// error below 3e-7 ≈ 2.5 ulp, underflow to 0 below −87), `f64::exp` for `f64`.
    fn softmax_exp(self) -> Self;

    /// A CPU gradient buffer as the `Vec` it is (the fused CPU kernels write into
    /// it). Generic code cannot see through `<Cpu as Storage<E>>::Vec`; each element
    /// type can.
    fn cpu_vec(v: &mut <Cpu as Storage<Self>>::Vec) -> &mut Vec<Self>;

    /// Shared access to a CPU buffer (see [`Float::cpu_vec`]).
    fn cpu_slice(v: &<Cpu as Storage<Self>>::Vec) -> &[Self];
}

impl Float for f32 {
    fn wide(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn softmax_exp(self) -> f32 {
        // exp(x) = 2ⁿ·exp(r), n = round(x/ln 2), r = x − n·ln 2 (ln 2 split in two for
        // accuracy), exp(r) by its Taylor polynomial on |r| ≤ ln2/2. Rounding and 2ⁿ
        // use the 1.5·2²³ trick (bit patterns, no float→int conversion), so the
        // whole function vectorises.
        const MAGIC: f32 = 12_582_912.0; // 1.5·2²³
        let x = if self < -87.0 { -87.0 } else { self };
        let x = if x > 88.0 { 88.0 } else { x };
        let t = x * std::f32::consts::LOG2_E + MAGIC;
        let n = t - MAGIC;
        let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
        let p = 1.0
            + r * (1.0
                + r * (0.5
                    + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
        // t's low mantissa bits hold n: bits(t) = 0x4B40_0000 + n.
        let scale = f32::from_bits(t.to_bits().wrapping_sub(0x4B40_0000 - 127) << 23);
        if self < -87.0 {
            0.0
        } else {
            p * scale
        }
    }
    fn cpu_vec(v: &mut <Cpu as Storage<f32>>::Vec) -> &mut Vec<f32> {
        v
    }
    fn cpu_slice(v: &<Cpu as Storage<f32>>::Vec) -> &[f32] {
        v
    }
}

impl Float for f64 {
    fn wide(self) -> f64 {
        self
    }
    fn softmax_exp(self) -> f64 {
        self.exp()
    }
    fn cpu_vec(v: &mut <Cpu as Storage<f64>>::Vec) -> &mut Vec<f64> {
        v
    }
    fn cpu_slice(v: &<Cpu as Storage<f64>>::Vec) -> &[f64] {
        v
    }
}

/// Running statistics `(mean, var)` of a batch norm in eval mode, `None` in train mode.
pub type Running<'a, E, D> = Option<(&'a T1<E, D>, &'a T1<E, D>)>;

/// A batch-norm output and the batch statistics it used.
pub type BnOutput<E, D, T> = (T3<E, D, T>, BatchStats<E, D>);

/// The branch front end's tokens and, in train mode, its batch statistics.
pub type FrontOutput<E, D, T> = (T3<E, D, T>, Option<BatchStats<E, D>>);

/// Batch statistics of one batch-norm call: per-channel mean and biased variance.
pub struct BatchStats<E, D: Storage<E>> {
    pub mean: T1<E, D>,
    pub var: T1<E, D>,
}

/// The parameters of a branch's convolutional front end
/// ([`NetDevice::conv_front`]).
pub struct FrontParams<'a, E, D: Storage<E>> {
    /// Temporal conv `(k, F)` and bias `(F)`.
    pub temporal_w: &'a T2<E, D>,
    pub temporal_b: Option<&'a T1<E, D>>,
    pub stride: usize,
    /// Batch norm over the `F` filters.
    pub gamma: &'a T1<E, D>,
    pub beta: &'a T1<E, D>,
    pub eps: f64,
    /// `Some((mean, var))`: eval mode with these (running) statistics; `None`: batch
    /// statistics, returned for the running averages.
    pub running: Running<'a, E, D>,
    /// Spatial conv `(C·F, dim)` and bias `(dim)`.
    pub spatial_w: &'a T2<E, D>,
    pub spatial_b: Option<&'a T1<E, D>>,
}

/// A device the networks run on. See the module documentation.
///
/// All methods take the tape on the data operand and treat parameters as leaves
/// (`retaped`), so gradients land under the parameters' ids.
pub trait NetDevice<E: Float>: Device<E> + TensorToArray<Rank0, E, Array = E> {
    /// The `backend` name that selects this device.
    const BACKEND: &'static str;

    /// The device a stage trains on, its RNG seeded with `seed`.
    fn open(seed: u64) -> Result<Self, ModelError>;

    /// A device for one training step whose dropout masks are fixed by `seed`: build
    /// the step's inputs on it. Two passes over inputs from `step_device(s)` draw the
    /// same masks (the feedback phase's finite differences rely on it).
    fn step_device(&self, seed: u64) -> Self;

    /// The seed of one dropout call's mask ([`super::masks`]).
    fn mask_seed(&self) -> u64 {
        self.random_u64()
    }

    /// `x · w + b` for `x: (N, I)`, `w: (I, O)`, `b: (O)`.
    fn linear<T: Tape<E, Self>>(
        x: T2<E, Self, T>,
        w: &T2<E, Self>,
        b: Option<&T1<E, Self>>,
    ) -> Result<T2<E, Self, T>, Self::Err> {
        composed::linear(x, w, b)
    }

    /// The per-channel temporal convolution as unfold + matmul: `x: (B, C, S)` is cut
    /// into `L = (S - k) / stride + 1` windows of `k = w.rows` samples per channel and
    /// mapped by `w: (k, F)` (+ `b`), giving `(B·L·C, F)` with rows ordered
    /// (batch, window, channel). No gradient is computed for `x` (network input).
    fn temporal_conv<T: Tape<E, Self>>(
        x: T3<E, Self, T>,
        w: &T2<E, Self>,
        b: Option<&T1<E, Self>>,
        stride: usize,
    ) -> Result<T2<E, Self, T>, Self::Err> {
        composed::temporal_conv(x, w, b, stride)
    }

    /// The branch front end: temporal conv → batch norm → ReLU → spatial conv,
    /// `x: (B, C, S) -> (B, L, dim)` (no gradient for `x`). Returns the batch
    /// statistics in train mode (`p.running` is `None`).
    fn conv_front<T: Tape<E, Self>>(
        x: T3<E, Self, T>,
        p: &FrontParams<'_, E, Self>,
    ) -> Result<FrontOutput<E, Self, T>, Self::Err> {
        composed::conv_front(x, p)
    }

    /// Batch norm with batch statistics over axes 0 and 2 of `x: (A, C, L)` (channel
    /// axis 1), affine `gamma`, `beta`. Returns the output and the statistics (for the
    /// running averages).
    fn batch_norm_train<T: Tape<E, Self>>(
        x: T3<E, Self, T>,
        gamma: &T1<E, Self>,
        beta: &T1<E, Self>,
        eps: f64,
    ) -> Result<BnOutput<E, Self, T>, Self::Err> {
        composed::batch_norm_train(x, gamma, beta, eps)
    }

    /// Batch norm with fixed (running) statistics; differentiable in `x`, `gamma`,
    /// `beta` (the feedback phase differentiates through an eval-mode teacher).
    fn batch_norm_eval<T: Tape<E, Self>>(
        x: T3<E, Self, T>,
        gamma: &T1<E, Self>,
        beta: &T1<E, Self>,
        mean: &T1<E, Self>,
        var: &T1<E, Self>,
        eps: f64,
    ) -> Result<T3<E, Self, T>, Self::Err> {
        composed::batch_norm_eval(x, gamma, beta, mean, var, eps)
    }

    /// Layer norm over the last axis of `x: (N, D)`.
    fn layer_norm<T: Tape<E, Self>>(
        x: T2<E, Self, T>,
        gamma: &T1<E, Self>,
        beta: &T1<E, Self>,
        eps: f64,
    ) -> Result<T2<E, Self, T>, Self::Err> {
        composed::layer_norm(x, gamma, beta, eps)
    }

    /// Inverted dropout with probability `p` (always applied; the caller decides
    /// the mode).
    fn dropout<S: Shape, T: Tape<E, Self>>(
        x: Tensor<S, E, Self, T>,
        p: f64,
    ) -> Result<Tensor<S, E, Self, T>, Self::Err> {
        let seed = x.device().mask_seed();
        composed::dropout(x, p, seed)
    }

    /// Layer norm over the last axis of `x + residual`; the residual gets the same
    /// gradient as `x` (the post-LN residual connection in one op).
    fn add_layer_norm<T: Tape<E, Self>>(
        x: T2<E, Self, T>,
        residual: &T2<E, Self>,
        gamma: &T1<E, Self>,
        beta: &T1<E, Self>,
        eps: f64,
    ) -> Result<T2<E, Self, T>, Self::Err> {
        composed::add_layer_norm(x, residual, gamma, beta, eps)
    }

    /// The score block's gate `x ⊙ softsign(z)`; both inputs get gradients.
    fn gate<T: Tape<E, Self>>(
        z: T3<E, Self, T>,
        x: &T3<E, Self>,
    ) -> Result<T3<E, Self, T>, Self::Err> {
        composed::gate(z, x)
    }

    /// Scaled dot-product attention core: `qkv: (B, S, 3·D)` holds the projected
    /// queries, keys and values side by side; `heads` split `D`. `dropout` (if any) is
    /// applied to the attention weights. Returns `(B, S, D)` with heads concatenated.
    fn attention<T: Tape<E, Self>>(
        qkv: T3<E, Self, T>,
        heads: usize,
        dropout: Option<f64>,
    ) -> Result<T3<E, Self, T>, Self::Err> {
        let dropout = dropout
            .filter(|p| *p > 0.0)
            .map(|p| (p, qkv.device().mask_seed()));
        composed::attention(qkv, heads, dropout)
    }
}

/// CUDA runs the composed blocks. Its RNG cannot be re-seeded without a new device
/// (a new context), so a step keeps the device and restarts this thread's mask
/// stream ([`super::masks`]): the masks are those of the CPU for the same seeds.
#[cfg(feature = "cuda")]
impl<E: Float> NetDevice<E> for dfdx::tensor::Cuda
where
    dfdx::tensor::Cuda: Device<E>,
{
    const BACKEND: &'static str = "cuda";

    fn open(seed: u64) -> Result<Self, ModelError> {
        dfdx::tensor::Cuda::try_seed_from_u64(seed).map_err(|e| {
            ModelError::Device(format!(
                "cannot open CUDA device 0: {e:?} (is a GPU and its driver present?)"
            ))
        })
    }

    fn step_device(&self, seed: u64) -> Self {
        super::masks::start_step(seed);
        self.clone()
    }

    fn mask_seed(&self) -> u64 {
        super::masks::next_seed().unwrap_or_else(|| self.random_u64())
    }
}
