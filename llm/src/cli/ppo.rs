//! `llm ppo`: reinforcement learning of a fine-tuned model against a scorer, with PPO or GRPO.

use super::rl::Common;
use llm::stages::grpo::{self, Grpo};
use llm::stages::ppo::{self, AdaptiveKl, Critic, Ppo};
use llm::{Error, Result};
use nn::Module;

/// Improve a model against a reward with PPO (a value model, GAE, a KL penalty) or GRPO
///
/// Each rollout draws --group replies to each of --prompts-per-rollout random prompts of
/// --prompts at temperature 1 from the full distribution, and --reward scores each: a task's
/// verifier (arithmetic, countdown), a reward model, or a classifier's probability of a class.
/// The policy then trains --epochs passes over the rollout in minibatches of --minibatch
/// replies on the clipped objective (the ratio of the policy to the one that drew the rollout,
/// clipped to 1 +- --clip). A fine-tuned run's template frames each prompt and its end token
/// ends each reply.
///
/// --algo ppo (default): every reply token is rewarded -kl-coef (log pi - log ref), the k1
/// estimate of the KL divergence to the frozen starting model, and the last token also gets
/// the score. A separate value model (a copy of the starting model with a one-output head,
/// trained by its own AdamW at --value-lr) estimates each position's value; advantages come
/// from GAE (--gamma, --lambda), whitened over the rollout; the loss subtracts --entropy-coef
/// times the mean entropy, and the value model trains on the clipped value loss
/// (--value-clip). With --kl-target the KL coefficient adapts toward that KL per reply
/// (Ziegler et al., 2019).
///
/// --algo grpo: no value model; a reply's advantage is its reward minus its group's mean,
/// divided by the group's standard deviation (unless --no-std-scale), and the loss adds
/// --kl-coef times a k3 estimate of the KL divergence to the starting model.
///
/// Logged every step: the rollout's mean reward and reply length, clip fraction, approximate
/// KL to the rollout's policy, and per algorithm KL to the reference, KL coefficient, value
/// loss, entropy; at each evaluation on --val: greedy accuracy with a verifier, or the mean
/// reward of sampled replies with a model.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// The algorithm.
    #[arg(long, value_enum, default_value = "ppo")]
    algo: Algo,
    /// Replies per prompt, 1 to 1,024 (GRPO: at least 2) [default: ppo 1, grpo 8].
    #[arg(long, value_name = "G", value_parser = super::positive_at_most::<1024>)]
    group: Option<usize>,
    /// The weight of the KL penalty toward the starting model; with --kl-target, its start
    /// [default: ppo 0.05, grpo 0].
    #[arg(long, value_name = "B", value_parser = super::non_negative_f64)]
    kl_coef: Option<f64>,
    /// GRPO: advantages are rewards minus the group mean, not divided by its deviation.
    #[arg(long)]
    no_std_scale: bool,
    #[command(flatten)]
    ppo: PpoFlags,
}

/// The algorithm of `llm ppo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Algo {
    /// Proximal policy optimization with a value model.
    Ppo,
    /// Group relative policy optimization.
    Grpo,
}

/// The flags PPO alone reads.
#[derive(clap::Args)]
struct PpoFlags {
    /// PPO: the discount gamma, 0 to 1 [default: 1].
    #[arg(long, value_name = "G", value_parser = unit)]
    gamma: Option<f64>,
    /// PPO: GAE's lambda, 0 to 1 [default: 0.95].
    #[arg(long, value_name = "L", value_parser = unit)]
    lambda: Option<f64>,
    /// PPO: adapt the KL coefficient toward this KL per reply.
    #[arg(long, value_name = "KL", value_parser = super::positive_f64)]
    kl_target: Option<f64>,
    /// PPO: replies over which the adaptive coefficient makes a full correction [default:
    /// 10000].
    #[arg(long, value_name = "N", value_parser = super::positive_f64)]
    kl_horizon: Option<f64>,
    /// PPO: the weight of the entropy bonus [default: 0].
    #[arg(long, value_name = "C", value_parser = super::non_negative_f64)]
    entropy_coef: Option<f64>,
    /// PPO: the clipping range of the value [default: 0.2].
    #[arg(long, value_name = "C", value_parser = super::positive_f64)]
    value_clip: Option<f64>,
    /// PPO: the value model's learning rate, constant [default: 1e-4].
    #[arg(long, value_name = "LR", value_parser = super::positive_f64)]
    value_lr: Option<f64>,
}

impl PpoFlags {
    /// The flags given, by name.
    fn given(&self) -> Vec<&'static str> {
        let flags = [
            ("--gamma", self.gamma.is_some()),
            ("--lambda", self.lambda.is_some()),
            ("--kl-target", self.kl_target.is_some()),
            ("--kl-horizon", self.kl_horizon.is_some()),
            ("--entropy-coef", self.entropy_coef.is_some()),
            ("--value-clip", self.value_clip.is_some()),
            ("--value-lr", self.value_lr.is_some()),
        ];
        flags.iter().filter(|f| f.1).map(|f| f.0).collect()
    }
}

/// A number from 0 to 1.
fn unit(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("expected a number from 0 to 1, not `{s}`")),
    }
}

impl Args {
    pub fn run(self) -> Result<()> {
        match self.algo {
            Algo::Ppo => self.run_ppo(),
            Algo::Grpo => self.run_grpo(),
        }
    }

    fn run_ppo(self) -> Result<()> {
        if self.no_std_scale {
            return Err(Error::Invalid(
                "--no-std-scale is a GRPO flag (use it with --algo grpo)".into(),
            ));
        }
        let (c, f) = (&self.common, &self.ppo);
        let group = self.group.unwrap_or(1);
        let (p, task) = c.prepare(group)?;
        let reference = c.load_start(p.device)?;
        reference.freeze();
        let critic = Critic::new(
            c.load_start(p.device)?,
            f.value_lr.unwrap_or(1e-4),
            p.device,
        )?;
        let kl = AdaptiveKl {
            beta: self.kl_coef.unwrap_or(0.05),
            target: f.kl_target,
            horizon: f.kl_horizon.unwrap_or(10_000.0),
        };
        let settings = ppo::Settings {
            group,
            prompts: c.prompts_per_rollout,
            minibatch: c.minibatch,
            epochs: c.epochs,
            clip: c.clip,
            value_clip: f.value_clip.unwrap_or(0.2),
            gamma: f.gamma.unwrap_or(1.0),
            lambda: f.lambda.unwrap_or(0.95),
            entropy_coef: f.entropy_coef.unwrap_or(0.0),
            max_new_tokens: c.max_new_tokens,
            end: p.end.clone(),
        };
        let mut objective = Ppo::new(task, reference, critic, kl, settings);
        c.train(&p, &mut objective, "PPO")
    }

    fn run_grpo(self) -> Result<()> {
        if let Some(flag) = self.ppo.given().first() {
            return Err(Error::Invalid(format!(
                "{flag} is a PPO flag (not read with --algo grpo)"
            )));
        }
        let c = &self.common;
        let group = self.group.unwrap_or(8);
        if group < 2 {
            return Err(Error::Invalid(
                "GRPO compares replies within a group: --group must be at least 2".into(),
            ));
        }
        let kl_coef = self.kl_coef.unwrap_or(0.0);
        let (p, task) = c.prepare(group)?;
        let reference = match kl_coef > 0.0 {
            true => {
                let model = c.load_start(p.device)?;
                model.freeze();
                Some(model)
            }
            false => None,
        };
        let settings = grpo::Settings {
            group,
            prompts: c.prompts_per_rollout,
            minibatch: c.minibatch,
            epochs: c.epochs,
            clip: c.clip,
            kl_coef,
            scale_by_std: !self.no_std_scale,
            max_new_tokens: c.max_new_tokens,
            end: p.end.clone(),
        };
        let mut objective = Grpo::new(task, reference, settings);
        c.train(&p, &mut objective, "GRPO")
    }
}
