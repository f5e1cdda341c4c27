//! Layer normalization over the last dim: `y = (x - mean) / sqrt(var + eps) * weight + bias`,
//! one fused op with a hand-derived backward.

use crate::init;
use crate::module::{join, Module};
use autograd::Var;

/// Layer norm over `dim` features, with optional bias.
pub struct LayerNorm {
    /// Scale, `(dim)`.
    pub weight: Var,
    /// Shift, `(dim)`, when the layer has one.
    pub bias: Option<Var>,
    /// Added to the variance before the square root.
    pub eps: f64,
}

impl LayerNorm {
    /// Weight one, bias zero (when present), `eps = 1e-5` as in PyTorch.
    pub fn new(dim: usize, bias: bool) -> LayerNorm {
        LayerNorm {
            weight: init::ones(&[dim]),
            bias: bias.then(|| init::zeros(&[dim])),
            eps: 1e-5,
        }
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Var) -> Var {
        x.layer_norm(Some(&self.weight), self.bias.as_ref(), self.eps)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        f(&join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(&join(prefix, "bias"), b);
        }
    }
}
