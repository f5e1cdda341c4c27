//! Supervised fine-tuning on prompt/answer pairs: the language-model loss on whole examples,
//! each starting at position 0, with the prompt's tokens optionally left out of the loss.
//!
//! An example is `prompt ++ answer ++ end`, where `end` is the token that closes an answer
//! ([`crate::tasks::end_token`]: the tokenizer's end-of-text token, or a newline), so a model
//! trained this way stops by itself. Its targets are next tokens: position `t` predicts token
//! `t + 1`. With `mask_prompt`, only the answer's tokens and the end token are targets (the
//! model is not taught to write prompts); without it, every token after the first is. A
//! micro-batch is `batch_size` examples drawn uniformly with replacement, right-padded, with
//! padding never a target ([`crate::data::batch::Batch::language`]); the loss is the mean
//! cross-entropy over the batch's targets.

use crate::data::batch::{masked_cross_entropy, Batch, IGNORE};
use crate::model::config::Config;
use crate::model::Model;
use crate::tasks::Problem;
use crate::tokenizer::{Special, Tokenizer};
use crate::train::objective::{check_examples, Loss, Metrics, Objective};
use crate::{Error, Result};
use autograd::no_grad;
use tensor::{Device, Rng};

/// An encoded example: token ids and, per token, whether it is a target.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// `prompt ++ answer ++ end`.
    pub ids: Vec<u32>,
    /// One flag per id: true where the id is predicted (and scored).
    pub scored: Vec<bool>,
}

/// Encodes `problems` as training sequences closed by `end` (see the module docs).
pub fn encode(
    problems: &[Problem],
    tok: &dyn Tokenizer,
    end: u32,
    mask_prompt: bool,
) -> Result<Vec<Sequence>> {
    problems
        .iter()
        .map(|p| {
            let prompt = tok.encode_with(&p.prompt, Special::Allow)?;
            let answer = tok.encode_with(&p.answer, Special::Allow)?;
            let ids: Vec<u32> = prompt.iter().chain(&answer).copied().chain([end]).collect();
            let scored = (0..ids.len())
                .map(|i| !mask_prompt || i >= prompt.len())
                .collect();
            Ok(Sequence { ids, scored })
        })
        .collect()
}

/// Fine-tuning on encoded sequences.
pub struct Sft {
    train: Vec<Sequence>,
    val: Vec<Sequence>,
    batch_size: usize,
    pad: u32,
    /// Training sequences scored at each evaluation (the first ones).
    train_eval: usize,
}

impl Sft {
    /// Training on `train`, evaluated on `val`, with the batch size of `cfg`; `pad` fills
    /// the padded positions (never a target).
    pub fn new(train: Vec<Sequence>, val: Vec<Sequence>, cfg: &Config, pad: u32) -> Sft {
        Sft {
            train_eval: val.len().max(cfg.batch_size).min(train.len()),
            train,
            val,
            batch_size: cfg.batch_size,
            pad,
        }
    }
}

/// The batch of `seqs`: right-padded ids and next-token targets.
fn batch(seqs: &[&Sequence], pad: u32) -> Batch {
    let examples: Vec<(&[u32], &[bool])> = seqs
        .iter()
        .map(|s| (s.ids.as_slice(), s.scored.as_slice()))
        .collect();
    Batch::language(&examples, pad)
}

/// Mean loss per target of `model` on `seqs`, in batches of `size`.
pub fn mean_loss(model: &Model, seqs: &[Sequence], size: usize, pad: u32, device: Device) -> f64 {
    let (mut total, mut count) = (0.0, 0usize);
    no_grad(|| {
        for chunk in seqs.chunks(size.max(1)) {
            let refs: Vec<&Sequence> = chunk.iter().collect();
            let b = batch(&refs, pad);
            let targets = b.targets.expect("a language batch has targets");
            let n = targets
                .to_vec::<i64>()
                .iter()
                .filter(|&&t| t != IGNORE)
                .count();
            let logits = model.logits(&b.ids.to_device(device));
            total += masked_cross_entropy(&logits, &targets).value().item() * n as f64;
            count += n;
        }
    });
    total / count.max(1) as f64
}

impl Objective for Sft {
    fn check(&self, cfg: &Config) -> Result<()> {
        if self.train.is_empty() {
            return Err(Error::Invalid("there are no training examples".into()));
        }
        for (which, set) in [("training", &self.train), ("validation", &self.val)] {
            check_examples(which, set.iter().map(|s| s.ids.as_slice()), cfg)?;
        }
        Ok(())
    }

    fn loss(&mut self, model: &Model, rng: &mut Rng, device: Device) -> Result<Loss> {
        let picked: Vec<&Sequence> = (0..self.batch_size)
            .map(|_| &self.train[rng.below(self.train.len())])
            .collect();
        let b = batch(&picked, self.pad);
        let targets = b.targets.expect("a language batch has targets");
        let logits = model.logits(&b.ids.to_device(device));
        Ok(Loss {
            loss: masked_cross_entropy(&logits, &targets),
            units: b.ids.numel(),
        })
    }

    fn evaluate(&mut self, model: &Model, _rng: &mut Rng, device: Device) -> Result<Metrics> {
        let size = self.batch_size;
        let mut metrics = vec![(
            "train_loss".to_string(),
            mean_loss(
                model,
                &self.train[..self.train_eval],
                size,
                self.pad,
                device,
            ),
        )];
        if !self.val.is_empty() {
            let val = mean_loss(model, &self.val, size, self.pad, device);
            metrics.push(("val_loss".to_string(), val));
        }
        Ok(metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::CharTokenizer;

    #[test]
    fn masking_leaves_only_the_answer_and_the_end_as_targets() {
        let tok = CharTokenizer::from_corpus("0123456789+=\n").unwrap();
        let end = tok.encode("\n").unwrap()[0];
        let p = [Problem::new("12+3=", "15")];
        let masked = &encode(&p, &tok, end, true).unwrap()[0];
        assert_eq!(masked.ids, tok.encode("12+3=15\n").unwrap());
        //                    1      2      +      3      =      1     5     \n
        assert_eq!(
            masked.scored,
            [false, false, false, false, false, true, true, true]
        );
        let b = batch(&[masked], 0);
        let targets = b.targets.unwrap().to_vec::<i64>();
        let want: Vec<i64> = [IGNORE, IGNORE, IGNORE, IGNORE]
            .into_iter()
            .chain(tok.encode("15\n").unwrap().iter().map(|&t| i64::from(t)))
            .chain([IGNORE])
            .collect();
        assert_eq!(
            targets, want,
            "position t targets token t + 1 where it is scored"
        );
        let unmasked = &encode(&p, &tok, end, false).unwrap()[0];
        assert!(unmasked.scored.iter().all(|&s| s));
    }
}
