//! Indexing ops: index_select and embedding lookup, gather, and their adjoints (index_add,
//! scatter_add) which accumulate into zeros. Indices are `u32` or `i64` tensors; an index out
//! of range is an error naming it and the size.

use crate::error::{or_panic, Error, Result};
use crate::layout::resolve_dim;
use crate::Tensor;

fn check_index_tensor(op: &'static str, idx: &Tensor, x: &Tensor) -> Result<()> {
    if !idx.dtype().is_index() {
        return Err(Error::UnsupportedDType {
            op,
            dtype: idx.dtype(),
        });
    }
    if idx.device() != x.device() {
        return Err(Error::DeviceMismatch {
            op,
            lhs: x.device(),
            rhs: idx.device(),
        });
    }
    Ok(())
}

impl Tensor {
    /// Picks entries `ids` (1-D) along `dim`: `out[.., j, ..] = x[.., ids[j], ..]`.
    pub fn try_index_select(&self, dim: isize, ids: &Tensor) -> Result<Tensor> {
        check_index_tensor("index_select", ids, self)?;
        let d = resolve_dim("index_select", dim, self.rank())?;
        if ids.rank() != 1 {
            return Err(Error::InvalidArgument(format!(
                "index_select: ids must be 1-D, got shape {:?}",
                ids.shape()
            )));
        }
        let storage = self
            .storage()
            .index_select(self.layout(), d, ids.storage(), ids.layout())?;
        let mut shape = self.shape().to_vec();
        shape[d] = ids.numel();
        Ok(Tensor::from_storage(storage, &shape))
    }

    /// [`Tensor::try_index_select`], panicking on error.
    #[track_caller]
    pub fn index_select(&self, dim: isize, ids: &Tensor) -> Tensor {
        or_panic(self.try_index_select(dim, ids))
    }

    /// Embedding lookup: rows of this `(V, C)` table at `ids` of any shape -> `(*ids, C)`.
    pub fn try_embedding(&self, ids: &Tensor) -> Result<Tensor> {
        if self.rank() != 2 {
            return Err(Error::InvalidArgument(format!(
                "embedding: table must be 2-D, got shape {:?}",
                self.shape()
            )));
        }
        let rows = self.try_index_select(0, &ids.try_reshape(&[ids.numel()])?)?;
        let mut shape = ids.shape().to_vec();
        shape.push(self.shape()[1]);
        rows.try_reshape(&shape)
    }

    /// [`Tensor::try_embedding`], panicking on error.
    #[track_caller]
    pub fn embedding(&self, ids: &Tensor) -> Tensor {
        or_panic(self.try_embedding(ids))
    }

    /// The adjoint of [`Tensor::index_select`]: zeros shaped like this tensor but with `size`
    /// entries along `dim`, plus this tensor's slices added at `ids` (repeats accumulate).
    pub fn try_index_add(&self, dim: isize, ids: &Tensor, size: usize) -> Result<Tensor> {
        check_index_tensor("index_add", ids, self)?;
        let d = resolve_dim("index_add", dim, self.rank())?;
        if ids.rank() != 1 || ids.numel() != self.shape()[d] {
            return Err(Error::ShapeMismatch {
                op: "index_add",
                lhs: self.shape().to_vec(),
                rhs: ids.shape().to_vec(),
            });
        }
        let src = self.try_compact()?;
        let storage = src
            .storage()
            .index_add(src.shape(), d, ids.storage(), ids.layout(), size)?;
        let mut shape = self.shape().to_vec();
        shape[d] = size;
        Ok(Tensor::from_storage(storage, &shape))
    }

    /// [`Tensor::try_index_add`], panicking on error.
    #[track_caller]
    pub fn index_add(&self, dim: isize, ids: &Tensor, size: usize) -> Tensor {
        or_panic(self.try_index_add(dim, ids, size))
    }

    /// `out[p] = x[p with p[dim] = idx[p]]`; `idx` has this tensor's rank, sizes no larger
    /// outside `dim`, and the output takes its shape.
    pub fn try_gather(&self, dim: isize, idx: &Tensor) -> Result<Tensor> {
        check_index_tensor("gather", idx, self)?;
        let d = resolve_dim("gather", dim, self.rank())?;
        let fits = idx.rank() == self.rank()
            && idx
                .shape()
                .iter()
                .zip(self.shape())
                .enumerate()
                .all(|(k, (&i, &s))| k == d || i <= s);
        if !fits {
            return Err(Error::ShapeMismatch {
                op: "gather",
                lhs: self.shape().to_vec(),
                rhs: idx.shape().to_vec(),
            });
        }
        let storage = self
            .storage()
            .gather(self.layout(), d, idx.storage(), idx.layout())?;
        Ok(Tensor::from_storage(storage, idx.shape()))
    }

    /// [`Tensor::try_gather`], panicking on error.
    #[track_caller]
    pub fn gather(&self, dim: isize, idx: &Tensor) -> Tensor {
        or_panic(self.try_gather(dim, idx))
    }

    /// The adjoint of [`Tensor::gather`]: zeros of `dst_shape` with this tensor's elements
    /// (shaped like `idx`) added at `p with p[dim] = idx[p]`.
    pub fn try_scatter_add(&self, dim: isize, idx: &Tensor, dst_shape: &[usize]) -> Result<Tensor> {
        check_index_tensor("scatter_add", idx, self)?;
        let d = resolve_dim("scatter_add", dim, self.rank())?;
        let fits = idx.shape() == self.shape()
            && dst_shape.len() == self.rank()
            && idx
                .shape()
                .iter()
                .zip(dst_shape)
                .enumerate()
                .all(|(k, (&i, &s))| k == d || i <= s);
        if !fits {
            return Err(Error::ShapeMismatch {
                op: "scatter_add",
                lhs: self.shape().to_vec(),
                rhs: idx.shape().to_vec(),
            });
        }
        let src = self.try_compact()?;
        let storage = src
            .storage()
            .scatter_add(d, idx.storage(), idx.layout(), dst_shape)?;
        Ok(Tensor::from_storage(storage, dst_shape))
    }

    /// [`Tensor::try_scatter_add`], panicking on error.
    #[track_caller]
    pub fn scatter_add(&self, dim: isize, idx: &Tensor, dst_shape: &[usize]) -> Tensor {
        or_panic(self.try_scatter_add(dim, idx, dst_shape))
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    #[test]
    fn embedding_lookup_and_backward() {
        let table = Tensor::arange(12, DType::F32).reshape(&[4, 3]);
        let ids = Tensor::from_vec(vec![3u32, 0, 3, 1], &[2, 2]);
        let e = table.embedding(&ids);
        assert_eq!(e.shape(), &[2, 2, 3]);
        assert_eq!(e.to_vec::<f32>()[..6], [9., 10., 11., 0., 1., 2.]);
        let g = Tensor::ones(&[4, 3], DType::F32).index_add(0, &ids.flatten_all(), 4);
        assert_eq!(
            g.to_vec::<f32>(),
            vec![1., 1., 1., 1., 1., 1., 0., 0., 0., 2., 2., 2.]
        );
    }

    #[test]
    fn out_of_range_index_is_named() {
        let table = Tensor::zeros(&[4, 3], DType::F32);
        let err = table
            .try_embedding(&Tensor::from_vec(vec![1i64, 7], &[2]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("index 7") && err.contains("size 4"), "{err}");
        let err = table
            .try_embedding(&Tensor::from_vec(vec![-1i64], &[1]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("out of range"), "{err}");
    }

    #[test]
    fn gather_picks_along_dim() {
        let x = Tensor::arange(6, DType::F64).reshape(&[2, 3]);
        let idx = Tensor::from_vec(vec![2u32, 0, 1, 1], &[2, 2]);
        assert_eq!(x.gather(1, &idx).to_vec::<f64>(), vec![2., 0., 4., 4.]);
        let back = Tensor::ones(&[2, 2], DType::F64).scatter_add(1, &idx, &[2, 3]);
        assert_eq!(back.to_vec::<f64>(), vec![1., 0., 1., 0., 2., 0.]);
    }
}
