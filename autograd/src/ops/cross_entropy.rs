//! Cross-entropy over logits as one fused op (log-softmax and the negative log-likelihood
//! together). The forward saves the logits and each row's logsumexp; the backward is
//! `dlogits = g / count * (softmax(logits) - onehot(target))`, zero on ignored rows (see
//! `tensor/src/cpu/cross_entropy.rs`).

use crate::op::{Backward, Op};
use crate::var::Var;
use tensor::Tensor;

struct CrossEntropyRule {
    logits: Tensor,
    targets: Tensor,
    ignore_index: Option<i64>,
    lse: Tensor,
}

impl Backward for CrossEntropyRule {
    fn op(&self) -> Op {
        Op::CrossEntropy
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let d = self
            .logits
            .try_cross_entropy_backward(&self.targets, self.ignore_index, &self.lse, g.item())
            .unwrap_or_else(|e| panic!("{e}"));
        vec![Some(d)]
    }
}

impl Var {
    /// Mean cross-entropy of these logits `(..., V)` against `targets` `(...)` (`u32`/`i64`);
    /// targets equal to `ignore_index` are left out of the mean.
    #[track_caller]
    pub fn cross_entropy(&self, targets: &Tensor, ignore_index: Option<i64>) -> Var {
        let logits = self.value();
        let (loss, lse) = logits
            .try_cross_entropy(targets, ignore_index)
            .unwrap_or_else(|e| panic!("{e}"));
        let targets = targets.clone();
        Var::from_op(loss, &[self], || CrossEntropyRule {
            logits,
            targets,
            ignore_index,
            lse,
        })
    }
}
