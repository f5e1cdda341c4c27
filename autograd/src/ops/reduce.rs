//! Reductions and the softmax family, with their gradients. Mean and variance are composed
//! from these (and elementwise ops), so they need no rule of their own.

use crate::op::{Backward, Op};
use crate::var::Var;
use tensor::{CmpOp, ReduceOp, Softmax, Tensor};

/// The reduced dims, resolved and sorted.
fn resolve_dims(dims: &[isize], rank: usize) -> Vec<usize> {
    let mut d: Vec<usize> = dims
        .iter()
        .map(|&d| tensor::layout::resolve_dim("reduce", d, rank).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    d.sort_unstable();
    d
}

/// The shape a reduction keeps with `keepdim = true`.
fn keepdim_shape(shape: &[usize], dims: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &s)| if dims.contains(&i) { 1 } else { s })
        .collect()
}

/// y = sum over dims of x: every input element gets the gradient of its sum.
struct SumRule {
    input_shape: Vec<usize>,
    dims: Vec<usize>,
}

impl Backward for SumRule {
    fn op(&self) -> Op {
        Op::Sum
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let kept = keepdim_shape(&self.input_shape, &self.dims);
        vec![Some(g.reshape(&kept).expand(&self.input_shape))]
    }
}

/// y = max (or min) over dims of x: the gradient goes to the elements equal to the result,
/// split evenly among ties.
struct ExtremeRule {
    op: Op,
    x: Tensor,
    y_kept: Tensor,
    dims: Vec<usize>,
}

impl Backward for ExtremeRule {
    fn op(&self) -> Op {
        self.op
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let hits = self
            .x
            .compare(&self.y_kept, CmpOp::Eq)
            .to_dtype(self.x.dtype());
        let dims: Vec<isize> = self.dims.iter().map(|&d| d as isize).collect();
        let count = hits.sum(&dims, true);
        let g = g.reshape(self.y_kept.shape());
        vec![Some(hits.mul(&g.div(&count)))]
    }
}

/// y = logsumexp(x) along dim: dy/dx = softmax(x) = exp(x - y).
struct LogSumExpRule {
    x: Tensor,
    y_kept: Tensor,
}

impl Backward for LogSumExpRule {
    fn op(&self) -> Op {
        Op::LogSumExp
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let p = self.x.sub(&self.y_kept).exp();
        vec![Some(p.mul(&g.reshape(self.y_kept.shape())))]
    }
}

/// y = softmax(x) or log_softmax(x) along dim: the fused backward kernel
/// (`dx = y (dy - sum dy y)`, or `dx = dy - e^y sum dy`).
struct SoftmaxRule {
    kind: Softmax,
    y: Tensor,
    dim: isize,
}

impl Backward for SoftmaxRule {
    fn op(&self) -> Op {
        match self.kind {
            Softmax::Softmax => Op::Softmax,
            Softmax::LogSoftmax => Op::LogSoftmax,
        }
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        vec![Some(
            self.y
                .try_softmax_backward(g, self.dim, self.kind)
                .unwrap_or_else(|e| panic!("{e}")),
        )]
    }
}

impl Var {
    /// Sum over `dims`.
    #[track_caller]
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Var {
        let x = self.value();
        let y = x.sum(dims, keepdim);
        let (input_shape, dims) = (x.shape().to_vec(), resolve_dims(dims, x.rank()));
        Var::from_op(y, &[self], || SumRule { input_shape, dims })
    }

    /// Sum of all elements.
    #[track_caller]
    pub fn sum_all(&self) -> Var {
        let dims: Vec<isize> = (0..self.rank() as isize).collect();
        self.sum(&dims, false)
    }

    /// Mean over `dims` (a sum times `1/n`).
    #[track_caller]
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Var {
        let shape = self.shape();
        let n: usize = resolve_dims(dims, shape.len())
            .iter()
            .map(|&d| shape[d])
            .product();
        self.sum(dims, keepdim).mul_scalar(1.0 / n as f64)
    }

    /// Mean of all elements.
    #[track_caller]
    pub fn mean_all(&self) -> Var {
        self.sum_all().mul_scalar(1.0 / self.numel() as f64)
    }

    /// Variance over `dims` with `correction` (1: unbiased), composed from differentiable ops.
    #[track_caller]
    pub fn var(&self, dims: &[isize], keepdim: bool, correction: usize) -> Var {
        let shape = self.shape();
        let n: usize = resolve_dims(dims, shape.len())
            .iter()
            .map(|&d| shape[d])
            .product();
        let centered = self.sub(&self.mean(dims, true));
        centered
            .square()
            .sum(dims, keepdim)
            .mul_scalar(1.0 / n.saturating_sub(correction) as f64)
    }

    fn extreme(&self, op: ReduceOp, dims: &[isize], keepdim: bool) -> Var {
        let x = self.value();
        let d = resolve_dims(dims, x.rank());
        let y_kept = x
            .try_reduce(op, dims, true)
            .unwrap_or_else(|e| panic!("{e}"));
        let y = y_kept.reshape(
            x.try_reduce(op, dims, keepdim)
                .unwrap_or_else(|e| panic!("{e}"))
                .shape(),
        );
        let rule_op = if op == ReduceOp::Max {
            Op::Max
        } else {
            Op::Min
        };
        Var::from_op(y, &[self], || ExtremeRule {
            op: rule_op,
            x,
            y_kept,
            dims: d,
        })
    }

    /// Maximum over `dims`.
    #[track_caller]
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Var {
        self.extreme(ReduceOp::Max, dims, keepdim)
    }

    /// Minimum over `dims`.
    #[track_caller]
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Var {
        self.extreme(ReduceOp::Min, dims, keepdim)
    }

    /// `log sum exp` along `dim`.
    #[track_caller]
    pub fn logsumexp(&self, dim: isize, keepdim: bool) -> Var {
        let x = self.value();
        let y_kept = x.logsumexp(dim, true);
        let y = if keepdim {
            y_kept.clone()
        } else {
            y_kept.squeeze(dim)
        };
        Var::from_op(y, &[self], || LogSumExpRule { x, y_kept })
    }

    fn softmax_kind(&self, dim: isize, kind: Softmax) -> Var {
        let y = self
            .value()
            .try_softmax_kind(dim, kind)
            .unwrap_or_else(|e| panic!("{e}"));
        let saved = y.clone();
        Var::from_op(y, &[self], || SoftmaxRule {
            kind,
            y: saved,
            dim,
        })
    }

    /// Softmax along `dim` (see [`tensor::Tensor::softmax`]); the gradient is
    /// `y * (g - sum(g * y))` along `dim`.
    #[track_caller]
    pub fn softmax(&self, dim: isize) -> Var {
        self.softmax_kind(dim, Softmax::Softmax)
    }

    /// Log-softmax along `dim` (see [`tensor::Tensor::log_softmax`]); the gradient is
    /// `g - exp(y) * sum(g)` along `dim`.
    #[track_caller]
    pub fn log_softmax(&self, dim: isize) -> Var {
        self.softmax_kind(dim, Softmax::LogSoftmax)
    }
}
