//! Batched matrix multiply and its gradient.
//!
//! Forward `C = A B` over broadcast batch dims. Backward: `dA = dC B^T`, `dB = A^T dC`, each
//! summed back over the batch dims its operand was broadcast along. A 2-D weight multiplied by
//! a batch of inputs (a linear layer) gets its gradient from one product over all rows,
//! `dB = A_flat^T dC_flat`, rather than a batch of products and a sum.

use super::sum_to_shape;
use crate::op::{Backward, Op};
use crate::var::Var;
use tensor::{Result, Tensor};

struct MatMulRule {
    a: Tensor,
    b: Tensor,
}

impl Backward for MatMulRule {
    fn op(&self) -> Op {
        Op::MatMul
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let (a, b) = (&self.a, &self.b);
        let ga = sum_to_shape(&g.matmul(&b.t()), a.shape());
        let gb = if b.rank() == 2 && a.rank() > 2 {
            let (k, n) = (b.shape()[0], b.shape()[1]);
            let rows = a.numel() / k;
            a.reshape(&[rows, k]).t().matmul(&g.reshape(&[rows, n]))
        } else {
            sum_to_shape(&a.t().matmul(g), b.shape())
        };
        vec![Some(ga), Some(gb)]
    }
}

impl Var {
    /// `(..., M, K) @ (..., K, N)` with broadcast batch dims.
    pub fn try_matmul(&self, rhs: &Var) -> Result<Var> {
        let (a, b) = (self.value(), rhs.value());
        let c = a.try_matmul(&b)?;
        Ok(Var::from_op(c, &[self, rhs], || MatMulRule { a, b }))
    }

    #[track_caller]
    pub fn matmul(&self, rhs: &Var) -> Var {
        self.try_matmul(rhs).unwrap_or_else(|e| panic!("{e}"))
    }
}
