//! What is particular to a Hugging Face GPT-2 directory (`config.json` + `model.safetensors`):
//! its configuration and its weights' names. [`crate::run::load`] loads it.
//!
//! Hugging Face names and our names differ, and its `Conv1D` layers store weights as
//! `(in, out)` where our linear layers store `(out, in)`, so those are transposed. Names may or
//! may not carry a `transformer.` prefix; the causal-mask buffers (`attn.bias`,
//! `attn.masked_bias`) and the tied `lm_head.weight` are ignored.

use crate::model::config::{self, Architecture, Config};
use crate::{Error, Result};
use nn::state_dict::StateDict;
use std::path::Path;

/// The Hugging Face config keys we read.
#[derive(serde::Deserialize)]
struct HfConfig {
    n_layer: usize,
    n_head: usize,
    n_embd: usize,
    vocab_size: usize,
    n_positions: usize,
}

/// True when `dir` looks like a Hugging Face GPT-2 directory.
pub fn is_hf_dir(dir: &Path) -> bool {
    dir.join(WEIGHTS).is_file() && dir.join("config.json").is_file()
}

/// Our configuration for a Hugging Face GPT-2 `config.json`, validated.
pub fn config(dir: &Path) -> Result<Config> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    let json = config::parse_object(&text).map_err(|e| Error::json(&path, &e))?;
    let invalid = |why: String| Error::Config(format!("{}: {why}", path.display()));
    if let Some(why) = config::other_family(&json) {
        return Err(invalid(why));
    }
    let hf: HfConfig = serde_json::from_value(serde_json::Value::Object(json))
        .map_err(|e| invalid(e.to_string()))?;
    let cfg = Config {
        model: Architecture::Gpt,
        vocab_size: hf.vocab_size,
        block_size: hf.n_positions,
        n_layer: hf.n_layer,
        n_head: hf.n_head,
        n_embd: hf.n_embd,
        dropout: 0.0,
        bias: true,
        ..Config::preset("gpt2").expect("the gpt2 preset exists")
    };
    cfg.validate_resolved().map_err(|e| invalid(e.0))?;
    Ok(cfg)
}

/// The Hugging Face name of one of our parameters, and whether it is a transposed `Conv1D`.
pub fn hf_name(ours: &str) -> (String, bool) {
    let renamed = ours
        .replace("blocks.", "h.")
        .replace(".ln1.", ".ln_1.")
        .replace(".ln2.", ".ln_2.")
        .replace(".attn.qkv.", ".attn.c_attn.")
        .replace(".attn.proj.", ".attn.c_proj.")
        .replace(".mlp.fc.", ".mlp.c_fc.")
        .replace(".mlp.proj.", ".mlp.c_proj.");
    let conv1d =
        renamed.starts_with("h.") && renamed.ends_with(".weight") && !renamed.contains(".ln_");
    (renamed, conv1d)
}

/// The file that holds a Hugging Face directory's weights.
pub const WEIGHTS: &str = "model.safetensors";

/// The prefix of the weights' names in `dict`: `transformer.` when they have it, else none.
pub fn prefix(dict: &StateDict) -> &'static str {
    match dict.names().iter().any(|n| n.starts_with("transformer.")) {
        true => "transformer.",
        false => "",
    }
}
