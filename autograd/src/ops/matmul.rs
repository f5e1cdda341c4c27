//! Batched matrix multiply and its gradient.
//!
//! Forward `C = A B` over broadcast batch dims. Backward: `dA = dC B^T`, `dB = A^T dC`, each
//! summed back over the batch dims its operand was broadcast along. A 2-D weight multiplied by
//! a batch of inputs (a linear layer) gets its gradient from one product over all rows,
//! `dB = A_flat^T dC_flat`, rather than a batch of products and a sum. That gradient is laid out
//! like `B`: when `B` is a transposed view (a linear layer multiplies by `W^T`), it is computed
//! as `(dC_flat^T A_flat)^T`, so the gradient that reaches `W` through the transpose is
//! contiguous, and the optimizer reads it without a copy. A gradient no operand needs (a frozen
//! weight, an input that is a constant), as decided at the forward pass, is not computed: with
//! frozen weights that saves one product in three.

use super::sum_to_shape;
use crate::op::{Backward, Op};
use crate::var::Var;
use tensor::{Result, Tensor};

struct MatMulRule {
    a: Tensor,
    b: Tensor,
    /// Whether `A` and `B` want gradients.
    needs: [bool; 2],
}

impl Backward for MatMulRule {
    fn op(&self) -> Op {
        Op::MatMul
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let (a, b) = (&self.a, &self.b);
        let ga = self.needs[0].then(|| sum_to_shape(&g.matmul(&b.t()), a.shape()));
        let gb = self.needs[1].then(|| {
            if b.rank() == 2 {
                matrix_grad(a, b, g)
            } else {
                sum_to_shape(&a.t().matmul(g), b.shape())
            }
        });
        vec![ga, gb]
    }
}

/// `dB = A_flat^T dC_flat` for a 2-D `B (K, N)`, with `A`'s leading dims flattened into rows,
/// in the memory order of `B`: row-major, or column-major when `B` is a transposed view.
fn matrix_grad(a: &Tensor, b: &Tensor, g: &Tensor) -> Tensor {
    let (k, n) = (b.shape()[0], b.shape()[1]);
    let rows = a.numel() / k;
    let (a, g) = (a.reshape(&[rows, k]), g.reshape(&[rows, n]));
    if !b.is_contiguous() && b.t().is_contiguous() {
        g.t().matmul(&a).t()
    } else {
        a.t().matmul(&g)
    }
}

impl Var {
    /// `(..., M, K) @ (..., K, N)` with broadcast batch dims.
    pub fn try_matmul(&self, rhs: &Var) -> Result<Var> {
        let (a, b) = (self.value(), rhs.value());
        let c = a.try_matmul(&b)?;
        let needs = [self.requires_grad(), rhs.requires_grad()];
        Ok(Var::from_op(c, &[self, rhs], || MatMulRule { a, b, needs }))
    }

    /// [`Var::try_matmul`], panicking on error.
    #[track_caller]
    pub fn matmul(&self, rhs: &Var) -> Var {
        self.try_matmul(rhs).unwrap_or_else(|e| panic!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::{DType, Rng};

    #[test]
    fn a_frozen_operand_gets_no_gradient_and_the_other_the_same_one() {
        let mut rng = Rng::new(2);
        let x = Var::parameter(Tensor::randn(&[3, 4], 0.0, 1.0, DType::F64, &mut rng));
        let w = Var::parameter(Tensor::randn(&[4, 2], 0.0, 1.0, DType::F64, &mut rng));
        x.matmul(&w).square().sum_all().backward();
        let (gx, gw) = (x.grad().unwrap(), w.grad().unwrap());
        x.zero_grad();
        w.zero_grad();
        w.set_requires_grad(false);
        x.matmul(&w).square().sum_all().backward();
        assert!(w.grad().is_none());
        assert_eq!(x.grad().unwrap().to_vec::<f64>(), gx.to_vec::<f64>());
        x.zero_grad();
        w.set_requires_grad(true);
        x.set_requires_grad(false);
        x.matmul(&w).square().sum_all().backward();
        assert!(x.grad().is_none());
        assert_eq!(w.grad().unwrap().to_vec::<f64>(), gw.to_vec::<f64>());
    }

    #[test]
    fn a_linear_layers_weight_gradient_is_contiguous() {
        // y = x W^T with W (3, 4): W's gradient, through the transpose, is dY^T x, laid out
        // like W.
        let mut rng = Rng::new(1);
        let x = Var::constant(Tensor::randn(&[2, 5, 4], 0.0, 1.0, DType::F64, &mut rng));
        let w = Var::parameter(Tensor::randn(&[3, 4], 0.0, 1.0, DType::F64, &mut rng));
        for input in [x.clone(), x.reshape(&[10, 4])] {
            w.zero_grad();
            input.matmul(&w.t()).sum_all().backward();
            let gw = w.grad().unwrap();
            assert!(gw.is_contiguous(), "strides {:?}", gw.strides());
            // d sum(x W^T) / dW[o, i] = sum over rows of x[.., i].
            let col_sums = x.value().sum(&[0, 1], false).to_vec::<f64>();
            let got = gw.to_vec::<f64>();
            for o in 0..3 {
                for i in 0..4 {
                    assert!((got[o * 4 + i] - col_sums[i]).abs() < 1e-12);
                }
            }
        }
    }
}
