//! The transformer's feed-forward block: `dropout(proj(gelu(fc(x))))`, `C -> 4C -> C`.

use crate::dropout::{Dropout, SharedRng};
use crate::linear::Linear;
use crate::module::{join, Module};
use autograd::Var;
use tensor::Rng;

/// Two linear layers around a GELU.
pub struct Mlp {
    /// `C -> hidden`.
    pub fc: Linear,
    /// `hidden -> C`.
    pub proj: Linear,
    /// Dropout on the output.
    pub dropout: Dropout,
}

impl Mlp {
    /// `dim -> hidden -> dim`; `proj_std` initialises the output projection (GPT-2 scales it
    /// down by depth, see [`crate::init::residual_std`]).
    pub fn new(
        dim: usize,
        hidden: usize,
        bias: bool,
        dropout: f64,
        proj_std: f64,
        rng: &mut Rng,
        drop_rng: SharedRng,
    ) -> Mlp {
        Mlp {
            fc: Linear::new(dim, hidden, bias, crate::init::GPT2_STD, rng),
            proj: Linear::new(hidden, dim, bias, proj_std, rng),
            dropout: Dropout::new(dropout, drop_rng),
        }
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Var) -> Var {
        self.dropout
            .forward(&self.proj.forward(&self.fc.forward(x).gelu()))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        self.fc.visit_params(&join(prefix, "fc"), f);
        self.proj.visit_params(&join(prefix, "proj"), f);
    }

    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        self.fc.visit_linears_mut(&join(prefix, "fc"), f);
        self.proj.visit_linears_mut(&join(prefix, "proj"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.fc.set_training(training);
        self.proj.set_training(training);
        self.dropout.set_training(training);
    }
}
