//! The `Module` trait: a layer with a forward pass, named parameters, and a train/eval mode.
//!
//! Parameters get stable dotted names from the module tree (`blocks.0.attn.qkv.weight`), the
//! same names state dicts use. Containers implement the visitors by calling their children
//! with extended prefixes; leaves call the visitor on their own parameters.

use crate::linear::Linear;
use autograd::Var;
use tensor::{DType, Device};

/// `prefix.name`, or `name` alone at the root.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// A layer or a model.
pub trait Module {
    /// The forward pass.
    fn forward(&self, x: &Var) -> Var;

    /// Calls `f(name, param)` for every parameter, names prefixed with `prefix`.
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var));

    /// Calls `f(name, buffer)` for every buffer: state that is saved and loaded with the
    /// parameters but not trained (e.g. batch-norm running statistics).
    fn visit_buffers(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Var)) {}

    /// Calls `f(name, linear)` for every [`Linear`] inside, mutably (used to attach adapters
    /// to chosen layers by name).
    fn visit_linears_mut(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, &mut Linear)) {}

    /// Switches training behaviour (dropout, batch statistics) on or off, here and below.
    fn set_training(&mut self, _training: bool) {}

    /// Parameters with their dotted names, in a fixed order.
    fn named_params(&self) -> Vec<(String, Var)> {
        let mut out = vec![];
        self.visit_params("", &mut |name, p| out.push((name.to_string(), p.clone())));
        out
    }

    /// Parameters and buffers with their dotted names: everything a state dict holds.
    fn named_state(&self) -> Vec<(String, Var)> {
        let mut out = self.named_params();
        self.visit_buffers("", &mut |name, b| out.push((name.to_string(), b.clone())));
        out
    }

    /// The parameters, in the order of [`Module::named_params`].
    fn params(&self) -> Vec<Var> {
        self.named_params().into_iter().map(|(_, p)| p).collect()
    }

    /// Number of parameter elements.
    fn num_params(&self) -> usize {
        self.params().iter().map(Var::numel).sum()
    }

    /// Number of parameter elements that currently train (are not frozen).
    fn num_trainable_params(&self) -> usize {
        self.params()
            .iter()
            .filter(|p| p.requires_grad())
            .map(Var::numel)
            .sum()
    }

    /// Freezes every parameter (no gradients).
    fn freeze(&self) {
        self.params()
            .iter()
            .for_each(|p| p.set_requires_grad(false));
    }

    /// Unfreezes every parameter.
    fn unfreeze(&self) {
        self.params().iter().for_each(|p| p.set_requires_grad(true));
    }

    /// Clears every parameter's gradient.
    fn zero_grad(&self) {
        self.params().iter().for_each(Var::zero_grad);
    }

    /// Training mode.
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Evaluation mode.
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// Moves parameters and buffers to `device`.
    fn to_device(&self, device: Device) -> tensor::Result<()> {
        for (_, v) in self.named_state() {
            v.set_value(v.value().try_to_device(device)?);
        }
        Ok(())
    }

    /// Converts parameters and buffers to `dtype` (e.g. `F64` for gradient checks).
    fn to_dtype(&self, dtype: DType) -> tensor::Result<()> {
        for (_, v) in self.named_state() {
            v.set_value(v.value().try_to_dtype(dtype)?);
        }
        Ok(())
    }
}
