//! What a stage trains for. An objective draws its micro-batches, turns each into a loss on the
//! model, and evaluates the model on held-out data; the [`super::Trainer`] and the
//! [`super::driver`] do everything else (accumulation, clipping, the schedule, the optimizer,
//! checkpoints, the log), the same way for every stage. Each stage is one file under
//! [`crate::stages`].

use crate::model::config::Config;
use crate::model::Model;
use crate::{Error, Result};
use autograd::Var;
use tensor::{Device, Rng};

/// The loss of one micro-batch.
pub struct Loss {
    /// The mean loss, a scalar on the model's device, ready for `backward`.
    pub loss: Var,
    /// What the loss averages over (tokens, or examples), for throughput figures.
    pub units: usize,
    /// Other figures of the micro-batch worth logging at every step (a stage's rewards, say);
    /// averaged over a step's micro-batches.
    pub metrics: Metrics,
}

/// Named metrics, in the order they are reported (`train_loss`, `val_loss`, `val_accuracy`,
/// ...). A metric named `val_loss` is drawn on the loss curve.
pub type Metrics = Vec<(String, f64)>;

/// A training objective: the one part of training that differs between stages.
pub trait Objective {
    /// Checks, before any training, that the data suits a model of `cfg` (token ids within the
    /// vocabulary, examples that fit the context, ...).
    fn check(&self, cfg: &Config) -> Result<()>;

    /// Draws one micro-batch with `rng` and returns its loss on `model` (in training mode),
    /// with the batch moved to `device`.
    fn loss(&mut self, model: &Model, rng: &mut Rng, device: Device) -> Result<Loss>;

    /// The model's metrics on the training and held-out data, with the model in evaluation mode
    /// and gradients off; `rng` for whatever the evaluation samples.
    fn evaluate(&mut self, model: &Model, rng: &mut Rng, device: Device) -> Result<Metrics>;
}

/// Checks encoded examples before training: each fits the context of `cfg` and has only ids
/// inside its vocabulary. An error names the set (`which`: "training", "validation") and the
/// example, counting from 1.
pub fn check_examples<'a>(
    which: &str,
    examples: impl IntoIterator<Item = &'a [u32]>,
    cfg: &Config,
) -> Result<()> {
    for (i, ids) in examples.into_iter().enumerate() {
        if ids.len() > cfg.block_size {
            return Err(Error::Invalid(format!(
                "{which} example {} has {} tokens, more than the context of {}",
                i + 1,
                ids.len(),
                cfg.block_size
            )));
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= cfg.vocab_size) {
            return Err(Error::Invalid(format!(
                "{which} example {} has the token id {id}, outside the vocabulary of {}",
                i + 1,
                cfg.vocab_size
            )));
        }
    }
    Ok(())
}
