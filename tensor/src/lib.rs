//! Strided n-dimensional tensors with SIMD and multi-threaded CPU kernels.
//!
//! A [`Tensor`] is a shared [`storage::Storage`] plus a [`Layout`] (shape, strides, offset).
//! Views (reshape of viewable data, permute, transpose, narrow, expand, squeeze, unsqueeze)
//! share storage; `contiguous()` copies only when it must. Elementwise ops broadcast with numpy's
//! rules. Kernels live one family per file under [`cpu`], each with a plain reference version
//! that tests hold the fast one to. Device-specific code sits behind [`backend::BackendStorage`].
//!
//! ```
//! use tensor::{DType, Tensor};
//! let a = Tensor::arange(6, DType::F32).reshape(&[2, 3]);
//! let b = a.t().matmul(&a); // (3, 2) @ (2, 3): the transpose is a view, not a copy
//! assert_eq!(b.shape(), &[3, 3]);
//! let p = a.softmax(-1);
//! assert!((p.sum(&[-1], false).to_vec::<f32>()[0] - 1.0).abs() < 1e-6);
//! ```

#![warn(missing_docs)]

pub mod backend;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod device;
pub mod dtype;
pub mod error;
pub mod layout;
pub mod op;
pub mod ops;
pub mod rng;
pub mod storage;
mod tensor;

/// Runs `f` on each item, spread over the host threads that run the CPU kernels: for work that
/// is a kernel call per item (an optimizer's step over many parameters), on any device.
pub use cpu::parallel::par_for_each as for_each_in_parallel;
pub use device::Device;
pub use dtype::{DType, Element, Float};
pub use error::{Error, Result};
pub use layout::Layout;
pub use op::{BinaryOp, CmpOp, ReduceOp, UnaryOp};
pub use ops::decode::CacheView;
pub use ops::fused::{AttentionDims, Gelu, LayerNormGrads, LayerNormOutput};
pub use ops::inplace::AdamWStep;
pub use ops::packed::with_packed_weights;
pub use ops::reduce::Softmax;
pub use rng::Rng;
pub use storage::live_storage;
pub use tensor::Tensor;
