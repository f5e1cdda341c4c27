//! Pretraining: next-token prediction on random windows of a token file.
//!
//! A micro-batch is `batch_size` windows of `block_size + 1` tokens at uniformly random starts
//! (see [`TokenDataset::sample_batch`]); the loss is the mean cross-entropy of every next
//! token. Evaluation is the mean loss over `eval_iters` such batches of each split.

use crate::data::TokenDataset;
use crate::model::config::Config;
use crate::model::Model;
use crate::train::objective::{Loss, Metrics, Objective};
use crate::{Error, Result};
use tensor::{Device, Rng};

/// Next-token prediction on a training split, evaluated on it and on a validation split.
pub struct Pretrain {
    /// The training tokens.
    pub train: TokenDataset,
    /// The validation tokens, if any.
    pub val: Option<TokenDataset>,
    batch_size: usize,
    block_size: usize,
    eval_iters: usize,
}

impl Pretrain {
    /// Pretraining on `train` (and `val`) with the batch and context of `cfg`.
    pub fn new(train: TokenDataset, val: Option<TokenDataset>, cfg: &Config) -> Pretrain {
        Pretrain {
            train,
            val,
            batch_size: cfg.batch_size,
            block_size: cfg.block_size,
            eval_iters: cfg.eval_iters.max(1),
        }
    }

    /// The mean loss over `eval_iters` random batches of `data`.
    fn mean_loss(
        &self,
        data: &TokenDataset,
        model: &Model,
        rng: &mut Rng,
        device: Device,
    ) -> Result<f64> {
        let mut sum = 0.0;
        for _ in 0..self.eval_iters {
            let (x, y) = data.sample_batch(self.batch_size, self.block_size, rng)?;
            let (x, y) = (x.try_to_device(device)?, y.try_to_device(device)?);
            sum += model.loss(&x, &y).value().item();
        }
        Ok(sum / self.eval_iters as f64)
    }
}

impl Objective for Pretrain {
    fn check(&self, cfg: &Config) -> Result<()> {
        let window = cfg.block_size + 1;
        if self.train.len() < window {
            return Err(Error::Invalid(format!(
                "the training split has {} tokens, fewer than one window of block_size + 1 = {window}",
                self.train.len()
            )));
        }
        for data in std::iter::once(&self.train).chain(&self.val) {
            data.check_ids(cfg.vocab_size)?;
        }
        Ok(())
    }

    fn loss(&mut self, model: &Model, rng: &mut Rng, device: Device) -> Result<Loss> {
        let (x, y) = self
            .train
            .sample_batch(self.batch_size, self.block_size, rng)?;
        let (x, y) = (x.try_to_device(device)?, y.try_to_device(device)?);
        Ok(Loss {
            loss: model.loss(&x, &y),
            units: x.numel(),
            metrics: Metrics::new(),
        })
    }

    fn evaluate(&mut self, model: &Model, rng: &mut Rng, device: Device) -> Result<Metrics> {
        let mut metrics = vec![(
            "train_loss".to_string(),
            self.mean_loss(&self.train, model, rng, device)?,
        )];
        if let Some(val) = &self.val {
            metrics.push((
                "val_loss".to_string(),
                self.mean_loss(val, model, rng, device)?,
            ));
        }
        Ok(metrics)
    }
}
