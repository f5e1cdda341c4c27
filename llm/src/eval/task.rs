//! Scoring a model on verifiable problems (see [`crate::tasks`]): it writes an answer after
//! each prompt and a verifier scores it.
//!
//! - **Accuracy**: the fraction of problems whose greedy answer scores 1 (exact match for
//!   arithmetic, an expression that reaches the target for countdown), with the Wilson 95%
//!   interval ([`wilson`]).
//! - **Mean score**: the verifier's mean, partial credit included.
//! - **pass@k** with `samples` draws per problem at a temperature: the unbiased estimator
//!   `1 - C(n - c, k) / C(n, k)` of the chance that at least one of `k` draws is right, from
//!   `n` draws of which `c` are right (Chen et al., 2021, "Evaluating Large Language Models
//!   Trained on Code"), averaged over problems ([`pass_at_k`]).
//! - **Text metrics** of the greedy answers against the reference answers
//!   ([`super::text_metrics`]).
//!
//! - **Answer loss**: the mean cross-entropy of the reference answers' tokens (and the end
//!   token after each) given their prompts, teacher-forced: how likely the model finds the
//!   right answer, whatever it writes itself.
//!
//! An answer is the text generated after the prompt up to the first newline or end-of-text
//! token ([`crate::tasks::answer_text`]); generation stops at the token that closes an answer
//! ([`crate::tasks::end_token`]: end-of-text, or a newline), or after `max_new_tokens`. A
//! fine-tuned model's replies end at its own marker instead ([`TaskOptions::reply_end`]), and
//! may span lines.

use super::text_metrics::{score_all, TextScores};
use crate::generate::{generate_batch, Generation, Sampling};
use crate::model::Model;
use crate::tasks::{answer_text, arithmetic, Problem, Verifier};
use crate::tokenizer::{Special, Tokenizer};
use crate::Result;
use std::collections::BTreeMap;

/// How to run the evaluation.
#[derive(Clone, Debug)]
pub struct TaskOptions {
    /// Most tokens generated per answer.
    pub max_new_tokens: usize,
    /// Draws per problem for pass@k (0: greedy only).
    pub samples: usize,
    /// Temperature of those draws.
    pub temperature: f64,
    /// Sequences generated together.
    pub batch: usize,
    /// Seed of the draws.
    pub seed: u64,
    /// The token that closes a reply and its text, for a fine-tuned model (see
    /// [`crate::stages::sft::SftInfo`]); `None`: the task's answer rule.
    pub reply_end: Option<(u32, String)>,
}

impl TaskOptions {
    /// The token generation stops at.
    pub(crate) fn stop_token(&self, tok: &dyn Tokenizer) -> Option<u32> {
        match &self.reply_end {
            Some((id, _)) => Some(*id),
            None => crate::tasks::end_token(tok),
        }
    }

    /// The answer in a generated output: up to the reply's end marker, or the task's rule.
    pub(crate) fn answer<'a>(&self, output: &'a str) -> &'a str {
        match &self.reply_end {
            Some((_, end)) => output.split(end.as_str()).next().unwrap_or("").trim(),
            None => answer_text(output),
        }
    }
}

/// Accuracy and its interval over a group of problems.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Accuracy {
    /// Problems in the group.
    pub n: usize,
    /// Fraction answered right (greedy).
    pub accuracy: f64,
    /// Wilson 95% interval of the accuracy.
    pub ci95: [f64; 2],
}

impl Accuracy {
    fn of(right: usize, n: usize) -> Accuracy {
        let (lo, hi) = wilson(right, n);
        Accuracy {
            n,
            accuracy: right as f64 / n.max(1) as f64,
            ci95: [lo, hi],
        }
    }
}

/// The report of `llm eval --task`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TaskReport {
    /// The task file's name.
    pub task: String,
    /// Problems scored.
    pub n: usize,
    /// Fraction of greedy answers that score 1.
    pub accuracy: f64,
    /// Wilson 95% interval of the accuracy.
    pub ci95: [f64; 2],
    /// Mean verifier score of the greedy answers (partial credit counts).
    pub mean_score: f64,
    /// pass@k for k = 1, 2, 4, ... up to the number of draws (`"1"`, `"8"`, ...); empty
    /// without draws.
    pub pass_at_k: BTreeMap<String, f64>,
    /// Greedy answers against the reference answers.
    pub text: TextScores,
    /// Mean cross-entropy per token of the reference answers and their end tokens, given the
    /// prompts (problems longer than the context are cut to it); `None` when no answer
    /// token fits.
    pub answer_loss: Option<f64>,
    /// Accuracy per kind of arithmetic problem (`"+ 2 digits"`, ...), when the prompts are
    /// arithmetic.
    pub groups: BTreeMap<String, Accuracy>,
    /// The greedy answer to each problem, in order (not in the JSON report).
    #[serde(skip)]
    pub answers: Vec<String>,
}

/// The Wilson score interval at 95% (z = 1.96) of a proportion with `right` successes out of
/// `n`: `(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`, clamped to [0, 1]. Unlike the
/// normal interval it stays inside [0, 1] and is not empty at 0 or n successes. `(0, 1)` for
/// `n = 0`.
pub fn wilson(right: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054;
    let (n, p) = (n as f64, right as f64 / n as f64);
    let centre = p + z * z / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    let scale = 1.0 + z * z / n;
    (
        ((centre - spread) / scale).max(0.0),
        ((centre + spread) / scale).min(1.0),
    )
}

/// The unbiased pass@k of one problem with `c` right draws out of `n`: `1 - C(n-c, k)/C(n, k)`,
/// computed as `1 - prod_{i = n-c+1}^{n} (1 - k/i)`, which needs no large binomials. 1 when
/// fewer than `k` draws are wrong. Panics unless `k <= n`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    assert!(
        k >= 1 && k <= n && c <= n,
        "pass@k needs 1 <= k <= n and c <= n"
    );
    if n - c < k {
        return 1.0;
    }
    1.0 - (n - c + 1..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product::<f64>()
}

/// The ks reported for `samples` draws: powers of two below it, and `samples` itself.
fn ks(samples: usize) -> Vec<usize> {
    let mut ks: Vec<usize> = (0..)
        .map(|e| 1usize << e)
        .take_while(|&k| k < samples)
        .collect();
    if samples > 0 {
        ks.push(samples);
    }
    ks
}

/// The group of an arithmetic prompt: its operation and its longer operand's digits.
fn group(prompt: &str) -> Option<String> {
    arithmetic::kind(prompt).map(|(op, digits)| format!("{} {digits} digits", op.symbol()))
}

/// Generates answers to `prompts`, each `copies` times (draw `j` of prompt `i` is sequence
/// `i * copies + j`), in batches: the decoded texts, in that order.
pub(super) fn answers(
    model: &Model,
    tok: &dyn Tokenizer,
    prompts: &[Vec<u32>],
    copies: usize,
    g: &Generation,
    batch: usize,
) -> Result<Vec<String>> {
    let all: Vec<Vec<u32>> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.clone(), copies))
        .collect();
    let mut texts = Vec::with_capacity(all.len());
    for (b, chunk) in all.chunks(batch.max(1)).enumerate() {
        let chunk_g = Generation {
            seed: g.seed.wrapping_add((b * batch) as u64),
            ..g.clone()
        };
        for ids in generate_batch(model, chunk, &chunk_g) {
            // Lossy: a byte-level model may stop inside a character, or write bytes that form
            // none.
            texts.push(String::from_utf8_lossy(&tok.decode_bytes(&ids)?).into_owned());
        }
    }
    Ok(texts)
}

/// Scores `model` on `problems` with `verifier`; `name` labels the report.
pub fn evaluate_task(
    model: &Model,
    tok: &dyn Tokenizer,
    problems: &[Problem],
    verifier: &dyn Verifier,
    name: &str,
    o: &TaskOptions,
) -> Result<TaskReport> {
    let prompts = problems
        .iter()
        .map(|p| tok.encode_with(&p.prompt, Special::Allow))
        .collect::<Result<Vec<_>>>()?;
    let greedy = Generation {
        max_new_tokens: o.max_new_tokens,
        sampling: Sampling::GREEDY,
        stop_token: o.stop_token(tok),
        seed: o.seed,
        vocab_limit: Some(tok.vocab_size()),
    };
    let outputs = answers(model, tok, &prompts, 1, &greedy, o.batch)?;
    let scores: Vec<f64> = problems
        .iter()
        .zip(&outputs)
        .map(|(p, out)| verifier.score(p, o.answer(out)))
        .collect();
    let right = scores.iter().filter(|&&s| s >= 1.0).count();
    let mut per_group: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (p, &s) in problems.iter().zip(&scores) {
        if let Some(g) = group(&p.prompt) {
            let entry = per_group.entry(g).or_default();
            entry.0 += usize::from(s >= 1.0);
            entry.1 += 1;
        }
    }
    let answers: Vec<String> = outputs
        .iter()
        .map(|out| o.answer(out).to_string())
        .collect();
    let pairs: Vec<(String, String)> = answers
        .iter()
        .zip(problems)
        .map(|(a, p)| (a.clone(), p.answer.clone()))
        .collect();
    let n = problems.len();
    let (lo, hi) = wilson(right, n);
    Ok(TaskReport {
        task: name.to_string(),
        n,
        accuracy: right as f64 / n.max(1) as f64,
        ci95: [lo, hi],
        mean_score: scores.iter().sum::<f64>() / n.max(1) as f64,
        pass_at_k: sampled_pass_at_k(model, tok, problems, &prompts, verifier, &greedy, o)?,
        text: score_all(&pairs),
        answer_loss: answer_loss(model, tok, problems, o)?,
        groups: per_group
            .into_iter()
            .map(|(g, (right, n))| (g, Accuracy::of(right, n)))
            .collect(),
        answers,
    })
}

/// The teacher-forced loss of the reference answers (see [`TaskReport::answer_loss`]).
fn answer_loss(
    model: &Model,
    tok: &dyn Tokenizer,
    problems: &[Problem],
    o: &TaskOptions,
) -> Result<Option<f64>> {
    let Some(end) = o.stop_token(tok) else {
        return Ok(None);
    };
    let context = model.context();
    let seqs: Vec<_> = crate::stages::sft::encode(problems, tok, end, true)?
        .into_iter()
        .filter_map(|s| s.truncated(context))
        .collect();
    if seqs.is_empty() {
        return Ok(None);
    }
    let device = model.device();
    let loss = crate::stages::sft::mean_loss(model, &seqs, o.batch, end, device);
    Ok(Some(loss))
}

/// pass@k over `o.samples` draws per problem at `o.temperature` (empty without draws).
fn sampled_pass_at_k(
    model: &Model,
    tok: &dyn Tokenizer,
    problems: &[Problem],
    prompts: &[Vec<u32>],
    verifier: &dyn Verifier,
    greedy: &Generation,
    o: &TaskOptions,
) -> Result<BTreeMap<String, f64>> {
    let k_max = o.samples;
    if k_max == 0 {
        return Ok(BTreeMap::new());
    }
    let g = Generation {
        sampling: Sampling {
            temperature: o.temperature,
            top_k: None,
            top_p: None,
        },
        seed: o.seed.wrapping_add(1),
        ..greedy.clone()
    };
    let draws = answers(model, tok, prompts, k_max, &g, o.batch)?;
    let right: Vec<usize> = problems
        .iter()
        .zip(draws.chunks(k_max))
        .map(|(p, outs)| {
            let right = |out: &&String| verifier.score(p, o.answer(out)) >= 1.0;
            outs.iter().filter(right).count()
        })
        .collect();
    Ok(ks(k_max)
        .into_iter()
        .map(|k| {
            let mean = right.iter().map(|&c| pass_at_k(k_max, c, k)).sum::<f64>()
                / right.len().max(1) as f64;
            (k.to_string(), mean)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_hand_computed_intervals() {
        // 8 of 10: p = 0.8, z² = 3.8415; centre = (0.8 + 0.19207) / 1.38415 = 0.71674,
        // spread = 1.96 * sqrt(0.016 + 0.0096036) / 1.38415 = 0.22657.
        let (lo, hi) = wilson(8, 10);
        assert!((lo - 0.490_16).abs() < 1e-4, "{lo}");
        assert!((hi - 0.943_32).abs() < 1e-4, "{hi}");
        // 0 of 20: lower bound 0, upper z²/n / (1 + z²/n) = 0.16113.
        let (lo, hi) = wilson(0, 20);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.161_13).abs() < 1e-4, "{hi}");
        let (lo, hi) = wilson(20, 20);
        assert!(
            (lo - (1.0 - 0.161_13)).abs() < 1e-4 && hi == 1.0,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }

    #[test]
    fn pass_at_k_is_the_unbiased_estimator() {
        // n = 5, c = 2, k = 2: 1 - C(3,2)/C(5,2) = 1 - 3/10.
        assert!((pass_at_k(5, 2, 2) - 0.7).abs() < 1e-12);
        // k = 1 is the fraction right.
        assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
        // Fewer wrong draws than k: certain; none right: never.
        assert_eq!(pass_at_k(4, 2, 3), 1.0);
        assert_eq!(pass_at_k(8, 0, 4), 0.0);
        assert_eq!(ks(8), [1, 2, 4, 8]);
        assert_eq!(ks(6), [1, 2, 4, 6]);
        assert!(ks(0).is_empty());
    }

    #[test]
    fn arithmetic_prompts_are_grouped_by_operation_and_digits() {
        assert_eq!(group("37+5=").as_deref(), Some("+ 2 digits"));
        assert_eq!(group("3 7 25 -> 46="), None);
    }
}
