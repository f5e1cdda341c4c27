//! Parameter-free activation layers.

use crate::module::Module;
use autograd::Var;

/// GELU, tanh approximation (GPT-2's).
pub struct Gelu;

impl Module for Gelu {
    fn forward(&self, x: &Var) -> Var {
        x.gelu()
    }
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Var)) {}
}

/// `max(x, 0)`.
pub struct Relu;

impl Module for Relu {
    fn forward(&self, x: &Var) -> Var {
        x.relu()
    }
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Var)) {}
}
