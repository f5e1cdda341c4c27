//! Parameter initialisation.
//!
//! GPT-2's scheme: weights of linear layers and embeddings from `N(0, 0.02)`, biases zero,
//! layer-norm weights one; the projections that write into the residual stream (attention
//! output and MLP output) use `0.02 / sqrt(2 n_layer)` so the residual sum keeps its scale as
//! layers are added.

use autograd::Var;
use tensor::{DType, Rng, Tensor};

/// The standard deviation of GPT-2's ordinary weights.
pub const GPT2_STD: f64 = 0.02;

/// GPT-2's standard deviation for residual projections in a model of `n_layer` blocks.
pub fn residual_std(n_layer: usize) -> f64 {
    GPT2_STD / (2.0 * n_layer as f64).sqrt()
}

/// A trainable `shape` parameter drawn from `N(0, std)`.
pub fn normal(shape: &[usize], std: f64, rng: &mut Rng) -> Var {
    Var::parameter(Tensor::randn(shape, 0.0, std, DType::F32, rng))
}

/// A trainable parameter of zeros.
pub fn zeros(shape: &[usize]) -> Var {
    Var::parameter(Tensor::zeros(shape, DType::F32))
}

/// A trainable parameter of ones.
pub fn ones(shape: &[usize]) -> Var {
    Var::parameter(Tensor::ones(shape, DType::F32))
}
