//! Training: the optimization step ([`Trainer`]), what a stage trains for ([`objective`]), the
//! run around the steps ([`driver`]: evaluation and checkpoint cadence, Ctrl-C, the log and the
//! loss curve).
//!
//! One step: `gradient_accumulation_steps` micro-batches, each loss scaled by `1/k` before its
//! backward pass (so the summed gradient is the mean over all micro-batches), clipping to a
//! global norm, then AdamW at the scheduled learning rate. Randomness comes from three seeded
//! generators (initial weights, batch sampling, dropout); the last two are saved in
//! checkpoints, so a resumed run continues exactly as if it had not stopped.

pub mod driver;
pub mod log;
pub mod objective;
pub mod plot;
pub mod trainable;

use crate::model::config::Config;
use crate::model::Model;
use crate::run::checkpoint::{self, TrainState};
use crate::{Error, Result};
use autograd::no_grad;
use nn::optim::{AdamW, AdamWConfig, Optimizer};
use nn::schedule::Schedule;
use nn::{Module, SharedRng};
use objective::{Loss, Metrics, Objective};
use std::time::Instant;
use tensor::{Device, Rng, Tensor};

/// What one optimizer step did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
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
    /// The objective's other figures, averaged over the micro-batches (written to the log
    /// after the fields above).
    #[serde(skip)]
    pub metrics: Metrics,
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

/// A model, its optimizer, and the state that makes training resumable. What it trains for is
/// an [`Objective`] passed to each step.
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

/// `base` set up for fine-tuning in epochs: `steps` optimizer steps of one `batch_size`
/// micro-batch, the learning rate warming up over the first 5% of the steps to `lr` and
/// decaying (cosine) to `lr / 10` at the last, evaluation and checkpoint every `per_epoch`
/// steps, generators seeded from `seed`.
pub fn epoch_schedule(
    base: &Config,
    lr: f64,
    batch_size: usize,
    steps: usize,
    per_epoch: usize,
    seed: u64,
) -> Config {
    Config {
        batch_size,
        gradient_accumulation_steps: 1,
        learning_rate: lr,
        min_lr: lr / 10.0,
        warmup_iters: (steps / 20).max(1).min(steps),
        lr_decay_iters: steps,
        max_iters: steps,
        eval_interval: per_epoch.min(steps),
        eval_iters: 1,
        checkpoint_interval: per_epoch.min(steps),
        seed,
        ..base.clone()
    }
}

impl Trainer {
    /// A fresh run: the model initialised from `cfg.seed` on `device`, AdamW over all its
    /// parameters (weight decay on matrices only), generators seeded from `cfg.seed`.
    pub fn new(cfg: Config, device: Device) -> Result<Trainer> {
        cfg.validate_resolved().map_err(|e| Error::Config(e.0))?;
        let drop_rng = SharedRng::new(cfg.seed.wrapping_add(2));
        let model = Model::new(&cfg, &mut Rng::new(cfg.seed), &drop_rng);
        Trainer::with_model(cfg, model, drop_rng, device)
    }

    /// A run that starts from `model` (built for `cfg`, its dropout layers drawing from
    /// `drop_rng`), with a fresh optimizer over its trainable parameters.
    pub fn with_model(
        cfg: Config,
        model: Model,
        drop_rng: SharedRng,
        device: Device,
    ) -> Result<Trainer> {
        model.to_device(device)?;
        let trainable = model
            .named_params()
            .into_iter()
            .filter(|(_, p)| p.requires_grad())
            .collect();
        let opt = AdamW::new(
            trainable,
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
            device,
        })
    }

    /// One optimizer step on explicit language-model micro-batches `(inputs, targets)`, each
    /// `(B, T)`.
    pub fn step_on(&mut self, micro_batches: &[(Tensor, Tensor)]) -> Result<StepStats> {
        let device = self.device;
        let mut batches = micro_batches.iter();
        self.step_with(micro_batches.len(), |model, _| {
            let (x, y) = batches.next().expect("one batch per micro-step");
            let (x, y) = (x.try_to_device(device)?, y.try_to_device(device)?);
            Ok(Loss {
                loss: model.loss(&x, &y),
                units: x.numel(),
                metrics: Metrics::new(),
            })
        })
    }

    /// One optimizer step on `gradient_accumulation_steps` micro-batches drawn by `objective`.
    pub fn train_step(&mut self, objective: &mut dyn Objective) -> Result<StepStats> {
        let device = self.device;
        self.step_with(self.cfg.gradient_accumulation_steps, |model, rng| {
            objective.loss(model, rng, device)
        })
    }

    /// One optimizer step over `k` micro-batch losses from `micro(model, batch_rng)`: each loss
    /// scaled by `1/k` and backpropagated in turn, then clipping, the scheduled learning rate
    /// and AdamW. A loss that is not finite stops the step before the update.
    fn step_with(
        &mut self,
        k: usize,
        mut micro: impl FnMut(&Model, &mut Rng) -> Result<Loss>,
    ) -> Result<StepStats> {
        let start = Instant::now();
        let mut phases = StepPhases::default();
        let mut lap = Lap::new();
        self.model.train();
        let mut total = 0.0;
        let mut units = 0;
        let mut metrics = Metrics::new();
        for _ in 0..k {
            let Loss {
                loss,
                units: n,
                metrics: m,
            } = micro(&self.model, &mut self.batch_rng)?;
            total += loss.value().item();
            units += n;
            add_scaled(&mut metrics, &m, 1.0 / k as f64);
            phases.forward += lap.ms();
            // Scaling each micro-batch's loss by 1/k makes the accumulated gradient the
            // gradient of the mean loss over all k micro-batches.
            loss.mul_scalar(1.0 / k as f64).backward();
            phases.backward += lap.ms();
        }
        let loss = total / k as f64;
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
            tok_per_s: units as f64 / seconds,
            phases,
            metrics,
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

    /// The model's metrics under `objective`, in evaluation mode with gradients off. Its random
    /// draws come from a generator seeded by the step, so evaluation draws nothing from the
    /// training generators and does not change the run.
    pub fn evaluate(&mut self, objective: &mut dyn Objective) -> Result<Metrics> {
        self.model.eval();
        let mut rng =
            Rng::new(self.cfg.seed ^ (self.step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let metrics = no_grad(|| objective.evaluate(&self.model, &mut rng, self.device));
        self.model.train();
        metrics
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

/// Adds `scale` times each of `more` to the metric of its name in `sum` (appended if new).
fn add_scaled(sum: &mut Metrics, more: &Metrics, scale: f64) {
    for (name, value) in more {
        match sum.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v += scale * value,
            None => sum.push((name.clone(), scale * value)),
        }
    }
}
