//! Evaluation: mean next-token negative log-likelihood and perplexity over a token sequence.
//!
//! The sequence is cut into consecutive windows of at most `context + 1` tokens that overlap
//! by one, so every token after the first is predicted exactly once, from at most `context`
//! tokens of history. Perplexity is `exp(total NLL / total tokens)`, never an average of
//! per-window perplexities.

pub mod pairs;
pub mod task;
pub mod text_metrics;

use crate::data::TokenDataset;
use crate::model::Model;
use autograd::no_grad;

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
    let data = TokenDataset::from_tokens(tokens.to_vec());
    let (mut total_nll, mut count) = (0.0, 0);
    no_grad(|| {
        for (x, y) in data.eval_batches(batch, context) {
            let n = y.numel();
            total_nll += model.loss(&x, &y).value().item() * n as f64;
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
