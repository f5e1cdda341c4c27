//! CUDA kernels for the tensor crate, and the machinery to run them without any CUDA at build
//! time.
//!
//! - The kernels are CUDA C sources under `kernels/`, one family per file, each naming its CPU
//!   twin in `tensor/src/cpu/` and stating its math and shapes. They are embedded in the binary
//!   ([`Family::source`]) and compiled at run time by NVRTC to PTX for the device's
//!   architecture; the PTX is cached on disk ([`cache`]), so a second run does not recompile.
//! - NVRTC is chosen to match the driver ([`nvrtc::select`]): PTX from an NVRTC newer than the
//!   driver's CUDA version does not load.
//! - [`Gpu`] is one device: its context and stream (through `cudarc`, which loads the driver
//!   library at run time), its loaded kernels, a caching allocator ([`alloc`]) and cuBLAS
//!   ([`cublas`], chosen like NVRTC among the libraries found; used by [`gemm`]).
//! - With the `emulator` feature, [`Gpu`] is instead a CPU stand-in ([`emulator`]) that runs
//!   the same kernel sources compiled by the host's C++ compiler, so the whole CUDA path can
//!   be tested on a machine without a GPU.
//! - Nothing here panics when a library or a device is missing: [`probe`] and [`Gpu::get`]
//!   check that the libraries can be loaded before `cudarc` touches them and return an error
//!   of one sentence instead.

#![warn(missing_docs)]

#[cfg(not(feature = "emulator"))]
pub mod alloc;
pub mod args;
pub mod cache;
pub mod cublas;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod gemm;
#[cfg(not(feature = "emulator"))]
pub mod gpu;
pub mod info;
pub mod libs;
pub mod nvrtc;
pub mod profile;

#[cfg(not(feature = "emulator"))]
pub use alloc::DeviceBuffer;
pub use args::{KernelArg, Strided, MAX_DIMS};
pub use cudarc::driver::LaunchConfig;
#[cfg(feature = "emulator")]
pub use emulator::{probe, DeviceBuffer, Gpu};
#[cfg(not(feature = "emulator"))]
pub use gpu::{probe, Gpu};
pub use info::DeviceInfo;
pub use profile::KernelTime;

/// Errors of this crate: one sentence saying what failed and, where it helps, what to do.
pub type Error = String;

/// Result with an [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Locks a mutex whose data stays consistent even if a holder panicked (maps, handles and
/// sums that are only inserted into or used whole).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Definitions every kernel file builds on (the strided-view descriptor, grid-stride loops,
/// block reductions); compiled in front of each family's source.
pub const COMMON: &str = include_str!("../kernels/common.cuh");

/// Threads per block of the row kernels (`BLOCK_THREADS` in `common.cuh`).
pub const BLOCK_THREADS: u32 = 256;

/// A kernel family: one `.cu` file and the entry points it defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Copies, fills and dtype conversions of strided views (`copy.cu`).
    Copy,
    /// Elementwise unary math (`unary.cu`).
    Unary,
    /// Elementwise binary ops and comparisons with broadcasting (`binary.cu`).
    Binary,
    /// Selection by a mask (`where_cond.cu`).
    WhereCond,
    /// Sum, max, min over dims; arg-max and arg-min over one dim (`reduce.cu`).
    Reduce,
    /// Softmax, log-softmax and logsumexp over rows, with backward (`softmax.cu`).
    Softmax,
    /// Layer normalization over the last dim, forward and backward (`layer_norm.cu`).
    LayerNorm,
    /// RMS normalization over the last dim, forward (`rms_norm.cu`).
    RmsNorm,
    /// Rotary position embeddings, either direction (`rope.cu`).
    Rope,
    /// GELU backward in the tanh and erf forms (`gelu.cu`).
    Gelu,
    /// Cross-entropy over logits fused with log-softmax, forward and backward
    /// (`cross_entropy.cu`).
    CrossEntropy,
    /// index_select, index_add, gather and scatter_add along a dim (`index.cu`).
    Index,
    /// Causal scaled-dot-product attention, forward and backward (`attention.cu`).
    Attention,
    /// The AdamW update in place (`adamw.cu`).
    AdamW,
    /// Batched matrix multiply, a tiled shared-memory GEMM (`matmul.cu`).
    Matmul,
}

impl Family {
    /// Every family, in a fixed order.
    pub const ALL: [Family; 15] = [
        Family::Copy,
        Family::Unary,
        Family::Binary,
        Family::WhereCond,
        Family::Reduce,
        Family::Softmax,
        Family::LayerNorm,
        Family::RmsNorm,
        Family::Rope,
        Family::Gelu,
        Family::CrossEntropy,
        Family::Index,
        Family::Attention,
        Family::AdamW,
        Family::Matmul,
    ];

    /// The file name stem under `kernels/`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Copy => "copy",
            Family::Unary => "unary",
            Family::Binary => "binary",
            Family::WhereCond => "where_cond",
            Family::Reduce => "reduce",
            Family::Softmax => "softmax",
            Family::LayerNorm => "layer_norm",
            Family::RmsNorm => "rms_norm",
            Family::Rope => "rope",
            Family::Gelu => "gelu",
            Family::CrossEntropy => "cross_entropy",
            Family::Index => "index",
            Family::Attention => "attention",
            Family::AdamW => "adamw",
            Family::Matmul => "matmul",
        }
    }

    /// The family's CUDA C source (without [`COMMON`]).
    pub fn source(self) -> &'static str {
        match self {
            Family::Copy => include_str!("../kernels/copy.cu"),
            Family::Unary => include_str!("../kernels/unary.cu"),
            Family::Binary => include_str!("../kernels/binary.cu"),
            Family::WhereCond => include_str!("../kernels/where_cond.cu"),
            Family::Reduce => include_str!("../kernels/reduce.cu"),
            Family::Softmax => include_str!("../kernels/softmax.cu"),
            Family::LayerNorm => include_str!("../kernels/layer_norm.cu"),
            Family::RmsNorm => include_str!("../kernels/rms_norm.cu"),
            Family::Rope => include_str!("../kernels/rope.cu"),
            Family::Gelu => include_str!("../kernels/gelu.cu"),
            Family::CrossEntropy => include_str!("../kernels/cross_entropy.cu"),
            Family::Index => include_str!("../kernels/index.cu"),
            Family::Attention => include_str!("../kernels/attention.cu"),
            Family::AdamW => include_str!("../kernels/adamw.cu"),
            Family::Matmul => include_str!("../kernels/matmul.cu"),
        }
    }

    /// The complete translation unit NVRTC compiles: [`COMMON`] then the family's source.
    pub fn program(self) -> String {
        format!("{COMMON}\n{}", self.source())
    }

    /// The `extern "C"` entry points the family defines. The NVRTC test checks this list
    /// against the compiled PTX, so a launch by a name not listed here is an error.
    pub fn kernels(self) -> &'static [&'static str] {
        match self {
            Family::Copy => &COPY_KERNELS,
            Family::Unary => &["unary_f32", "unary_f64"],
            Family::Binary => &[
                "binary_f32",
                "binary_f64",
                "binary_inplace_f32",
                "binary_inplace_f64",
                "compare_f32",
                "compare_f64",
                "compare_u8",
                "compare_u32",
                "compare_i64",
            ],
            Family::WhereCond => &["where_b8", "where_b32", "where_b64"],
            Family::Reduce => &[
                "reduce_rows_f32",
                "reduce_rows_f64",
                "reduce_cols_f32",
                "reduce_cols_f64",
                "arg_reduce_f32",
                "arg_reduce_f64",
            ],
            Family::Softmax => &[
                "softmax_forward_f32",
                "softmax_forward_f64",
                "softmax_backward_f32",
                "softmax_backward_f64",
                "logsumexp_f32",
                "logsumexp_f64",
            ],
            Family::LayerNorm => &[
                "layer_norm_forward_f32",
                "layer_norm_forward_f64",
                "layer_norm_backward_dx_f32",
                "layer_norm_backward_dx_f64",
                "layer_norm_backward_params_f32",
                "layer_norm_backward_params_f64",
                "column_sum_f32",
                "column_sum_f64",
            ],
            Family::RmsNorm => &["rms_norm_forward_f32", "rms_norm_forward_f64"],
            Family::Rope => &["rope_f32", "rope_f64"],
            Family::Gelu => &["gelu_backward_f32", "gelu_backward_f64"],
            Family::CrossEntropy => &[
                "cross_entropy_rows_f32",
                "cross_entropy_rows_f64",
                "cross_entropy_mean_f32",
                "cross_entropy_mean_f64",
                "cross_entropy_backward_f32",
                "cross_entropy_backward_f64",
            ],
            Family::Index => &[
                "index_select_b8",
                "index_select_b16",
                "index_select_b32",
                "index_select_b64",
                "gather_b8",
                "gather_b16",
                "gather_b32",
                "gather_b64",
                "index_add_f32",
                "index_add_f64",
                "scatter_add_f32",
                "scatter_add_f64",
            ],
            Family::Attention => &[
                "attention_forward_f32",
                "attention_forward_f64",
                "attention_delta_f32",
                "attention_delta_f64",
                "attention_backward_dq_f32",
                "attention_backward_dq_f64",
                "attention_backward_dkdv_f32",
                "attention_backward_dkdv_f64",
            ],
            Family::AdamW => &["adamw_f32", "adamw_f64"],
            Family::Matmul => &["gemm_tiled_f32", "gemm_tiled_f64"],
        }
    }
}

/// Entry points of `copy.cu`: copies and fills per element size, conversions per dtype pair.
const COPY_KERNELS: [&str; 33] = [
    "copy_b8",
    "copy_b16",
    "copy_b32",
    "copy_b64",
    "fill_b8",
    "fill_b16",
    "fill_b32",
    "fill_b64",
    "convert_f32_f32",
    "convert_f32_f64",
    "convert_f32_u8",
    "convert_f32_u32",
    "convert_f32_i64",
    "convert_f64_f32",
    "convert_f64_f64",
    "convert_f64_u8",
    "convert_f64_u32",
    "convert_f64_i64",
    "convert_u8_f32",
    "convert_u8_f64",
    "convert_u8_u8",
    "convert_u8_u32",
    "convert_u8_i64",
    "convert_u32_f32",
    "convert_u32_f64",
    "convert_u32_u8",
    "convert_u32_u32",
    "convert_u32_i64",
    "convert_i64_f32",
    "convert_i64_f64",
    "convert_i64_u8",
    "convert_i64_u32",
    "convert_i64_i64",
];
