//! What PPO and GRPO share: the flags of a reinforcement-learning run, reading its prompts and
//! its scorer, and the training loop around an objective.

use llm::model::config::Config;
use llm::model::Model;
use llm::run::lock::RunLock;
use llm::run::{self, load};
use llm::stages::rollout::TaskSetup;
use llm::stages::scorer::Scorer;
use llm::stages::sft::{self, SftInfo};
use llm::tasks::{self, Problem};
use llm::tokenizer::Tokenizer;
use llm::train::objective::Objective;
use llm::train::{driver, epoch_schedule, Trainer};
use llm::{Error, Result};
use nn::{Module, SharedRng};
use std::path::PathBuf;
use tensor::Device;

/// The flags every reinforcement-learning run takes.
#[derive(clap::Args)]
pub struct Common {
    /// The model to improve (a run directory, usually fine-tuned with `llm sft`).
    #[arg(long, value_name = "DIR")]
    init_from: PathBuf,
    /// Training prompts: JSON Lines of {"prompt", "answer"} (the answer is needed by a task's
    /// verifier only).
    #[arg(long, value_name = "FILE")]
    prompts: PathBuf,
    /// Held-out prompts, in the same shape, for each evaluation (the first --val-n): greedy
    /// accuracy with a verifier, mean reward of sampled replies with a model.
    #[arg(long, value_name = "FILE")]
    val: Option<PathBuf>,
    /// Problems of --val used, 1 to 1,000,000.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = super::positive_at_most::<1_000_000>)]
    val_n: usize,
    /// The run directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Start over in an --out that already holds a run.
    #[arg(long)]
    overwrite: bool,
    /// What scores a reply: arithmetic (exact match of the answer; also `exact`), countdown,
    /// a reward model's run directory, or a classifier's run directory and one of its classes
    /// as DIR:CLASS (the class's probability for the prompt followed by the reply).
    #[arg(long, value_name = "SPEC", default_value = "arithmetic")]
    reward: String,
    /// Prompts per rollout, 1 to 4,096.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = super::positive_at_most::<4096>)]
    pub prompts_per_rollout: usize,
    /// Replies per optimizer step, 1 to 65,536.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = super::positive_at_most::<65_536>)]
    pub minibatch: usize,
    /// Passes over each rollout, 1 to 100.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = super::positive_at_most::<100>)]
    pub epochs: usize,
    /// Rollouts, 1 to 1,000,000.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = super::positive_at_most::<1_000_000>)]
    rollouts: usize,
    /// The clipping range of the probability ratio (above 0).
    #[arg(long, value_name = "EPS", default_value_t = 0.2, value_parser = super::positive_f64)]
    pub clip: f64,
    /// Most tokens per reply, 1 to 4,096.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = super::positive_at_most::<4096>)]
    pub max_new_tokens: usize,
    /// Peak learning rate of the policy (warmup then cosine decay to a tenth).
    #[arg(long, value_name = "LR", default_value_t = 5e-5, value_parser = super::positive_f64)]
    lr: f64,
    /// Evaluate every N optimizer steps [default: every 10 rollouts].
    #[arg(long, value_name = "N", value_parser = super::positive_at_most::<10_000_000>)]
    eval_interval: Option<usize>,
    /// Seed of the prompts drawn, the replies and the minibatches.
    #[arg(long, value_name = "S", default_value_t = 1337)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// A run's inputs, read and checked.
pub struct Prepared {
    pub device: Device,
    pub cfg: Config,
    /// The starting run's tokenizer, written with the run.
    pub tok: Box<dyn Tokenizer>,
    pub info: Option<SftInfo>,
    /// The end token, id and text.
    pub end: (u32, String),
}

impl Common {
    /// Reads the starting run, the scorer and the prompts, and sets up the schedule for
    /// `group` replies per prompt; returns the run's inputs and what it trains on.
    pub fn prepare(&self, group: usize) -> Result<(Prepared, TaskSetup)> {
        let device = Device::parse(&self.device)?;
        let scorer = Scorer::parse(&self.reward, device)?;
        let (base, tok) = load::base_config(&self.init_from)?;
        let info = SftInfo::read(&self.init_from)?;
        let (template, end_id, end_text) = sft::reply_format(info.as_ref(), tok.as_ref())?;
        let read = |path: &std::path::Path| -> Result<Vec<Problem>> {
            match scorer.needs_answers() {
                true => tasks::read_jsonl(path),
                false => tasks::read_prompts(path),
            }
        };
        let prompts = read(&self.prompts)?;
        let val = match &self.val {
            Some(path) => read(path)?.into_iter().take(self.val_n).collect(),
            None => vec![],
        };
        let replies = self.prompts_per_rollout * group;
        let per_rollout = replies.div_ceil(self.minibatch) * self.epochs;
        let steps = per_rollout * self.rollouts;
        let every = per_rollout * 10;
        let mut cfg = Config {
            dropout: 0.0,
            lora_rank: 0,
            lora_alpha: 0.0,
            ..epoch_schedule(&base, self.lr, self.minibatch, steps, every, self.seed)
        };
        cfg.eval_interval = self.eval_interval.unwrap_or(cfg.eval_interval);
        cfg.validate_resolved().map_err(|e| Error::Config(e.0))?;
        let task = TaskSetup {
            prompts,
            val,
            template,
            tok: load::base_config(&self.init_from)?.1,
            scorer,
        };
        let prepared = Prepared {
            device,
            cfg,
            tok,
            info,
            end: (end_id, end_text),
        };
        Ok((prepared, task))
    }

    /// The starting model again, on `device`: the reference, or a body to train apart.
    pub fn load_start(&self, device: Device) -> Result<Model> {
        let (model, _, _) = load::load_model(&self.init_from)?;
        model.to_device(device)?;
        Ok(model)
    }

    /// Checks `objective`, then trains the policy from the starting run with it into --out;
    /// `what` names the run in its first line.
    pub fn train(&self, p: &Prepared, objective: &mut dyn Objective, what: &str) -> Result<()> {
        objective.check(&p.cfg)?;
        let policy = load::init_from(&self.init_from, &p.cfg)?;
        let cfg = p.cfg.clone();
        let mut trainer =
            Trainer::with_model(cfg.clone(), policy, SharedRng::new(cfg.seed + 2), p.device)?;
        llm::data::create_out_dir(&self.out)?;
        let _lock = RunLock::acquire(&self.out)?;
        super::train::claim_run_dir(&self.out, self.overwrite)?;
        run::write_run_files(&self.out, &cfg, p.tok.as_ref())?;
        if let Some(info) = &p.info {
            info.write(&self.out)?;
        }
        eprintln!(
            "{what} of {} on {}: {} rollouts of {} prompts, {} steps of {} replies on {}; run \
             directory {}",
            self.init_from.display(),
            self.prompts.display(),
            self.rollouts,
            self.prompts_per_rollout,
            cfg.max_iters,
            self.minibatch,
            p.device.describe(),
            self.out.display()
        );
        driver::drive(&mut trainer, objective, &self.out, false, "tok")?;
        Ok(())
    }
}
