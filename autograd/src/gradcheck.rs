//! Gradient checking: analytic gradients against central finite differences in float64, and
//! the float32 path against the float64 path.
//!
//! For a function `f` of some input tensors, the check draws a fixed random tensor `r` shaped
//! like `f`'s output and differentiates the scalar `L = sum(f(x) * r)`, which makes every output
//! element matter. For each element `x_j` of each input it compares the backward pass's
//! `dL/dx_j` with `(L(x_j + eps) - L(x_j - eps)) / (2 eps)` and requires
//! `|analytic - numeric| <= atol + rtol |numeric|`. Inputs are contiguous base tensors; to
//! check an op on a transposed, narrowed or broadcast view, make the view inside `f` (which
//! checks the view's backward too).

use crate::graph::no_grad;
use crate::op::Op;
use crate::var::Var;
use std::collections::BTreeSet;
use std::fmt;
use tensor::{DType, Rng, Tensor};

/// Step and tolerances of a check.
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance of the float64 comparison.
    pub atol: f64,
    /// Relative tolerance of the float64 comparison.
    pub rtol: f64,
    /// Relative tolerance of float32 against float64 (outputs and gradients), measured
    /// against the largest magnitude of each float64 tensor.
    pub f32_rtol: f64,
    /// Seed of the random projection `r`.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-7,
            rtol: 1e-5,
            f32_rtol: 1e-4,
            seed: 17,
        }
    }
}

/// A failed check: what failed, where, and the two values.
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckFailure {
    /// The case's name.
    pub name: String,
    /// The ops in the checked graph.
    pub ops: Vec<Op>,
    /// What was compared ("gradient", or "float32 output"/"float32 gradient").
    pub what: &'static str,
    /// Which input (for gradients).
    pub input: usize,
    /// Multi-index of the first bad element.
    pub index: Vec<usize>,
    /// The value under test (analytic gradient, or the float32 value).
    pub analytic: f64,
    /// The reference (finite difference, or the float64 value).
    pub numeric: f64,
}

impl fmt::Display for GradcheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradcheck `{}` failed ({}): input {} at index {:?}: got {:e}, expected {:e} (ops in graph: {:?})",
            self.name, self.what, self.input, self.index, self.analytic, self.numeric, self.ops
        )
    }
}

impl std::error::Error for GradcheckFailure {}

/// The ops a passing check exercised.
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckReport {
    /// Every op recorded in the graph that was checked.
    pub ops: BTreeSet<Op>,
}

/// Every op recorded in the graph that produced `root`.
fn ops_in_graph(root: &Var) -> BTreeSet<Op> {
    let mut ops = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.clone()];
    while let Some(v) = stack.pop() {
        if !seen.insert(v.id()) {
            continue;
        }
        if let Some(node) = v.0.node.lock().expect("node lock poisoned").as_ref() {
            ops.insert(node.rule.op());
            stack.extend(node.inputs.iter().cloned());
        }
    }
    ops
}

/// Row-major multi-index of flat position `flat` in `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        idx[k] = flat % shape[k];
        flat /= shape[k];
    }
    idx
}

/// `sum(f() * r)` without recording a graph.
fn projected(f: &dyn Fn() -> Var, r: &Tensor) -> f64 {
    no_grad(|| f().value().mul(r).sum_all().item())
}

/// Output and leaf gradients of `L = sum(f() * r)`.
fn analytic(f: &dyn Fn() -> Var, leaves: &[Var], r: &Tensor) -> (Var, Vec<Tensor>, BTreeSet<Op>) {
    leaves.iter().for_each(Var::zero_grad);
    let y = f();
    let ops = ops_in_graph(&y);
    let loss = y.mul(&Var::constant(r.to_dtype(y.dtype()))).sum_all();
    loss.backward();
    let grads = leaves
        .iter()
        .map(|v| v.grad().unwrap_or_else(|| v.value().zeros_like()))
        .collect();
    (y, grads, ops)
}

/// Compares each leaf's analytic gradient with central differences, perturbing the leaf's
/// value in place one element at a time (and restoring it). Returns the output, the analytic
/// gradients and the ops in the graph.
fn check_leaves(
    name: &str,
    f: &dyn Fn() -> Var,
    leaves: &[Var],
    opts: &GradcheckOptions,
) -> Result<(Var, Vec<Tensor>, BTreeSet<Op>), GradcheckFailure> {
    let out_shape = no_grad(f).shape();
    let r = Tensor::randn(&out_shape, 0.0, 1.0, DType::F64, &mut Rng::new(opts.seed));
    let (y, grads, ops) = analytic(f, leaves, &r);
    for (i, leaf) in leaves.iter().enumerate() {
        let original = leaf.value();
        if !original.dtype().is_float() || !leaf.requires_grad() {
            continue;
        }
        let base = original.to_vec::<f64>();
        let analytic_i = grads[i].to_vec_f64();
        for j in 0..base.len() {
            let eval = |delta: f64| {
                let mut data = base.clone();
                data[j] += delta;
                leaf.set_value(Tensor::from_vec(data, original.shape()));
                projected(f, &r)
            };
            let numeric = (eval(opts.eps) - eval(-opts.eps)) / (2.0 * opts.eps);
            leaf.set_value(original.clone());
            let a = analytic_i[j];
            if (a - numeric).abs() > opts.atol + opts.rtol * numeric.abs()
                || a.is_nan() != numeric.is_nan()
            {
                return Err(GradcheckFailure {
                    name: name.to_string(),
                    ops: ops.iter().cloned().collect(),
                    what: "gradient",
                    input: i,
                    index: unravel(j, original.shape()),
                    analytic: a,
                    numeric,
                });
            }
        }
    }
    Ok((y, grads, ops))
}

/// Checks `f`'s gradients with the default options.
pub fn gradcheck(
    name: &str,
    f: impl Fn(&[Var]) -> Var,
    inputs: &[Tensor],
) -> Result<GradcheckReport, GradcheckFailure> {
    gradcheck_with(name, f, inputs, GradcheckOptions::default())
}

/// Checks `f`'s float64 gradients against finite differences, then its float32 outputs and
/// gradients against float64 ones.
pub fn gradcheck_with(
    name: &str,
    f: impl Fn(&[Var]) -> Var,
    inputs: &[Tensor],
    opts: GradcheckOptions,
) -> Result<GradcheckReport, GradcheckFailure> {
    let leaves = |dtype: DType| -> Vec<Var> {
        inputs
            .iter()
            .map(|x| {
                if x.dtype().is_float() {
                    Var::parameter(x.to_dtype(dtype).contiguous())
                } else {
                    Var::constant(x.clone())
                }
            })
            .collect()
    };
    let leaves64 = leaves(DType::F64);
    let (y64, grads64, ops) = check_leaves(name, &|| f(&leaves64), &leaves64, &opts)?;
    // The float32 path must agree with the float64 one.
    let leaves32 = leaves(DType::F32);
    let r = Tensor::randn(&y64.shape(), 0.0, 1.0, DType::F64, &mut Rng::new(opts.seed));
    let (y32, grads32, _) = analytic(&|| f(&leaves32), &leaves32, &r);
    let pairs = std::iter::once(("float32 output", 0, y32.value(), y64.value())).chain(
        grads32
            .into_iter()
            .zip(grads64)
            .enumerate()
            .map(|(i, (a, b))| ("float32 gradient", i, a, b)),
    );
    for (what, input, got, want) in pairs {
        if !want.dtype().is_float() {
            continue;
        }
        let shape = want.shape().to_vec();
        let (got, want) = (got.to_vec_f64(), want.to_vec_f64());
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (j, (&g, &w)) in got.iter().zip(&want).enumerate() {
            if (g - w).abs() > opts.f32_rtol * scale.max(1e-30) {
                return Err(GradcheckFailure {
                    name: name.to_string(),
                    ops: ops.iter().cloned().collect(),
                    what,
                    input,
                    index: unravel(j, &shape),
                    analytic: g,
                    numeric: w,
                });
            }
        }
    }
    Ok(GradcheckReport { ops })
}

/// Checks the gradients of existing float64 parameters: `f` computes an output from them (for
/// example a layer's forward pass on a fixed input) and each parameter is perturbed in place.
pub fn gradcheck_params(
    name: &str,
    f: impl Fn() -> Var,
    params: &[Var],
) -> Result<GradcheckReport, GradcheckFailure> {
    for p in params {
        if p.dtype() != DType::F64 {
            panic!(
                "gradcheck_params: parameters must be float64, got {}",
                p.dtype()
            );
        }
    }
    let (_, _, ops) = check_leaves(name, &f, params, &GradcheckOptions::default())?;
    Ok(GradcheckReport { ops })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_gradient_is_caught_and_named() {
        // Scale the value by 2 without recording the factor: the recorded rule says the
        // gradient of the input is 1 per element, the true derivative is 2.
        let wrong = |v: &[Var]| {
            let doubled = v[0].value().mul_scalar(2.0);
            v[0].add(&Var::constant(doubled)).sub(&v[0].detach())
        };
        let x = Tensor::from_vec(vec![0.5f64, -1.0, 2.0], &[3]);
        let err = gradcheck("deliberately wrong", wrong, std::slice::from_ref(&x)).unwrap_err();
        assert_eq!((err.input, err.index.clone()), (0, vec![0]));
        assert!((err.numeric - 2.0 * err.analytic).abs() < 1e-6, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("deliberately wrong") && msg.contains("Add"),
            "{msg}"
        );
        // The honest version passes.
        assert!(gradcheck("scale", |v: &[Var]| v[0].mul_scalar(2.0), &[x]).is_ok());
    }
}
