//! Llama's feed-forward block, a gated linear unit with the SiLU gate (Shazeer, 2020, "GLU
//! Variants Improve Transformer"): `w2(silu(w1 x) * w3 x)`, `C -> hidden -> C`, no biases,
//! where `silu(z) = z sigmoid(z)`.

use crate::linear::Linear;
use crate::module::{join, Module};
use autograd::Var;
use tensor::Rng;

/// The gated feed-forward block.
pub struct SwiGlu {
    /// The gate's projection, `C -> hidden`.
    pub w1: Linear,
    /// The output projection, `hidden -> C`.
    pub w2: Linear,
    /// The value's projection, `C -> hidden`.
    pub w3: Linear,
}

impl SwiGlu {
    /// `dim -> hidden -> dim`, weights from `N(0, std)`, the output projection from
    /// `N(0, proj_std)`.
    pub fn new(dim: usize, hidden: usize, std: f64, proj_std: f64, rng: &mut Rng) -> SwiGlu {
        SwiGlu {
            w1: Linear::new(dim, hidden, false, std, rng),
            w2: Linear::new(hidden, dim, false, proj_std, rng),
            w3: Linear::new(dim, hidden, false, std, rng),
        }
    }
}

/// `z sigmoid(z)`.
pub fn silu(z: &Var) -> Var {
    z.mul(&z.sigmoid())
}

impl Module for SwiGlu {
    fn forward(&self, x: &Var) -> Var {
        let gate = silu(&self.w1.forward(x));
        self.w2.forward(&gate.mul(&self.w3.forward(x)))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        self.w1.visit_params(&join(prefix, "w1"), f);
        self.w2.visit_params(&join(prefix, "w2"), f);
        self.w3.visit_params(&join(prefix, "w3"), f);
    }

    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        self.w1.visit_linears_mut(&join(prefix, "w1"), f);
        self.w2.visit_linears_mut(&join(prefix, "w2"), f);
        self.w3.visit_linears_mut(&join(prefix, "w3"), f);
    }
}
