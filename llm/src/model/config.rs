//! Model and training configuration, with nanoGPT's key names, and the presets.
//!
//! A run's configuration is one flat JSON object using nanoGPT's keys (`n_layer`, `n_head`,
//! `n_embd`, `block_size`, `batch_size`, `dropout`, `bias`, `learning_rate`, `min_lr`,
//! `warmup_iters`, `lr_decay_iters`, `max_iters`, `weight_decay`, `beta1`, `beta2`,
//! `grad_clip`, `gradient_accumulation_steps`, `eval_interval`, `eval_iters`), plus a few of
//! our own (`model`, `vocab_size`, `seed`, `checkpoint_interval`). A `--config FILE` overrides
//! any subset of a preset's keys; an unknown key is an error naming it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// A `V x V` table: the next token's logits depend only on the current token.
    Bigram,
    /// GPT-2: learned positions, pre-LayerNorm blocks, GELU MLP, tied embeddings.
    Gpt,
}

/// Everything that defines a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which architecture to build.
    pub model: Architecture,
    /// Vocabulary size; 0 means "take it from the tokenizer".
    pub vocab_size: usize,
    /// Context length in tokens: the length of each training sequence, and for GPT the number
    /// of learned positions (the longest input it takes).
    pub block_size: usize,
    /// Number of transformer blocks (GPT only).
    pub n_layer: usize,
    /// Attention heads per block; must divide `n_embd` (GPT only).
    pub n_head: usize,
    /// Width of the residual stream (GPT only).
    pub n_embd: usize,
    /// Dropout probability in training, in `[0, 1)`.
    pub dropout: f64,
    /// Whether linear and layer-norm layers have biases (GPT only).
    pub bias: bool,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches whose gradients are averaged into one optimizer step.
    pub gradient_accumulation_steps: usize,
    /// Peak learning rate, reached at the end of the warmup.
    pub learning_rate: f64,
    /// Learning rate at the end of the cosine decay and after it.
    pub min_lr: f64,
    /// Steps of linear warmup.
    pub warmup_iters: usize,
    /// Step at which the cosine decay reaches `min_lr`.
    pub lr_decay_iters: usize,
    /// Optimizer steps in the whole run.
    pub max_iters: usize,
    /// AdamW's decoupled weight decay, applied to parameters of rank 2 or more.
    pub weight_decay: f64,
    /// AdamW's first-moment decay.
    pub beta1: f64,
    /// AdamW's second-moment decay.
    pub beta2: f64,
    /// Clip gradients to this global L2 norm; 0 disables clipping.
    pub grad_clip: f64,
    /// Steps between loss evaluations; 0 turns them off.
    pub eval_interval: usize,
    /// Batches per split in each loss evaluation.
    pub eval_iters: usize,
    /// Steps between checkpoints (one is always written at the end).
    pub checkpoint_interval: usize,
    /// Seed of the initial weights, batch sampling and dropout.
    pub seed: u64,
}

/// Names of the presets, the first being the default.
pub const PRESETS: [&str; 4] = ["char-small", "bigram", "shakespeare-char", "gpt2"];

/// A configuration problem, in one sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The default small character-level GPT: trains on Tiny Shakespeare on two cores in a few
    /// minutes (see the README for its measured loss and time).
    pub fn char_small() -> Config {
        Config {
            model: Architecture::Gpt,
            vocab_size: 0,
            block_size: 128,
            n_layer: 4,
            n_head: 4,
            n_embd: 128,
            dropout: 0.0,
            bias: false,
            batch_size: 16,
            gradient_accumulation_steps: 1,
            learning_rate: 4e-3,
            min_lr: 4e-4,
            warmup_iters: 50,
            lr_decay_iters: 1800,
            max_iters: 1800,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            grad_clip: 1.0,
            eval_interval: 300,
            eval_iters: 20,
            checkpoint_interval: 600,
            seed: 1337,
        }
    }

    /// A preset by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Config, ConfigError> {
        let base = Config::char_small();
        Ok(match name {
            "char-small" => base,
            "bigram" => Config {
                model: Architecture::Bigram,
                n_layer: 0,
                n_head: 0,
                n_embd: 0,
                block_size: 8,
                batch_size: 32,
                learning_rate: 1e-2,
                min_lr: 1e-3,
                warmup_iters: 0,
                weight_decay: 0.0,
                max_iters: 3000,
                lr_decay_iters: 3000,
                ..base
            },
            // nanoGPT's config/train_shakespeare_char.py.
            "shakespeare-char" => Config {
                block_size: 256,
                n_layer: 6,
                n_head: 6,
                n_embd: 384,
                dropout: 0.2,
                batch_size: 64,
                learning_rate: 1e-3,
                min_lr: 1e-4,
                warmup_iters: 100,
                lr_decay_iters: 5000,
                max_iters: 5000,
                beta2: 0.99,
                eval_interval: 250,
                eval_iters: 200,
                checkpoint_interval: 250,
                ..base
            },
            // GPT-2 124M with nanoGPT's train_gpt2.py optimizer settings.
            "gpt2" => Config {
                vocab_size: 50257,
                block_size: 1024,
                n_layer: 12,
                n_head: 12,
                n_embd: 768,
                dropout: 0.0,
                bias: true,
                batch_size: 12,
                gradient_accumulation_steps: 40,
                learning_rate: 6e-4,
                min_lr: 6e-5,
                warmup_iters: 2000,
                lr_decay_iters: 600_000,
                max_iters: 600_000,
                beta2: 0.95,
                eval_interval: 1000,
                eval_iters: 200,
                checkpoint_interval: 1000,
                ..base
            },
            other => {
                return Err(ConfigError(format!(
                    "unknown preset `{other}`; choose one of {}",
                    PRESETS.join(", ")
                )))
            }
        })
    }

    /// This configuration with the keys of a JSON object (from `--config`) overriding it.
    /// `source` names the object's origin in error messages.
    pub fn with_overrides(
        &self,
        overrides: &serde_json::Value,
        source: &str,
    ) -> Result<Config, ConfigError> {
        let serde_json::Value::Object(map) = overrides else {
            return Err(ConfigError(format!(
                "{source}: expected a JSON object of settings"
            )));
        };
        let mut merged = serde_json::to_value(self).expect("a config serializes");
        let known = merged.as_object_mut().expect("a config is an object");
        let unknown: Vec<&str> = map
            .keys()
            .filter(|k| !known.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(ConfigError(format!(
                "{source}: unknown key(s) {}",
                unknown.join(", ")
            )));
        }
        for (k, v) in map {
            known.insert(k.clone(), v.clone());
        }
        let cfg: Config =
            serde_json::from_value(merged).map_err(|e| ConfigError(format!("{source}: {e}")))?;
        cfg.validate()
            .map_err(|e| ConfigError(format!("{source}: {}", e.0)))?;
        Ok(cfg)
    }

    /// Checks relations between fields that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError(m));
        if self.model == Architecture::Gpt {
            if self.n_head == 0 || !self.n_embd.is_multiple_of(self.n_head) {
                return fail(format!(
                    "n_embd ({}) must be a positive multiple of n_head ({})",
                    self.n_embd, self.n_head
                ));
            }
            if self.n_layer == 0 {
                return fail("n_layer must be at least 1".into());
            }
        }
        if self.block_size == 0 || self.batch_size == 0 || self.gradient_accumulation_steps == 0 {
            return fail(
                "block_size, batch_size and gradient_accumulation_steps must be at least 1".into(),
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return fail(format!("dropout {} must be in [0, 1)", self.dropout));
        }
        Ok(())
    }

    /// Tokens consumed by one optimizer step.
    pub fn tokens_per_step(&self) -> usize {
        self.batch_size * self.block_size * self.gradient_accumulation_steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_named() {
        for name in PRESETS {
            Config::preset(name).unwrap().validate().unwrap();
        }
        let sc = Config::preset("shakespeare-char").unwrap();
        assert_eq!(
            (
                sc.n_layer,
                sc.n_head,
                sc.n_embd,
                sc.block_size,
                sc.batch_size
            ),
            (6, 6, 384, 256, 64)
        );
        assert_eq!(
            (
                sc.dropout,
                sc.learning_rate,
                sc.min_lr,
                sc.max_iters,
                sc.beta2
            ),
            (0.2, 1e-3, 1e-4, 5000, 0.99)
        );
        assert!(Config::preset("tiny")
            .unwrap_err()
            .to_string()
            .contains("char-small"));
    }

    #[test]
    fn overrides_use_nanogpt_keys_and_reject_unknown_ones() {
        let base = Config::char_small();
        let cfg = base
            .with_overrides(
                &serde_json::json!({"n_layer": 2, "learning_rate": 0.01}),
                "x.json",
            )
            .unwrap();
        assert_eq!(
            (cfg.n_layer, cfg.learning_rate, cfg.n_head),
            (2, 0.01, base.n_head)
        );
        let err = base
            .with_overrides(&serde_json::json!({"n_layers": 2, "lr": 1}), "x.json")
            .unwrap_err();
        assert!(
            err.0.contains("x.json") && err.0.contains("n_layers") && err.0.contains("lr"),
            "{err}"
        );
        let err = base
            .with_overrides(&serde_json::json!({"n_head": 5}), "x.json")
            .unwrap_err();
        assert!(err.0.contains("n_head"), "{err}");
        let err = base
            .with_overrides(&serde_json::json!({"dropout": "high"}), "x.json")
            .unwrap_err();
        assert!(err.0.contains("x.json"), "{err}");
    }
}
