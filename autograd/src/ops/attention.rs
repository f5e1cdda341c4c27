//! Causal scaled-dot-product attention as one fused op. The forward saves q, k, v, the output
//! and the row logsumexp only (not the `T x T` probabilities); the backward kernel recomputes
//! the probabilities from the logsumexp (see `tensor/src/cpu/attention.rs`).

use crate::op::{Backward, Op};
use crate::var::Var;
use tensor::Tensor;

struct AttentionRule {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
}

impl Backward for AttentionRule {
    fn op(&self) -> Op {
        Op::Attention
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let (dq, dk, dv) =
            Tensor::try_attention_backward(&self.q, &self.k, &self.v, &self.out, &self.lse, g)
                .unwrap_or_else(|e| panic!("{e}"));
        vec![Some(dq), Some(dk), Some(dv)]
    }
}

impl Var {
    /// Causal attention: `q (..., Tq, D)`, `k, v (..., Tk, D)`, query `i` sees keys up to
    /// position `i + Tk - Tq`; scale `1/sqrt(D)`.
    #[track_caller]
    pub fn attention(q: &Var, k: &Var, v: &Var) -> Var {
        let (qv, kv, vv) = (q.value(), k.value(), v.value());
        let (out, lse) = Tensor::try_attention(&qv, &kv, &vv).unwrap_or_else(|e| panic!("{e}"));
        let saved = out.clone();
        Var::from_op(out, &[q, k, v], || AttentionRule {
            q: qv,
            k: kv,
            v: vv,
            out: saved,
            lse,
        })
    }
}
