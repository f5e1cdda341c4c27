//! Matrix multiply with broadcast batch dims: `(..., M, K) @ (..., K, N) -> (..., M, N)`.

use super::elementwise::check_pair;
use crate::error::{or_panic, Error, Result};
use crate::layout::broadcast_shape;
use crate::Tensor;

impl Tensor {
    /// Batched matrix product. Both operands need at least 2 dims; their batch dims (all but
    /// the last two) broadcast like elementwise ops. Transposed views multiply without a copy.
    pub fn try_matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        check_pair("matmul", self, rhs)?;
        let mismatch = || Error::ShapeMismatch {
            op: "matmul",
            lhs: self.shape().to_vec(),
            rhs: rhs.shape().to_vec(),
        };
        let (ra, rb) = (self.rank(), rhs.rank());
        if ra < 2 || rb < 2 || self.shape()[ra - 1] != rhs.shape()[rb - 2] {
            return Err(mismatch());
        }
        let batch = broadcast_shape("matmul", &self.shape()[..ra - 2], &rhs.shape()[..rb - 2])
            .map_err(|_| mismatch())?;
        if let Some(out) = super::packed::product(self, rhs) {
            return Ok(out);
        }
        let (m, k, n) = (
            self.shape()[ra - 2],
            self.shape()[ra - 1],
            rhs.shape()[rb - 1],
        );
        let with = |mut b: Vec<usize>, x: usize, y: usize| {
            b.extend([x, y]);
            b
        };
        let al = self.layout().broadcast_to(&with(batch.clone(), m, k))?;
        let bl = rhs.layout().broadcast_to(&with(batch.clone(), k, n))?;
        let storage = self.storage().matmul(&al, rhs.storage(), &bl)?;
        Ok(Tensor::from_storage(storage, &with(batch, m, n)))
    }

    /// [`Tensor::try_matmul`], panicking on error.
    #[track_caller]
    pub fn matmul(&self, rhs: &Tensor) -> Tensor {
        or_panic(self.try_matmul(rhs))
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    #[test]
    fn batched_broadcast_and_transposed_operands() {
        let a = Tensor::arange(12, DType::F64).reshape(&[2, 2, 3]);
        let b = Tensor::arange(6, DType::F64).reshape(&[3, 2]);
        let c = a.matmul(&b);
        assert_eq!(c.shape(), &[2, 2, 2]);
        assert_eq!(
            c.to_vec::<f64>(),
            vec![10., 13., 28., 40., 46., 67., 64., 94.]
        );
        // (b^T)^T through a transposed view equals b.
        let bt = b.t().contiguous();
        assert_eq!(a.matmul(&bt.t()).to_vec::<f64>(), c.to_vec::<f64>());
    }

    #[test]
    fn inner_dim_mismatch_names_both_shapes() {
        let a = Tensor::zeros(&[2, 3], DType::F32);
        let err = a
            .try_matmul(&Tensor::zeros(&[4, 5], DType::F32))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("matmul") && err.contains("[2, 3]") && err.contains("[4, 5]"),
            "{err}"
        );
        assert!(a.try_matmul(&Tensor::zeros(&[3], DType::F32)).is_err());
    }
}
