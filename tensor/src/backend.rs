//! The device boundary: everything a device's storage must do.
//!
//! [`crate::Tensor`] checks shapes and dtypes and computes layouts; it then hands storages and
//! layouts to [`crate::storage::Storage`], which forwards to the device's implementation of
//! this trait. CPU storage implements it with the kernels under `cpu/`; a CUDA storage
//! implements the same methods with its own kernels. Nothing above this boundary matches on a
//! device.
//!
//! Conventions: inputs are `(storage, layout)` pairs and may be strided unless a method says
//! "contiguous"; every output is a fresh contiguous storage. Layouts were validated against
//! their storages by the caller. Index inputs are `u32` or `i64` storages whose values the
//! implementation checks against the indexed size.

use crate::cpu::CpuStorage;
use crate::error::Result;
use crate::op::{BinaryOp, CmpOp, ReduceOp, UnaryOp};
use crate::{DType, Layout};

// The parameters of the ops below, shared by every device's implementation (the math of each
// is in the CPU kernel file named in its doc).

/// The sizes of a causal attention: heads (batch times heads), query length, key length, head
/// size.
#[derive(Clone, Copy, Debug)]
pub struct AttentionDims {
    /// Batch size times number of heads.
    pub bh: usize,
    /// Query length `Tq`.
    pub tq: usize,
    /// Key and value length `Tk` (at least `Tq`).
    pub tk: usize,
    /// Head size `D`.
    pub d: usize,
}

/// Which GELU (`cpu/gelu.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gelu {
    /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, GPT-2's approximation.
    Tanh,
    /// `0.5 x (1 + erf(x / sqrt(2)))`, the exact form.
    Erf,
}

/// Which normalization of a row (`cpu/softmax.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Softmax {
    /// `y_i = exp(x_i - max) / sum_j exp(x_j - max)`.
    Softmax,
    /// `y_i = x_i - logsumexp_j x_j`.
    LogSoftmax,
}

/// Hyperparameters of one AdamW step (`cpu/adamw.rs`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWStep {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first-moment (mean) estimate `m`.
    pub beta1: f64,
    /// Decay of the second-moment estimate `v`.
    pub beta2: f64,
    /// Added to the bias-corrected `sqrt(v)` in the denominator.
    pub eps: f64,
    /// Decoupled weight decay: the parameter is first scaled by `1 - lr * weight_decay`.
    pub weight_decay: f64,
    /// 1 for the first step.
    pub step: u64,
}

/// The shape of one rotary embedding (`cpu/rope.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RopeDims {
    /// Rows of `x`, `N T`.
    pub rows: usize,
    /// Positions per block, `T`.
    pub t: usize,
    /// Features per row, `HS` (even).
    pub hs: usize,
    /// Position of each block's first row.
    pub start: usize,
    /// Rotate by `-a` instead of `a` (the backward).
    pub inverse: bool,
}

/// Operations every device storage provides. See the module doc for the conventions.
pub trait BackendStorage: Sized {
    /// The element type.
    fn dtype(&self) -> DType;
    /// Number of elements.
    fn len(&self) -> usize;
    /// True when the buffer holds no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A host copy of the whole buffer.
    fn to_cpu(&self) -> Result<CpuStorage>;

    /// The view made contiguous.
    fn contiguous(&self, l: &Layout) -> Result<Self>;
    /// The view converted to `dtype` (contiguous).
    fn to_dtype(&self, l: &Layout, dtype: DType) -> Result<Self>;
    /// `y = op(x)`.
    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self>;
    /// `z = x op y` for layouts already broadcast to one shape.
    fn binary(&self, l: &Layout, rhs: &Self, rl: &Layout, op: BinaryOp) -> Result<Self>;
    /// `u8` mask of `x op y` for layouts already broadcast to one shape.
    fn compare(&self, l: &Layout, rhs: &Self, rl: &Layout, op: CmpOp) -> Result<Self>;
    /// `mask ? a : b` (self is the `u8` mask) for layouts broadcast to one shape.
    fn where_cond(&self, ml: &Layout, a: &Self, al: &Layout, b: &Self, bl: &Layout)
        -> Result<Self>;
    /// Sum, max or min over sorted distinct `dims`; arg-max / arg-min (`u32`) over one dim.
    fn reduce(&self, l: &Layout, dims: &[usize], op: ReduceOp) -> Result<Self>;

    /// Softmax or log-softmax over contiguous rows of length `n`.
    fn softmax(&self, n: usize, kind: Softmax) -> Result<Self>;
    /// Backward of [`BackendStorage::softmax`] from its output (self) and `dy`, contiguous.
    fn softmax_backward(&self, dy: &Self, n: usize, kind: Softmax) -> Result<Self>;
    /// Logsumexp of each contiguous row of length `n`.
    fn logsumexp(&self, n: usize) -> Result<Self>;

    /// Batched matmul of layouts whose batch dims are already broadcast to one shape.
    fn matmul(&self, l: &Layout, rhs: &Self, rl: &Layout) -> Result<Self>;

    /// `out[o, j, i] = x[o, ids[j], i]` along `dim`.
    fn index_select(&self, l: &Layout, dim: usize, ids: &Self, ids_l: &Layout) -> Result<Self>;
    /// Adjoint of index_select: self is the contiguous source `src_shape`; returns zeros of
    /// `src_shape` with `dim` of size `size`, plus the source rows added at `ids`.
    fn index_add(
        &self,
        src_shape: &[usize],
        dim: usize,
        ids: &Self,
        ids_l: &Layout,
        size: usize,
    ) -> Result<Self>;
    /// `out[p] = x[p with p[dim] = idx[p]]`.
    fn gather(&self, l: &Layout, dim: usize, idx: &Self, idx_l: &Layout) -> Result<Self>;
    /// Adjoint of gather: self is the contiguous source shaped like `idx`.
    fn scatter_add(
        &self,
        dim: usize,
        idx: &Self,
        idx_l: &Layout,
        dst_shape: &[usize],
    ) -> Result<Self>;

    /// Layer norm over contiguous rows of length `c`: returns `(y, mean, rstd)`.
    fn layer_norm(
        &self,
        c: usize,
        w: Option<&Self>,
        b: Option<&Self>,
        eps: f64,
    ) -> Result<(Self, Self, Self)>;
    /// Backward of layer norm (self is `dy`): returns `(dx, dweight, dbias)`.
    #[allow(clippy::too_many_arguments)]
    fn layer_norm_backward(
        &self,
        x: &Self,
        c: usize,
        w: Option<&Self>,
        mean: &Self,
        rstd: &Self,
        has_bias: bool,
    ) -> Result<(Self, Option<Self>, Option<Self>)>;
    /// RMS norm over contiguous rows of length `c` with weight `w (c)`: returns `(y, rstd)`.
    fn rms_norm(&self, c: usize, w: &Self, eps: f64) -> Result<(Self, Self)>;
    /// Rotary position embedding of contiguous `x` (self) by the angle tables
    /// `cos, sin (P, HS / 2)`, both contiguous (see `cpu::rope`).
    fn rope(&self, cos: &Self, sin: &Self, dims: RopeDims) -> Result<Self>;
    /// Mean cross-entropy of contiguous logits rows of length `v` against `targets`; rows whose
    /// target equals `ignore` do not count. Returns `(loss as a 1-element storage, lse)`.
    fn cross_entropy(&self, v: usize, targets: &Self, ignore: Option<i64>) -> Result<(Self, Self)>;
    /// Backward of cross-entropy (self is the logits) for upstream gradient `grad`.
    fn cross_entropy_backward(
        &self,
        v: usize,
        targets: &Self,
        ignore: Option<i64>,
        lse: &Self,
        grad: f64,
    ) -> Result<Self>;
    /// Causal attention over contiguous `q (BH,Tq,D)`, `k, v (BH,Tk,D)`: returns `(out, lse)`.
    fn attention(&self, k: &Self, v: &Self, dims: AttentionDims) -> Result<(Self, Self)>;
    /// Backward of causal attention (self is `q`): returns `(dq, dk, dv)`.
    #[allow(clippy::too_many_arguments)]
    fn attention_backward(
        &self,
        k: &Self,
        v: &Self,
        out: &Self,
        lse: &Self,
        dout: &Self,
        dims: AttentionDims,
    ) -> Result<(Self, Self, Self)>;
    /// `dx = dy * gelu'(x)` for contiguous `x` (self) and `dy`.
    fn gelu_backward(&self, dy: &Self, kind: Gelu) -> Result<Self>;

    /// Writes `src` seen through `sl` into self at `dl` (same shape, non-overlapping `dl`).
    fn copy_into(&mut self, dl: &Layout, src: &Self, sl: &Layout) -> Result<()>;
    /// `self[dl] = self[dl] op rhs[rl]` in place (layouts of one shape).
    fn binary_inplace(&mut self, dl: &Layout, rhs: &Self, rl: &Layout, op: BinaryOp) -> Result<()>;
    /// `self[dl] = value` in place.
    fn fill(&mut self, dl: &Layout, value: f64) -> Result<()>;
    /// One AdamW step on contiguous buffers: self is the parameter.
    fn adamw_step(&mut self, grad: &Self, m: &mut Self, v: &mut Self, h: &AdamWStep) -> Result<()>;
}
