//! Tensor operations, grouped by kind. Each file adds methods to [`crate::Tensor`].

pub mod decode;
pub mod elementwise;
pub mod fused;
pub mod index;
pub mod inplace;
pub mod llama;
pub mod matmul;
pub mod packed;
pub mod reduce;
pub mod view;
