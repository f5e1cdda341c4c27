//! Root-mean-square normalization over the last dim (Zhang and Sennrich, 2019), as Llama uses
//! it: `y = x / sqrt(mean(x^2) + eps) * weight`. No mean is subtracted and there is no bias.
//! One fused op (`Var::rms_norm`), held to its composition by the fused-versus-composed test.

use crate::init;
use crate::module::{join, Module};
use autograd::Var;

/// RMS norm over `dim` features.
pub struct RmsNorm {
    /// Scale, `(dim)`.
    pub weight: Var,
    /// Added to the mean square before the square root.
    pub eps: f64,
}

impl RmsNorm {
    /// Weight one and the given `eps` (llama2.c uses 1e-5).
    pub fn new(dim: usize, eps: f64) -> RmsNorm {
        RmsNorm {
            weight: init::ones(&[dim]),
            eps,
        }
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Var) -> Var {
        x.rms_norm(&self.weight, self.eps)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        f(&join(prefix, "weight"), &self.weight);
    }
}
