//! AdamW (Loshchilov and Hutter): Adam with weight decay decoupled from the gradient.
//!
//! For a parameter `p` with gradient `g` at step `t` (from 1), in PyTorch's order:
//!
//! ```text
//! p = p * (1 - lr * wd)                      (decoupled weight decay; wd = 0 for rank < 2)
//! m = m + (1 - beta1) * (g - m)              (first moment, PyTorch's lerp)
//! v = beta2 * v + (1 - beta2) * g^2          (second moment)
//! p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//! ```
//!
//! Each parameter runs through one fused in-place kernel ([`tensor::Tensor::adamw_step_`]), and
//! parameters are updated in parallel: the threads of the kernel pool take whole tensors from
//! one queue (each tensor's kernel then runs on its thread alone), where one tensor at a time
//! split over the threads would leave them idle at the end of each. Each element's update is independent, so results do not depend on
//! the thread count.

use super::{
    owned_copy, reject_leftovers, slots, take_tensor, zero_grads, Optimizer, OptimizerState, Slot,
};
use autograd::Var;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tensor::{for_each_in_parallel, AdamWStep, Error, Result, Tensor};

/// AdamW's hyperparameters (the learning rate comes with each step).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// Decay rate of the first moment.
    pub beta1: f64,
    /// Decay rate of the second moment.
    pub beta2: f64,
    /// Added to the denominator for stability.
    pub eps: f64,
    /// Decoupled weight decay, applied to parameters of rank >= 2 only.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// One parameter's moments and its own step count (a parameter that missed steps, having had
/// no gradient, has a smaller count, as in PyTorch).
struct Moments {
    m: Tensor,
    v: Tensor,
    step: u64,
}

/// The AdamW optimizer.
pub struct AdamW {
    /// Hyperparameters; may be changed between steps.
    pub config: AdamWConfig,
    slots: Vec<Slot<Moments>>,
}

impl AdamWConfig {
    /// The kernel's hyperparameters for one step of one parameter.
    fn step_params(&self, lr: f64, decay: bool, step: u64) -> AdamWStep {
        AdamWStep {
            lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: if decay { self.weight_decay } else { 0.0 },
            step,
        }
    }
}

impl AdamW {
    /// An optimizer over `params` (e.g. `model.named_params()`); moments are created at each
    /// parameter's first step.
    pub fn new(params: Vec<(String, Var)>, config: AdamWConfig) -> AdamW {
        AdamW {
            config,
            slots: slots(params),
        }
    }
}

/// The fused update of one parameter. The kernel needs all three buffers uniquely owned and
/// checks that before writing anything; when one is shared (a live graph or a saved state
/// still holds it), each is replaced by its own copy and the update runs on the copies.
fn update(p: &mut Tensor, g: &Tensor, s: &mut Moments, h: &AdamWStep) -> Result<()> {
    match p.adamw_step_(g, &mut s.m, &mut s.v, h) {
        Err(Error::SharedStorage) => {
            *p = owned_copy(p)?;
            s.m = owned_copy(&s.m)?;
            s.v = owned_copy(&s.v)?;
            p.adamw_step_(g, &mut s.m, &mut s.v, h)
        }
        other => other,
    }
}

/// One step of one parameter, if it trains and has a gradient.
fn step_one(slot: &mut Slot<Moments>, config: &AdamWConfig, lr: f64) -> Result<()> {
    let Some(g) = slot.grad() else {
        return Ok(());
    };
    let step = slot.state.as_ref().map_or(0, |s| s.step) + 1;
    let h = config.step_params(lr, slot.decay, step);
    let state = slot.state.get_or_insert_with(|| Moments {
        m: g.zeros_like(),
        v: g.zeros_like(),
        step: 0,
    });
    slot.var.update(|p| update(p, &g, state, &h))?;
    state.step = step;
    Ok(())
}

impl Optimizer for AdamW {
    fn step(&mut self, lr: f64) -> Result<()> {
        let config = self.config;
        let first_error = std::sync::Mutex::new(None);
        for_each_in_parallel(self.slots.iter_mut(), |slot| {
            if let Err(e) = step_one(slot, &config, lr) {
                first_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(e);
            }
        });
        match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn zero_grad(&self) {
        zero_grads(&self.slots);
    }

    fn state(&self) -> OptimizerState {
        let mut out = OptimizerState::default();
        for slot in &self.slots {
            if let Some(s) = &slot.state {
                out.tensors
                    .push((format!("{}.exp_avg", slot.name), s.m.clone()));
                out.tensors
                    .push((format!("{}.exp_avg_sq", slot.name), s.v.clone()));
                out.scalars
                    .insert(format!("{}.step", slot.name), s.step as f64);
            }
        }
        out
    }

    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        let mut tensors: BTreeMap<String, Tensor> = state.tensors.into_iter().collect();
        let mut scalars = state.scalars;
        let mut loaded = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            let Some(step) = scalars.remove(&format!("{}.step", slot.name)) else {
                loaded.push(None);
                continue;
            };
            if step < 1.0 || step.fract() != 0.0 {
                return Err(Error::InvalidArgument(format!(
                    "optimizer state: `{}.step` is {step}, not a positive whole number",
                    slot.name
                )));
            }
            let p = slot.var.value();
            loaded.push(Some(Moments {
                m: take_tensor(&mut tensors, &format!("{}.exp_avg", slot.name), &p)?,
                v: take_tensor(&mut tensors, &format!("{}.exp_avg_sq", slot.name), &p)?,
                step: step as u64,
            }));
        }
        reject_leftovers(tensors.keys().chain(scalars.keys()))?;
        for (slot, state) in self.slots.iter_mut().zip(loaded) {
            slot.state = state;
        }
        Ok(())
    }
}
