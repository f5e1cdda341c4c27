//! Loading a Hugging Face GPT-2 directory (`config.json` + `model.safetensors`).
//!
//! Hugging Face names and our names differ, and its `Conv1D` layers store weights as
//! `(in, out)` where our linear layers store `(out, in)`, so those are transposed. Names may or
//! may not carry a `transformer.` prefix; the causal-mask buffers (`attn.bias`,
//! `attn.masked_bias`) and the tied `lm_head.weight` are ignored.

use crate::model::check;
use crate::model::config::{self, Architecture, Config};
use crate::model::gpt::Gpt;
use crate::{Error, Result};
use nn::{state_dict, Module, SharedRng};
use std::path::Path;
use tensor::Rng;

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
    dir.join("model.safetensors").is_file() && dir.join("config.json").is_file()
}

/// Our configuration for a Hugging Face GPT-2 `config.json`.
fn config(dir: &Path) -> Result<Config> {
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
fn hf_name(ours: &str) -> (String, bool) {
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

/// Loads the model in a Hugging Face GPT-2 directory.
pub fn load(dir: &Path) -> Result<(Gpt, Config)> {
    let cfg = config(dir)?;
    let dict = state_dict::load(dir.join("model.safetensors"))?;
    let names = dict.names();
    let prefix = if names.iter().any(|n| n.starts_with("transformer.")) {
        "transformer."
    } else {
        ""
    };
    check::config_matches_weights(&cfg, &dict, |ours| format!("{prefix}{}", hf_name(ours).0))?;
    let model = Gpt::new(&cfg, &mut Rng::new(0), &SharedRng::new(0));
    let mut missing = vec![];
    for (ours, var) in model.named_params() {
        let (theirs, transpose) = hf_name(&ours);
        if let Some((index, value)) = dict.first_non_finite(&format!("{prefix}{theirs}")) {
            return Err(Error::Invalid(format!(
                "{}: `{theirs}` holds {value} at element {index}",
                dict.path().display()
            )));
        }
        match dict.get(&format!("{prefix}{theirs}")) {
            None => missing.push(theirs),
            Some(t) => {
                let t = if transpose { t.t().contiguous() } else { t };
                if t.shape() != var.shape().as_slice() {
                    return Err(Error::Invalid(format!(
                        "{}: `{theirs}` has shape {:?}, expected {:?}",
                        dict.path().display(),
                        t.shape(),
                        var.shape()
                    )));
                }
                var.set_value(t);
            }
        }
    }
    if !missing.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: missing {}",
            dict.path().display(),
            missing.join(", ")
        )));
    }
    Ok((model, cfg))
}
