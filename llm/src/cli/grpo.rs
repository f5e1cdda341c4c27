//! `llm grpo`: reinforcement learning of a fine-tuned model against a task's verifier.

use super::rl::Common;
use llm::stages::grpo::{Grpo, Settings};
use llm::Result;
use nn::Module;

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
    #[command(flatten)]
    common: Common,
    /// Replies per prompt, 2 to 1,024.
    #[arg(long, value_name = "G", default_value_t = 8, value_parser = super::at_least_two)]
    group: usize,
    /// Weight of the KL penalty toward the starting model (0: none).
    #[arg(long, value_name = "B", default_value_t = 0.0, value_parser = super::non_negative_f64)]
    kl_coef: f64,
    /// Advantages are rewards minus the group mean, not divided by the group's deviation.
    #[arg(long)]
    no_std_scale: bool,
}

impl Args {
    pub fn run(self) -> Result<()> {
        let c = &self.common;
        let mut p = c.prepare(self.group)?;
        let reference = match self.kl_coef > 0.0 {
            true => {
                let model = c.load_start(p.device)?;
                model.freeze();
                Some(model)
            }
            false => None,
        };
        let settings = Settings {
            group: self.group,
            prompts: c.prompts_per_rollout,
            minibatch: c.minibatch,
            epochs: c.epochs,
            clip: c.clip,
            kl_coef: self.kl_coef,
            scale_by_std: !self.no_std_scale,
            max_new_tokens: c.max_new_tokens,
            end: p.end.clone(),
        };
        let mut objective = Grpo::new(c.task(&mut p)?, reference, settings);
        c.train(&p, &mut objective, "GRPO")
    }
}
