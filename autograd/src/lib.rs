//! Reverse-mode automatic differentiation over [`tensor::Tensor`], and a float64 gradient
//! checker.
//!
//! Ops on [`Var`]s compute their value at once (eager, like PyTorch) and record a graph node
//! when an input requires a gradient. [`Var::backward`] walks the graph from a scalar output,
//! accumulates gradients into the leaves (parameters), and frees the graph. Inside
//! [`no_grad`] nothing is recorded.
//!
//! ```
//! use autograd::Var;
//! use tensor::Tensor;
//! let w = Var::parameter(Tensor::from_vec(vec![1.0f64, -2.0, 3.0], &[3]));
//! let x = Var::constant(Tensor::from_vec(vec![0.5f64, 0.5, 2.0], &[3]));
//! let loss = w.mul(&x).sum_all(); // loss = w . x
//! loss.backward();
//! assert_eq!(w.grad().unwrap().to_vec::<f64>(), vec![0.5, 0.5, 2.0]);
//! ```

#![warn(missing_docs)]

pub mod gradcheck;
mod graph;
pub mod op;
pub mod ops;
mod var;

pub use gradcheck::{
    gradcheck, gradcheck_params, gradcheck_with, GradcheckFailure, GradcheckOptions,
    GradcheckReport,
};
pub use graph::{grad_enabled, no_grad, no_grad_guard, NoGradGuard};
pub use op::{Backward, Op};
pub use var::Var;
