//! Layer norm as one fused op. The forward saves the input and the row statistics (mean and
//! `rstd = 1/sqrt(var + eps)`); the backward is the hand-derived kernel
//! (`dx = rstd (g - mean(g) - xhat mean(g xhat))` with `g = dy * weight`,
//! `dweight = sum dy xhat`, `dbias = sum dy`; see `tensor/src/cpu/layer_norm.rs`).

use crate::op::{Backward, Op};
use crate::var::Var;
use tensor::Tensor;

struct LayerNormRule {
    x: Tensor,
    weight: Option<Tensor>,
    has_bias: bool,
    mean: Tensor,
    rstd: Tensor,
}

impl Backward for LayerNormRule {
    fn op(&self) -> Op {
        Op::LayerNorm
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let grads = g
            .try_layer_norm_backward(
                &self.x,
                self.weight.as_ref(),
                &self.mean,
                &self.rstd,
                self.has_bias,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = vec![Some(grads.dx)];
        if self.weight.is_some() {
            out.push(grads.dweight);
        }
        if self.has_bias {
            out.push(grads.dbias);
        }
        out
    }
}

impl Var {
    /// Layer norm over the last dim with optional `(C)` weight and bias.
    #[track_caller]
    pub fn layer_norm(&self, weight: Option<&Var>, bias: Option<&Var>, eps: f64) -> Var {
        let x = self.value();
        let (w, b) = (weight.map(Var::value), bias.map(Var::value));
        let out = x
            .try_layer_norm(w.as_ref(), b.as_ref(), eps)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        let (mean, rstd, has_bias) = (out.mean, out.rstd, bias.is_some());
        Var::from_op(out.y, &inputs, || LayerNormRule {
            x,
            weight: w,
            has_bias,
            mean,
            rstd,
        })
    }
}
