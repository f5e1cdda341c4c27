//! A run directory and its checkpoint.
//!
//! ```text
//! out/
//!   config.json              the run's configuration (nanoGPT keys)
//!   tokenizer.json           the tokenizer
//!   checkpoint.safetensors   weights `model.<name>`, optimizer moments `optim.<name>`; its
//!                            metadata holds the step, the generators and optimizer scalars
//!   log.jsonl                one line per step and per evaluation
//!   loss.svg                 the loss curve
//! ```
//!
//! Every file is written under a temporary name, flushed to disk and renamed into place, so a
//! kill at any instant leaves the previous version whole: the checkpoint is one file, so its
//! weights, moments and step always belong together.

use super::Trainer;
use crate::model::config::{self, Config};
use crate::model::{check, Model};
use crate::tokenizer::{self, Tokenizer};
use crate::{Error, Result};
use nn::optim::{Optimizer, OptimizerState};
use nn::{state_dict, Module};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use tensor::{DType, Rng};

/// The checkpoint's file name inside a run directory.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The configuration's file name.
pub const CONFIG: &str = "config.json";
/// The tokenizer's file name.
pub const TOKENIZER: &str = "tokenizer.json";

const MODEL_PREFIX: &str = "model.";
const OPTIM_PREFIX: &str = "optim.";
const STATE_KEY: &str = "train_state";

/// What a checkpoint records besides tensors.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    /// Optimizer steps taken when the checkpoint was written.
    pub step: usize,
    /// State of the batch-sampling generator.
    pub batch_rng: Rng,
    /// State of the dropout generator.
    pub drop_rng: Rng,
}

/// `path` with `.tmp` appended.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Flushes a finished temporary file and renames it over `path`.
fn commit(tmp: &Path, path: &Path) -> Result<()> {
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("flush", tmp, e))?;
    fs::rename(tmp, path).map_err(|e| Error::io("rename into place", path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Persist the rename itself; not every filesystem allows syncing a directory.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (temporary file, flush, rename).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    fs::write(&tmp, bytes).map_err(|e| Error::io("write", &tmp, e))?;
    commit(&tmp, path)
}

/// Writes the run's configuration and tokenizer (once, at the start of a run).
pub fn write_run_files(dir: &Path, cfg: &Config, tok: &dyn Tokenizer) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let json = serde_json::to_string_pretty(cfg).expect("a config serializes");
    write_atomically(&dir.join(CONFIG), json.as_bytes())?;
    let tok_json = serde_json::to_string_pretty(&tok.to_json()).expect("a tokenizer serializes");
    write_atomically(&dir.join(TOKENIZER), tok_json.as_bytes())
}

/// Reads a run's configuration and checks every key ([`Config::validate_resolved`]).
pub fn read_config(dir: &Path) -> Result<Config> {
    let path = dir.join(CONFIG);
    let text = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    let json = config::parse_object(&text).map_err(|e| Error::json(&path, &e))?;
    let invalid = |why: String| Error::Config(format!("{}: {why}", path.display()));
    if let Some(why) = config::other_family(&json) {
        return Err(invalid(why));
    }
    let cfg: Config = serde_json::from_value(serde_json::Value::Object(json))
        .map_err(|e| invalid(e.to_string()))?;
    cfg.validate_resolved().map_err(|e| invalid(e.0))?;
    Ok(cfg)
}

/// Reads a run's tokenizer.
pub fn read_tokenizer(dir: &Path) -> Result<Box<dyn Tokenizer>> {
    tokenizer::load(&dir.join(TOKENIZER))
}

/// Saves the trainer's model, optimizer and generators to `dir/checkpoint.safetensors`.
pub fn save(dir: &Path, trainer: &Trainer) -> Result<()> {
    let mut tensors: Vec<(String, tensor::Tensor)> = trainer
        .model
        .named_state()
        .into_iter()
        .map(|(name, v)| (format!("{MODEL_PREFIX}{name}"), v.value()))
        .collect();
    let opt = trainer.opt.state();
    tensors.extend(
        opt.tensors
            .into_iter()
            .map(|(name, t)| (format!("{OPTIM_PREFIX}{name}"), t)),
    );
    let mut metadata: BTreeMap<String, String> = opt
        .scalars
        .iter()
        .map(|(k, v)| (format!("{OPTIM_PREFIX}{k}"), v.to_string()))
        .collect();
    let state = TrainState {
        step: trainer.step,
        batch_rng: trainer.batch_rng.clone(),
        drop_rng: trainer.drop_rng.state(),
    };
    metadata.insert(
        STATE_KEY.into(),
        serde_json::to_string(&state).expect("a train state serializes"),
    );
    let path = dir.join(CHECKPOINT);
    let tmp = tmp_path(&path);
    state_dict::save_with_metadata(&tmp, &tensors, DType::F32, &metadata)?;
    commit(&tmp, &path)
}

/// Copies the `model.`-prefixed weights of a checkpoint into `model`, reporting every missing
/// or mis-shaped weight at once.
fn load_model_weights(dict: &state_dict::StateDict, model: &dyn Module) -> Result<()> {
    let mut problems = vec![];
    for (name, var) in model.named_state() {
        let stored = format!("{MODEL_PREFIX}{name}");
        if let Some((index, value)) = dict.first_non_finite(&stored) {
            problems.push(format!("`{name}` holds {value} at element {index}"));
            continue;
        }
        match dict.get(&stored) {
            None => problems.push(format!("missing `{name}`")),
            Some(t) if t.shape() != var.shape().as_slice() => problems.push(format!(
                "`{name}` has shape {:?}, the model expects {:?}",
                t.shape(),
                var.shape()
            )),
            Some(t) => var.set_value(t.to_dtype(var.dtype()).try_to_device(var.device())?),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: {}",
            dict.path().display(),
            problems.join("; ")
        )));
    }
    Ok(())
}

/// Restores a trainer from `dir/checkpoint.safetensors` (built with the same configuration).
pub fn restore(dir: &Path, trainer: &mut Trainer) -> Result<()> {
    let dict = state_dict::load(dir.join(CHECKPOINT))?;
    load_model_weights(&dict, &trainer.model)?;
    let metadata = dict.metadata();
    let bad = |what: &str| Error::Invalid(format!("{}: {what}", dict.path().display()));
    let state: TrainState = metadata
        .get(STATE_KEY)
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| bad("no readable training state (not a training checkpoint?)"))?;
    let mut opt = OptimizerState::default();
    for name in dict.names() {
        if let Some(short) = name.strip_prefix(OPTIM_PREFIX) {
            opt.tensors.push((
                short.to_string(),
                dict.tensor(&name).expect("listed names exist"),
            ));
        }
    }
    for (k, v) in &metadata {
        if let Some(short) = k.strip_prefix(OPTIM_PREFIX) {
            let value = v
                .parse()
                .map_err(|_| bad(&format!("optimizer value `{k}` is `{v}`, not a number")))?;
            opt.scalars.insert(short.to_string(), value);
        }
    }
    trainer.opt.load_state(opt)?;
    trainer.step = state.step;
    trainer.batch_rng = state.batch_rng;
    trainer.drop_rng.set_state(state.drop_rng);
    Ok(())
}

/// Loads a trained model from a run directory written by `llm train`.
pub fn load_run(dir: &Path) -> Result<(Model, Config, Box<dyn Tokenizer>)> {
    let cfg = read_config(dir)?;
    let tok = read_tokenizer(dir)?;
    let dict = state_dict::load(dir.join(CHECKPOINT))?;
    check::config_matches_weights(&cfg, &dict, |ours| format!("{MODEL_PREFIX}{ours}"))?;
    let model = Model::new(&cfg, &mut Rng::new(cfg.seed), &nn::SharedRng::new(0));
    load_model_weights(&dict, &model)?;
    Ok((model, cfg, tok))
}
