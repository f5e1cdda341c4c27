//! Rollouts for reinforcement learning: replies drawn from the policy's full distribution
//! (temperature 1, no top-k or top-p, so that they are samples of exactly the distribution
//! whose log-probabilities the losses use), each scored by a [`Scorer`];
//! the log-probabilities of their tokens under a model; and the minibatches a rollout is
//! trained on.

use crate::data::batch::Batch;
use crate::data::template::{Role, Template, Turn};
use crate::eval::task::{evaluate_task, TaskOptions};
use crate::generate::{generate_batch, Generation, Sampling};
use crate::model::Model;
use crate::stages::scorer::Scorer;
use crate::stages::sft::Sequence;
use crate::tasks::Problem;
use crate::tokenizer::{Special, Tokenizer};
use crate::train::objective::{check_examples, Metrics};
use crate::{Error, Result};
use autograd::{no_grad, Var};
use tensor::{Device, Rng, Tensor};

/// Replies with their rewards.
#[derive(Clone, Debug)]
pub struct Drawn {
    /// Each prompt followed by a reply, the reply's tokens scored; `copies` replies per
    /// problem, the problems in order.
    pub replies: Vec<Sequence>,
    /// The scorer's score of each reply.
    pub rewards: Vec<f64>,
}

/// What a reinforcement-learning run trains and is measured on: the training prompts and the
/// held-out problems (the user's messages, before any template), the policy's template and
/// tokenizer, and the scorer of replies.
pub struct TaskSetup {
    /// Training prompts (with their answers, for a task's verifier).
    pub prompts: Vec<Problem>,
    /// Held-out prompts for the evaluation (none: no evaluation).
    pub val: Vec<Problem>,
    /// The template that frames a prompt for the policy.
    pub template: Template,
    /// The policy's tokenizer.
    pub tok: Box<dyn Tokenizer>,
    /// Scores a reply.
    pub scorer: Scorer,
}

impl TaskSetup {
    /// Draws `copies` replies to each of `prompts` training prompts picked at random, each
    /// reply ending at the end token or after the most tokens of `format`, and scores them.
    pub fn draw(
        &self,
        model: &Model,
        prompts: usize,
        copies: usize,
        format: &dyn ReplyFormat,
        rng: &mut Rng,
    ) -> Result<Drawn> {
        let problems: Vec<&Problem> = (0..prompts)
            .map(|_| &self.prompts[rng.below(self.prompts.len())])
            .collect();
        self.reply_to(model, &problems, copies, format, rng.next_u64())
    }

    /// Draws `copies` replies to each of `problems` with sampling seed `seed`, and scores them.
    fn reply_to(
        &self,
        model: &Model,
        problems: &[&Problem],
        copies: usize,
        format: &dyn ReplyFormat,
        seed: u64,
    ) -> Result<Drawn> {
        let end = format.end();
        let mut asked = vec![];
        for p in problems {
            let ids = self.tok.encode_with(&self.frame(p)?, Special::Allow)?;
            asked.extend(std::iter::repeat_n(ids, copies));
        }
        let g = Generation {
            max_new_tokens: format.max_new_tokens(),
            sampling: Sampling {
                temperature: 1.0,
                top_k: None,
                top_p: None,
            },
            stop_token: Some(end.0),
            seed,
            vocab_limit: Some(self.tok.vocab_size()),
        };
        let drawn = generate_batch(model, &asked, &g);
        let (mut replies, mut texts) = (vec![], vec![]);
        for (prompt, new) in asked.iter().zip(&drawn) {
            let text = String::from_utf8_lossy(&self.tok.decode_bytes(new)?).into_owned();
            texts.push(text.split(end.1.as_str()).next().unwrap_or("").to_string());
            let mut ids = prompt.clone();
            ids.extend(new);
            let scored = (0..ids.len()).map(|t| t >= prompt.len()).collect();
            replies.push(Sequence { ids, scored });
        }
        let each: Vec<&Problem> = problems
            .iter()
            .flat_map(|p| std::iter::repeat_n(*p, copies))
            .collect();
        let rewards = self.scorer.score(&each, &texts)?;
        Ok(Drawn { replies, rewards })
    }

    /// The prompt of `p` in the policy's template.
    fn frame(&self, p: &Problem) -> Result<String> {
        self.template
            .prompt(&[Turn::new(Role::User, p.prompt.as_str())])
    }

    /// Checks the training prompts before any rollout: each, with room for a reply of
    /// `format`, fits the context of `cfg`, and has only ids inside its vocabulary.
    pub fn check(
        &self,
        format: &dyn ReplyFormat,
        cfg: &crate::model::config::Config,
    ) -> Result<()> {
        if self.prompts.is_empty() {
            return Err(Error::Invalid("there are no training prompts".into()));
        }
        let room = format.max_new_tokens();
        let ids = self
            .prompts
            .iter()
            .map(|p| self.tok.encode_with(&self.frame(p)?, Special::Allow))
            .collect::<Result<Vec<_>>>()?;
        if let Some(i) = ids.iter().position(|p| p.len() + room > cfg.block_size) {
            return Err(Error::Invalid(format!(
                "prompt {} with {room} reply tokens does not fit the context of {}",
                i + 1,
                cfg.block_size
            )));
        }
        check_examples("training", ids.iter().map(Vec::as_slice), cfg)
    }

    /// The held-out metrics (none without held-out prompts). With a task's verifier: greedy
    /// accuracy and mean score. With a model scorer: the mean reward of one reply per prompt
    /// drawn at temperature 1 with a fixed seed, so that evaluations differ by the policy
    /// alone.
    pub fn evaluate(&self, model: &Model, format: &dyn ReplyFormat) -> Result<Metrics> {
        if self.val.is_empty() {
            return Ok(vec![]);
        }
        let Scorer::Task(task) = &self.scorer else {
            let problems: Vec<&Problem> = self.val.iter().collect();
            let drawn = self.reply_to(model, &problems, 1, format, 0)?;
            let mean = drawn.rewards.iter().sum::<f64>() / drawn.rewards.len() as f64;
            return Ok(vec![("val_mean_reward".to_string(), mean)]);
        };
        let framed = self
            .val
            .iter()
            .map(|p| Ok(Problem::new(self.frame(p)?, p.answer.clone())))
            .collect::<Result<Vec<_>>>()?;
        let options = TaskOptions {
            max_new_tokens: format.max_new_tokens(),
            samples: 0,
            temperature: 1.0,
            batch: 64,
            seed: 0,
            reply_end: Some(format.end().clone()),
        };
        let r = evaluate_task(model, self.tok.as_ref(), &framed, task, "val", &options)?;
        Ok(vec![
            ("val_accuracy".to_string(), r.accuracy),
            ("val_mean_score".to_string(), r.mean_score),
        ])
    }
}

/// `seqs` right-padded with `pad` into ids `(B, T)` on `device` and next-token targets
/// `(B, T)` (the scored tokens; [`crate::data::batch::IGNORE`] elsewhere).
pub fn batch(seqs: &[&Sequence], pad: u32, device: Device) -> (Tensor, Tensor) {
    let examples: Vec<(&[u32], &[bool])> = seqs
        .iter()
        .map(|s| (s.ids.as_slice(), s.scored.as_slice()))
        .collect();
    let batch = Batch::language(&examples, pad);
    let targets = batch.targets.expect("a language batch has targets");
    (batch.ids.to_device(device), targets)
}

/// The log-probabilities `(N)` of the scored tokens of `seqs` under `model`, in order.
pub fn token_logps(model: &Model, seqs: &[&Sequence], pad: u32, device: Device) -> Var {
    let (ids, targets) = batch(seqs, pad, device);
    model.target_log_probs(&ids, &targets)
}

/// The things a rollout needs to know of its replies: how long and how they end.
pub trait ReplyFormat {
    /// Most tokens per reply.
    fn max_new_tokens(&self) -> usize;
    /// The end token, id and text.
    fn end(&self) -> &(u32, String);
}

/// Per sequence, the log-probability of each scored token under `model`, without gradients,
/// `chunk` sequences at a time.
pub fn logps_of(
    model: &Model,
    seqs: &[Sequence],
    chunk: usize,
    pad: u32,
    device: Device,
) -> Vec<Vec<f64>> {
    no_grad(|| {
        seqs.chunks(chunk.max(1))
            .flat_map(|part| {
                let refs: Vec<&Sequence> = part.iter().collect();
                let flat = token_logps(model, &refs, pad, device).value().to_vec_f64();
                split_by_sequence(&flat, part)
            })
            .collect()
    })
}

/// The number of scored tokens of `s` that are targets (those after the first position).
pub fn reply_len(s: &Sequence) -> usize {
    s.scored.iter().skip(1).filter(|&&b| b).count()
}

/// `flat`, values of the scored tokens of `seqs` in order, cut per sequence.
pub fn split_by_sequence(flat: &[f64], seqs: &[Sequence]) -> Vec<Vec<f64>> {
    let mut at = 0;
    seqs.iter()
        .map(|s| {
            let n = reply_len(s);
            at += n;
            flat[at - n..at].to_vec()
        })
        .collect()
}

/// `epochs` shuffled passes over `n` items in minibatches of `size`, the first to train on
/// last (to be taken with `pop`).
pub fn minibatches(n: usize, size: usize, epochs: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut queue = vec![];
    for _ in 0..epochs {
        let mut order: Vec<usize> = (0..n).collect();
        crate::data::labelled::shuffle(&mut order, rng);
        queue.extend(order.chunks(size.max(1)).map(<[usize]>::to_vec));
    }
    queue.reverse();
    queue
}

/// The clip fraction (the share of tokens whose ratio `pi / pi_old` left `1 +- clip`) and the
/// approximate KL `mean(log pi_old - log pi)` of a minibatch, from per-token `new` and `old`
/// log-probabilities.
pub fn ratio_metrics(new: &[f64], old: &[f64], clip: f64) -> Metrics {
    let n = new.len().max(1) as f64;
    let clipped = new
        .iter()
        .zip(old)
        .filter(|(a, b)| ((*a - *b).exp() - 1.0).abs() > clip)
        .count();
    let approx_kl = new.iter().zip(old).map(|(a, b)| b - a).sum::<f64>() / n;
    vec![
        ("clip_fraction".to_string(), clipped as f64 / n),
        ("approx_kl".to_string(), approx_kl),
    ]
}
