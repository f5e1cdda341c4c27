//! The checkpoint of a run: `checkpoint.safetensors` holds the model's weights (`model.<name>`)
//! and the optimizer's tensors (`optim.<name>`); its metadata holds the optimizer's scalars and
//! the training state (step and generators). It is one file, written atomically, so its
//! weights, moments and step always belong together.

use super::{commit, tmp_path, CHECKPOINT};
use crate::{Error, Result};
use nn::optim::{Optimizer, OptimizerState};
use nn::{state_dict, Module};
use std::collections::BTreeMap;
use std::path::Path;
use tensor::{DType, Rng};

/// Prefix of the model's weights in the checkpoint.
pub const MODEL_PREFIX: &str = "model.";
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

/// Saves `model`'s parameters and buffers, `opt`'s state and `state` to
/// `dir/checkpoint.safetensors`.
pub fn save(dir: &Path, model: &dyn Module, opt: &dyn Optimizer, state: &TrainState) -> Result<()> {
    let mut tensors: Vec<(String, tensor::Tensor)> = model
        .named_state()
        .into_iter()
        .map(|(name, v)| (format!("{MODEL_PREFIX}{name}"), v.value()))
        .collect();
    let opt = opt.state();
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
    metadata.insert(
        STATE_KEY.into(),
        serde_json::to_string(state).expect("a train state serializes"),
    );
    let path = dir.join(CHECKPOINT);
    let tmp = tmp_path(&path);
    state_dict::save_with_metadata(&tmp, &tensors, DType::F32, &metadata)?;
    commit(&tmp, &path)
}

/// Restores `model` and `opt` (built as they were when saved) from
/// `dir/checkpoint.safetensors`, and returns the training state.
pub fn restore(dir: &Path, model: &dyn Module, opt: &mut dyn Optimizer) -> Result<TrainState> {
    let dict = state_dict::load(dir.join(CHECKPOINT))?;
    let stored = |ours: &str| (format!("{MODEL_PREFIX}{ours}"), false);
    super::load::copy_weights(&dict, model, stored, |_| true)?;
    let metadata = dict.metadata();
    let bad = |what: &str| Error::Invalid(format!("{}: {what}", dict.path().display()));
    let state: TrainState = metadata
        .get(STATE_KEY)
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| bad("no readable training state (not a training checkpoint?)"))?;
    let mut saved = OptimizerState::default();
    for name in dict.names() {
        if let Some(short) = name.strip_prefix(OPTIM_PREFIX) {
            saved.tensors.push((
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
            saved.scalars.insert(short.to_string(), value);
        }
    }
    opt.load_state(saved)?;
    Ok(state)
}
