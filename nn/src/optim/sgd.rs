//! Stochastic gradient descent with momentum and (coupled, L2) weight decay, as PyTorch's
//! `torch.optim.SGD` with no dampening and no Nesterov term:
//!
//! ```text
//! g = g + wd * p                 (weight decay; wd = 0 for rank < 2)
//! b = g               at the first step,
//! b = momentum * b + g           after it       (momentum buffer; skipped when momentum = 0)
//! p = p - lr * b
//! ```

use super::{reject_leftovers, slots, take_tensor, zero_grads, Optimizer, OptimizerState, Slot};
use autograd::Var;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tensor::{Error, Result, Tensor};

/// SGD's hyperparameters (the learning rate comes with each step).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Momentum factor; 0 is plain gradient descent.
    pub momentum: f64,
    /// L2 penalty added to the gradient, for parameters of rank >= 2 only.
    pub weight_decay: f64,
}

/// The SGD optimizer; its state is one momentum buffer per parameter.
pub struct Sgd {
    /// Hyperparameters; may be changed between steps.
    pub config: SgdConfig,
    slots: Vec<Slot<Tensor>>,
}

impl Sgd {
    /// An optimizer over `params` (e.g. `model.named_params()`).
    pub fn new(params: Vec<(String, Var)>, config: SgdConfig) -> Sgd {
        Sgd {
            config,
            slots: slots(params),
        }
    }
}

/// `p -= lr * d`, in place unless `p`'s storage is shared (then `p` becomes a new tensor).
fn descend(p: &mut Tensor, d: &Tensor, lr: f64) -> Result<()> {
    let delta = d.mul_scalar(lr);
    match p.sub_(&delta) {
        Err(Error::SharedStorage) => {
            *p = p.try_sub(&delta)?;
            Ok(())
        }
        other => other,
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, lr: f64) -> Result<()> {
        let SgdConfig {
            momentum,
            weight_decay,
        } = self.config;
        for slot in &mut self.slots {
            let Some(mut g) = slot.grad() else {
                continue;
            };
            if slot.decay && weight_decay != 0.0 {
                g = g.try_add(&slot.var.value().mul_scalar(weight_decay))?;
            }
            if momentum != 0.0 {
                let buf = match &slot.state {
                    None => g.clone(),
                    Some(b) => b.mul_scalar(momentum).try_add(&g)?,
                };
                g = buf.clone();
                slot.state = Some(buf);
            }
            slot.var.update(|p| descend(p, &g, lr))?;
        }
        Ok(())
    }

    fn zero_grad(&self) {
        zero_grads(&self.slots);
    }

    fn state(&self) -> OptimizerState {
        let mut out = OptimizerState::default();
        for slot in &self.slots {
            if let Some(b) = &slot.state {
                out.tensors
                    .push((format!("{}.momentum_buffer", slot.name), b.clone()));
            }
        }
        out
    }

    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        let mut tensors: BTreeMap<String, Tensor> = state.tensors.into_iter().collect();
        let mut loaded = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            let key = format!("{}.momentum_buffer", slot.name);
            loaded.push(if tensors.contains_key(&key) {
                Some(take_tensor(&mut tensors, &key, &slot.var.value())?)
            } else {
                None
            });
        }
        reject_leftovers(tensors.keys().chain(state.scalars.keys()))?;
        for (slot, buf) in self.slots.iter_mut().zip(loaded) {
            slot.state = buf;
        }
        Ok(())
    }
}
