//! Optimizers: [`Sgd`] with momentum and [`AdamW`], behind one [`Optimizer`] trait.
//!
//! An optimizer is built from named parameters (`model.named_params()`) and updates, at each
//! [`Optimizer::step`], every parameter that is trainable (not frozen) and has a gradient;
//! others are skipped, as PyTorch skips parameters whose `.grad` is `None`. A variable listed
//! twice (tied weights) is updated once. Weight decay applies only to parameters of rank 2 or
//! more (weight matrices and embeddings); biases and normalization weights never decay, the
//! grouping nanoGPT uses. The learning rate is passed to each step, so a [`crate::schedule`]
//! drives it.
//!
//! State (moments, momentum buffers, step counts) lives per parameter name and comes out as an
//! [`OptimizerState`]: named tensors plus scalars, which save to and load from a safetensors
//! file.
//!
//! # Gradient accumulation
//!
//! Gradients add up across backward passes until [`Optimizer::zero_grad`]. To train on a batch
//! of `k * b` examples in `k` micro-batches of `b`, scale each micro-batch's mean loss by
//! `1 / k` before its backward pass:
//!
//! ```text
//! opt.zero_grad();
//! for micro in 0..k {
//!     let loss = model.loss(&batch[micro]);   // mean over the b examples
//!     loss.mul_scalar(1.0 / k as f64).backward();
//! }
//! opt.step(lr)?;
//! ```
//!
//! The accumulated gradient is `sum_i (1/k) grad(mean_i) = grad(mean over all k b examples)`,
//! the gradient of one big batch, so learning rates and clipping thresholds carry over
//! unchanged (nanoGPT divides its loss by `gradient_accumulation_steps` for this reason). The
//! test `nn/tests/accumulation.rs` holds the two to 1e-12.

mod adamw;
mod sgd;

pub use adamw::{AdamW, AdamWConfig};
pub use sgd::{Sgd, SgdConfig};

use crate::state_dict::{self, StateDict};
use autograd::Var;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use tensor::{DType, Error, Result, Tensor};

/// An optimizer over a fixed list of named parameters.
pub trait Optimizer {
    /// Updates every trainable parameter that has a gradient, with learning rate `lr`.
    /// Gradients are left in place (clear them with [`Optimizer::zero_grad`]).
    fn step(&mut self, lr: f64) -> Result<()>;

    /// Clears the gradients of all parameters (sets them to none, as PyTorch does).
    fn zero_grad(&self);

    /// The optimizer's state: per-parameter tensors named `<param>.<buffer>` and scalars such
    /// as `<param>.step`. The tensors share storage with the optimizer's (no copy); the next
    /// step copies a buffer before updating it if the caller still holds it.
    fn state(&self) -> OptimizerState;

    /// Restores a state taken with [`Optimizer::state`] from an optimizer of the same kind
    /// over parameters of the same names and shapes. A name that matches no parameter, a
    /// shape that differs, or an incomplete entry is an error and leaves the optimizer as it
    /// was. Parameters without an entry start fresh.
    fn load_state(&mut self, state: OptimizerState) -> Result<()>;
}

/// An optimizer's state: named tensors and named scalars.
#[derive(Clone, Debug, Default)]
pub struct OptimizerState {
    /// Per-parameter buffers, named `<param>.<buffer>`.
    pub tensors: Vec<(String, Tensor)>,
    /// Counters such as `<param>.step`.
    pub scalars: BTreeMap<String, f64>,
}

impl OptimizerState {
    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Writes the tensors (floats as `dtype_on_disk`) to a safetensors file, the scalars in its
    /// metadata as decimal strings that read back exactly.
    pub fn save(&self, path: impl AsRef<Path>, dtype_on_disk: DType) -> state_dict::Result<()> {
        let scalars = self
            .scalars
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        state_dict::save_with_metadata(path, &self.tensors, dtype_on_disk, &scalars)
    }

    /// Reads a state written by [`OptimizerState::save`] (tensors keep their on-disk dtype;
    /// [`Optimizer::load_state`] converts them to each parameter's).
    pub fn load(path: impl AsRef<Path>) -> state_dict::Result<OptimizerState> {
        let dict: StateDict = state_dict::load(path)?;
        let mut scalars = BTreeMap::new();
        for (k, v) in dict.metadata() {
            let value = v.parse::<f64>().map_err(|_| state_dict::Error::Invalid {
                path: dict.path().to_path_buf(),
                problem: format!("optimizer scalar `{k}` is `{v}`, not a number"),
            })?;
            scalars.insert(k, value);
        }
        let tensors = dict
            .names()
            .into_iter()
            .filter_map(|n| dict.tensor(&n).map(|t| (n, t)))
            .collect();
        Ok(OptimizerState { tensors, scalars })
    }
}

/// One parameter as an optimizer holds it, with its per-parameter state `S`.
pub(crate) struct Slot<S> {
    pub(crate) name: String,
    pub(crate) var: Var,
    /// Whether weight decay applies (rank >= 2).
    pub(crate) decay: bool,
    pub(crate) state: Option<S>,
}

impl<S> Slot<S> {
    /// The gradient to apply, if this parameter trains and has one.
    pub(crate) fn grad(&self) -> Option<Tensor> {
        self.var.requires_grad().then(|| self.var.grad()).flatten()
    }
}

/// Slots for `params`, each variable once (the first name wins), no state yet.
pub(crate) fn slots<S>(params: Vec<(String, Var)>) -> Vec<Slot<S>> {
    let mut seen = HashSet::new();
    params
        .into_iter()
        .filter(|(_, v)| seen.insert(v.id()))
        .map(|(name, var)| Slot {
            decay: var.rank() >= 2,
            name,
            var,
            state: None,
        })
        .collect()
}

/// A contiguous copy of `t` that owns its storage.
pub(crate) fn owned_copy(t: &Tensor) -> Result<Tensor> {
    let mut copy = t.try_full_like(t.shape(), 0.0)?;
    copy.copy_(t)?;
    Ok(copy)
}

/// Takes a state tensor for `slot_name.buffer`, converted to the parameter's dtype and device
/// and checked against its shape.
pub(crate) fn take_tensor(
    tensors: &mut BTreeMap<String, Tensor>,
    key: &str,
    like: &Tensor,
) -> Result<Tensor> {
    let t = tensors
        .remove(key)
        .ok_or_else(|| Error::InvalidArgument(format!("optimizer state: `{key}` is missing")))?;
    if t.shape() != like.shape() {
        return Err(Error::InvalidArgument(format!(
            "optimizer state: `{key}` has shape {:?}, the parameter {:?}",
            t.shape(),
            like.shape()
        )));
    }
    t.try_to_dtype(like.dtype())?.try_to_device(like.device())
}

/// Fails when a state holds names that no parameter claimed.
pub(crate) fn reject_leftovers<'a>(names: impl Iterator<Item = &'a String>) -> Result<()> {
    let left: Vec<&str> = names.map(String::as_str).collect();
    if left.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "optimizer state: entries match no parameter: {}",
            left.join(", ")
        )))
    }
}

/// Clears the gradient of every slot.
pub(crate) fn zero_grads<S>(slots: &[Slot<S>]) {
    slots.iter().for_each(|s| s.var.zero_grad());
}
