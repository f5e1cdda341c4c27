//! `llm grpo`: reinforcement learning of a fine-tuned model against a task's verifier.

use llm::data::template::{Role, Turn};
use llm::model::config::Config;
use llm::run::lock::RunLock;
use llm::run::{self, load};
use llm::stages::grpo::{Grpo, Settings};
use llm::stages::sft::{self, SftInfo};
use llm::tasks::{self, Problem, Task};
use llm::train::objective::Objective;
use llm::train::{driver, epoch_schedule, Trainer};
use llm::{Error, Result};
use nn::{Module, SharedRng};
use std::path::PathBuf;
use tensor::Device;

/// Improve a model on a verifiable task with GRPO (group relative policy optimization)
///
/// Each rollout draws --group replies to each of --prompts-per-rollout random prompts of
/// --prompts (JSON Lines of {"prompt", "answer"}) at temperature 1 from the full distribution;
/// the verifier scores each reply (1 for a right answer; countdown gives partial credit), and
/// a reply's advantage is its reward minus its group's mean, divided by the group's standard
/// deviation (unless --no-std-scale). The policy then trains --epochs passes over the rollout
/// in minibatches of --minibatch replies on PPO's clipped objective (ratio of the policy to
/// the one that drew the rollout, clipped to 1 +- --clip), plus --kl-coef times a k3 estimate
/// of the KL divergence to the frozen starting model. A fine-tuned run's template frames each
/// prompt and its end token ends each reply. Logged every step: the rollout's mean reward and
/// reply length, clip fraction, approximate KL to the rollout policy (and KL to the reference);
/// at each evaluation: greedy accuracy on --val.
#[derive(clap::Args)]
pub struct Args {
    /// The model to improve (a run directory, usually fine-tuned with `llm sft`).
    #[arg(long, value_name = "DIR")]
    init_from: PathBuf,
    /// Training prompts with their answers.
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
    out: PathBuf,
    /// Start over in an --out that already holds a run.
    #[arg(long)]
    overwrite: bool,
    /// exact (the answer string) or countdown.
    #[arg(long, default_value = "exact", value_parser = ["exact", "countdown"])]
    verifier: String,
    /// Replies per prompt, 2 to 1,024.
    #[arg(long, value_name = "G", default_value_t = 8, value_parser = super::at_least_two)]
    group: usize,
    /// Prompts per rollout, 1 to 4,096.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = super::positive_at_most::<4096>)]
    prompts_per_rollout: usize,
    /// Replies per optimizer step, 1 to 65,536.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = super::positive_at_most::<65_536>)]
    minibatch: usize,
    /// Passes over each rollout, 1 to 100.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = super::positive_at_most::<100>)]
    epochs: usize,
    /// Rollouts, 1 to 1,000,000.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = super::positive_at_most::<1_000_000>)]
    rollouts: usize,
    /// The clipping range of the probability ratio (above 0).
    #[arg(long, value_name = "EPS", default_value_t = 0.2, value_parser = super::positive_f64)]
    clip: f64,
    /// Weight of the KL penalty toward the starting model (0: none).
    #[arg(long, value_name = "B", default_value_t = 0.0, value_parser = super::non_negative_f64)]
    kl_coef: f64,
    /// Advantages are rewards minus the group mean, not divided by the group's deviation.
    #[arg(long)]
    no_std_scale: bool,
    /// Most tokens per reply, 1 to 4,096.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = super::positive_at_most::<4096>)]
    max_new_tokens: usize,
    /// Peak learning rate (warmup then cosine decay to a tenth).
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

impl Args {
    pub fn run(self) -> Result<()> {
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
        let replies = self.prompts_per_rollout * self.group;
        let per_rollout = replies.div_ceil(self.minibatch) * self.epochs;
        let steps = per_rollout * self.rollouts;
        let mut cfg = Config {
            dropout: 0.0,
            lora_rank: 0,
            lora_alpha: 0.0,
            ..epoch_schedule(
                &base,
                self.lr,
                self.minibatch,
                steps,
                per_rollout * 10,
                self.seed,
            )
        };
        cfg.eval_interval = self.eval_interval.unwrap_or(cfg.eval_interval);
        cfg.validate_resolved().map_err(|e| Error::Config(e.0))?;
        let reference = match self.kl_coef > 0.0 {
            true => {
                let (model, _, _) = load::load_model(&self.init_from)?;
                model.freeze();
                model.to_device(device)?;
                Some(model)
            }
            false => None,
        };
        let settings = Settings {
            group: self.group,
            prompts: self.prompts_per_rollout,
            minibatch: self.minibatch,
            epochs: self.epochs,
            clip: self.clip,
            kl_coef: self.kl_coef,
            scale_by_std: !self.no_std_scale,
            max_new_tokens: self.max_new_tokens,
            end: (end_id, end_text),
        };
        let verifier = match self.verifier.as_str() {
            "countdown" => Task::Countdown,
            _ => Task::Arithmetic,
        };
        // The objective keeps a tokenizer of its own to read the replies.
        let (_, reader) = load::base_config(&self.init_from)?;
        let mut objective = Grpo::new(prompts, val, reader, verifier, reference, settings);
        objective.check(&cfg)?;
        let policy = load::init_from(&self.init_from, &cfg)?;
        let mut trainer =
            Trainer::with_model(cfg.clone(), policy, SharedRng::new(cfg.seed + 2), device)?;
        llm::data::create_out_dir(&self.out)?;
        let _lock = RunLock::acquire(&self.out)?;
        super::train::claim_run_dir(&self.out, self.overwrite)?;
        run::write_run_files(&self.out, &cfg, tok.as_ref())?;
        if let Some(info) = &info {
            info.write(&self.out)?;
        }
        eprintln!(
            "GRPO of {} on {}: {} rollouts of {} prompts x {} replies, {} steps of {} replies; \
             run directory {}",
            self.init_from.display(),
            self.prompts.display(),
            self.rollouts,
            self.prompts_per_rollout,
            self.group,
            steps,
            self.minibatch,
            self.out.display()
        );
        driver::drive(&mut trainer, &mut objective, &self.out, false, "tok")?;
        Ok(())
    }
}
