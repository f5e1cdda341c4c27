//! Llama in the shape llama2.c trains and runs, readable in one screen:
//!
//! ```text
//! x = tok_embeddings[ids]                    (B, T, C), no position embedding
//! for block in blocks:                       x + attn(rms1(x)), then x + swiglu(rms2(x));
//!     x = block(x)                           attention rotates queries and keys (RoPE) and
//!                                            shares each key/value head with a group of heads
//! logits = norm(x) @ W^T                     W: the token embedding (tied) or its own output
//! ```
//!
//! See `nn::llama_block` for the block's parts.

use crate::model::config::Config;
use autograd::Var;
use nn::{Embedding, KvCache, Linear, LlamaBlock, LlamaBlockConfig, Module, RmsNorm, Rope};
use std::sync::Arc;
use tensor::{Rng, Tensor};

/// The default RMS norm epsilon and rotary base (llama2.c's).
pub const NORM_EPS: f64 = 1e-5;
/// The default rotary base.
pub const ROPE_THETA: f64 = 10_000.0;

/// A Llama-style decoder-only transformer.
pub struct Llama {
    /// Token embedding `(V, C)`.
    pub tok_embeddings: Embedding,
    /// The transformer blocks, applied in order.
    pub blocks: Vec<LlamaBlock>,
    /// The final RMS norm.
    pub norm: RmsNorm,
    /// The output head `C -> V` when it is not tied to the token embedding.
    pub output: Option<Linear>,
    /// Context length: the rotary tables cover positions `0..context`.
    pub context: usize,
}

impl Llama {
    /// A freshly initialised model: weights from `N(0, 0.02)`, the residual projections scaled
    /// down by depth as in GPT-2 (llama2.c's training does the same).
    pub fn new(cfg: &Config, rng: &mut Rng) -> Llama {
        let head_size = cfg.n_embd / cfg.n_head;
        let rope = Arc::new(Rope::new(head_size, cfg.block_size, cfg.rope_theta()));
        let block = LlamaBlockConfig {
            dim: cfg.n_embd,
            n_head: cfg.n_head,
            n_kv_head: cfg.kv_heads(),
            hidden_dim: cfg.hidden_dim,
            norm_eps: cfg.norm_eps(),
            std: nn::init::GPT2_STD,
            proj_std: nn::init::residual_std(cfg.n_layer),
        };
        let tok_embeddings = Embedding::new(cfg.vocab_size, cfg.n_embd, nn::init::GPT2_STD, rng);
        let blocks = (0..cfg.n_layer)
            .map(|_| LlamaBlock::new(block, rope.clone(), rng))
            .collect();
        let output = cfg
            .untied_head
            .then(|| Linear::new(cfg.n_embd, cfg.vocab_size, false, nn::init::GPT2_STD, rng));
        Llama {
            tok_embeddings,
            blocks,
            norm: RmsNorm::new(cfg.n_embd, cfg.norm_eps()),
            output,
            context: cfg.block_size,
        }
    }

    /// The token embeddings of `ids (B, T)` (on any device).
    fn embed(&self, ids: &Tensor) -> Var {
        let device = self.tok_embeddings.weight.device();
        self.tok_embeddings.lookup(&ids.to_device(device))
    }

    /// The output head: hidden states `(.., C)` to logits `(.., V)`.
    pub fn lm_head(&self, hidden: &Var) -> Var {
        match &self.output {
            Some(output) => output.forward(hidden),
            None => hidden.matmul(&self.tok_embeddings.weight.t()),
        }
    }

    /// Hidden states `(B, T, C)` of `ids (B, T)` after the final norm.
    pub fn hidden(&self, ids: &Tensor) -> Var {
        assert!(
            ids.dim(1) <= self.context,
            "sequence of {} positions exceeds the model's context of {}",
            ids.dim(1),
            self.context
        );
        let mut x = self.embed(ids);
        for block in &self.blocks {
            x = block.forward(&x);
        }
        self.norm.forward(&x)
    }

    /// Logits `(B, T, V)` for every position of `ids (B, T)`.
    pub fn logits(&self, ids: &Tensor) -> Var {
        self.lm_head(&self.hidden(ids))
    }

    /// Logits `(B, V)` of the last position of `ids (B, T_new)`, which follow the positions
    /// already in `caches` (one per block); the caches are extended. For generation.
    pub fn logits_cached(&self, ids: &Tensor, caches: &mut [KvCache]) -> Var {
        let start = caches.first().map_or(0, KvCache::len);
        assert!(
            start + ids.dim(1) <= self.context,
            "position {} is past the context of {}",
            start + ids.dim(1),
            self.context
        );
        let mut x = self.embed(ids);
        for (block, cache) in self.blocks.iter().zip(caches.iter_mut()) {
            x = block.forward_cached(&x, cache);
        }
        let last = x.narrow(1, x.dim(1) - 1, 1).squeeze(1);
        self.lm_head(&self.norm.forward(&last))
    }

    /// Logits `(B, V)` of one new token per sequence, `ids (B, 1)`, where sequence `b` has its
    /// own caches `caches[b]` (one per block, of any length). For batched generation.
    pub fn logits_ragged(&self, ids: &Tensor, caches: &mut [&mut [KvCache]]) -> Var {
        assert_eq!(ids.shape(), [caches.len(), 1], "one new token per sequence");
        let mut x = self.embed(ids);
        for (layer, block) in self.blocks.iter().enumerate() {
            let mut of_layer: Vec<&mut KvCache> =
                caches.iter_mut().map(|c| &mut c[layer]).collect();
            x = block.forward_ragged(&x, &mut of_layer);
        }
        self.lm_head(&self.norm.forward(&x.squeeze(1)))
    }
}

impl Module for Llama {
    /// `x` holds the token ids `(B, T)`.
    fn forward(&self, x: &Var) -> Var {
        self.logits(&x.value())
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        use nn::module::join;
        self.tok_embeddings
            .visit_params(&join(prefix, "tok_embeddings"), f);
        for (i, block) in self.blocks.iter().enumerate() {
            block.visit_params(&join(prefix, &format!("blocks.{i}")), f);
        }
        self.norm.visit_params(&join(prefix, "norm"), f);
        if let Some(output) = &self.output {
            output.visit_params(&join(prefix, "output"), f);
        }
    }

    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        for (i, block) in self.blocks.iter_mut().enumerate() {
            block.visit_linears_mut(&nn::module::join(prefix, &format!("blocks.{i}")), f);
        }
    }
}
