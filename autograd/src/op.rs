//! The registry of differentiable ops, and the trait every backward rule implements.
//!
//! Every node of a graph names its [`Op`]. The gradient-check suite records which ops each of
//! its cases exercised and fails when any op in [`Op::all`] has too few cases, so an op cannot
//! be added without gradient checks: `Op::all` is derived from the enum itself.

use tensor::Tensor;

/// A differentiable operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, strum::EnumIter)]
pub enum Op {
    /// [`Var::add`](crate::Var::add).
    Add,
    /// [`Var::sub`](crate::Var::sub).
    Sub,
    /// [`Var::mul`](crate::Var::mul).
    Mul,
    /// [`Var::div`](crate::Var::div).
    Div,
    /// [`Var::pow`](crate::Var::pow).
    Pow,
    /// [`Var::maximum`](crate::Var::maximum).
    Maximum,
    /// [`Var::minimum`](crate::Var::minimum).
    Minimum,
    /// [`Var::neg`](crate::Var::neg).
    Neg,
    /// [`Var::exp`](crate::Var::exp).
    Exp,
    /// [`Var::log`](crate::Var::log).
    Log,
    /// [`Var::sqrt`](crate::Var::sqrt).
    Sqrt,
    /// [`Var::rsqrt`](crate::Var::rsqrt).
    Rsqrt,
    /// [`Var::tanh`](crate::Var::tanh).
    Tanh,
    /// [`Var::sigmoid`](crate::Var::sigmoid).
    Sigmoid,
    /// [`Var::relu`](crate::Var::relu).
    Relu,
    /// [`Var::gelu`](crate::Var::gelu) (tanh approximation).
    GeluTanh,
    /// [`Var::gelu_erf`](crate::Var::gelu_erf) (exact erf form).
    GeluErf,
    /// [`Var::sin`](crate::Var::sin).
    Sin,
    /// [`Var::cos`](crate::Var::cos).
    Cos,
    /// [`Var::abs`](crate::Var::abs).
    Abs,
    /// [`Var::square`](crate::Var::square).
    Square,
    /// [`Var::recip`](crate::Var::recip).
    Recip,
    /// [`Var::clamp`](crate::Var::clamp).
    Clamp,
    /// [`Var::powf`](crate::Var::powf).
    Powf,
    /// [`Var::affine`](crate::Var::affine) (also `add_scalar`, `mul_scalar`).
    Affine,
    /// [`Var::reshape`](crate::Var::reshape) and the ops built on it (`contiguous`, `flatten`,
    /// `squeeze`, `unsqueeze`).
    Reshape,
    /// [`Var::permute`](crate::Var::permute) (also `transpose`, `t`).
    Permute,
    /// [`Var::narrow`](crate::Var::narrow) (also `select`, `split`, `chunk`).
    Narrow,
    /// [`Var::expand`](crate::Var::expand).
    Expand,
    /// [`Var::cat`](crate::Var::cat) (also `stack`).
    Cat,
    /// [`Var::sum`](crate::Var::sum) (also `sum_all`, and inside `mean` and `var`).
    Sum,
    /// [`Var::max`](crate::Var::max).
    Max,
    /// [`Var::min`](crate::Var::min).
    Min,
    /// [`Var::logsumexp`](crate::Var::logsumexp).
    LogSumExp,
    /// [`Var::softmax`](crate::Var::softmax).
    Softmax,
    /// [`Var::log_softmax`](crate::Var::log_softmax).
    LogSoftmax,
    /// [`Var::matmul`](crate::Var::matmul).
    MatMul,
    /// [`Var::index_select`](crate::Var::index_select).
    IndexSelect,
    /// [`Var::embedding`](crate::Var::embedding).
    Embedding,
    /// [`Var::gather`](crate::Var::gather).
    Gather,
    /// [`Var::where_cond`](crate::Var::where_cond) (also `masked_fill`).
    Where,
    /// [`Var::layer_norm`](crate::Var::layer_norm).
    LayerNorm,
    /// [`Var::rms_norm`](crate::Var::rms_norm).
    RmsNorm,
    /// [`Var::rope`](crate::Var::rope).
    Rope,
    /// [`Var::cross_entropy`](crate::Var::cross_entropy).
    CrossEntropy,
    /// [`Var::attention`](crate::Var::attention).
    Attention,
    /// [`Var::dropout`](crate::Var::dropout).
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
    /// The op this rule differentiates.
    fn op(&self) -> Op;
    /// The gradient of each input, in the order the inputs were given, from `grad`, the gradient of
    /// the output (shaped like the output); `None` for an input that gets no gradient.
    fn backward(&self, grad: &Tensor) -> Vec<Option<Tensor>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::{BinaryOp, ReduceOp, UnaryOp};

    /// `GeluTanh` as `gelu_tanh`.
    fn snake_case(op: Op) -> String {
        let mut out = String::new();
        for (i, c) in format!("{op:?}").chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    /// Every elementwise op and value-giving reduction of the tensor crate is differentiable:
    /// an op added there without a backward rule here fails this test (and, once it has one,
    /// the gradient-check suite asks for its cases).
    #[test]
    fn every_tensor_op_has_its_autograd_op() {
        let ours: Vec<String> = Op::all().map(snake_case).collect();
        let theirs = UnaryOp::ALL
            .iter()
            .map(UnaryOp::name)
            .chain(BinaryOp::ALL.iter().map(BinaryOp::name))
            .chain(
                ReduceOp::ALL
                    .iter()
                    .filter(|r| r.gives_values())
                    .map(ReduceOp::name),
            );
        for name in theirs {
            assert!(ours.iter().any(|o| o == name), "no autograd op `{name}`");
        }
    }
}
