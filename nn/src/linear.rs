//! Linear layer: `y = x W^T + b`, with `W (out, in)` stored as PyTorch stores it, so state
//! dicts line up with PyTorch's names and shapes. An optional LoRA adapter adds its low-rank
//! update to the output.

use crate::init;
use crate::lora::LoraAdapter;
use crate::module::{join, Module};
use autograd::Var;
use tensor::Rng;

/// `x (..., in) -> (..., out)`.
pub struct Linear {
    /// `W (out, in)`.
    pub weight: Var,
    /// `b (out)`, when the layer has one.
    pub bias: Option<Var>,
    /// A low-rank adapter whose output is added to the layer's (see [`crate::lora`]).
    pub lora: Option<LoraAdapter>,
}

impl Linear {
    /// Weight from `N(0, std)`, bias zero when present.
    pub fn new(inputs: usize, outputs: usize, bias: bool, std: f64, rng: &mut Rng) -> Linear {
        Linear {
            weight: init::normal(&[outputs, inputs], std, rng),
            bias: bias.then(|| init::zeros(&[outputs])),
            lora: None,
        }
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.weight.dim(1)
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.weight.dim(0)
    }
}

impl Module for Linear {
    fn forward(&self, x: &Var) -> Var {
        // The transpose is a view: the product reads W in place.
        let mut y = x.matmul(&self.weight.t());
        if let Some(b) = &self.bias {
            y = y.add(b);
        }
        match &self.lora {
            Some(adapter) if !adapter.is_merged() => y.add(&adapter.forward(x)),
            _ => y,
        }
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        f(&join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(&join(prefix, "bias"), b);
        }
        if let Some(adapter) = &self.lora {
            adapter.visit_params(prefix, f);
        }
    }

    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        f(prefix, self);
    }

    fn set_training(&mut self, training: bool) {
        if let Some(adapter) = &mut self.lora {
            adapter.set_training(training);
        }
    }
}
