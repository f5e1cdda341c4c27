//! The fused kernels of the Llama architecture: RMS norm and rotary position embeddings (the
//! math is in `cpu/rms_norm.rs` and `cpu/rope.rs`). This file checks shapes and flattens
//! leading dims into rows.

use crate::backend::RopeDims;
use crate::error::{Error, Result};
use crate::Tensor;

impl Tensor {
    /// RMS norm over the last dim: `y = x / sqrt(mean(x^2) + eps) * weight`, `weight (C)`.
    /// Returns `y` and the row factors `rstd = 1 / sqrt(mean(x^2) + eps)` (shaped like `x`
    /// without its last dim), which the backward needs.
    pub fn try_rms_norm(&self, weight: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
        let c = self.shape().last().copied().ok_or_else(|| {
            Error::InvalidArgument("rms_norm: needs at least 1 dim, got a scalar".into())
        })?;
        if weight.shape() != [c] {
            return Err(Error::ShapeMismatch {
                op: "rms_norm weight",
                lhs: vec![c],
                rhs: weight.shape().to_vec(),
            });
        }
        let (x, w) = (self.try_compact()?, weight.try_compact()?);
        let (y, rstd) = x.storage().rms_norm(c, w.storage(), eps)?;
        Ok((
            Tensor::from_storage(y, self.shape()),
            Tensor::from_storage(rstd, &self.shape()[..self.rank() - 1]),
        ))
    }

    /// Rotary position embedding of `x (..., T, HS)` whose rows along `T` sit at positions
    /// `start..start + T`, by the angle tables `cos, sin (P, HS / 2)` (`start + T <= P`):
    /// each pair of features `(2j, 2j + 1)` turns by its angle, or back by it when `inverse`
    /// is set (which is the backward).
    pub fn try_rope(
        &self,
        cos: &Tensor,
        sin: &Tensor,
        start: usize,
        inverse: bool,
    ) -> Result<Tensor> {
        let bad = |what: String| Err(Error::InvalidArgument(format!("rope: {what}")));
        let r = self.rank();
        if r < 2 || !self.dim(-1).is_multiple_of(2) {
            return bad(format!(
                "needs (..., T, HS) with HS even, got {:?}",
                self.shape()
            ));
        }
        let (t, hs) = (self.dim(-2), self.dim(-1));
        if cos.shape() != sin.shape() || cos.rank() != 2 || cos.dim(1) != hs / 2 {
            return bad(format!(
                "tables {:?} and {:?} for heads of {hs}; want (positions, {})",
                cos.shape(),
                sin.shape(),
                hs / 2
            ));
        }
        if start + t > cos.dim(0) {
            return bad(format!(
                "positions {start}..{} past the tables' {}",
                start + t,
                cos.dim(0)
            ));
        }
        let (x, c, s) = (self.try_compact()?, cos.try_compact()?, sin.try_compact()?);
        let dims = RopeDims {
            rows: self.numel() / hs.max(1),
            t,
            hs,
            start,
            inverse,
        };
        let y = x.storage().rope(c.storage(), s.storage(), dims)?;
        Ok(Tensor::from_storage(y, self.shape()))
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    #[test]
    fn rope_refuses_bad_shapes_and_positions() {
        let x = Tensor::zeros(&[2, 3, 4], DType::F32);
        let table = Tensor::zeros(&[5, 2], DType::F32);
        assert!(x.try_rope(&table, &table, 2, false).is_ok());
        assert!(
            x.try_rope(&table, &table, 3, false).is_err(),
            "past the tables"
        );
        let odd = Tensor::zeros(&[2, 3, 5], DType::F32);
        assert!(
            odd.try_rope(&table, &table, 0, false).is_err(),
            "odd head size"
        );
        let narrow = Tensor::zeros(&[5, 3], DType::F32);
        assert!(
            x.try_rope(&narrow, &narrow, 0, false).is_err(),
            "tables too wide"
        );
    }

    #[test]
    fn rms_norm_refuses_a_weight_of_the_wrong_size() {
        let x = Tensor::zeros(&[2, 4], DType::F64);
        assert!(x
            .try_rms_norm(&Tensor::ones(&[4], DType::F64), 1e-5)
            .is_ok());
        assert!(x
            .try_rms_norm(&Tensor::ones(&[3], DType::F64), 1e-5)
            .is_err());
    }

    #[test]
    fn rms_norm_reads_a_transposed_input() {
        let x = Tensor::arange(12, DType::F64).reshape(&[3, 4]).t();
        let w = Tensor::ones(&[3], DType::F64);
        let (y, _) = x.try_rms_norm(&w, 0.0).unwrap();
        let (want, _) = x.contiguous().try_rms_norm(&w, 0.0).unwrap();
        assert_eq!(y.to_vec::<f64>(), want.to_vec::<f64>());
    }
}
