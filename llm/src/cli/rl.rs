//! What `llm grpo` and `llm ppo` share: the flags of a reinforcement-learning run on a
//! verifiable task, reading its prompts, and the training loop around an objective.

use llm::data::template::{Role, Turn};
use llm::model::config::Config;
use llm::model::Model;
use llm::run::lock::RunLock;
use llm::run::{self, load};
use llm::stages::rollout::TaskSetup;
use llm::stages::sft::{self, SftInfo};
use llm::tasks::{self, Problem, Task};
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
    /// Training prompts with their answers (JSON Lines of {"prompt", "answer"}).
    #[arg(long, value_name = "FILE")]
    prompts: PathBuf,
    /// Held-out problems for the greedy accuracy at each evaluation (the first --val-n).
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
    /// exact (the answer string) or countdown.
    #[arg(long, default_value = "exact", value_parser = ["exact", "countdown"])]
    verifier: String,
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
    /// The training prompts, in the run's template.
    pub prompts: Vec<Problem>,
    /// The held-out problems, in the template.
    pub val: Vec<Problem>,
    /// The end token, id and text.
    pub end: (u32, String),
    pub verifier: Task,
}

impl Common {
    /// Reads the starting run and the prompts, and sets up the schedule for `group` replies
    /// per prompt.
    pub fn prepare(&self, group: usize) -> Result<Prepared> {
        let device = Device::parse(&self.device)?;
        let (base, tok) = load::base_config(&self.init_from)?;
        let info = SftInfo::read(&self.init_from)?;
        let (template, end_id, end_text) = sft::reply_format(info.as_ref(), tok.as_ref())?;
        let framed = |problems: Vec<Problem>| -> Result<Vec<Problem>> {
            problems
                .into_iter()
                .map(|p| {
                    let prompt = template.prompt(&[Turn::new(Role::User, p.prompt.as_str())])?;
                    Ok(Problem::new(prompt, p.answer))
                })
                .collect()
        };
        let prompts = framed(tasks::read_jsonl(&self.prompts)?)?;
        let val = match &self.val {
            Some(path) => framed(
                tasks::read_jsonl(path)?
                    .into_iter()
                    .take(self.val_n)
                    .collect(),
            )?,
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
        let verifier = match self.verifier.as_str() {
            "countdown" => Task::Countdown,
            _ => Task::Arithmetic,
        };
        Ok(Prepared {
            device,
            cfg,
            tok,
            info,
            prompts,
            val,
            end: (end_id, end_text),
            verifier,
        })
    }

    /// The prompts, held-out problems and verifier of `p` (taken from it), with another copy
    /// of the starting run's tokenizer for the objective to read replies with.
    pub fn task(&self, p: &mut Prepared) -> Result<TaskSetup> {
        Ok(TaskSetup {
            prompts: std::mem::take(&mut p.prompts),
            val: std::mem::take(&mut p.val),
            tok: load::base_config(&self.init_from)?.1,
            verifier: p.verifier,
        })
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
