//! Reductions over any set of dims (sum, mean, max, min, variance, arg-max/min) and the
//! row-normalizing ops (softmax, log-softmax, logsumexp) along one dim.

pub use crate::backend::Softmax;
use crate::error::{or_panic, Error, Result};
use crate::layout::resolve_dim;
use crate::op::ReduceOp;
use crate::Tensor;

/// Resolves `dims` (negative counts from the end) into a sorted, distinct list.
fn resolve_dims(op: &'static str, dims: &[isize], rank: usize) -> Result<Vec<usize>> {
    let mut out: Vec<usize> = dims
        .iter()
        .map(|&d| resolve_dim(op, d, rank))
        .collect::<Result<_>>()?;
    out.sort_unstable();
    let n = out.len();
    out.dedup();
    if out.len() != n {
        return Err(Error::InvalidArgument(format!(
            "{op}: dims {dims:?} repeat a dim"
        )));
    }
    Ok(out)
}

/// The output shape of a reduction over sorted `dims`.
fn reduced_shape(shape: &[usize], dims: &[usize], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(d, &s)| match (dims.contains(&d), keepdim) {
            (false, _) => Some(s),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

impl Tensor {
    /// Reduces over `dims` with `op`; `keepdim` leaves the reduced dims as size 1.
    pub fn try_reduce(&self, op: ReduceOp, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let dims = resolve_dims(op.name(), dims, self.rank())?;
        if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) && dims.len() != 1 {
            return Err(Error::InvalidArgument(format!(
                "{}: reduces over exactly one dim",
                op.name()
            )));
        }
        if matches!(
            op,
            ReduceOp::Max | ReduceOp::Min | ReduceOp::ArgMax | ReduceOp::ArgMin
        ) && dims.iter().any(|&d| self.shape()[d] == 0)
        {
            return Err(Error::InvalidArgument(format!(
                "{}: cannot reduce an empty dim",
                op.name()
            )));
        }
        let storage = self.storage().reduce(self.layout(), &dims, op)?;
        Ok(Tensor::from_storage(
            storage,
            &reduced_shape(self.shape(), &dims, keepdim),
        ))
    }

    /// Sum over `dims`.
    #[track_caller]
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Tensor {
        or_panic(self.try_reduce(ReduceOp::Sum, dims, keepdim))
    }

    /// Sum of all elements (0-dimensional).
    #[track_caller]
    pub fn sum_all(&self) -> Tensor {
        let dims: Vec<isize> = (0..self.rank() as isize).collect();
        self.sum(&dims, false)
    }

    /// Mean over `dims`.
    #[track_caller]
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Tensor {
        let d = or_panic(resolve_dims("mean", dims, self.rank()));
        let n: usize = d.iter().map(|&k| self.shape()[k]).product();
        self.sum(dims, keepdim).mul_scalar(1.0 / n as f64)
    }

    /// Mean of all elements (0-dimensional).
    #[track_caller]
    pub fn mean_all(&self) -> Tensor {
        self.sum_all().mul_scalar(1.0 / self.numel() as f64)
    }

    /// Maximum over `dims` (NaN propagates).
    #[track_caller]
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Tensor {
        or_panic(self.try_reduce(ReduceOp::Max, dims, keepdim))
    }

    /// Minimum over `dims` (NaN propagates).
    #[track_caller]
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Tensor {
        or_panic(self.try_reduce(ReduceOp::Min, dims, keepdim))
    }

    /// Index (`u32`) of the first maximum along `dim`.
    #[track_caller]
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Tensor {
        or_panic(self.try_reduce(ReduceOp::ArgMax, &[dim], keepdim))
    }

    /// Index (`u32`) of the first minimum along `dim`.
    #[track_caller]
    pub fn argmin(&self, dim: isize, keepdim: bool) -> Tensor {
        or_panic(self.try_reduce(ReduceOp::ArgMin, &[dim], keepdim))
    }

    /// Variance over `dims`: `sum (x - mean)^2 / (n - correction)`; `correction` 1 is the
    /// unbiased estimate, 0 the population variance.
    #[track_caller]
    pub fn var(&self, dims: &[isize], keepdim: bool, correction: usize) -> Tensor {
        let d = or_panic(resolve_dims("var", dims, self.rank()));
        let n: usize = d.iter().map(|&k| self.shape()[k]).product();
        let centered = self.sub(&self.mean(dims, true));
        let denom = n.saturating_sub(correction) as f64;
        centered.square().sum(dims, keepdim).mul_scalar(1.0 / denom)
    }

    /// Applies a row kernel along `dim` by moving `dim` last (a copy unless it already is
    /// the contiguous last dim) and moving it back afterwards.
    fn along_dim(
        &self,
        op: &'static str,
        dim: isize,
        f: impl FnOnce(&Tensor, usize) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let d = resolve_dim(op, dim, self.rank())?;
        let last = self.rank() - 1;
        let moved = if d == last {
            self.clone()
        } else {
            self.try_transpose(d as isize, last as isize)?
        };
        let rows = moved.try_compact()?;
        let out = f(&rows, rows.shape()[last])?;
        if d == last {
            Ok(out)
        } else {
            out.try_transpose(d as isize, last as isize)
        }
    }

    /// Softmax or log-softmax along `dim`, computed stably (max subtracted).
    pub fn try_softmax_kind(&self, dim: isize, kind: Softmax) -> Result<Tensor> {
        if self.rank() == 0 {
            return self
                .try_reshape(&[1])?
                .try_softmax_kind(0, kind)?
                .try_reshape(&[]);
        }
        self.along_dim("softmax", dim, |rows, n| {
            Ok(Tensor::from_storage(
                rows.storage().softmax(n, kind)?,
                rows.shape(),
            ))
        })
    }

    /// Softmax along `dim`: `exp(x - max) / sum exp(x - max)`, each row summing to 1. Panics on
    /// error (see [`Tensor::try_softmax_kind`]).
    #[track_caller]
    pub fn softmax(&self, dim: isize) -> Tensor {
        or_panic(self.try_softmax_kind(dim, Softmax::Softmax))
    }

    /// Log-softmax along `dim`: `x - logsumexp(x)`. Panics on error (see
    /// [`Tensor::try_softmax_kind`]).
    #[track_caller]
    pub fn log_softmax(&self, dim: isize) -> Tensor {
        or_panic(self.try_softmax_kind(dim, Softmax::LogSoftmax))
    }

    /// Backward of softmax / log-softmax along `dim`, from the forward output `self` and the
    /// upstream gradient `dy`.
    pub fn try_softmax_backward(&self, dy: &Tensor, dim: isize, kind: Softmax) -> Result<Tensor> {
        if dy.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                op: "softmax_backward",
                lhs: self.shape().to_vec(),
                rhs: dy.shape().to_vec(),
            });
        }
        let d = resolve_dim("softmax_backward", dim, self.rank())? as isize;
        let last = self.rank() as isize - 1;
        let dy_rows = if d == last {
            dy.clone()
        } else {
            dy.try_transpose(d, last)?
        }
        .try_compact()?;
        self.along_dim("softmax_backward", dim, |rows, n| {
            Ok(Tensor::from_storage(
                rows.storage()
                    .softmax_backward(dy_rows.storage(), n, kind)?,
                rows.shape(),
            ))
        })
    }

    /// `log sum exp` along `dim`, computed stably.
    pub fn try_logsumexp(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        let d = resolve_dim("logsumexp", dim, self.rank())?;
        let last = self.rank() - 1;
        let moved = if d == last {
            self.clone()
        } else {
            self.try_transpose(d as isize, last as isize)?
        };
        let rows = moved.try_compact()?;
        let lse = rows.storage().logsumexp(rows.shape()[last])?;
        Ok(Tensor::from_storage(
            lse,
            &reduced_shape(self.shape(), &[d], keepdim),
        ))
    }

    /// [`Tensor::try_logsumexp`], panicking on error.
    #[track_caller]
    pub fn logsumexp(&self, dim: isize, keepdim: bool) -> Tensor {
        or_panic(self.try_logsumexp(dim, keepdim))
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn reductions_with_keepdim() {
        let x = Tensor::arange(24, DType::F64).reshape(&[2, 3, 4]);
        assert_eq!(x.sum(&[1], false).shape(), &[2, 4]);
        assert_eq!(x.sum(&[0, 2], true).shape(), &[1, 3, 1]);
        assert_eq!(
            x.sum(&[-1], false).to_vec::<f64>(),
            vec![6., 22., 38., 54., 70., 86.]
        );
        assert_eq!(x.sum_all().item(), 276.0);
        assert_eq!(
            x.max(&[0, 1], false).to_vec::<f64>(),
            vec![20., 21., 22., 23.]
        );
        assert_eq!(
            x.min(&[2], false).to_vec::<f64>(),
            vec![0., 4., 8., 12., 16., 20.]
        );
        assert_eq!(x.argmax(1, false).to_vec::<u32>(), vec![2; 8]);
        assert!(close(
            &x.mean(&[2], false).to_vec::<f64>(),
            &[1.5, 5.5, 9.5, 13.5, 17.5, 21.5]
        ));
        let v = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[4]);
        assert!(close(&v.var(&[0], false, 1).to_vec::<f64>(), &[5.0 / 3.0]));
        assert!(close(&v.var(&[0], false, 0).to_vec::<f64>(), &[1.25]));
        assert!(x.try_reduce(crate::ReduceOp::Sum, &[0, 0], false).is_err());
    }

    #[test]
    fn softmax_along_a_middle_dim() {
        let x = Tensor::arange(24, DType::F64)
            .reshape(&[2, 3, 4])
            .mul_scalar(0.3);
        let s = x.softmax(1);
        let sums = s.sum(&[1], false).to_vec::<f64>();
        assert!(sums.iter().all(|v| (v - 1.0).abs() < 1e-12));
        let ls = x.log_softmax(1).exp();
        assert!(close(&ls.to_vec::<f64>(), &s.to_vec::<f64>()));
        let lse = x.logsumexp(1, true);
        assert!(close(
            &x.sub(&lse).to_vec::<f64>(),
            &x.log_softmax(1).to_vec::<f64>()
        ));
    }
}
