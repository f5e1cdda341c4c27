//! Loading a model: the one weight loader for every source a model is accepted from (a run
//! directory written by `llm train`, a Hugging Face GPT-2 directory), with one set of checks.
//!
//! Before the model is built, its configuration is validated and checked against the weights
//! file's header ([`crate::model::check`]), so a wrong `config.json` never allocates what the
//! file does not hold; then every weight is copied in with its name and shape checked and its
//! values finite, all problems reported at once.

use super::checkpoint::MODEL_PREFIX;
use super::{read_config, read_tokenizer, CHECKPOINT};
use crate::model::config::Config;
use crate::model::{check, hf, Model};
use crate::tokenizer::{Gpt2Tokenizer, Tokenizer};
use crate::{Error, Result};
use nn::state_dict::{self, StateDict};
use nn::{Module, SharedRng};
use std::path::Path;
use tensor::Rng;

/// Loads a model for sampling or evaluation from `dir`: a run directory written by
/// `llm train`, or a Hugging Face GPT-2 directory (which comes with GPT-2's tokenizer).
///
/// The tokenizer may have fewer ids than the model has outputs (a vocabulary padded for speed;
/// generation then draws only ids the tokenizer has), never more: a model cannot read ids past
/// its embedding.
pub fn load_model(dir: &Path) -> Result<(Model, Config, Box<dyn Tokenizer>)> {
    let (model, cfg, tok) = load_unchecked(dir)?;
    if tok.vocab_size() > cfg.vocab_size {
        return Err(Error::Invalid(format!(
            "the tokenizer of {} has {} ids, more than the model's vocabulary of {}",
            dir.display(),
            tok.vocab_size(),
            cfg.vocab_size
        )));
    }
    Ok((model, cfg, tok))
}

/// [`load_model`] without the check of the tokenizer against the model.
fn load_unchecked(dir: &Path) -> Result<(Model, Config, Box<dyn Tokenizer>)> {
    if dir.join(CHECKPOINT).is_file() {
        let cfg = read_config(dir)?;
        let tok = read_tokenizer(dir)?;
        let dict = state_dict::load(dir.join(CHECKPOINT))?;
        let stored = |ours: &str| (format!("{MODEL_PREFIX}{ours}"), false);
        let model = build_and_fill(&cfg, &dict, stored)?;
        return Ok((model, cfg, tok));
    }
    if hf::is_hf_dir(dir) {
        let cfg = hf::config(dir)?;
        let dict = state_dict::load(dir.join(hf::WEIGHTS))?;
        let prefix = hf::prefix(&dict);
        let stored = |ours: &str| {
            let (name, transposed) = hf::hf_name(ours);
            (format!("{prefix}{name}"), transposed)
        };
        let model = build_and_fill(&cfg, &dict, stored)?;
        return Ok((model, cfg, Box::new(Gpt2Tokenizer::new())));
    }
    Err(Error::Invalid(format!(
        "{} is neither a run directory (with {CHECKPOINT}) nor a Hugging Face GPT-2 directory (with config.json and {})",
        dir.display(),
        hf::WEIGHTS
    )))
}

/// Checks `cfg` against the weights, builds the model and copies the weights in.
fn build_and_fill(
    cfg: &Config,
    dict: &StateDict,
    stored: impl Fn(&str) -> (String, bool),
) -> Result<Model> {
    check::config_matches_weights(cfg, dict, |ours| stored(ours).0)?;
    let model = Model::new(cfg, &mut Rng::new(cfg.seed), &SharedRng::new(0));
    copy_weights(dict, &model, stored)?;
    Ok(model)
}

/// Copies into every parameter and buffer of `model` the tensor `stored(name)` names in `dict`
/// (transposed when it says so), reporting every missing, mis-shaped or non-finite weight at
/// once. Extra tensors in the file are ignored.
pub fn copy_weights(
    dict: &StateDict,
    model: &dyn Module,
    stored: impl Fn(&str) -> (String, bool),
) -> Result<()> {
    let mut problems = vec![];
    for (name, var) in model.named_state() {
        let (theirs, transposed) = stored(&name);
        if let Some((index, value)) = dict.first_non_finite(&theirs) {
            problems.push(format!("`{theirs}` holds {value} at element {index}"));
            continue;
        }
        let Some(t) = dict.get(&theirs) else {
            problems.push(format!("missing `{theirs}`"));
            continue;
        };
        let t = if transposed { t.t().contiguous() } else { t };
        if t.shape() != var.shape().as_slice() {
            problems.push(format!(
                "`{theirs}` has shape {:?}, the model expects {:?}",
                t.shape(),
                var.shape()
            ));
            continue;
        }
        var.set_value(t.to_dtype(var.dtype()).try_to_device(var.device())?);
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(Error::Invalid(format!(
            "{}: {}",
            dict.path().display(),
            problems.join("; ")
        ))),
    }
}
