//! GPT in the GPT-2 architecture, readable in one screen:
//!
//! ```text
//! x = drop(wte[ids] + wpe[positions])        (B, T, C)
//! for block in blocks: x = block(x)          x + attn(ln1(x)), then x + mlp(ln2(x))
//! logits = ln_f(x) @ wte^T                   (B, T, V), the head tied to the token embedding
//! ```

use crate::model::config::Config;
use autograd::Var;
use nn::{Block, BlockConfig, Dropout, Embedding, KvCache, Linear, Module, Norm, SharedRng};
use tensor::{Rng, Tensor};

/// A GPT-2-style decoder-only transformer.
pub struct Gpt {
    /// Token embedding `(V, C)`, also the output head (tied).
    pub wte: Embedding,
    /// Learned position embedding `(block_size, C)`.
    pub wpe: Embedding,
    /// Dropout on the summed embeddings.
    pub drop: Dropout,
    /// The transformer blocks, applied in order.
    pub blocks: Vec<Block>,
    /// Final norm before the output head (a layer norm unless `norm` chooses another).
    pub ln_f: Norm,
    /// Context length: positions `0..block_size` have embeddings; longer inputs panic.
    pub block_size: usize,
}

impl Gpt {
    /// A freshly initialised model (GPT-2's init, see `nn::init`). Dropout layers draw from
    /// `drop_rng`.
    pub fn new(cfg: &Config, rng: &mut Rng, drop_rng: &SharedRng) -> Gpt {
        let block = BlockConfig {
            dim: cfg.n_embd,
            n_head: cfg.n_head,
            bias: cfg.bias,
            dropout: cfg.dropout,
            proj_std: nn::init::residual_std(cfg.n_layer),
            norm: cfg.norm,
        };
        Gpt {
            wte: Embedding::new(cfg.vocab_size, cfg.n_embd, nn::init::GPT2_STD, rng),
            wpe: Embedding::new(cfg.block_size, cfg.n_embd, nn::init::GPT2_STD, rng),
            drop: Dropout::new(cfg.dropout, drop_rng.clone()),
            blocks: (0..cfg.n_layer)
                .map(|_| Block::new(block, rng, drop_rng))
                .collect(),
            ln_f: Norm::new(cfg.norm, cfg.n_embd, cfg.bias),
            block_size: cfg.block_size,
        }
    }

    /// Token plus position embeddings of `ids (B, T)` placed at positions `start..start+T`.
    /// The ids may live on any device: they are copied to the model's (generation builds them
    /// on the host).
    fn embed(&self, ids: &Tensor, start: usize) -> Var {
        let t = ids.dim(1);
        assert!(
            start + t <= self.block_size,
            "sequence of {} positions exceeds the model's context of {}",
            start + t,
            self.block_size
        );
        let device = self.wte.weight.device();
        // The position embeddings of `start..start + t` are rows of `wpe` in order: a view,
        // so no ids are built on the host and copied over.
        self.drop.forward(
            &self
                .wte
                .lookup(&ids.to_device(device))
                .add(&self.wpe.weight.narrow(0, start, t)),
        )
    }

    /// The tied language-model head: hidden states `(.., C)` to logits `(.., V)`, `h @ wte^T`.
    pub fn lm_head(&self, hidden: &Var) -> Var {
        hidden.matmul(&self.wte.weight.t())
    }

    /// Hidden states `(B, T, C)` of `ids (B, T)`: the blocks' output after the final layer norm,
    /// what every head reads.
    pub fn hidden(&self, ids: &Tensor) -> Var {
        let mut x = self.embed(ids, 0);
        for block in &self.blocks {
            x = block.forward(&x);
        }
        self.ln_f.forward(&x)
    }

    /// Logits `(B, T, V)` for every position of `ids (B, T)`.
    pub fn logits(&self, ids: &Tensor) -> Var {
        self.lm_head(&self.hidden(ids))
    }

    /// Logits `(B, V)` of the last position of `ids (B, T_new)`, which follow the positions
    /// already in `caches` (one per block); the caches are extended. For generation.
    pub fn logits_cached(&self, ids: &Tensor, caches: &mut [KvCache]) -> Var {
        let start = caches.first().map_or(0, KvCache::len);
        let mut x = self.embed(ids, start);
        for (block, cache) in self.blocks.iter().zip(caches.iter_mut()) {
            x = block.forward_cached(&x, cache);
        }
        let last = x.narrow(1, x.dim(1) - 1, 1).squeeze(1);
        self.lm_head(&self.ln_f.forward(&last))
    }

    /// Logits `(B, V)` of one new token per sequence, `ids (B, 1)`, where sequence `b` has its
    /// own caches `caches[b]` (one per block, of any length: the token sits at that position).
    /// The caches are extended. For batched generation.
    pub fn logits_ragged(&self, ids: &Tensor, caches: &mut [&mut [KvCache]]) -> Var {
        assert_eq!(ids.shape(), [caches.len(), 1], "one new token per sequence");
        let positions: Vec<u32> = caches
            .iter()
            .map(|c| {
                let at = c.first().map_or(0, KvCache::len);
                assert!(at < self.block_size, "position {at} is past the context");
                at as u32
            })
            .collect();
        let device = self.wte.weight.device();
        let positions = Tensor::from_vec(positions, &[caches.len(), 1]).to_device(device);
        let mut x = self.drop.forward(
            &self
                .wte
                .lookup(&ids.to_device(device))
                .add(&self.wpe.lookup(&positions)),
        );
        for (layer, block) in self.blocks.iter().enumerate() {
            let mut of_layer: Vec<&mut KvCache> =
                caches.iter_mut().map(|c| &mut c[layer]).collect();
            x = block.forward_ragged(&x, &mut of_layer);
        }
        self.lm_head(&self.ln_f.forward(&x.squeeze(1)))
    }
}

impl Module for Gpt {
    /// `x` holds the token ids `(B, T)`.
    fn forward(&self, x: &Var) -> Var {
        self.logits(&x.value())
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        use nn::module::join;
        self.wte.visit_params(&join(prefix, "wte"), f);
        self.wpe.visit_params(&join(prefix, "wpe"), f);
        for (i, block) in self.blocks.iter().enumerate() {
            block.visit_params(&join(prefix, &format!("blocks.{i}")), f);
        }
        self.ln_f.visit_params(&join(prefix, "ln_f"), f);
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        use nn::module::join;
        for (i, block) in self.blocks.iter().enumerate() {
            block.visit_buffers(&join(prefix, &format!("blocks.{i}")), f);
        }
        self.ln_f.visit_buffers(&join(prefix, "ln_f"), f);
    }

    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        for (i, block) in self.blocks.iter_mut().enumerate() {
            block.visit_linears_mut(&nn::module::join(prefix, &format!("blocks.{i}")), f);
        }
    }

    fn set_training(&mut self, training: bool) {
        self.drop.set_training(training);
        self.blocks
            .iter_mut()
            .for_each(|b| b.set_training(training));
        self.ln_f.set_training(training);
    }
}
