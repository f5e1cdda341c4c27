//! LoRA: a trainable low-rank update beside a frozen linear layer.
//!
//! The adapted layer computes `y = x W^T + b + (alpha / r) dropout(x) A^T B^T` with `A (r, in)`
//! and `B (out, r)`. `B` starts at zero, so the adapted model starts identical to the base; `A`
//! starts random Gaussian, `N(0, 1/r)` (the LoRA paper: Gaussian `A`, zero `B`). Merging folds
//! the update into the weight, `W += (alpha / r) B A`, and unmerging subtracts it again.
//! [`apply`] attaches adapters to chosen layers of an existing model by name, and
//! [`mark_only_adapters_trainable`] freezes everything else. [`save_adapters`] and
//! [`load_adapters`] write and read the adapters alone (`*.lora_a`, `*.lora_b`), a file of a
//! few megabytes beside a base model that stays as it was.
//!
//! ```text
//! let adapted = lora::apply(&mut model, &cfg, &mut rng, &dropout_rng);  // e.g. attn.qkv
//! lora::mark_only_adapters_trainable(&model);
//! // ... train with AdamW::new(model.named_params(), ..) ...
//! lora::save_adapters(&model, "adapters.safetensors")?;
//! lora::merge(&mut model);   // or later: apply to a fresh base, then load_adapters
//! ```

use crate::dropout::{Dropout, SharedRng};
use crate::init;
use crate::module::{join, Module};
use crate::state_dict;
use autograd::{no_grad, Var};
use std::path::Path;
use tensor::{DType, Rng};

/// Rank, scaling and dropout of the adapters, and which layers get one.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraConfig {
    /// Rank `r` of the update.
    pub rank: usize,
    /// Scale numerator: the update is multiplied by `alpha / r`.
    pub alpha: f64,
    /// Dropout on the adapter's input.
    pub dropout: f64,
    /// Layer-name suffixes to adapt, e.g. `["attn.qkv", "attn.proj"]` (a name matches when it
    /// equals a target or ends with `.` + target).
    pub targets: Vec<String>,
}

/// The `A` and `B` factors of one adapted layer.
pub struct LoraAdapter {
    /// `A (r, in)`, random at the start.
    pub a: Var,
    /// `B (out, r)`, zero at the start.
    pub b: Var,
    /// `alpha / r`.
    pub scale: f64,
    dropout: Dropout,
    merged: bool,
}

impl LoraAdapter {
    /// A fresh adapter for a `(out, in)` layer: `A ~ N(0, 1/r)`, `B = 0`.
    pub fn new(
        inputs: usize,
        outputs: usize,
        cfg: &LoraConfig,
        rng: &mut Rng,
        dropout_rng: SharedRng,
    ) -> LoraAdapter {
        LoraAdapter {
            a: init::normal(&[cfg.rank, inputs], 1.0 / cfg.rank as f64, rng),
            b: init::zeros(&[outputs, cfg.rank]),
            scale: cfg.alpha / cfg.rank as f64,
            dropout: Dropout::new(cfg.dropout, dropout_rng),
            merged: false,
        }
    }

    /// The update `(alpha / r) dropout(x) A^T B^T` (callers skip it once merged).
    pub fn forward(&self, x: &Var) -> Var {
        self.dropout
            .forward(x)
            .matmul(&self.a.t())
            .matmul(&self.b.t())
            .mul_scalar(self.scale)
    }

    /// True once the update lives in the base weight.
    pub fn is_merged(&self) -> bool {
        self.merged
    }

    /// `(alpha / r) B A`, the update to the base weight.
    fn delta(&self) -> tensor::Tensor {
        self.b
            .value()
            .matmul(&self.a.value())
            .mul_scalar(self.scale)
    }

    pub(crate) fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        f(&join(prefix, "lora_a"), &self.a);
        f(&join(prefix, "lora_b"), &self.b);
    }

    pub(crate) fn set_training(&mut self, training: bool) {
        self.dropout.set_training(training);
    }
}

/// True when `name` is one of `targets` or ends with `.target`.
fn matches(name: &str, targets: &[String]) -> bool {
    targets
        .iter()
        .any(|t| name == t || name.ends_with(&format!(".{t}")))
}

/// Attaches a fresh adapter to every linear layer whose name matches `cfg.targets`; returns
/// the names adapted. Layers that already have one are left as they are.
pub fn apply(
    model: &mut dyn Module,
    cfg: &LoraConfig,
    rng: &mut Rng,
    dropout_rng: &SharedRng,
) -> Vec<String> {
    let mut adapted = vec![];
    model.visit_linears_mut("", &mut |name, linear| {
        if linear.lora.is_none() && matches(name, &cfg.targets) {
            let (i, o) = (linear.in_features(), linear.out_features());
            linear.lora = Some(LoraAdapter::new(i, o, cfg, rng, dropout_rng.clone()));
            adapted.push(name.to_string());
        }
    });
    adapted
}

/// True for the name of an adapter factor: `lora_a` or `lora_b`, alone or after a `.`.
pub fn is_adapter_param(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    last == "lora_a" || last == "lora_b"
}

/// The adapters' `A` and `B` factors with their dotted names, in model order.
pub fn adapter_params(model: &dyn Module) -> Vec<(String, Var)> {
    model
        .named_params()
        .into_iter()
        .filter(|(name, _)| is_adapter_param(name))
        .collect()
}

/// Freezes every parameter except the adapters' `A` and `B`.
pub fn mark_only_adapters_trainable(model: &dyn Module) {
    for (name, p) in model.named_params() {
        p.set_requires_grad(is_adapter_param(&name));
    }
}

/// Saves the adapters alone (every `*.lora_a` and `*.lora_b`, as `f32`) to a safetensors file.
pub fn save_adapters(model: &dyn Module, path: impl AsRef<Path>) -> state_dict::Result<()> {
    let tensors: Vec<_> = adapter_params(model)
        .into_iter()
        .map(|(name, v)| (name, v.value()))
        .collect();
    state_dict::save(path, &tensors, DType::F32)
}

/// Loads adapters saved by [`save_adapters`] into a model that carries the same adapters
/// (attach them first with [`apply`] and the same configuration). Strict: the file must hold
/// exactly the model's adapter factors, with the same shapes; every difference is reported in
/// one error and nothing is loaded. The adapters must not be merged (see [`unmerge`]), since
/// the merged weights hold the old factors.
pub fn load_adapters(model: &mut dyn Module, path: impl AsRef<Path>) -> state_dict::Result<()> {
    let path = path.as_ref();
    let mut merged = vec![];
    model.visit_linears_mut("", &mut |name, linear| {
        if linear.lora.as_ref().is_some_and(LoraAdapter::is_merged) {
            merged.push(name.to_string());
        }
    });
    if !merged.is_empty() {
        return Err(state_dict::Error::Invalid {
            path: path.to_path_buf(),
            problem: format!(
                "cannot load adapters while they are merged into {}; unmerge first",
                merged.join(", ")
            ),
        });
    }
    let dict = state_dict::load(path)?;
    state_dict::assign(&adapter_params(model), &dict, true)?;
    Ok(())
}

/// Folds every adapter into its base weight (`W += (alpha / r) B A`); forward passes then cost
/// what the base model costs and give the same outputs.
pub fn merge(model: &mut dyn Module) {
    model.visit_linears_mut("", &mut |_, linear| {
        if let Some(adapter) = &mut linear.lora {
            if !adapter.merged {
                no_grad(|| {
                    linear
                        .weight
                        .set_value(linear.weight.value().add(&adapter.delta()))
                });
                adapter.merged = true;
            }
        }
    });
}

/// Takes every merged adapter's update back out of its base weight.
pub fn unmerge(model: &mut dyn Module) {
    model.visit_linears_mut("", &mut |_, linear| {
        if let Some(adapter) = &mut linear.lora {
            if adapter.merged {
                no_grad(|| {
                    linear
                        .weight
                        .set_value(linear.weight.value().sub(&adapter.delta()))
                });
                adapter.merged = false;
            }
        }
    });
}
