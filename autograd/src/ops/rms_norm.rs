//! RMS norm as one fused op, `y = x rstd * weight` with `rstd = 1 / sqrt(mean_c(x^2) + eps)`.
//! The forward saves the input and `rstd`; the backward is composed of tensor ops, so it runs
//! on any device. With `xhat = x rstd` and `g = dy * weight` (the gradient reaching `xhat`):
//!
//! `dx = rstd (g - xhat mean_c(g xhat))`, since `d rstd / d x_c = -rstd^3 x_c / C`;
//! `dweight = sum over rows of dy xhat`.

use crate::op::{Backward, Op};
use crate::ops::sum_to_shape;
use crate::var::Var;
use tensor::Tensor;

struct RmsNormRule {
    x: Tensor,
    weight: Tensor,
    rstd: Tensor,
}

impl Backward for RmsNormRule {
    fn op(&self) -> Op {
        Op::RmsNorm
    }
    fn backward(&self, dy: &Tensor) -> Vec<Option<Tensor>> {
        let rstd = self.rstd.unsqueeze(-1);
        let xhat = self.x.mul(&rstd);
        let g = dy.mul(&self.weight);
        let mean_gx = g.mul(&xhat).mean(&[-1], true);
        let dx = g.sub(&xhat.mul(&mean_gx)).mul(&rstd);
        let dweight = sum_to_shape(&dy.mul(&xhat), self.weight.shape());
        vec![Some(dx), Some(dweight)]
    }
}

impl Var {
    /// RMS norm over the last dim with weight `(C)`:
    /// `y = x / sqrt(mean(x^2) + eps) * weight`.
    #[track_caller]
    pub fn rms_norm(&self, weight: &Var, eps: f64) -> Var {
        let (x, w) = (self.value(), weight.value());
        let (y, rstd) = x.try_rms_norm(&w, eps).unwrap_or_else(|e| panic!("{e}"));
        Var::from_op(y, &[self, weight], || RmsNormRule { x, weight: w, rstd })
    }
}
