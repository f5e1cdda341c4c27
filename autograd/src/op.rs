//! The registry of differentiable ops, and the trait every backward rule implements.
//!
//! Every node of a graph names its [`Op`]. The gradient-check suite records which ops each of
//! its cases exercised and fails when any op in [`Op::all`] has too few cases, so an op cannot
//! be added without gradient checks: `Op::all` is derived from the enum itself.

use tensor::Tensor;

/// A differentiable operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, strum::EnumIter)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Maximum,
    Minimum,
    Neg,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Tanh,
    Sigmoid,
    Relu,
    GeluTanh,
    GeluErf,
    Sin,
    Cos,
    Abs,
    Square,
    Recip,
    Clamp,
    Powf,
    Affine,
    Reshape,
    Permute,
    Narrow,
    Expand,
    Cat,
    Sum,
    Max,
    Min,
    LogSumExp,
    Softmax,
    LogSoftmax,
    MatMul,
    IndexSelect,
    Embedding,
    Gather,
    Where,
    LayerNorm,
    CrossEntropy,
    Attention,
    Dropout,
}

impl Op {
    /// Every op, in declaration order (derived from the enum, so it cannot fall behind).
    pub fn all() -> impl Iterator<Item = Op> {
        <Op as strum::IntoEnumIterator>::iter()
    }
}

/// A backward rule: given the gradient of the loss with respect to an op's output, the
/// gradients with respect to each of its inputs (`None` where an input gets none). The rule
/// holds whatever the forward saved for it.
pub trait Backward: Send + Sync {
    fn op(&self) -> Op;
    fn backward(&self, grad: &Tensor) -> Vec<Option<Tensor>>;
}
