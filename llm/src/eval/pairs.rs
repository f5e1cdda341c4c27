//! Preference pairs from a model's own answers on verifiable problems: each prompt is answered
//! `samples` times at a temperature, a verifier scores every answer, and a prompt with at least
//! one right answer (score 1) and one wrong one gives the pair (the first right answer drawn,
//! the first wrong one). Prompts the model always or never gets right give no pair: there is
//! nothing to prefer. Such pairs teach a model to prefer what it already can write, the setting
//! of on-policy preference data (the pairs of Pang et al., 2024, "Iterative Reasoning
//! Preference Optimization", are built this way).

use super::task::{answers, TaskOptions};
use crate::generate::{Generation, Sampling};
use crate::model::Model;
use crate::tasks::{Problem, Verifier};
use crate::tokenizer::{Special, Tokenizer};
use crate::Result;

/// A right and a wrong answer the model wrote to problem `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampledPair {
    /// The problem's position in the list given.
    pub index: usize,
    /// An answer the verifier scores 1.
    pub chosen: String,
    /// An answer it scores below 1.
    pub rejected: String,
}

/// How the prompts fared: each is counted in exactly one of the last three.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PairCounts {
    /// Prompts answered.
    pub prompts: usize,
    /// Prompts with both a right and a wrong answer: one pair each.
    pub pairs: usize,
    /// Prompts whose every answer was right.
    pub all_right: usize,
    /// Prompts whose every answer was wrong.
    pub all_wrong: usize,
}

/// Draws `o.samples` answers (at least 2) to each of `problems` at `o.temperature` and keeps a
/// right-wrong pair per prompt where both occur.
pub fn sample_pairs(
    model: &Model,
    tok: &dyn Tokenizer,
    problems: &[Problem],
    verifier: &dyn Verifier,
    o: &TaskOptions,
) -> Result<(Vec<SampledPair>, PairCounts)> {
    let k = o.samples.max(2);
    let prompts = problems
        .iter()
        .map(|p| tok.encode_with(&p.prompt, Special::Allow))
        .collect::<Result<Vec<_>>>()?;
    let g = Generation {
        max_new_tokens: o.max_new_tokens,
        sampling: Sampling {
            temperature: o.temperature,
            top_k: None,
            top_p: None,
        },
        stop_token: o.stop_token(tok),
        seed: o.seed,
        vocab_limit: Some(tok.vocab_size()),
    };
    let outputs = answers(model, tok, &prompts, k, &g, o.batch)?;
    let mut pairs = vec![];
    let mut counts = PairCounts {
        prompts: problems.len(),
        ..PairCounts::default()
    };
    for (index, (p, outs)) in problems.iter().zip(outputs.chunks(k)).enumerate() {
        let texts: Vec<&str> = outs.iter().map(|out| o.answer(out)).collect();
        let right = |t: &&&str| verifier.score(p, t) >= 1.0;
        match (texts.iter().find(right), texts.iter().find(|t| !right(t))) {
            (Some(chosen), Some(rejected)) => {
                counts.pairs += 1;
                pairs.push(SampledPair {
                    index,
                    chosen: chosen.to_string(),
                    rejected: rejected.to_string(),
                });
            }
            (Some(_), None) => counts.all_right += 1,
            _ => counts.all_wrong += 1,
        }
    }
    Ok((pairs, counts))
}
