//! View ops (no copy): reshape of viewable data, permute, transpose, narrow, expand, squeeze,
//! unsqueeze, flatten, split, chunk. Plus `cat` and `stack`, which copy into a fresh buffer.

use crate::error::{or_panic, Error, Result};
use crate::layout::resolve_dim;
use crate::storage::Storage;
use crate::{Layout, Tensor};
use std::sync::Arc;

impl Tensor {
    /// The same elements in row-major order with a new shape: a view when the strides allow
    /// one, otherwise a contiguous copy.
    pub fn try_reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if numel != self.numel() {
            return Err(Error::ElementCount {
                op: "reshape",
                numel: self.numel(),
                from: self.shape().to_vec(),
                shape: shape.to_vec(),
            });
        }
        match self.layout().reshape_view(shape) {
            Some(l) => Ok(self.with_layout(l)),
            None => self.try_contiguous()?.try_reshape(shape),
        }
    }

    /// [`Tensor::try_reshape`], panicking on error.
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        or_panic(self.try_reshape(shape))
    }

    /// Reorders dims: output dim `k` is input dim `dims[k]`.
    pub fn try_permute(&self, dims: &[usize]) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().permute(dims)?))
    }

    /// [`Tensor::try_permute`], panicking on error.
    #[track_caller]
    pub fn permute(&self, dims: &[usize]) -> Tensor {
        or_panic(self.try_permute(dims))
    }

    /// Swaps two dims (negative counts from the end).
    pub fn try_transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let d0 = resolve_dim("transpose", d0, self.rank())?;
        let d1 = resolve_dim("transpose", d1, self.rank())?;
        Ok(self.with_layout(self.layout().transpose(d0, d1)?))
    }

    /// [`Tensor::try_transpose`], panicking on error.
    #[track_caller]
    pub fn transpose(&self, d0: isize, d1: isize) -> Tensor {
        or_panic(self.try_transpose(d0, d1))
    }

    /// Swaps the last two dims (the matrix transpose of a batch of matrices).
    #[track_caller]
    pub fn t(&self) -> Tensor {
        self.transpose(-2, -1)
    }

    /// Keeps `len` elements of `dim` starting at `start`.
    pub fn try_narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = resolve_dim("narrow", dim, self.rank())?;
        Ok(self.with_layout(self.layout().narrow(d, start, len)?))
    }

    /// [`Tensor::try_narrow`], panicking on error.
    #[track_caller]
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Tensor {
        or_panic(self.try_narrow(dim, start, len))
    }

    /// Element `index` of `dim`, with that dim removed.
    #[track_caller]
    pub fn select(&self, dim: isize, index: usize) -> Tensor {
        let d = or_panic(resolve_dim("select", dim, self.rank()));
        self.narrow(dim, index, 1).squeeze(d as isize)
    }

    /// Broadcasts to `shape` (numpy rules) with stride-0 dims; no copy.
    pub fn try_expand(&self, shape: &[usize]) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().broadcast_to(shape)?))
    }

    /// [`Tensor::try_expand`], panicking on error.
    #[track_caller]
    pub fn expand(&self, shape: &[usize]) -> Tensor {
        or_panic(self.try_expand(shape))
    }

    /// Removes `dim`, which must have size 1.
    pub fn try_squeeze(&self, dim: isize) -> Result<Tensor> {
        let d = resolve_dim("squeeze", dim, self.rank())?;
        Ok(self.with_layout(self.layout().squeeze(d)?))
    }

    /// [`Tensor::try_squeeze`], panicking on error.
    #[track_caller]
    pub fn squeeze(&self, dim: isize) -> Tensor {
        or_panic(self.try_squeeze(dim))
    }

    /// Inserts a size-1 dim at `dim` (negative counts from the end of the new rank).
    pub fn try_unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let d = resolve_dim("unsqueeze", dim, self.rank() + 1)?;
        Ok(self.with_layout(self.layout().unsqueeze(d)?))
    }

    /// [`Tensor::try_unsqueeze`], panicking on error.
    #[track_caller]
    pub fn unsqueeze(&self, dim: isize) -> Tensor {
        or_panic(self.try_unsqueeze(dim))
    }

    /// Merges dims `start..=end` into one (a view when possible).
    #[track_caller]
    pub fn flatten(&self, start: isize, end: isize) -> Tensor {
        if self.rank() == 0 {
            return self.reshape(&[1]);
        }
        let s = or_panic(resolve_dim("flatten", start, self.rank()));
        let e = or_panic(resolve_dim("flatten", end, self.rank()));
        assert!(s <= e, "flatten: start dim {s} is after end dim {e}");
        let shape = self.shape();
        let mut new: Vec<usize> = shape[..s].to_vec();
        new.push(shape[s..=e].iter().product());
        new.extend_from_slice(&shape[e + 1..]);
        self.reshape(&new)
    }

    /// All dims merged into one.
    #[track_caller]
    pub fn flatten_all(&self) -> Tensor {
        self.reshape(&[self.numel()])
    }

    /// Consecutive views of `size` elements along `dim` (the last may be shorter).
    #[track_caller]
    pub fn split(&self, size: usize, dim: isize) -> Vec<Tensor> {
        assert!(size > 0, "split: size must be positive");
        let n = self.dim(dim);
        (0..n)
            .step_by(size)
            .map(|s| self.narrow(dim, s, size.min(n - s)))
            .collect()
    }

    /// `chunks` views along `dim` of (nearly) equal size, as `torch.chunk`.
    #[track_caller]
    pub fn chunk(&self, chunks: usize, dim: isize) -> Vec<Tensor> {
        assert!(chunks > 0, "chunk: number of chunks must be positive");
        self.split(self.dim(dim).div_ceil(chunks).max(1), dim)
    }

    /// Concatenates tensors of equal shape except along `dim` into a new tensor.
    pub fn try_cat(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::InvalidArgument("cat: no tensors given".into()))?;
        let d = resolve_dim("cat", dim, first.rank())?;
        let mut shape = first.shape().to_vec();
        shape[d] = 0;
        for t in tensors {
            let same_rest = t.rank() == first.rank()
                && t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(k, (a, b))| k == d || a == b);
            if !same_rest {
                return Err(Error::ShapeMismatch {
                    op: "cat",
                    lhs: first.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                });
            }
            if t.dtype() != first.dtype() {
                return Err(Error::DTypeMismatch {
                    op: "cat",
                    lhs: first.dtype(),
                    rhs: t.dtype(),
                });
            }
            shape[d] += t.shape()[d];
        }
        let host = crate::cpu::CpuStorage::zeros(first.dtype(), shape.iter().product());
        let mut out = Storage::from_cpu(host, first.device())?;
        let full = Layout::contiguous(&shape);
        let mut start = 0;
        for t in tensors {
            let len = t.shape()[d];
            out.copy_into(&full.narrow(d, start, len)?, t.storage(), t.layout())?;
            start += len;
        }
        Ok(Tensor::from_parts(Arc::new(out), full))
    }

    /// [`Tensor::try_cat`], panicking on error.
    #[track_caller]
    pub fn cat(tensors: &[&Tensor], dim: isize) -> Tensor {
        or_panic(Tensor::try_cat(tensors, dim))
    }

    /// Stacks tensors of one shape along a new dim `dim`.
    pub fn try_stack(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::InvalidArgument("stack: no tensors given".into()))?;
        let d = resolve_dim("stack", dim, first.rank() + 1)? as isize;
        for t in tensors {
            if t.shape() != first.shape() {
                return Err(Error::ShapeMismatch {
                    op: "stack",
                    lhs: first.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                });
            }
        }
        let expanded: Vec<Tensor> = tensors
            .iter()
            .map(|t| t.try_unsqueeze(d))
            .collect::<Result<_>>()?;
        Tensor::try_cat(&expanded.iter().collect::<Vec<_>>(), d)
    }

    /// [`Tensor::try_stack`], panicking on error.
    #[track_caller]
    pub fn stack(tensors: &[&Tensor], dim: isize) -> Tensor {
        or_panic(Tensor::try_stack(tensors, dim))
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};
    use proptest::prelude::*;

    fn iota(shape: &[usize]) -> Tensor {
        Tensor::arange(shape.iter().product(), DType::F64).reshape(shape)
    }

    #[test]
    fn views_share_storage_and_contiguous_copies_only_when_needed() {
        let x = iota(&[2, 3, 4]);
        for v in [
            x.permute(&[2, 0, 1]),
            x.narrow(1, 1, 2),
            x.unsqueeze(0),
            x.reshape(&[6, 4]),
            x.t(),
        ] {
            assert!(v.shares_storage_with(&x));
        }
        assert!(x.contiguous().shares_storage_with(&x));
        assert!(!x.t().contiguous().shares_storage_with(&x));
        let e = Tensor::ones(&[3, 1], DType::F32).expand(&[2, 3, 5]);
        assert_eq!(e.strides(), &[0, 1, 0]);
    }

    #[test]
    fn transposed_values_and_reshape_copy() {
        let x = iota(&[2, 3]);
        assert_eq!(x.t().to_vec::<f64>(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let flat = x.t().reshape(&[6]);
        assert!(!flat.shares_storage_with(&x));
        assert_eq!(flat.to_vec::<f64>(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn cat_stack_split_chunk() {
        let a = iota(&[2, 3]);
        let b = iota(&[2, 2]).affine(1.0, 100.0);
        let c = Tensor::cat(&[&a, &b], 1);
        assert_eq!(c.shape(), &[2, 5]);
        assert_eq!(
            c.to_vec::<f64>(),
            vec![0., 1., 2., 100., 101., 3., 4., 5., 102., 103.]
        );
        let parts = c.split(3, 1);
        assert_eq!(parts[0].to_vec::<f64>(), a.to_vec::<f64>());
        assert_eq!(parts[1].to_vec::<f64>(), b.to_vec::<f64>());
        let s = Tensor::stack(&[&a, &a.t().contiguous().t()], 0);
        assert_eq!(s.shape(), &[2, 2, 3]);
        assert_eq!(s.select(0, 1).to_vec::<f64>(), a.to_vec::<f64>());
        let ch = iota(&[7]).chunk(3, 0);
        assert_eq!(
            ch.iter().map(|t| t.numel()).collect::<Vec<_>>(),
            vec![3, 3, 1]
        );
    }

    #[test]
    fn bad_shapes_name_the_op_and_shapes() {
        let a = iota(&[2, 3]);
        let err = a.try_reshape(&[4, 2]).unwrap_err().to_string();
        assert!(
            err.contains("reshape") && err.contains("[2, 3]") && err.contains("[4, 2]"),
            "{err}"
        );
        let err = Tensor::try_cat(&[&a, &iota(&[3, 3])], 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cat") && err.contains("[3, 3]"), "{err}");
        let err = a.try_narrow(1, 2, 2).unwrap_err().to_string();
        assert!(
            err.contains("narrow") && err.contains('4') && err.contains('3'),
            "{err}"
        );
        assert!(a
            .try_transpose(0, 2)
            .unwrap_err()
            .to_string()
            .contains("rank 2"));
    }

    proptest! {
        /// reshape of a permuted view equals reshaping its contiguous copy, whether or not
        /// the result is a view.
        #[test]
        fn reshape_matches_copy_semantics(
            shape in proptest::collection::vec(1usize..4, 1..5),
            seed in any::<u64>(),
        ) {
            let rank = shape.len();
            let mut dims: Vec<usize> = (0..rank).collect();
            let mut s = seed;
            for i in (1..rank).rev() {
                dims.swap(i, (s % (i as u64 + 1)) as usize);
                s /= 5;
            }
            let x = iota(&shape).permute(&dims);
            let n = x.numel();
            // Split the elements into two dims in every possible way.
            for a in 1..=n {
                if n.is_multiple_of(a) {
                    let r = x.reshape(&[a, n / a]);
                    prop_assert_eq!(r.to_vec::<f64>(), x.contiguous().to_vec::<f64>());
                }
            }
        }
    }
}
