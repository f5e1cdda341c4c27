//! Evaluation: mean next-token negative log-likelihood and perplexity over a token sequence.
//!
//! The sequence is cut into consecutive windows of at most `context + 1` tokens that overlap
//! by one, so every token after the first is predicted exactly once, from at most `context`
//! tokens of history. Perplexity is `exp(total NLL / total tokens)`, never an average of
//! per-window perplexities.

pub mod pairs;
pub mod task;
pub mod text_metrics;

use crate::model::Model;
use autograd::no_grad;
use tensor::Tensor;

/// The result of an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct EvalResult {
    /// Mean negative log-likelihood per predicted token (nats).
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
    /// Number of predicted tokens.
    pub tokens: usize,
}

/// Evaluates `model` on `tokens` in windows of its context (at most `max_context` when the
/// model's context is unbounded), `batch` windows at a time.
pub fn evaluate(model: &Model, tokens: &[u32], max_context: usize, batch: usize) -> EvalResult {
    let context = model.context().min(max_context).max(1);
    let starts: Vec<usize> = (0..tokens.len().saturating_sub(1))
        .step_by(context)
        .collect();
    let mut total_nll = 0.0;
    let mut count = 0;
    no_grad(|| {
        // Windows of equal length go through the model together; the last may be shorter.
        let full: Vec<usize> = starts
            .iter()
            .copied()
            .filter(|&s| s + context < tokens.len())
            .collect();
        let tail: Vec<usize> = starts
            .iter()
            .copied()
            .filter(|&s| s + context >= tokens.len())
            .collect();
        for group in full.chunks(batch.max(1)) {
            let (nll, n) = window_nll(model, tokens, group, context);
            total_nll += nll;
            count += n;
        }
        for &s in &tail {
            let (nll, n) = window_nll(model, tokens, &[s], tokens.len() - 1 - s);
            total_nll += nll;
            count += n;
        }
    });
    let loss = total_nll / count.max(1) as f64;
    EvalResult {
        loss,
        perplexity: loss.exp(),
        tokens: count,
    }
}

/// Summed NLL of predicting `tokens[s+1 ..= s+len]` from `tokens[s .. s+len]` for each start.
fn window_nll(model: &Model, tokens: &[u32], starts: &[usize], len: usize) -> (f64, usize) {
    let gather = |offset: usize| -> Vec<u32> {
        starts
            .iter()
            .flat_map(|&s| tokens[s + offset..s + offset + len].to_vec())
            .collect()
    };
    let x = Tensor::from_vec(gather(0), &[starts.len(), len]);
    let y = Tensor::from_vec(gather(1), &[starts.len(), len]);
    let n = starts.len() * len;
    (model.loss(&x, &y).value().item() * n as f64, n)
}
