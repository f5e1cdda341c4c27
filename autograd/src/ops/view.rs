//! Shape ops and their gradients: each view's backward is the inverse view of the gradient
//! (reshape back, inverse permutation, zero padding around a slice, a sum over broadcast dims),
//! and `cat`'s backward splits the gradient.

use super::sum_to_shape;
use crate::op::{Backward, Op};
use crate::var::Var;
use tensor::{Result, Tensor};

/// y = x.reshape(..): the gradient is reshaped back.
struct ReshapeRule {
    input_shape: Vec<usize>,
}

impl Backward for ReshapeRule {
    fn op(&self) -> Op {
        Op::Reshape
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        vec![Some(g.reshape(&self.input_shape))]
    }
}

/// y = x.permute(dims): output dim k is input dim dims[k], so input dim dims[k] gets
/// gradient dim k.
struct PermuteRule {
    dims: Vec<usize>,
}

impl Backward for PermuteRule {
    fn op(&self) -> Op {
        Op::Permute
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let mut inverse = vec![0; self.dims.len()];
        for (k, &d) in self.dims.iter().enumerate() {
            inverse[d] = k;
        }
        vec![Some(g.permute(&inverse))]
    }
}

/// y = x.narrow(dim, start, len): the gradient lands in the slice, zeros elsewhere.
struct NarrowRule {
    dim: usize,
    start: usize,
    input_shape: Vec<usize>,
}

impl Backward for NarrowRule {
    fn op(&self) -> Op {
        Op::Narrow
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let d = self.dim;
        let after = self.input_shape[d] - self.start - g.shape()[d];
        let zeros = |n: usize| {
            let mut s = self.input_shape.clone();
            s[d] = n;
            g.try_full_like(&s, 0.0).unwrap_or_else(|e| panic!("{e}"))
        };
        let (pre, post) = (zeros(self.start), zeros(after));
        vec![Some(Tensor::cat(&[&pre, g, &post], d as isize))]
    }
}

/// y = x.expand(shape): each input element fed many outputs, so their gradients add up.
struct ExpandRule {
    input_shape: Vec<usize>,
}

impl Backward for ExpandRule {
    fn op(&self) -> Op {
        Op::Expand
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        vec![Some(sum_to_shape(g, &self.input_shape))]
    }
}

/// y = cat(xs, dim): each input gets its slice of the gradient.
struct CatRule {
    dim: usize,
    sizes: Vec<usize>,
}

impl Backward for CatRule {
    fn op(&self) -> Op {
        Op::Cat
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let mut start = 0;
        self.sizes
            .iter()
            .map(|&n| {
                let part = g.narrow(self.dim as isize, start, n);
                start += n;
                Some(part)
            })
            .collect()
    }
}

fn resolve(dim: isize, rank: usize) -> usize {
    tensor::layout::resolve_dim("view", dim, rank).unwrap_or_else(|e| panic!("{e}"))
}

impl Var {
    /// Same elements, new shape (a view when possible).
    pub fn try_reshape(&self, shape: &[usize]) -> Result<Var> {
        let x = self.value();
        let y = x.try_reshape(shape)?;
        let input_shape = x.shape().to_vec();
        Ok(Var::from_op(y, &[self], || ReshapeRule { input_shape }))
    }

    /// [`Var::try_reshape`], panicking on error.
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Var {
        self.try_reshape(shape).unwrap_or_else(|e| panic!("{e}"))
    }

    /// This value with a contiguous layout (its gradient passes through unchanged).
    #[track_caller]
    pub fn contiguous(&self) -> Var {
        let x = self.value();
        let input_shape = x.shape().to_vec();
        Var::from_op(x.contiguous(), &[self], || ReshapeRule { input_shape })
    }

    /// Merges dims `start..=end` into one.
    #[track_caller]
    pub fn flatten(&self, start: isize, end: isize) -> Var {
        let shape = self.value().flatten(start, end).shape().to_vec();
        self.reshape(&shape)
    }

    /// Removes `dim`, which must have size 1; the gradient is reshaped back.
    #[track_caller]
    pub fn squeeze(&self, dim: isize) -> Var {
        let shape = self.value().squeeze(dim).shape().to_vec();
        self.reshape(&shape)
    }

    /// Inserts a size-1 dim at `dim`; the gradient is reshaped back.
    #[track_caller]
    pub fn unsqueeze(&self, dim: isize) -> Var {
        let shape = self.value().unsqueeze(dim).shape().to_vec();
        self.reshape(&shape)
    }

    /// Reorders dims: output dim `k` is input dim `dims[k]`; the gradient is permuted back.
    #[track_caller]
    pub fn permute(&self, dims: &[usize]) -> Var {
        let y = self.value().permute(dims);
        let dims = dims.to_vec();
        Var::from_op(y, &[self], || PermuteRule { dims })
    }

    /// Swaps two dims (negative counts from the end); the gradient is swapped back.
    #[track_caller]
    pub fn transpose(&self, d0: isize, d1: isize) -> Var {
        let rank = self.rank();
        let mut dims: Vec<usize> = (0..rank).collect();
        dims.swap(resolve(d0, rank), resolve(d1, rank));
        self.permute(&dims)
    }

    /// Swaps the last two dims.
    #[track_caller]
    pub fn t(&self) -> Var {
        self.transpose(-2, -1)
    }

    /// Keeps `len` elements of `dim` starting at `start`; the gradient is zero outside that
    /// range.
    #[track_caller]
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Var {
        let x = self.value();
        let y = x.narrow(dim, start, len);
        let (d, input_shape) = (resolve(dim, x.rank()), x.shape().to_vec());
        Var::from_op(y, &[self], || NarrowRule {
            dim: d,
            start,
            input_shape,
        })
    }

    /// Element `index` of `dim`, with the dim removed.
    #[track_caller]
    pub fn select(&self, dim: isize, index: usize) -> Var {
        let d = resolve(dim, self.rank()) as isize;
        self.narrow(d, index, 1).squeeze(d)
    }

    /// Views of `size` along `dim` (the last may be shorter).
    #[track_caller]
    pub fn split(&self, size: usize, dim: isize) -> Vec<Var> {
        let n = self.dim(dim);
        (0..n)
            .step_by(size.max(1))
            .map(|s| self.narrow(dim, s, size.min(n - s)))
            .collect()
    }

    /// `chunks` nearly equal views along `dim`.
    #[track_caller]
    pub fn chunk(&self, chunks: usize, dim: isize) -> Vec<Var> {
        self.split(self.dim(dim).div_ceil(chunks.max(1)).max(1), dim)
    }

    /// Broadcasts to `shape` (no copy).
    #[track_caller]
    pub fn expand(&self, shape: &[usize]) -> Var {
        let x = self.value();
        let y = x.expand(shape);
        let input_shape = x.shape().to_vec();
        Var::from_op(y, &[self], || ExpandRule { input_shape })
    }

    /// Concatenates along `dim`.
    #[track_caller]
    pub fn cat(vars: &[&Var], dim: isize) -> Var {
        let values: Vec<Tensor> = vars.iter().map(|v| v.value()).collect();
        let y = Tensor::cat(&values.iter().collect::<Vec<_>>(), dim);
        let d = resolve(dim, values[0].rank());
        let sizes = values.iter().map(|v| v.shape()[d]).collect();
        Var::from_op(y, vars, || CatRule { dim: d, sizes })
    }

    /// Stacks equal-shaped vars along a new dim.
    #[track_caller]
    pub fn stack(vars: &[&Var], dim: isize) -> Var {
        let d = resolve(dim, vars[0].rank() + 1) as isize;
        let expanded: Vec<Var> = vars.iter().map(|v| v.unsqueeze(d)).collect();
        Var::cat(&expanded.iter().collect::<Vec<_>>(), d)
    }
}
