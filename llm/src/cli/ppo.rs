//! `llm ppo`: proximal policy optimization of a fine-tuned model against a task's verifier.

use super::rl::Common;
use llm::stages::ppo::{AdaptiveKl, Critic, Ppo, Settings};
use llm::Result;
use nn::Module;

/// Improve a model on a verifiable task with PPO (a value model, GAE, a KL penalty)
///
/// Each rollout draws --group replies (default 1) to each of --prompts-per-rollout random
/// prompts of --prompts at temperature 1 from the full distribution, and the verifier scores
/// each. Every reply token is rewarded -kl-coef (log pi - log ref), the k1 estimate of the KL
/// divergence to the frozen starting model, and the last token also gets the verifier's score.
/// A separate value model (a copy of the starting model with a one-output head, trained by its
/// own AdamW at --value-lr) estimates each position's value; advantages come from GAE
/// (--gamma, --lambda), whitened over the rollout. The policy then trains --epochs passes over
/// the rollout in minibatches on PPO's clipped objective (minus --entropy-coef times the mean
/// entropy), and the value model on the clipped value loss (--value-clip). With --kl-target
/// the KL coefficient adapts toward that KL per reply (Ziegler et al., 2019). Logged every
/// step: the rollout's mean reward, KL per reply, KL coefficient and reply length, value loss,
/// entropy, clip fraction and approximate KL to the rollout's policy; at each evaluation:
/// greedy accuracy on --val.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// Replies per prompt, 1 to 1,024.
    #[arg(long, value_name = "G", default_value_t = 1, value_parser = super::positive_at_most::<1024>)]
    group: usize,
    /// The discount gamma (0 to 1).
    #[arg(long, value_name = "G", default_value_t = 1.0, value_parser = unit)]
    gamma: f64,
    /// GAE's lambda (0 to 1).
    #[arg(long, value_name = "L", default_value_t = 0.95, value_parser = unit)]
    lambda: f64,
    /// The weight of the per-token KL penalty (its start, with --kl-target).
    #[arg(long, value_name = "B", default_value_t = 0.05, value_parser = super::non_negative_f64)]
    kl_coef: f64,
    /// Adapt the KL coefficient toward this KL per reply.
    #[arg(long, value_name = "KL", value_parser = super::positive_f64)]
    kl_target: Option<f64>,
    /// Replies over which the adaptive coefficient makes a full correction.
    #[arg(long, value_name = "N", default_value_t = 10_000.0, value_parser = super::positive_f64)]
    kl_horizon: f64,
    /// The weight of the entropy bonus.
    #[arg(long, value_name = "C", default_value_t = 0.0, value_parser = super::non_negative_f64)]
    entropy_coef: f64,
    /// The clipping range of the value.
    #[arg(long, value_name = "C", default_value_t = 0.2, value_parser = super::positive_f64)]
    value_clip: f64,
    /// The value model's learning rate (constant).
    #[arg(long, value_name = "LR", default_value_t = 1e-4, value_parser = super::positive_f64)]
    value_lr: f64,
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
        let c = &self.common;
        let mut p = c.prepare(self.group)?;
        let reference = c.load_start(p.device)?;
        reference.freeze();
        let critic = Critic::new(c.load_start(p.device)?, self.value_lr, p.device)?;
        let kl = AdaptiveKl {
            beta: self.kl_coef,
            target: self.kl_target,
            horizon: self.kl_horizon,
        };
        let settings = Settings {
            group: self.group,
            prompts: c.prompts_per_rollout,
            minibatch: c.minibatch,
            epochs: c.epochs,
            clip: c.clip,
            value_clip: self.value_clip,
            gamma: self.gamma,
            lambda: self.lambda,
            entropy_coef: self.entropy_coef,
            max_new_tokens: c.max_new_tokens,
            end: p.end.clone(),
        };
        let mut objective = Ppo::new(c.task(&mut p)?, reference, critic, kl, settings);
        c.train(&p, &mut objective, "PPO")
    }
}
