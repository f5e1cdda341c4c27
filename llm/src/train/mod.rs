//! Training: the optimization step, periodic evaluation, checkpoints, the log and the loss
//! curve.
//!
//! One step: `gradient_accumulation_steps` micro-batches, each loss scaled by `1/k` before its
//! backward pass (so the summed gradient is the mean over all micro-batches), clipping to a
//! global norm, then AdamW at the scheduled learning rate. Randomness comes from three seeded
//! generators (initial weights, batch sampling, dropout); the last two are saved in
//! checkpoints, so a resumed run continues exactly as if it had not stopped.

pub mod log;
pub mod plot;

use crate::data::TokenDataset;
use crate::model::config::Config;
use crate::model::Model;
use crate::run::checkpoint::{self, TrainState};
use crate::{Error, Result};
use autograd::no_grad;
use nn::optim::{AdamW, AdamWConfig, Optimizer};
use nn::schedule::Schedule;
use nn::{Module, SharedRng};
use std::time::Instant;
use tensor::{Device, Rng, Tensor};

/// What one optimizer step did.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct StepStats {
    /// The step's number (1 for the first step).
    pub step: usize,
    /// Mean training loss over the step's micro-batches.
    pub loss: f64,
    /// Global L2 norm of the gradient before clipping.
    pub grad_norm: f64,
    /// Learning rate the step used.
    pub lr: f64,
    /// Wall time of the step in milliseconds.
    pub ms: f64,
    /// Tokens per second through the step.
    pub tok_per_s: f64,
    /// Where the step's wall time went (not written to the log).
    #[serde(skip)]
    pub phases: StepPhases,
}

/// Host wall time of the parts of a step, in milliseconds. On the CPU each part includes its
/// arithmetic. On a GPU a part returns once its kernels are queued, except where the host reads
/// a value back and waits for the queue: the loss (in `forward`) and the gradient norm (in
/// `clip`); so a part that takes longer than its kernels shows host work, not GPU work.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepPhases {
    /// Forward passes and reading their losses, over all micro-batches.
    pub forward: f64,
    /// Backward passes, over all micro-batches.
    pub backward: f64,
    /// The global gradient norm and clipping.
    pub clip: f64,
    /// The optimizer update and clearing the gradients.
    pub update: f64,
}

/// Mean losses from [`Trainer::estimate_loss`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossEstimate {
    /// Mean loss on the training split.
    pub train: f64,
    /// Mean loss on the validation split, if there is one.
    pub val: Option<f64>,
}

/// A model, its optimizer and data, and the state that makes training resumable.
pub struct Trainer {
    /// The run's configuration.
    pub cfg: Config,
    /// The model being trained.
    pub model: Model,
    /// AdamW over all the model's parameters.
    pub opt: AdamW,
    /// The learning rate at each step.
    pub schedule: Schedule,
    /// Steps taken so far.
    pub step: usize,
    /// Draws the training batches.
    pub batch_rng: Rng,
    /// Draws the dropout masks (shared with the model's dropout layers).
    pub drop_rng: SharedRng,
    /// Training tokens.
    pub train: TokenDataset,
    /// Validation tokens, if any.
    pub val: Option<TokenDataset>,
    /// Where the model lives; batches are copied there.
    pub device: Device,
}

/// The learning-rate schedule a configuration asks for.
pub fn schedule(cfg: &Config) -> Schedule {
    Schedule::WarmupCosine {
        max_lr: cfg.learning_rate,
        min_lr: cfg.min_lr,
        warmup_iters: cfg.warmup_iters,
        decay_iters: cfg.lr_decay_iters,
    }
}

impl Trainer {
    /// A fresh run: the model initialised from `cfg.seed` on `device`, AdamW over all its
    /// parameters (weight decay on matrices only), generators seeded from `cfg.seed`.
    pub fn new(
        cfg: Config,
        train: TokenDataset,
        val: Option<TokenDataset>,
        device: Device,
    ) -> Result<Trainer> {
        cfg.validate_resolved().map_err(|e| Error::Config(e.0))?;
        for data in std::iter::once(&train).chain(&val) {
            data.check_ids(cfg.vocab_size)?;
        }
        let drop_rng = SharedRng::new(cfg.seed.wrapping_add(2));
        let model = Model::new(&cfg, &mut Rng::new(cfg.seed), &drop_rng);
        model.to_device(device)?;
        let opt = AdamW::new(
            model.named_params(),
            AdamWConfig {
                beta1: cfg.beta1,
                beta2: cfg.beta2,
                eps: 1e-8,
                weight_decay: cfg.weight_decay,
            },
        );
        Ok(Trainer {
            schedule: schedule(&cfg),
            batch_rng: Rng::new(cfg.seed.wrapping_add(1)),
            cfg,
            model,
            opt,
            step: 0,
            drop_rng,
            train,
            val,
            device,
        })
    }

    /// One optimizer step on explicit micro-batches `(inputs, targets)`, each `(B, T)`.
    pub fn step_on(&mut self, micro_batches: &[(Tensor, Tensor)]) -> Result<StepStats> {
        let start = Instant::now();
        let mut phases = StepPhases::default();
        let mut lap = Lap::new();
        self.model.train();
        let k = micro_batches.len() as f64;
        let mut total = 0.0;
        let mut tokens = 0;
        for (x, y) in micro_batches {
            let (x, y) = (x.try_to_device(self.device)?, y.try_to_device(self.device)?);
            let loss = self.model.loss(&x, &y);
            total += loss.value().item();
            tokens += x.numel();
            phases.forward += lap.ms();
            // Scaling each micro-batch's loss by 1/k makes the accumulated gradient the
            // gradient of the mean loss over all k micro-batches.
            loss.mul_scalar(1.0 / k).backward();
            phases.backward += lap.ms();
        }
        let loss = total / k;
        if !loss.is_finite() {
            self.opt.zero_grad();
            return Err(Error::NonFiniteLoss {
                step: self.step + 1,
                loss,
            });
        }
        let max_norm = if self.cfg.grad_clip > 0.0 {
            self.cfg.grad_clip
        } else {
            f64::INFINITY
        };
        let grad_norm = nn::clip::clip_grad_norm(&self.model.params(), max_norm);
        phases.clip = lap.ms();
        let lr = self.schedule.lr(self.step);
        self.opt.step(lr)?;
        self.opt.zero_grad();
        phases.update = lap.ms();
        self.step += 1;
        let seconds = start.elapsed().as_secs_f64();
        Ok(StepStats {
            step: self.step,
            loss,
            grad_norm,
            lr,
            ms: seconds * 1e3,
            tok_per_s: tokens as f64 / seconds,
            phases,
        })
    }

    /// Writes the model, the optimizer and the training state to `dir`'s checkpoint.
    pub fn save(&self, dir: &std::path::Path) -> Result<()> {
        let state = TrainState {
            step: self.step,
            batch_rng: self.batch_rng.clone(),
            drop_rng: self.drop_rng.state(),
        };
        checkpoint::save(dir, &self.model, &self.opt, &state)
    }

    /// Restores the model, the optimizer and the training state from `dir`'s checkpoint (the
    /// trainer built with the configuration it was saved with).
    pub fn restore(&mut self, dir: &std::path::Path) -> Result<()> {
        let state = checkpoint::restore(dir, &self.model, &mut self.opt)?;
        self.step = state.step;
        self.batch_rng = state.batch_rng;
        self.drop_rng.set_state(state.drop_rng);
        Ok(())
    }

    /// One optimizer step on micro-batches drawn from the training set.
    pub fn train_step(&mut self) -> Result<StepStats> {
        let (b, t) = (self.cfg.batch_size, self.cfg.block_size);
        let batches = (0..self.cfg.gradient_accumulation_steps)
            .map(|_| self.train.sample_batch(b, t, &mut self.batch_rng))
            .collect::<Result<Vec<_>>>()?;
        self.step_on(&batches)
    }

    /// Mean loss over `eval_iters` random batches of each split, in evaluation mode. The
    /// batches come from a generator seeded by the step, so evaluation draws nothing from the
    /// training generators and does not change the run.
    pub fn estimate_loss(&mut self) -> Result<LossEstimate> {
        self.model.eval();
        let mut rng =
            Rng::new(self.cfg.seed ^ (self.step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (b, t, n) = (
            self.cfg.batch_size,
            self.cfg.block_size,
            self.cfg.eval_iters.max(1),
        );
        let mut mean = |data: &TokenDataset| -> Result<f64> {
            let mut sum = 0.0;
            for _ in 0..n {
                let (x, y) = data.sample_batch(b, t, &mut rng)?;
                let (x, y) = (x.try_to_device(self.device)?, y.try_to_device(self.device)?);
                sum += no_grad(|| self.model.loss(&x, &y).value().item());
            }
            Ok(sum / n as f64)
        };
        let train = mean(&self.train)?;
        let val = self.val.as_ref().map(&mut mean).transpose()?;
        self.model.train();
        Ok(LossEstimate { train, val })
    }
}

/// A stopwatch that reads the time since its last reading.
struct Lap(Instant);

impl Lap {
    fn new() -> Lap {
        Lap(Instant::now())
    }

    /// Milliseconds since the last call (or since [`Lap::new`]).
    fn ms(&mut self) -> f64 {
        let now = Instant::now();
        let ms = now.duration_since(self.0).as_secs_f64() * 1e3;
        self.0 = now;
        ms
    }
}
