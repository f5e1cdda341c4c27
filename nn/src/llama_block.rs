//! Llama's transformer block: `x = x + attn(norm1(x)); x = x + mlp(norm2(x))`, with RMS norms,
//! grouped-query attention with rotary embeddings, and the SwiGLU feed-forward block.

use crate::attention::KvCache;
use crate::gqa::GroupedQueryAttention;
use crate::linear::Linear;
use crate::module::{join, Module};
use crate::rms_norm::RmsNorm;
use crate::rope::Rope;
use crate::swiglu::SwiGlu;
use autograd::Var;
use std::sync::Arc;
use tensor::Rng;

/// The shape of a Llama block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LlamaBlockConfig {
    /// Width of the residual stream `C`.
    pub dim: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (dividing `n_head`).
    pub n_kv_head: usize,
    /// Width of the feed-forward block.
    pub hidden_dim: usize,
    /// The RMS norms' epsilon.
    pub norm_eps: f64,
    /// Std of the weights' initial values.
    pub std: f64,
    /// Std of the residual projections' initial values.
    pub proj_std: f64,
}

/// Attention and feed-forward, each behind an RMS norm and added to the residual stream.
pub struct LlamaBlock {
    /// Norm before attention.
    pub attn_norm: RmsNorm,
    /// Grouped-query attention.
    pub attn: GroupedQueryAttention,
    /// Norm before the feed-forward block.
    pub ffn_norm: RmsNorm,
    /// The SwiGLU feed-forward block.
    pub ffn: SwiGlu,
}

impl LlamaBlock {
    /// A block of `cfg` whose attention rotates with `rope`.
    pub fn new(cfg: LlamaBlockConfig, rope: Arc<Rope>, rng: &mut Rng) -> LlamaBlock {
        LlamaBlock {
            attn_norm: RmsNorm::new(cfg.dim, cfg.norm_eps),
            attn: GroupedQueryAttention::new(
                cfg.dim,
                cfg.n_head,
                cfg.n_kv_head,
                rope,
                (cfg.std, cfg.proj_std),
                rng,
            ),
            ffn_norm: RmsNorm::new(cfg.dim, cfg.norm_eps),
            ffn: SwiGlu::new(cfg.dim, cfg.hidden_dim, cfg.std, cfg.proj_std, rng),
        }
    }

    /// The feed-forward half, after attention has been added to `x`.
    fn feed_forward(&self, x: Var) -> Var {
        x.add(&self.ffn.forward(&self.ffn_norm.forward(&x)))
    }

    /// Incremental forward (see [`GroupedQueryAttention::forward_cached`]).
    pub fn forward_cached(&self, x: &Var, cache: &mut KvCache) -> Var {
        let a = self.attn.forward_cached(&self.attn_norm.forward(x), cache);
        self.feed_forward(x.add(&a))
    }

    /// One new position per sequence (see [`GroupedQueryAttention::forward_ragged`]).
    pub fn forward_ragged(&self, x: &Var, caches: &mut [&mut KvCache]) -> Var {
        let a = self.attn.forward_ragged(&self.attn_norm.forward(x), caches);
        self.feed_forward(x.add(&a))
    }
}

impl Module for LlamaBlock {
    fn forward(&self, x: &Var) -> Var {
        let a = self.attn.forward(&self.attn_norm.forward(x));
        self.feed_forward(x.add(&a))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        self.attn_norm.visit_params(&join(prefix, "attn_norm"), f);
        self.attn.visit_params(&join(prefix, "attn"), f);
        self.ffn_norm.visit_params(&join(prefix, "ffn_norm"), f);
        self.ffn.visit_params(&join(prefix, "ffn"), f);
    }

    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        self.attn.visit_linears_mut(&join(prefix, "attn"), f);
        self.ffn.visit_linears_mut(&join(prefix, "ffn"), f);
    }
}
