//! Group Relative Policy Optimization (Shao et al., 2024, "DeepSeekMath"): reinforcement
//! learning from a reward, without a value model. Each rollout draws `G` replies to each of a
//! few prompts from the policy's full distribution (temperature 1, no top-k or top-p, so the
//! replies are samples of the policy whose probabilities the loss uses), scores every reply,
//! and gives each the advantage of its reward within its group:
//!
//! ```text
//! A_i = (r_i - mean(r_group)) / (std(r_group) + 1e-4)      (without the division: --no-std-scale)
//! ```
//!
//! Every token of a reply carries its reply's advantage. The policy then takes several steps
//! on the rollout, minibatch by minibatch, on PPO's clipped objective with `rho` the ratio
//! `pi(token) / pi_old(token)` of the current policy to the one that drew the rollout:
//!
//! ```text
//! L = -mean_tokens min(rho A, clip(rho, 1 - eps, 1 + eps) A) + kl_coef mean_tokens k3
//! k3 = exp(log ref - log pi) - (log ref - log pi) - 1     (>= 0, 0 when pi = ref)
//! ```
//!
//! the second term an optional penalty toward a frozen reference (the initial policy), with
//! Schulman's k3 estimator of the KL divergence. The mean runs over every reply token of the
//! minibatch. A group whose replies all score alike has advantage 0 and teaches nothing.

use crate::model::Model;
use crate::stages::rollout::{self, Drawn, TaskSetup};
use crate::stages::sft::Sequence;
use crate::train::objective::{Loss, Metrics, Objective};
use crate::Result;
use autograd::Var;
use tensor::{Device, Rng, Tensor};

/// The settings of a GRPO run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Replies drawn per prompt (`G`, at least 2).
    pub group: usize,
    /// Prompts per rollout.
    pub prompts: usize,
    /// Replies per optimizer step.
    pub minibatch: usize,
    /// Passes over each rollout.
    pub epochs: usize,
    /// The clipping range `eps`.
    pub clip: f64,
    /// The weight of the KL penalty (0: none, and no reference model is run).
    pub kl_coef: f64,
    /// Divide the advantages by their group's standard deviation.
    pub scale_by_std: bool,
    /// Most tokens per reply.
    pub max_new_tokens: usize,
    /// The token that ends a reply (the fine-tuning run's end token).
    pub end: (u32, String),
}

impl rollout::ReplyFormat for Settings {
    fn max_new_tokens(&self) -> usize {
        self.max_new_tokens
    }

    fn end(&self) -> &(u32, String) {
        &self.end
    }
}

/// `(r - mean) / (std + 1e-4)` within each consecutive group of `group` rewards (or `r - mean`
/// without `scale`); the standard deviation is the population one.
pub fn group_advantages(rewards: &[f64], group: usize, scale: bool) -> Vec<f64> {
    rewards
        .chunks(group)
        .flat_map(|g| {
            let mean = g.iter().sum::<f64>() / g.len() as f64;
            let std = (g.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / g.len() as f64).sqrt();
            let div = if scale { std + 1e-4 } else { 1.0 };
            g.iter().map(move |r| (r - mean) / div)
        })
        .collect()
}

/// `clip(x, lo, hi)` for `lo < hi`, written with two ReLUs: `lo + relu(x - lo) - relu(x - hi)`.
fn clamp(x: &Var, lo: f64, hi: f64) -> Var {
    x.affine(1.0, -lo)
        .relu()
        .sub(&x.affine(1.0, -hi).relu())
        .affine(1.0, lo)
}

/// `min(a, b)` elementwise: `a - relu(a - b)`.
fn minimum(a: &Var, b: &Var) -> Var {
    a.sub(&a.sub(b).relu())
}

/// PPO's clipped surrogate loss `-mean min(rho A, clip(rho, 1 - eps, 1 + eps) A)` over tokens,
/// with `rho = exp(logp - old)`; `old` and `advantages` are constants of the tokens' shape.
pub fn clipped_loss(logp: &Var, old: &Tensor, advantages: &Tensor, eps: f64) -> Var {
    let like = |t: &Tensor| Var::constant(t.to_dtype(logp.dtype()).to_device(logp.device()));
    let ratio = logp.sub(&like(old)).exp();
    let a = like(advantages);
    minimum(&ratio.mul(&a), &clamp(&ratio, 1.0 - eps, 1.0 + eps).mul(&a))
        .mean_all()
        .neg()
}

/// The mean over tokens of the k3 estimate of `KL(pi || ref)`, `exp(d) - d - 1` with
/// `d = log ref - log pi`: never negative, 0 exactly where the two agree.
pub fn kl_k3(logp: &Var, reference: &Tensor) -> Var {
    let r = Var::constant(reference.to_dtype(logp.dtype()).to_device(logp.device()));
    let d = r.sub(logp);
    d.exp().sub(&d).affine(1.0, -1.0).mean_all()
}

/// One rollout: the replies, their advantages, and the drawing policy's (and the reference's)
/// log-probabilities of each reply token.
struct Rollout {
    replies: Vec<Sequence>,
    advantages: Vec<f64>,
    old: Vec<Vec<f64>>,
    reference: Vec<Vec<f64>>,
    /// The minibatches still to train on, as indices into `replies`.
    queue: Vec<Vec<usize>>,
    /// Figures of the rollout, logged with each of its steps.
    metrics: Metrics,
}

/// GRPO on a verifiable task: the objective draws a new rollout whenever the last one has
/// been trained on.
pub struct Grpo {
    task: TaskSetup,
    reference: Option<Model>,
    settings: Settings,
    rollout: Option<Rollout>,
}

impl Grpo {
    /// Training on `task`'s prompts against its scorer, evaluated on its held-out prompts;
    /// `reference` is the frozen initial policy when `kl_coef > 0`.
    pub fn new(task: TaskSetup, reference: Option<Model>, settings: Settings) -> Grpo {
        Grpo {
            task,
            reference,
            settings,
            rollout: None,
        }
    }

    /// Draws `group` replies to each of `prompts` random training prompts and scores them.
    fn draw(&self, model: &Model, rng: &mut Rng, device: Device) -> Result<Rollout> {
        let s = &self.settings;
        let Drawn { replies, rewards } = self.task.draw(model, s.prompts, s.group, s, rng)?;
        let advantages = group_advantages(&rewards, s.group, s.scale_by_std);
        let (pad, chunk) = (s.end.0, s.minibatch);
        let old = rollout::logps_of(model, &replies, chunk, pad, device);
        let reference = match &self.reference {
            Some(r) if s.kl_coef > 0.0 => rollout::logps_of(r, &replies, chunk, pad, device),
            _ => vec![],
        };
        let queue = rollout::minibatches(replies.len(), s.minibatch, s.epochs, rng);
        let n = rewards.len() as f64;
        let mean_reward = rewards.iter().sum::<f64>() / n;
        let length = replies
            .iter()
            .map(|r| r.scored.iter().filter(|&&b| b).count())
            .sum::<usize>();
        let metrics = vec![
            ("reward".to_string(), mean_reward),
            ("reply_tokens".to_string(), length as f64 / n),
        ];
        Ok(Rollout {
            replies,
            advantages,
            old,
            reference,
            queue,
            metrics,
        })
    }
}

impl Objective for Grpo {
    fn check(&self, cfg: &crate::model::config::Config) -> Result<()> {
        self.task.check(&self.settings, cfg)
    }

    fn loss(&mut self, model: &Model, rng: &mut Rng, device: Device) -> Result<Loss> {
        if self.rollout.as_ref().is_none_or(|r| r.queue.is_empty()) {
            self.rollout = Some(self.draw(model, rng, device)?);
        }
        let s = self.settings.clone();
        let r = self.rollout.as_mut().expect("drawn above");
        let which = r.queue.pop().expect("a rollout has minibatches");
        let seqs: Vec<&Sequence> = which.iter().map(|&i| &r.replies[i]).collect();
        let logp = rollout::token_logps(model, &seqs, s.end.0, device);
        let per_token = |values: &dyn Fn(usize) -> Vec<f64>| -> Tensor {
            let v: Vec<f64> = which.iter().flat_map(|&i| values(i)).collect();
            let n = v.len();
            Tensor::from_vec(v, &[n])
        };
        let old = per_token(&|i| r.old[i].clone());
        let adv = per_token(&|i| vec![r.advantages[i]; r.old[i].len()]);
        let mut loss = clipped_loss(&logp, &old, &adv, s.clip);
        let mut metrics = r.metrics.clone();
        if !r.reference.is_empty() {
            let reference = per_token(&|i| r.reference[i].clone());
            let kl = kl_k3(&logp, &reference);
            metrics.push(("kl".into(), kl.value().item()));
            loss = loss.add(&kl.mul_scalar(s.kl_coef));
        }
        let (new, old) = (logp.value().to_vec_f64(), old.to_vec_f64());
        metrics.extend(rollout::ratio_metrics(&new, &old, s.clip));
        Ok(Loss {
            loss,
            units: seqs.iter().map(|s| s.ids.len()).sum(),
            metrics,
        })
    }

    /// The held-out metrics of the task (see [`TaskSetup::evaluate`]).
    fn evaluate(&mut self, model: &Model, _rng: &mut Rng, _device: Device) -> Result<Metrics> {
        self.task.evaluate(model, &self.settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advantages_are_rewards_against_their_group() {
        let a = group_advantages(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], 3, false);
        let third = 1.0 / 3.0;
        let want = [2.0 * third, -third, -third, 0.0, 0.0, 0.0];
        assert!(
            a.iter().zip(want).all(|(a, w)| (a - w).abs() < 1e-12),
            "{a:?}"
        );
        // Scaled: group one has std sqrt(2)/3.
        let s = group_advantages(&[1.0, 0.0, 0.0], 3, true);
        let std = 2f64.sqrt() / 3.0;
        assert!((s[0] - 2.0 * third / (std + 1e-4)).abs() < 1e-12, "{s:?}");
    }

    #[test]
    fn the_clipped_loss_and_the_kl_pass_the_gradient_check() {
        let mut rng = Rng::new(11);
        let mut draw = |scale: f64| {
            Tensor::from_vec(
                (0..6).map(|_| rng.normal() * scale).collect::<Vec<f64>>(),
                &[6],
            )
        };
        let (old, adv, reference) = (draw(0.3), draw(1.0), draw(0.3));
        // Log-probabilities near the old ones, some ratios inside the clip range, some out.
        let logp = old.add(&draw(0.3));
        let (o, a) = (old.clone(), adv.clone());
        let f = move |x: &[Var]| clipped_loss(&x[0], &o, &a, 0.2);
        autograd::gradcheck::gradcheck("clipped loss", f, std::slice::from_ref(&logp)).unwrap();
        let f = move |x: &[Var]| kl_k3(&x[0], &reference);
        autograd::gradcheck::gradcheck("k3 KL", f, &[logp]).unwrap();
    }

    #[test]
    fn with_the_policy_at_the_reference_the_kl_is_0_and_zero_advantages_give_no_gradient() {
        let logp = Var::parameter(Tensor::from_vec(vec![-0.5f64, -1.5, -0.1], &[3]));
        let same = logp.value().clone();
        assert_eq!(kl_k3(&logp, &same).value().item(), 0.0);
        let loss = clipped_loss(&logp, &same, &Tensor::from_vec(vec![0.0f64; 3], &[3]), 0.2);
        loss.backward();
        assert!(logp
            .grad()
            .unwrap()
            .to_vec::<f64>()
            .iter()
            .all(|&g| g == 0.0));
    }

    #[test]
    fn a_step_on_a_positive_advantage_raises_the_replys_probability() {
        use nn::Module;
        let cfg = crate::model::config::Config {
            vocab_size: 9,
            block_size: 12,
            n_layer: 1,
            n_head: 2,
            n_embd: 8,
            dropout: 0.0,
            ..crate::model::config::Config::char_small()
        };
        let model = Model::new(&cfg, &mut Rng::new(5), &nn::SharedRng::new(0));
        let reply = Sequence {
            ids: vec![1, 2, 3, 4, 5],
            scored: vec![false, false, true, true, true],
        };
        let logp = |m: &Model| rollout::token_logps(m, &[&reply], 0, Device::Cpu);
        for sign in [1.0, -1.0] {
            let before = logp(&model).value().to_vec_f64();
            let adv = Tensor::from_vec(vec![sign; before.len()], &[before.len()]);
            let loss = clipped_loss(
                &logp(&model),
                &Tensor::from_vec(before.clone(), &[3]),
                &adv,
                0.2,
            );
            loss.backward();
            for p in model.params() {
                let step = p.grad().unwrap().mul_scalar(-0.01);
                p.set_value(p.value().add(&step));
                p.zero_grad();
            }
            let after: f64 = logp(&model).value().to_vec_f64().iter().sum();
            let before: f64 = before.iter().sum();
            assert!(
                sign * (after - before) > 0.0,
                "advantage {sign}: {before} -> {after}"
            );
        }
    }
}
