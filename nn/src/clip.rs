//! Gradient clipping by global L2 norm.

use autograd::Var;
use std::collections::HashSet;
use tensor::{DType, Tensor};

/// Scales the gradients of `params` so that their global L2 norm is at most `max_norm`, and
/// returns the norm before clipping.
///
/// The global norm is `sqrt(sum over params of sum(g^2))` (parameters without a gradient are
/// skipped, a variable listed twice counts once). As in PyTorch's `clip_grad_norm_`, when it
/// exceeds `max_norm` every gradient is multiplied by `max_norm / (norm + 1e-6)`. A non-finite
/// norm is returned without touching the gradients, so the caller can skip the step.
pub fn clip_grad_norm(params: &[Var], max_norm: f64) -> f64 {
    let mut seen = HashSet::new();
    let with_grads: Vec<(&Var, Tensor)> = params
        .iter()
        .filter(|p| seen.insert(p.id()))
        .filter_map(|p| p.grad().map(|g| (p, g)))
        .collect();
    // The squared norms are summed in f64 where the gradients live, so a GPU is read from
    // once, not once per parameter.
    let total = with_grads
        .iter()
        .map(|(_, g)| g.square().sum_all().to_dtype(DType::F64))
        .reduce(|acc, sq| acc.add(&sq))
        .map_or(0.0, |sq| sq.item())
        .sqrt();
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        for (p, g) in with_grads {
            // Take the gradient out of the slot so it is the only owner and scales in place.
            p.set_grad(None);
            let mut g = g;
            if g.mul_scalar_(coef).is_err() {
                g = g.mul_scalar(coef);
            }
            p.set_grad(Some(g));
        }
    }
    total
}
