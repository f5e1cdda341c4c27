//! Proximal Policy Optimization (Schulman et al., 2017) of a language model against a scorer
//! (a task's verifier, a reward model or a classifier), as RLHF applies it (Ziegler et al., 2019; Ouyang et al., 2022). Each part is a
//! function of its own below; a rollout goes through them in this order:
//!
//! 1. **Rollout** ([`crate::stages::rollout`]): one reply per prompt (or `group`), drawn at
//!    temperature 1 from the full distribution, scored by the [`crate::stages::scorer`].
//! 2. **Rewards per token** ([`token_rewards`]): `r_t = -beta (log pi(y_t) - log ref(y_t))`, the
//!    k1 estimate of the KL divergence to the frozen starting model as a penalty at every
//!    reply token, plus the reply's score at the last token.
//! 3. **Values**: a separate value model, a copy of the starting model with a head of one
//!    output read at every reply position ([`Critic`]), trained by its own AdamW. (A separate
//!    model costs a second forward and backward, but the policy's updates and the value's do
//!    not pull one body two ways.)
//! 4. **Advantages** ([`gae`]): `delta_t = r_t + gamma V_{t+1} - V_t` (0 after the last token),
//!    `A_t = delta_t + gamma lambda A_{t+1}`, returns `R_t = A_t + V_t`; then whitened over the
//!    rollout ([`whiten`]).
//! 5. **Updates**, several epochs of minibatches over the rollout: the clipped policy loss
//!    ([`crate::stages::grpo::clipped_loss`]) minus `entropy_coef` times the mean entropy of
//!    the next-token distributions, and the clipped value loss ([`value_loss`]).
//! 6. **The KL coefficient** stays fixed, or with a target KL moves toward it after each rollout
//!    ([`AdaptiveKl`]).

use crate::model::Model;
use crate::stages::grpo::clipped_loss;
use crate::stages::rollout::{self, Drawn, TaskSetup};
use crate::stages::sft::Sequence;
use crate::train::objective::{Loss, Metrics, Objective};
use crate::Result;
use autograd::{no_grad, Var};
use nn::optim::{AdamW, AdamWConfig, Optimizer};
use nn::Module;
use tensor::{Device, Rng, Tensor};

/// `r_t = -beta (logp_t - ref_t)` for each reply token, with `score` added at the last.
pub fn token_rewards(score: f64, logp: &[f64], reference: &[f64], beta: f64) -> Vec<f64> {
    let mut r: Vec<f64> = logp
        .iter()
        .zip(reference)
        .map(|(p, q)| -beta * (p - q))
        .collect();
    if let Some(last) = r.last_mut() {
        *last += score;
    }
    r
}

/// Generalized advantage estimation (Schulman et al., 2016) over one reply: the advantages and
/// the returns `A_t + V_t` from per-token `rewards` and `values`.
pub fn gae(rewards: &[f64], values: &[f64], gamma: f64, lambda: f64) -> (Vec<f64>, Vec<f64>) {
    let n = rewards.len();
    let mut advantages = vec![0.0; n];
    let mut next = 0.0;
    for t in (0..n).rev() {
        let next_value = if t + 1 < n { values[t + 1] } else { 0.0 };
        let delta = rewards[t] + gamma * next_value - values[t];
        next = delta + gamma * lambda * next;
        advantages[t] = next;
    }
    let returns = advantages.iter().zip(values).map(|(a, v)| a + v).collect();
    (advantages, returns)
}

/// `(x - mean) / (std + 1e-8)` over all of `xs` (population deviation).
pub fn whiten(xs: &[f64]) -> Vec<f64> {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let std = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    xs.iter().map(|x| (x - mean) / (std + 1e-8)).collect()
}

/// The clipped value loss `0.5 mean max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)`:
/// the value may not gain by moving further than `c` from the one the rollout saw.
pub fn value_loss(v: &Var, old: &Tensor, returns: &Tensor, c: f64) -> Var {
    let like = |t: &Tensor| Var::constant(t.to_dtype(v.dtype()).to_device(v.device()));
    let (old, returns) = (like(old), like(returns));
    let step = v.sub(&old);
    let clipped_step = step
        .affine(1.0, c)
        .relu()
        .sub(&step.affine(1.0, -c).relu())
        .affine(1.0, -c);
    let near = old.add(&clipped_step).sub(&returns);
    let far = v.sub(&returns);
    far.mul(&far)
        .maximum(&near.mul(&near))
        .mean_all()
        .mul_scalar(0.5)
}

/// The KL coefficient's controller (Ziegler et al., 2019): after a rollout with mean KL `kl`
/// per reply over `n` replies, `beta <- beta (1 + clip(kl / target - 1, -0.2, 0.2) n / horizon)`.
#[derive(Clone, Copy, Debug)]
pub struct AdaptiveKl {
    /// The current coefficient.
    pub beta: f64,
    /// The KL per reply aimed at (`None`: `beta` stays fixed).
    pub target: Option<f64>,
    /// How many replies a full correction takes.
    pub horizon: f64,
}

impl AdaptiveKl {
    /// Moves `beta` toward the target after a rollout.
    pub fn update(&mut self, kl: f64, n: usize) {
        if let Some(target) = self.target {
            let error = (kl / target - 1.0).clamp(-0.2, 0.2);
            self.beta *= 1.0 + error * n as f64 / self.horizon;
        }
    }
}

/// The value model: a body and a one-output head read at each reply position, with its own
/// optimizer.
pub struct Critic {
    body: Model,
    head: nn::Linear,
    opt: AdamW,
    lr: f64,
}

impl Critic {
    /// A value model on `body` (a copy of the starting policy), its head initialised to 0.
    pub fn new(body: Model, lr: f64, device: Device) -> Result<Critic> {
        let width = body.width();
        let head = nn::Linear::new(width, 1, true, 0.0, &mut Rng::new(0));
        body.to_device(device)?;
        head.to_device(device)?;
        let mut params = body.named_params();
        params.extend(
            head.named_params()
                .into_iter()
                .map(|(n, p)| (format!("value.{n}"), p)),
        );
        let config = AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        Ok(Critic {
            body,
            head,
            opt: AdamW::new(params, config),
            lr,
        })
    }

    /// The values `(N)` at the positions of the scored tokens of `seqs` (the state before each
    /// reply token), in order.
    fn values(&self, seqs: &[&Sequence], pad: u32, device: Device) -> Result<Var> {
        let examples: Vec<(&[u32], &[bool])> = seqs
            .iter()
            .map(|s| (s.ids.as_slice(), s.scored.as_slice()))
            .collect();
        let batch = crate::data::batch::Batch::language(&examples, pad);
        let targets = batch
            .targets
            .expect("a language batch has targets")
            .to_vec::<i64>();
        let rows: Vec<u32> = (0..targets.len() as u32)
            .filter(|&i| targets[i as usize] != crate::data::batch::IGNORE)
            .collect();
        let hidden = self.body.hidden(&batch.ids.to_device(device))?;
        let width = hidden.dim(2);
        let n = rows.len();
        let picked = hidden
            .reshape(&[targets.len(), width])
            .index_select(0, &Tensor::from_vec(rows, &[n]).to_device(device));
        Ok(self.head.forward(&picked).reshape(&[n]))
    }

    /// Per sequence, the value at each reply position, without gradients.
    fn values_of(
        &self,
        seqs: &[Sequence],
        chunk: usize,
        pad: u32,
        device: Device,
    ) -> Result<Vec<Vec<f64>>> {
        let mut out = vec![];
        for part in seqs.chunks(chunk.max(1)) {
            let refs: Vec<&Sequence> = part.iter().collect();
            let flat = no_grad(|| self.values(&refs, pad, device))?
                .value()
                .to_vec_f64();
            out.extend(rollout::split_by_sequence(&flat, part));
        }
        Ok(out)
    }

    /// One AdamW step on `loss`, the gradient clipped to norm 1.
    fn step(&mut self, loss: &Var) -> Result<()> {
        loss.backward();
        let mut params = self.body.params();
        params.extend(self.head.params());
        nn::clip::clip_grad_norm(&params, 1.0);
        self.opt.step(self.lr)?;
        self.opt.zero_grad();
        Ok(())
    }
}

/// The settings of a PPO run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Replies per prompt.
    pub group: usize,
    /// Prompts per rollout.
    pub prompts: usize,
    /// Replies per optimizer step.
    pub minibatch: usize,
    /// Passes over each rollout.
    pub epochs: usize,
    /// The clipping range of the probability ratio.
    pub clip: f64,
    /// The clipping range of the value.
    pub value_clip: f64,
    /// The discount `gamma`.
    pub gamma: f64,
    /// GAE's `lambda`.
    pub lambda: f64,
    /// The weight of the entropy bonus.
    pub entropy_coef: f64,
    /// Most tokens per reply.
    pub max_new_tokens: usize,
    /// The token that ends a reply, id and text.
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

/// One rollout, ready to train on.
struct Rollout {
    replies: Vec<Sequence>,
    old: Vec<Vec<f64>>,
    values: Vec<Vec<f64>>,
    advantages: Vec<Vec<f64>>,
    returns: Vec<Vec<f64>>,
    queue: Vec<Vec<usize>>,
    metrics: Metrics,
}

/// PPO on a verifiable task: the objective draws a new rollout whenever the last one has been
/// trained on, and steps the value model beside each policy step.
pub struct Ppo {
    task: TaskSetup,
    reference: Model,
    critic: Critic,
    kl: AdaptiveKl,
    settings: Settings,
    rollout: Option<Rollout>,
}

impl Ppo {
    /// Training on `task`'s prompts against its scorer, evaluated on its held-out prompts,
    /// against the frozen `reference`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        task: TaskSetup,
        reference: Model,
        critic: Critic,
        kl: AdaptiveKl,
        settings: Settings,
    ) -> Ppo {
        Ppo {
            task,
            reference,
            critic,
            kl,
            settings,
            rollout: None,
        }
    }

    /// Draws and scores a rollout, and computes its advantages and returns.
    fn draw(&mut self, model: &Model, rng: &mut Rng, device: Device) -> Result<Rollout> {
        let s = &self.settings;
        let drawn = self.task.draw(model, s.prompts, s.group, s, rng)?;
        self.prepare(model, drawn, rng, device)
    }

    /// Makes `drawn` the rollout the next steps train on, as if the policy `model` had drawn
    /// it: the log-probabilities, values, advantages and returns computed, the minibatches
    /// queued. (A benchmark times an update on a fixed rollout this way.)
    pub fn set_rollout(
        &mut self,
        model: &Model,
        drawn: Drawn,
        rng: &mut Rng,
        device: Device,
    ) -> Result<()> {
        self.rollout = Some(self.prepare(model, drawn, rng, device)?);
        Ok(())
    }

    /// The log-probabilities under the policy and the reference, the values, the advantages
    /// and returns of a drawn rollout, and its minibatches.
    fn prepare(
        &mut self,
        model: &Model,
        drawn: Drawn,
        rng: &mut Rng,
        device: Device,
    ) -> Result<Rollout> {
        let Drawn { replies, rewards } = drawn;
        let s = self.settings.clone();
        let (pad, chunk) = (s.end.0, s.minibatch);
        let old = rollout::logps_of(model, &replies, chunk, pad, device);
        let reference = rollout::logps_of(&self.reference, &replies, chunk, pad, device);
        let values = self.critic.values_of(&replies, chunk, pad, device)?;
        let mut advantages = vec![];
        let mut returns = vec![];
        let mut kl_sum = 0.0;
        for i in 0..replies.len() {
            kl_sum += old[i]
                .iter()
                .zip(&reference[i])
                .map(|(p, q)| p - q)
                .sum::<f64>();
            let r = token_rewards(rewards[i], &old[i], &reference[i], self.kl.beta);
            let (a, ret) = gae(&r, &values[i], s.gamma, s.lambda);
            advantages.push(a);
            returns.push(ret);
        }
        let flat: Vec<f64> = advantages.iter().flatten().copied().collect();
        let mut white = whiten(&flat).into_iter();
        for a in &mut advantages {
            a.iter_mut()
                .for_each(|x| *x = white.next().expect("one per token"));
        }
        let n = replies.len() as f64;
        let tokens: usize = replies.iter().map(rollout::reply_len).sum();
        let metrics = vec![
            ("reward".to_string(), rewards.iter().sum::<f64>() / n),
            ("kl".to_string(), kl_sum / n),
            ("kl_coef".to_string(), self.kl.beta),
            ("reply_tokens".to_string(), tokens as f64 / n),
        ];
        self.kl.update(kl_sum / n, replies.len());
        let queue = rollout::minibatches(replies.len(), s.minibatch, s.epochs, rng);
        Ok(Rollout {
            replies,
            old,
            values,
            advantages,
            returns,
            queue,
            metrics,
        })
    }
}

/// The values of `per_seq` for the sequences `which`, flattened into one tensor.
fn gather(per_seq: &[Vec<f64>], which: &[usize]) -> Tensor {
    let v: Vec<f64> = which
        .iter()
        .flat_map(|&i| per_seq[i].iter().copied())
        .collect();
    let n = v.len();
    Tensor::from_vec(v, &[n])
}

impl Objective for Ppo {
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
        let (ids, targets) = rollout::batch(&seqs, s.end.0, device);
        let (logp, entropy) = model.target_log_probs_and_entropy(&ids, &targets);
        let old = gather(&r.old, &which);
        let mut loss = clipped_loss(&logp, &old, &gather(&r.advantages, &which), s.clip);
        let mean_entropy = entropy.mean_all();
        if s.entropy_coef > 0.0 {
            loss = loss.sub(&mean_entropy.mul_scalar(s.entropy_coef));
        }
        let v = self.critic.values(&seqs, s.end.0, device)?;
        let vl = value_loss(
            &v,
            &gather(&r.values, &which),
            &gather(&r.returns, &which),
            s.value_clip,
        );
        let value = vl.value().item();
        self.critic.step(&vl)?;
        let (new, old) = (logp.value().to_vec_f64(), old.to_vec_f64());
        let mut metrics = r.metrics.clone();
        metrics.extend([
            ("value_loss".to_string(), value),
            ("entropy".to_string(), mean_entropy.value().item()),
        ]);
        metrics.extend(rollout::ratio_metrics(&new, &old, s.clip));
        Ok(Loss {
            loss,
            units: seqs.iter().map(|s| s.ids.len()).sum(),
            metrics,
        })
    }

    fn evaluate(&mut self, model: &Model, _rng: &mut Rng, _device: Device) -> Result<Metrics> {
        self.task.evaluate(model, &self.settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gae_matches_a_hand_computation() {
        // rewards 0, 0, 1; values 0.5, 0.25, 0.5; gamma 0.9, lambda 0.8.
        let (a, ret) = gae(&[0.0, 0.0, 1.0], &[0.5, 0.25, 0.5], 0.9, 0.8);
        let d2 = 1.0 - 0.5; // no value after the last token
        let d1 = 0.0 + 0.9 * 0.5 - 0.25;
        let d0 = 0.0 + 0.9 * 0.25 - 0.5;
        let a2 = d2;
        let a1 = d1 + 0.72 * a2;
        let a0 = d0 + 0.72 * a1;
        for (got, want) in a.iter().zip([a0, a1, a2]) {
            assert!((got - want).abs() < 1e-12, "{a:?}");
        }
        assert!((ret[0] - (a0 + 0.5)).abs() < 1e-12);
        // With lambda 1 and gamma 1, the advantage is the sum of future rewards minus V_t.
        let (a, _) = gae(&[0.5, 0.0, 1.0], &[0.2, 0.3, 0.4], 1.0, 1.0);
        assert!((a[0] - (1.5 - 0.2)).abs() < 1e-12);
    }

    #[test]
    fn the_kl_penalty_is_0_at_the_reference_and_the_score_lands_on_the_last_token() {
        assert_eq!(
            token_rewards(1.0, &[-1.0, -2.0], &[-1.0, -2.0], 0.1),
            [0.0, 1.0]
        );
        let r = token_rewards(0.5, &[-1.0, -2.0], &[-1.5, -1.0], 0.1);
        assert!(
            (r[0] + 0.05).abs() < 1e-12 && (r[1] - (0.5 + 0.1)).abs() < 1e-12,
            "{r:?}"
        );
    }

    #[test]
    fn the_value_loss_passes_the_gradient_check_and_clips() {
        let mut rng = Rng::new(2);
        let mut draw = |scale: f64| {
            Tensor::from_vec(
                (0..6).map(|_| rng.normal() * scale).collect::<Vec<f64>>(),
                &[6],
            )
        };
        let (old, returns) = (draw(1.0), draw(1.0));
        let v = old.add(&draw(0.5));
        let f = move |x: &[Var]| value_loss(&x[0], &old, &returns, 0.2);
        autograd::gradcheck::gradcheck("value loss", f, &[v]).unwrap();
        // Moving past the clip range toward the return does not lower the loss below the clipped
        // term's: from old 0 toward a return of 1, a value of 0.9 scores as 0.2 would.
        let t = |x: f64| Tensor::from_vec(vec![x], &[1]);
        let loss = value_loss(&Var::constant(t(0.9)), &t(0.0), &t(1.0), 0.2)
            .value()
            .item();
        assert!((loss - 0.5 * 0.8f64.powi(2)).abs() < 1e-12, "{loss}");
    }

    #[test]
    fn whitened_values_have_mean_0_and_deviation_1() {
        let w = whiten(&[1.0, 2.0, 3.0, 6.0]);
        let mean = w.iter().sum::<f64>() / 4.0;
        let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-6, "{w:?}");
    }

    #[test]
    fn the_kl_coefficient_moves_toward_its_target() {
        let mut kl = AdaptiveKl {
            beta: 0.1,
            target: Some(1.0),
            horizon: 100.0,
        };
        kl.update(2.0, 10); // above target: +20% of 10/100
        assert!((kl.beta - 0.1 * 1.02).abs() < 1e-12);
        kl.update(0.5, 10); // below: error clipped at -0.2... -0.5 -> -0.2
        assert!((kl.beta - 0.1 * 1.02 * 0.98).abs() < 1e-12);
        let mut fixed = AdaptiveKl { target: None, ..kl };
        fixed.update(5.0, 10);
        assert_eq!(fixed.beta, kl.beta);
    }

    #[test]
    fn training_moves_the_policy_and_leaves_the_reference_bit_identical() {
        use crate::data::template::Template;
        use crate::stages::scorer::Scorer;
        use crate::tasks::{Problem, Task};
        use crate::tokenizer::{CharTokenizer, Tokenizer};
        let tok = CharTokenizer::from_corpus("0123456789+=\n").unwrap();
        let cfg = crate::model::config::Config {
            vocab_size: 13,
            block_size: 12,
            n_layer: 1,
            n_head: 2,
            n_embd: 8,
            dropout: 0.0,
            learning_rate: 1e-2,
            warmup_iters: 0,
            max_iters: 4,
            ..crate::model::config::Config::char_small()
        };
        let model = || Model::new(&cfg, &mut Rng::new(3), &nn::SharedRng::new(0));
        let snapshot = |m: &Model| -> Vec<Vec<f32>> {
            m.params().iter().map(|p| p.value().to_vec()).collect()
        };
        let reference = model();
        reference.freeze();
        let before = snapshot(&reference);
        let problems: Vec<Problem> = (0..10)
            .map(|i| Problem::new(format!("{i}+1="), (i + 1).to_string()))
            .collect();
        let settings = Settings {
            group: 2,
            prompts: 4,
            minibatch: 4,
            epochs: 1,
            clip: 0.2,
            value_clip: 0.2,
            gamma: 1.0,
            lambda: 0.95,
            entropy_coef: 0.01,
            max_new_tokens: 3,
            end: (tok.encode("\n").unwrap()[0], "\n".to_string()),
        };
        let kl = AdaptiveKl {
            beta: 0.1,
            target: Some(0.5),
            horizon: 100.0,
        };
        let critic = Critic::new(model(), 1e-3, Device::Cpu).unwrap();
        let task = TaskSetup {
            prompts: problems,
            val: vec![],
            template: Template::Plain,
            tok: Box::new(tok),
            scorer: Scorer::Task(Task::Arithmetic),
        };
        let mut ppo = Ppo::new(task, reference, critic, kl, settings);
        let mut trainer = crate::train::Trainer::with_model(
            cfg.clone(),
            model(),
            nn::SharedRng::new(0),
            Device::Cpu,
        )
        .unwrap();
        let start = snapshot(&trainer.model);
        assert_eq!(start, before, "the policy starts as the reference");
        for _ in 0..cfg.max_iters {
            trainer.train_step(&mut ppo).unwrap();
        }
        assert_eq!(snapshot(&ppo.reference), before);
        assert!(ppo.reference.params().iter().all(|p| p.grad().is_none()));
        assert_ne!(snapshot(&trainer.model), start);
        assert_ne!(ppo.kl.beta, 0.1, "the adaptive coefficient moved");
    }
}
