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
use crate::model::{check, hf, Model, CLASSIFIER};
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
    let source = Source::of(dir)?;
    let (cfg, tok) = (source.config()?, source.tokenizer()?);
    let dict = source.weights()?;
    let model = build_and_fill(&cfg, &dict, |ours| source.stored(&dict, ours), |_| true)?;
    Ok((model, cfg, tok))
}

/// The configuration and tokenizer of the model in `dir` (a run directory or a Hugging Face
/// directory), to start another stage from.
pub fn base_config(dir: &Path) -> Result<(Config, Box<dyn Tokenizer>)> {
    let source = Source::of(dir)?;
    Ok((source.config()?, source.tokenizer()?))
}

/// A model of `cfg` whose body holds the weights of the model in `dir` (see [`base_config`]),
/// and whose heads and adapters that `dir` lacks are fresh: `--init-from`. `cfg` must describe
/// the same body as `dir`'s configuration (it may add heads and adapters).
pub fn init_from(dir: &Path, cfg: &Config) -> Result<Model> {
    let source = Source::of(dir)?;
    let dict = source.weights()?;
    let from_base = |name: &str| {
        !name.starts_with(&format!("{CLASSIFIER}.")) && !nn::lora::is_adapter_param(name)
    };
    build_and_fill(cfg, &dict, |ours| source.stored(&dict, ours), from_base)
}

/// Where a model is loaded from.
enum Source<'a> {
    /// A run directory written by a stage of this crate.
    Run(&'a Path),
    /// A Hugging Face GPT-2 directory.
    Hf(&'a Path),
}

impl<'a> Source<'a> {
    fn of(dir: &'a Path) -> Result<Source<'a>> {
        if dir.join(CHECKPOINT).is_file() {
            return Ok(Source::Run(dir));
        }
        if hf::is_hf_dir(dir) {
            return Ok(Source::Hf(dir));
        }
        Err(Error::Invalid(format!(
            "{} is neither a run directory (with {CHECKPOINT}) nor a Hugging Face GPT-2 directory (with config.json and {})",
            dir.display(),
            hf::WEIGHTS
        )))
    }

    fn config(&self) -> Result<Config> {
        match self {
            Source::Run(dir) => read_config(dir),
            Source::Hf(dir) => hf::config(dir),
        }
    }

    fn tokenizer(&self) -> Result<Box<dyn Tokenizer>> {
        match self {
            Source::Run(dir) => read_tokenizer(dir),
            Source::Hf(_) => Ok(Box::new(Gpt2Tokenizer::new())),
        }
    }

    fn weights(&self) -> Result<StateDict> {
        Ok(match self {
            Source::Run(dir) => state_dict::load(dir.join(CHECKPOINT))?,
            Source::Hf(dir) => state_dict::load(dir.join(hf::WEIGHTS))?,
        })
    }

    /// The name in `dict` of our weight `ours`, and whether it is stored transposed.
    fn stored(&self, dict: &StateDict, ours: &str) -> (String, bool) {
        match self {
            Source::Run(_) => (format!("{MODEL_PREFIX}{ours}"), false),
            Source::Hf(_) => {
                let (name, transposed) = hf::hf_name(ours);
                (format!("{}{name}", hf::prefix(dict)), transposed)
            }
        }
    }
}

/// Checks `cfg` against the weights, builds the model and copies in the weights whose names
/// `take` accepts (the others keep their fresh values).
fn build_and_fill(
    cfg: &Config,
    dict: &StateDict,
    stored: impl Fn(&str) -> (String, bool),
    take: impl Fn(&str) -> bool,
) -> Result<Model> {
    check::config_matches_weights(cfg, dict, |ours| stored(ours).0)?;
    let mut model = Model::new(cfg, &mut Rng::new(cfg.seed), &SharedRng::new(0));
    copy_weights(dict, &model, stored, take)?;
    // Loaded to sample, evaluate or score: dropout off. Training turns it on at every step.
    model.eval();
    Ok(model)
}

/// Copies into every parameter and buffer of `model` whose name `take` accepts the tensor
/// `stored(name)` names in `dict` (transposed when it says so), reporting every missing,
/// mis-shaped or non-finite weight at once. Extra tensors in the file are ignored.
pub fn copy_weights(
    dict: &StateDict,
    model: &dyn Module,
    stored: impl Fn(&str) -> (String, bool),
    take: impl Fn(&str) -> bool,
) -> Result<()> {
    let mut problems = vec![];
    for (name, var) in model.named_state().into_iter().filter(|(n, _)| take(n)) {
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
