//! Model and training configuration, with nanoGPT's key names, and the presets.
//!
//! A run's configuration is one flat JSON object using nanoGPT's keys (`n_layer`, `n_head`,
//! `n_embd`, `block_size`, `batch_size`, `dropout`, `bias`, `learning_rate`, `min_lr`,
//! `warmup_iters`, `lr_decay_iters`, `max_iters`, `weight_decay`, `beta1`, `beta2`,
//! `grad_clip`, `gradient_accumulation_steps`, `eval_interval`, `eval_iters`), plus a few of
//! our own (`model`, `vocab_size`, `seed`, `checkpoint_interval`, `norm`). A `--config FILE`
//! overrides any subset of a preset's keys; an unknown key is an error naming it.

use crate::model::heads::Pool;
use nn::NormKind;
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
    /// Llama as llama2.c has it: RMS norms, rotary positions, grouped-query attention, SwiGLU.
    Llama,
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
    /// of learned positions (the longest input it takes). Also read as `max_seq_len`.
    #[serde(alias = "max_seq_len")]
    pub block_size: usize,
    /// Number of transformer blocks (GPT and Llama). Also read as `n_layers`.
    #[serde(alias = "n_layers")]
    pub n_layer: usize,
    /// Attention heads per block; must divide `n_embd` (GPT and Llama). Also read as `n_heads`.
    #[serde(alias = "n_heads")]
    pub n_head: usize,
    /// Width of the residual stream (GPT and Llama). Also read as `dim`.
    #[serde(alias = "dim")]
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
    /// Classes of the classification head; 0 for none (a language model only).
    #[serde(default)]
    pub n_classes: usize,
    /// How the classification head reads an example: `last`, `position`, `first` or `mean`
    /// (see [`crate::model::heads::Pool`]).
    #[serde(default)]
    pub pool: Pool,
    /// Rank of the LoRA adapters on the transformer's linear layers; 0 for none.
    #[serde(default)]
    pub lora_rank: usize,
    /// LoRA's scale numerator: an adapter's update is multiplied by `lora_alpha / lora_rank`.
    #[serde(default)]
    pub lora_alpha: f64,
    /// Llama: key/value heads, dividing `n_head` (0: as many as `n_head`). Also read as
    /// `n_kv_heads`.
    #[serde(default, alias = "n_kv_heads", skip_serializing_if = "is_zero")]
    pub n_kv_head: usize,
    /// Llama: the width of the SwiGLU block.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hidden_dim: usize,
    /// Llama: the RMS norms' epsilon (0: 1e-5).
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub norm_eps: f64,
    /// Llama: the rotary embeddings' base (0: 10,000).
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub rope_theta: f64,
    /// Llama: an output head of its own instead of the token embedding's transpose.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub untied_head: bool,
    /// GPT: the blocks' and the final norm, `layer` (the default), `batch`, `rms` or `none`
    /// (see `nn::norm`).
    #[serde(default, skip_serializing_if = "is_layer_norm")]
    pub norm: NormKind,
}

fn is_layer_norm(n: &NormKind) -> bool {
    *n == NormKind::Layer
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}

/// llama2.c's names of keys, and ours.
const ALIASES: [(&str, &str); 5] = [
    ("dim", "n_embd"),
    ("n_layers", "n_layer"),
    ("n_heads", "n_head"),
    ("n_kv_heads", "n_kv_head"),
    ("max_seq_len", "block_size"),
];

/// The keys left out of a saved configuration when they hold their defaults (those only Llama
/// reads, and the GPT's `norm`), which a configuration file may still set.
const DEFAULTED_KEYS: [&str; 6] = [
    "n_kv_head",
    "hidden_dim",
    "norm_eps",
    "rope_theta",
    "untied_head",
    "norm",
];

/// Names of the presets, the first being the default.
pub const PRESETS: [&str; 6] = [
    "char-small",
    "bigram",
    "shakespeare-char",
    "stories-small",
    "tinystories",
    "gpt2",
];

/// Upper bounds of the size keys: far beyond any model this crate trains, and low enough that
/// no size computed from them overflows or asks for an allocation that cannot exist.
pub struct Limits {
    /// Token ids are `u32`.
    pub vocab_size: usize,
    /// Positions of the context.
    pub block_size: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Sequences per micro-batch, micro-batches per step, batches per evaluation.
    pub batch: usize,
    /// Classes of a classification head.
    pub n_classes: usize,
}

/// The bounds every configuration is checked against.
pub const LIMITS: Limits = Limits {
    vocab_size: 1 << 31,
    block_size: 1 << 20,
    n_embd: 1 << 16,
    n_layer: 1 << 10,
    batch: 1 << 20,
    n_classes: 1 << 16,
};

/// A configuration problem, in one sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Parses a JSON object, refusing a key that appears twice at its top level (a plain parse
/// would keep the last one silently).
pub fn parse_object(
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, serde_json::Error> {
    use serde::de::{Deserializer, MapAccess, Visitor};

    struct UniqueKeys;

    impl<'de> Visitor<'de> for UniqueKeys {
        type Value = serde_json::Map<String, serde_json::Value>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut map = serde_json::Map::new();
            while let Some((key, value)) = access.next_entry::<String, serde_json::Value>()? {
                if map.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "the key {key:?} appears twice"
                    )));
                }
                map.insert(key, value);
            }
            Ok(map)
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    let map = de.deserialize_map(UniqueKeys)?;
    de.end()?;
    Ok(map)
}

/// The keys of Hugging Face model configurations (Llama, Mistral, ...), by which a
/// configuration this crate cannot load is recognised. (llama2.c's own keys, `dim`, `n_layers`,
/// `hidden_dim`, are read: see [`Architecture::Llama`].)
const OTHER_FAMILY_KEYS: [&str; 3] = ["num_hidden_layers", "hidden_size", "intermediate_size"];

/// An error for a JSON object that is another model family's configuration, if it is one.
pub fn other_family(map: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let key = OTHER_FAMILY_KEYS.iter().find(|k| map.contains_key(**k))?;
    let family = map
        .get("model_type")
        .and_then(|t| t.as_str())
        .unwrap_or("Llama");
    Some(format!(
        "this is a {family} configuration from Hugging Face (it has `{key}`); models here are \
         configured with n_layer, n_head and n_embd (llama2.c's dim, n_layers and n_heads for \
         \"model\": \"llama\")"
    ))
}

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
            n_classes: 0,
            pool: Pool::Last,
            lora_rank: 0,
            lora_alpha: 0.0,
            n_kv_head: 0,
            hidden_dim: 0,
            norm_eps: 0.0,
            rope_theta: 0.0,
            untied_head: false,
            norm: NormKind::Layer,
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
            // A small English base model for fine-tuning: char-small's shape over a BPE
            // vocabulary, trained on the shipped TinyStories sample (see the README).
            "stories-small" => Config {
                learning_rate: 3e-3,
                min_lr: 3e-4,
                warmup_iters: 50,
                lr_decay_iters: 1500,
                max_iters: 1500,
                eval_interval: 250,
                checkpoint_interval: 500,
                ..base
            },
            // A Llama of 1.0M parameters with a 2,048-token vocabulary: stories-small's width,
            // depth, context and schedule, with grouped key/value heads and SwiGLU.
            "tinystories" => Config {
                model: Architecture::Llama,
                n_head: 4,
                n_kv_head: 2,
                hidden_dim: 352,
                learning_rate: 3e-3,
                min_lr: 3e-4,
                warmup_iters: 50,
                lr_decay_iters: 1500,
                max_iters: 1500,
                eval_interval: 250,
                checkpoint_interval: 500,
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
        let mut unknown = vec![];
        let mut given = std::collections::BTreeMap::new();
        for (key, v) in map {
            let name = ALIASES
                .iter()
                .find(|(alias, _)| alias == key)
                .map_or(key.as_str(), |(_, name)| name);
            if !known.contains_key(name) && !DEFAULTED_KEYS.contains(&name) {
                unknown.push(key.as_str());
            } else if given.insert(name, v).is_some() {
                return Err(ConfigError(format!(
                    "{source}: {name} is given twice (once by another name)"
                )));
            }
        }
        if !unknown.is_empty() {
            return Err(ConfigError(format!(
                "{source}: unknown key(s) {}",
                unknown.join(", ")
            )));
        }
        for (k, v) in given {
            known.insert(k.to_string(), v.clone());
        }
        let cfg: Config =
            serde_json::from_value(merged).map_err(|e| ConfigError(format!("{source}: {e}")))?;
        let alias = map.keys().find(|k| ALIASES.iter().any(|(a, _)| a == k));
        if let Some(alias) = alias.filter(|_| cfg.model != Architecture::Llama) {
            return Err(ConfigError(format!(
                "{source}: `{alias}` is llama2.c's name for a Llama's key: add \"model\": \"llama\" \
                 (or use our name for the GPT)"
            )));
        }
        cfg.validate()
            .map_err(|e| ConfigError(format!("{source}: {}", e.0)))?;
        Ok(cfg)
    }

    /// Checks every key: sizes at least 1 and at most a bound that keeps the model and its
    /// arithmetic within reach (see [`LIMITS`]), `n_embd` a multiple of `n_head`, rates and
    /// coefficients finite and in range, and the schedule in order. A `vocab_size` of 0 passes
    /// (it means "take it from the tokenizer"); [`Config::validate_resolved`] refuses it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError(m));
        for (key, value, max) in self.sizes() {
            if value > max {
                return fail(format!("{key} {value} is larger than the limit of {max}"));
            }
            if value == 0 && key != "vocab_size" {
                return fail(format!("{key} must be at least 1"));
            }
        }
        if self.n_classes > LIMITS.n_classes {
            return fail(format!(
                "n_classes {} is larger than the limit of {}",
                self.n_classes, LIMITS.n_classes
            ));
        }
        if self.n_classes > 0 && self.model == Architecture::Bigram {
            return fail(
                "a classification head (n_classes) needs a transformer (gpt or llama)".into(),
            );
        }
        if self.lora_rank > 0 {
            if self.model == Architecture::Bigram || self.lora_rank > self.n_embd {
                return fail(format!(
                    "lora_rank {} needs a transformer (gpt or llama) and at most n_embd ({})",
                    self.lora_rank, self.n_embd
                ));
            }
            if !(self.lora_alpha.is_finite() && self.lora_alpha > 0.0) {
                return fail(format!(
                    "lora_alpha {} must be a finite number above 0",
                    self.lora_alpha
                ));
            }
        }
        if self.model != Architecture::Bigram && !self.n_embd.is_multiple_of(self.n_head) {
            return fail(format!(
                "n_embd ({}) must be a multiple of n_head ({})",
                self.n_embd, self.n_head
            ));
        }
        if self.model != Architecture::Gpt && self.norm != NormKind::Layer {
            return fail(format!(
                "norm \"{}\" is read by the gpt model only (the llama model has RMS norms)",
                self.norm.name()
            ));
        }
        if self.model == Architecture::Llama {
            self.validate_llama()?;
        } else if self.n_kv_head > 0
            || self.hidden_dim > 0
            || self.norm_eps != 0.0
            || self.rope_theta != 0.0
            || self.untied_head
        {
            return fail(
                "n_kv_head, hidden_dim, norm_eps, rope_theta and untied_head are read by the \
                 llama model only (set \"model\": \"llama\")"
                    .into(),
            );
        }
        let in_unit = |key: &str, v: f64| -> Result<(), ConfigError> {
            match (0.0..1.0).contains(&v) {
                true => Ok(()),
                false => fail(format!("{key} {v} must be in [0, 1)")),
            }
        };
        in_unit("dropout", self.dropout)?;
        in_unit("beta1", self.beta1)?;
        in_unit("beta2", self.beta2)?;
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return fail(format!(
                "learning_rate {} must be a finite number above 0",
                self.learning_rate
            ));
        }
        if !(self.min_lr.is_finite() && (0.0..=self.learning_rate).contains(&self.min_lr)) {
            return fail(format!(
                "min_lr {} must be between 0 and learning_rate ({})",
                self.min_lr, self.learning_rate
            ));
        }
        for (key, v) in [
            ("grad_clip", self.grad_clip),
            ("weight_decay", self.weight_decay),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return fail(format!("{key} {v} must be a finite number >= 0"));
            }
        }
        if self.warmup_iters > self.lr_decay_iters {
            return fail(format!(
                "warmup_iters ({}) must not exceed lr_decay_iters ({})",
                self.warmup_iters, self.lr_decay_iters
            ));
        }
        Ok(())
    }

    /// [`Config::validate`], and a vocabulary size set: the configuration of a model to build.
    pub fn validate_resolved(&self) -> Result<(), ConfigError> {
        self.validate()?;
        match self.vocab_size {
            0 => Err(ConfigError("vocab_size must be at least 1".into())),
            _ => Ok(()),
        }
    }

    /// The keys only Llama reads: the head size is even (rotary pairs), `n_kv_head` divides
    /// `n_head`, `hidden_dim` is set, and the epsilon and base are finite and not negative.
    fn validate_llama(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError(m));
        if !(self.n_embd / self.n_head).is_multiple_of(2) {
            return fail(format!(
                "llama: the head size n_embd / n_head ({}) must be even for rotary embeddings",
                self.n_embd / self.n_head
            ));
        }
        if !self.n_head.is_multiple_of(self.kv_heads()) {
            return fail(format!(
                "llama: n_kv_head ({}) must divide n_head ({})",
                self.n_kv_head, self.n_head
            ));
        }
        if self.hidden_dim == 0 || self.hidden_dim > 4 * LIMITS.n_embd {
            return fail(format!(
                "llama: hidden_dim {} must be from 1 to {}",
                self.hidden_dim,
                4 * LIMITS.n_embd
            ));
        }
        for (key, v) in [("norm_eps", self.norm_eps), ("rope_theta", self.rope_theta)] {
            if !(v.is_finite() && v >= 0.0) {
                return fail(format!("llama: {key} {v} must be a finite number >= 0"));
            }
        }
        Ok(())
    }

    /// Each size key with its value and its upper bound. The transformer's keys count only for
    /// GPT and Llama.
    fn sizes(&self) -> Vec<(&'static str, usize, usize)> {
        let mut sizes = vec![
            ("vocab_size", self.vocab_size, LIMITS.vocab_size),
            ("block_size", self.block_size, LIMITS.block_size),
            ("batch_size", self.batch_size, LIMITS.batch),
            (
                "gradient_accumulation_steps",
                self.gradient_accumulation_steps,
                LIMITS.batch,
            ),
            ("eval_iters", self.eval_iters, LIMITS.batch),
        ];
        if self.model != Architecture::Bigram {
            sizes.extend([
                ("n_layer", self.n_layer, LIMITS.n_layer),
                ("n_head", self.n_head, LIMITS.n_embd),
                ("n_embd", self.n_embd, LIMITS.n_embd),
            ]);
        }
        sizes
    }

    /// Llama's key/value heads (`n_kv_head`, or `n_head` when 0).
    pub fn kv_heads(&self) -> usize {
        match self.n_kv_head {
            0 => self.n_head,
            n => n,
        }
    }

    /// Llama's RMS norm epsilon (`norm_eps`, or 1e-5 when 0).
    pub fn norm_eps(&self) -> f64 {
        match self.norm_eps {
            0.0 => crate::model::llama::NORM_EPS,
            e => e,
        }
    }

    /// Llama's rotary base (`rope_theta`, or 10,000 when 0).
    pub fn rope_theta(&self) -> f64 {
        match self.rope_theta {
            0.0 => crate::model::llama::ROPE_THETA,
            t => t,
        }
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
    fn every_key_is_validated_and_named() {
        let bad = [
            (r#"{"n_embd": 0}"#, "n_embd must be at least 1"),
            (r#"{"n_head": 0}"#, "n_head must be at least 1"),
            (r#"{"n_layer": 0}"#, "n_layer must be at least 1"),
            (r#"{"n_head": 3}"#, "multiple of n_head"),
            (r#"{"block_size": 0}"#, "block_size must be at least 1"),
            (r#"{"batch_size": 0}"#, "batch_size must be at least 1"),
            (r#"{"eval_iters": 0}"#, "eval_iters must be at least 1"),
            (
                r#"{"n_embd": 1000000}"#,
                "n_embd 1000000 is larger than the limit",
            ),
            (r#"{"block_size": 18446744073709551615}"#, "block_size"),
            (r#"{"vocab_size": 4294967295}"#, "vocab_size"),
            (
                r#"{"gradient_accumulation_steps": 4294967296}"#,
                "gradient_accumulation_steps",
            ),
            (r#"{"beta1": 1.0}"#, "beta1 1 must be in [0, 1)"),
            (r#"{"beta2": -0.1}"#, "beta2"),
            (r#"{"dropout": 1.0}"#, "dropout"),
            (
                r#"{"learning_rate": 0}"#,
                "learning_rate 0 must be a finite number above 0",
            ),
            (r#"{"learning_rate": 1e400}"#, "x.json"),
            (
                r#"{"min_lr": 1.0}"#,
                "min_lr 1 must be between 0 and learning_rate",
            ),
            (r#"{"min_lr": -1e-5}"#, "min_lr"),
            (
                r#"{"grad_clip": -1}"#,
                "grad_clip -1 must be a finite number >= 0",
            ),
            (r#"{"weight_decay": -0.1}"#, "weight_decay"),
            (
                r#"{"warmup_iters": 5000}"#,
                "warmup_iters (5000) must not exceed lr_decay_iters",
            ),
        ];
        let base = Config::char_small();
        for (json, want) in bad {
            let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
            let err = base.with_overrides(&value, "x.json").unwrap_err();
            assert!(err.0.contains(want), "{json}: {err}");
        }
        assert!(
            base.validate_resolved().is_err(),
            "vocab_size 0 is unresolved"
        );
        Config {
            vocab_size: 65,
            ..base
        }
        .validate_resolved()
        .unwrap();
    }

    #[test]
    fn a_key_given_twice_is_refused_and_other_families_are_recognised() {
        let err = parse_object(r#"{"n_layer": 2, "n_head": 2, "n_layer": 4}"#).unwrap_err();
        assert!(
            err.to_string().contains("\"n_layer\" appears twice"),
            "{err}"
        );
        assert!(parse_object(r#"{"a": {"b": 1, "c": 2}} x"#).is_err());
        let map = parse_object(r#"{"n_layer": 2, "nested": {"k": 1}}"#).unwrap();
        assert_eq!(map.len(), 2);
        let llama = parse_object(r#"{"num_hidden_layers": 6, "hidden_size": 288}"#).unwrap();
        assert!(other_family(&llama)
            .unwrap()
            .contains("Llama configuration"));
        let llama2c = parse_object(r#"{"dim": 288, "n_layers": 6, "n_heads": 6}"#).unwrap();
        assert_eq!(other_family(&llama2c), None);
        let hf = parse_object(r#"{"model_type": "mistral", "hidden_size": 4096}"#).unwrap();
        assert!(other_family(&hf).unwrap().contains("mistral configuration"));
        assert_eq!(other_family(&map), None);
    }

    #[test]
    fn the_norm_is_chosen_by_name_for_the_gpt_only() {
        let base = Config::char_small();
        let set = |v: serde_json::Value| base.with_overrides(&v, "n.json");
        let batch = set(serde_json::json!({"norm": "batch"})).unwrap();
        assert_eq!(batch.norm, NormKind::Batch);
        // Saved and read back; the default is left out of a saved configuration.
        let text = serde_json::to_string(&batch).unwrap();
        assert!(text.contains(r#""norm":"batch""#), "{text}");
        assert_eq!(serde_json::from_str::<Config>(&text).unwrap(), batch);
        assert!(!serde_json::to_string(&base).unwrap().contains("norm"));
        let err = set(serde_json::json!({"norm": "group"})).unwrap_err();
        assert!(
            err.0.contains("`group`") && err.0.contains("`batch`"),
            "{err}"
        );
        let err = set(serde_json::json!({"model": "llama", "norm": "rms"})).unwrap_err();
        assert!(err.0.contains("gpt model only"), "{err}");
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
            .with_overrides(&serde_json::json!({"n_layrs": 2, "lr": 1}), "x.json")
            .unwrap_err();
        assert!(
            err.0.contains("x.json") && err.0.contains("n_layrs") && err.0.contains("lr"),
            "{err}"
        );
        // llama2.c's names for a Llama; the same key twice under two names is refused.
        let llama = base
            .with_overrides(
                &serde_json::json!({"model": "llama", "dim": 64, "n_layers": 5, "n_heads": 8,
                    "n_kv_heads": 4, "hidden_dim": 172, "max_seq_len": 512}),
                "l.json",
            )
            .unwrap();
        assert_eq!(
            (
                llama.n_embd,
                llama.n_layer,
                llama.kv_heads(),
                llama.block_size
            ),
            (64, 5, 4, 512)
        );
        let err = base
            .with_overrides(&serde_json::json!({"dim": 64, "n_embd": 64}), "x.json")
            .unwrap_err();
        assert!(err.0.contains("n_embd is given twice"), "{err}");
        let err = base
            .with_overrides(&serde_json::json!({"dim": 64}), "x.json")
            .unwrap_err();
        assert!(err.0.contains("add \"model\": \"llama\""), "{err}");
        let err = base
            .with_overrides(&serde_json::json!({"hidden_dim": 64}), "x.json")
            .unwrap_err();
        assert!(err.0.contains("read by the llama model only"), "{err}");
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
