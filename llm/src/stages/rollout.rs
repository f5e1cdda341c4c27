//! Rollouts for reinforcement learning on a verifier: replies drawn from the policy's full
//! distribution (temperature 1, no top-k or top-p, so that they are samples of exactly the
//! distribution whose log-probabilities the losses use), each scored by the task's verifier;
//! the log-probabilities of their tokens under a model; and the minibatches a rollout is
//! trained on.

use crate::data::batch::Batch;
use crate::eval::task::{evaluate_task, TaskOptions};
use crate::generate::{generate_batch, Generation, Sampling};
use crate::model::Model;
use crate::stages::sft::Sequence;
use crate::tasks::{Problem, Task, Verifier};
use crate::tokenizer::{Special, Tokenizer};
use crate::train::objective::{check_examples, Metrics};
use crate::{Error, Result};
use autograd::{no_grad, Var};
use tensor::{Device, Rng, Tensor};

/// Replies with their rewards.
pub struct Drawn {
    /// Each prompt followed by a reply, the reply's tokens scored; `copies` replies per
    /// problem, the problems in order.
    pub replies: Vec<Sequence>,
    /// The verifier's score of each reply.
    pub rewards: Vec<f64>,
}

/// What a reinforcement-learning run trains and is measured on: the training prompts and the
/// held-out problems (both in the run's template), the tokenizer that reads the replies and the
/// verifier that scores them.
pub struct TaskSetup {
    /// Training prompts with their answers.
    pub prompts: Vec<Problem>,
    /// Held-out problems for the greedy accuracy (none: no evaluation).
    pub val: Vec<Problem>,
    /// The policy's tokenizer.
    pub tok: Box<dyn Tokenizer>,
    /// Scores a reply.
    pub verifier: Task,
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
        let end = format.end();
        let mut asked = vec![];
        for p in &problems {
            let ids = self.tok.encode_with(&p.prompt, Special::Allow)?;
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
            seed: rng.next_u64(),
            vocab_limit: Some(self.tok.vocab_size()),
        };
        let drawn = generate_batch(model, &asked, &g);
        let (mut replies, mut rewards) = (vec![], vec![]);
        for (i, (prompt, new)) in asked.iter().zip(&drawn).enumerate() {
            let text = String::from_utf8_lossy(&self.tok.decode_bytes(new)?).into_owned();
            let answer = text.split(end.1.as_str()).next().unwrap_or("").trim();
            rewards.push(self.verifier.score(problems[i / copies], answer));
            let mut ids = prompt.clone();
            ids.extend(new);
            let scored = (0..ids.len()).map(|t| t >= prompt.len()).collect();
            replies.push(Sequence { ids, scored });
        }
        Ok(Drawn { replies, rewards })
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
            .map(|p| self.tok.encode_with(&p.prompt, Special::Allow))
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

    /// Greedy accuracy and mean score on the held-out problems (none without problems).
    pub fn evaluate(&self, model: &Model, format: &dyn ReplyFormat) -> Result<Metrics> {
        if self.val.is_empty() {
            return Ok(vec![]);
        }
        let options = TaskOptions {
            max_new_tokens: format.max_new_tokens(),
            samples: 0,
            temperature: 1.0,
            batch: 64,
            seed: 0,
            reply_end: Some(format.end().clone()),
        };
        let r = evaluate_task(
            model,
            self.tok.as_ref(),
            &self.val,
            &self.verifier,
            "val",
            &options,
        )?;
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
