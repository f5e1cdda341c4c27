//! Supervised fine-tuning: the language-model loss on whole conversations, each starting at
//! position 0, with everything but the replies optionally left out of the loss.
//!
//! A conversation is rendered by a [`Template`] into pieces of text, each a target or not (the
//! assistant's replies and the end marker closing each are targets), and each piece is encoded
//! on its own. Targets are next tokens: position `t` predicts token `t + 1`. With
//! `mask_prompt`, only target pieces' tokens are predicted (the model is not taught to write
//! prompts); without it, every token after the first is. The end marker is learned like any
//! reply token, so a fine-tuned model stops by itself. A micro-batch is `batch_size`
//! sequences drawn uniformly with replacement, right-padded, with padding never a target
//! ([`crate::data::batch::Batch::language`]); the loss is the mean cross-entropy over the
//! batch's targets.
//!
//! What a run was trained with is saved beside it ([`SftInfo`], `sft.json`), so that sampling,
//! chatting and evaluation use the same template and end marker.

use crate::data::batch::{Batch, IGNORE};
use crate::data::template::{Piece, Role, Template, Turn};
use crate::model::config::Config;
use crate::model::Model;
use crate::tasks::Problem;
use crate::tokenizer::{Special, Tokenizer};
use crate::train::objective::{check_examples, Loss, Metrics, Objective};
use crate::{Error, Result};
use autograd::no_grad;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tensor::{Device, Rng};

/// An encoded example: token ids and, per token, whether it is a target.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// The rendered conversation's tokens.
    pub ids: Vec<u32>,
    /// One flag per id: true where the id is predicted (and scored).
    pub scored: Vec<bool>,
}

impl Sequence {
    /// Keeps the first `len` tokens; `None` when no target is left among them.
    pub fn truncated(mut self, len: usize) -> Option<Sequence> {
        self.ids.truncate(len);
        self.scored.truncate(len);
        self.scored[1.min(len)..].iter().any(|&s| s).then_some(self)
    }

    /// Fits the sequence into `len` tokens by dropping prompt tokens (those before the first
    /// scored one) from the left, keeping at least one, so that the reply stays whole; a reply
    /// that is still too long is then cut at `len` as [`Sequence::truncated`] cuts it.
    pub fn fitted(mut self, len: usize) -> Option<Sequence> {
        let prompt = self
            .scored
            .iter()
            .position(|&s| s)
            .unwrap_or(self.ids.len());
        let drop = self
            .ids
            .len()
            .saturating_sub(len)
            .min(prompt.saturating_sub(1));
        self.ids.drain(..drop);
        self.scored.drain(..drop);
        self.truncated(len)
    }
}

/// Encodes rendered pieces, each on its own (special tokens allowed): a piece's tokens are
/// scored when it is a target, or always without `mask_prompt`.
pub fn encode_pieces(pieces: &[Piece], tok: &dyn Tokenizer, mask_prompt: bool) -> Result<Sequence> {
    let (mut ids, mut scored) = (vec![], vec![]);
    for p in pieces {
        let piece = tok.encode_with(&p.text, Special::Allow)?;
        scored.extend(std::iter::repeat_n(p.target || !mask_prompt, piece.len()));
        ids.extend(piece);
    }
    Ok(Sequence { ids, scored })
}

/// Encodes prompt/answer `problems` as `prompt ++ answer ++ end` (the `plain` template), the
/// end token being `end`.
pub fn encode(
    problems: &[Problem],
    tok: &dyn Tokenizer,
    end: u32,
    mask_prompt: bool,
) -> Result<Vec<Sequence>> {
    let end_text = tok.decode(&[end])?;
    problems
        .iter()
        .map(|p| {
            let turns = [
                Turn::new(Role::User, p.prompt.as_str()),
                Turn::new(Role::Assistant, p.answer.as_str()),
            ];
            let pieces = Template::Plain.render(&turns, &end_text)?;
            encode_pieces(&pieces, tok, mask_prompt)
        })
        .collect()
}

/// The id of a marker that must be one token of `tok` (special tokens allowed).
pub fn marker_id(marker: &str, tok: &dyn Tokenizer) -> Result<u32> {
    match tok.encode_with(marker, Special::Allow)?.as_slice() {
        [id] => Ok(*id),
        other => Err(Error::Invalid(format!(
            "the end marker {marker:?} is {} tokens, not one",
            other.len()
        ))),
    }
}

/// The file of [`SftInfo`] in a run directory.
pub const SFT_FILE: &str = "sft.json";

/// The test records of a run, as prompt/answer pairs for `llm eval --task`.
pub const TEST_FILE: &str = "test.jsonl";

/// What a fine-tuning run was trained with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SftInfo {
    /// The template's name (`plain`, `alpaca` or `chat`).
    pub template: String,
    /// The text of the token that closes a reply.
    pub end: String,
    /// Whether only replies were targets.
    pub mask_prompt: bool,
    /// The data file.
    pub data: String,
    /// Which records of the data file went where.
    pub split: SplitIndices,
}

/// Record indices (0-based, in file order) of each split, and how they were chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitIndices {
    /// The rule, in words.
    pub rule: String,
    /// Training records.
    pub train: Vec<usize>,
    /// Validation records.
    pub val: Vec<usize>,
    /// Test records.
    pub test: Vec<usize>,
}

/// Which records train, validate and test. With `every_20th` (prompt/response pairs, whose
/// test set is a file of its own) every 20th record is held out for validation and none for
/// test; otherwise the records are shuffled with `seed` and cut 85% training, 10% test, the
/// rest validation (LLMs-from-scratch chapter 7's 935 / 110 / 55 of 1,100).
pub fn split(every_20th: bool, n: usize, seed: u64) -> SplitIndices {
    if every_20th {
        let (val, train): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| i % 20 == 19);
        return SplitIndices {
            rule: "every 20th record held out for validation".into(),
            train,
            val,
            test: vec![],
        };
    }
    let mut order: Vec<usize> = (0..n).collect();
    crate::data::labelled::shuffle(&mut order, &mut Rng::new(seed));
    let (n_train, n_test) = (n * 85 / 100, n / 10);
    let val = order.split_off(n_train + n_test);
    let test = order.split_off(n_train);
    SplitIndices {
        rule: format!(
            "shuffled with seed {seed}, then 85% training, 10% test, the rest validation"
        ),
        train: order,
        val,
        test,
    }
}

impl SftInfo {
    /// The template.
    pub fn template(&self) -> Result<Template> {
        Template::parse(&self.template)
    }

    /// The id of the end marker in `tok`.
    pub fn end_id(&self, tok: &dyn Tokenizer) -> Result<u32> {
        marker_id(&self.end, tok)
    }

    /// Writes the record as `dir`'s `sft.json`, so that a run made from a fine-tuned one (a
    /// preference or reinforcement stage) keeps its template and end token.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("the run's record serializes");
        crate::run::write_atomically(&dir.join(SFT_FILE), json.as_bytes())
    }

    /// Reads `dir`'s `sft.json`; `None` when the run is not a fine-tuning run.
    pub fn read(dir: &Path) -> Result<Option<SftInfo>> {
        let path = dir.join(SFT_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::json(&path, &e))
    }
}

/// How a model's replies are framed: the template around a prompt, and the end token's id and
/// text. A fine-tuned run's (`info`); else `plain` with the tokenizer's end-of-text token, or a
/// newline that is one token.
pub fn reply_format(
    info: Option<&SftInfo>,
    tok: &dyn Tokenizer,
) -> Result<(Template, u32, String)> {
    if let Some(info) = info {
        return Ok((info.template()?, info.end_id(tok)?, info.end.clone()));
    }
    let id = crate::tasks::end_token(tok).ok_or_else(|| {
        Error::Invalid("the model's tokenizer has no token to end a reply".into())
    })?;
    Ok((Template::Plain, id, tok.decode(&[id])?))
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
            let loss = model.masked_lm_loss(&b.ids.to_device(device), &targets);
            total += loss.value().item() * n as f64;
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
        Ok(Loss {
            loss: model.masked_lm_loss(&b.ids.to_device(device), &targets),
            units: b.ids.numel(),
            metrics: Metrics::new(),
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
    use crate::data::batch::masked_cross_entropy;
    use crate::data::template::{ASSISTANT, END, USER};
    use crate::tokenizer::{added, CharTokenizer, ENDOFTEXT};

    #[test]
    fn fitting_drops_the_prompts_beginning_before_the_replys_end() {
        let seq = || Sequence {
            ids: vec![1, 2, 3, 4, 5, 6],
            scored: vec![false, false, false, true, true, true],
        };
        let fitted = |len| seq().fitted(len).map(|s| (s.ids, s.scored));
        assert_eq!(fitted(6), Some((vec![1, 2, 3, 4, 5, 6], seq().scored)));
        assert_eq!(
            fitted(4),
            Some((vec![3, 4, 5, 6], vec![false, true, true, true]))
        );
        // One prompt token stays; then the reply loses its end.
        assert_eq!(fitted(3), Some((vec![3, 4, 5], vec![false, true, true])));
        assert_eq!(fitted(1), None);
    }

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

    fn talk() -> Vec<Turn> {
        vec![
            Turn::new(Role::User, "ab"),
            Turn::new(Role::Assistant, "cd"),
            Turn::new(Role::User, "a"),
            Turn::new(Role::Assistant, "d"),
        ]
    }

    #[test]
    fn chat_targets_are_the_replies_and_their_end_markers() {
        let base = Box::new(CharTokenizer::from_corpus("abcd").unwrap());
        let (tok, added) = added::with_tokens(base, Template::Chat.special_tokens()).unwrap();
        assert_eq!(added, 4);
        let pieces = Template::Chat.render(&talk(), END).unwrap();
        let s = encode_pieces(&pieces, tok.as_ref(), true).unwrap();
        let text = tok.decode(&s.ids).unwrap();
        assert_eq!(
            text,
            format!("{USER}ab{END}{ASSISTANT}cd{END}{USER}a{END}{ASSISTANT}d{END}")
        );
        let targets: Vec<u32> = s
            .ids
            .iter()
            .zip(&s.scored)
            .filter(|p| *p.1)
            .map(|p| *p.0)
            .collect();
        assert_eq!(tok.decode(&targets).unwrap(), format!("cd{END}d{END}"));
        //             <|user|> a b <|end|> <|assistant|> c d <|end|> <|user|> a <|end|> <|assistant|> d <|end|>
        let want = [0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1];
        assert_eq!(s.scored, want.map(|w| w == 1));
    }

    #[test]
    fn alpaca_targets_are_the_output_and_end_of_text() {
        let corpus = "Below is an instruction that describes a task. Write a response that \
                      appropriately completes the request.\n#:IR";
        let base = Box::new(CharTokenizer::from_corpus(corpus).unwrap());
        let (tok, _) = added::with_tokens(base, Template::Alpaca.special_tokens()).unwrap();
        let turns = [
            Turn::new(Role::User, "Be"),
            Turn::new(Role::Assistant, "no"),
        ];
        let pieces = Template::Alpaca.render(&turns, ENDOFTEXT).unwrap();
        let s = encode_pieces(&pieces, tok.as_ref(), true).unwrap();
        let first_target = s.scored.iter().position(|&t| t).unwrap();
        assert!(s.scored[first_target..].iter().all(|&t| t));
        let tail = tok.decode(&s.ids[first_target..]).unwrap();
        assert_eq!(tail, format!("no{ENDOFTEXT}"));
        assert!(tok
            .decode(&s.ids[..first_target])
            .unwrap()
            .ends_with("### Response:\n"));
    }

    /// The head run at the scored positions only gives the loss and gradients of the head run
    /// everywhere (in f64, to rounding).
    #[test]
    fn the_loss_on_scored_positions_equals_the_masked_mean_over_all() {
        let cfg = Config {
            vocab_size: 7,
            block_size: 8,
            n_layer: 1,
            n_head: 2,
            n_embd: 8,
            ..Config::char_small()
        };
        let model = Model::new(&cfg, &mut Rng::new(1), &nn::SharedRng::new(0));
        nn::Module::to_dtype(&model, tensor::DType::F64).unwrap();
        let a = Sequence {
            ids: vec![1, 2, 3, 4, 5, 6],
            scored: vec![false, false, true, true, false, true],
        };
        let b = Sequence {
            ids: vec![6, 5, 4],
            scored: vec![false, true, true],
        };
        let batch = batch(&[&a, &b], 0);
        let targets = batch.targets.unwrap();
        let run = |fast: bool| {
            nn::Module::zero_grad(&model);
            let loss = match fast {
                true => model.masked_lm_loss(&batch.ids, &targets),
                false => masked_cross_entropy(&model.logits(&batch.ids), &targets),
            };
            loss.backward();
            let grads: Vec<f64> = nn::Module::params(&model)
                .iter()
                .flat_map(|p| p.grad().unwrap().to_vec::<f64>())
                .collect();
            (loss.value().item(), grads)
        };
        let (fast, plain) = (run(true), run(false));
        assert!(
            (fast.0 - plain.0).abs() < 1e-12,
            "{} vs {}",
            fast.0,
            plain.0
        );
        for (x, y) in fast.1.iter().zip(&plain.1) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }

    #[test]
    fn a_fully_masked_batch_gives_zero_loss_and_zero_gradients() {
        let cfg = Config {
            vocab_size: 5,
            block_size: 8,
            n_layer: 1,
            n_head: 1,
            n_embd: 4,
            ..Config::char_small()
        };
        let model = Model::new(&cfg, &mut Rng::new(0), &nn::SharedRng::new(0));
        let s = Sequence {
            ids: vec![1, 2, 3],
            scored: vec![false; 3],
        };
        assert!(s.clone().truncated(3).is_none(), "nothing left to learn");
        let b = batch(&[&s, &s], 0);
        let loss = model.masked_lm_loss(&b.ids, &b.targets.unwrap());
        assert_eq!(loss.value().item(), 0.0);
        loss.backward();
        for (name, p) in nn::Module::named_params(&model) {
            let g = p.grad().map(|g| g.to_vec::<f32>()).unwrap_or_default();
            assert!(g.iter().all(|&x| x == 0.0), "{name} got a gradient");
        }
    }
}
