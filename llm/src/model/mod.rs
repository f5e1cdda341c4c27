//! Language models: token ids in, next-token logits out.

pub mod bigram;
pub mod check;
pub mod config;
pub mod gpt;
pub mod heads;
pub mod hf;

use crate::model::config::{Architecture, Config};
use autograd::Var;
use bigram::Bigram;
use gpt::Gpt;
use nn::{KvCache, Linear, Module, SharedRng};
use tensor::{Rng, Tensor};

/// One of the supported architectures.
pub enum Model {
    /// The bigram table.
    Bigram(Bigram),
    /// The GPT-2-style transformer.
    Gpt(Gpt),
}

/// What incremental decoding keeps between steps: each GPT block's key/value cache.
pub struct DecodeState {
    caches: Vec<KvCache>,
}

impl DecodeState {
    /// Number of positions already processed.
    pub fn len(&self) -> usize {
        self.caches.first().map_or(0, KvCache::len)
    }

    /// True when no position has been processed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Model {
    /// A freshly initialised model for `cfg` (whose `vocab_size` must be set).
    pub fn new(cfg: &Config, rng: &mut Rng, drop_rng: &SharedRng) -> Model {
        assert!(cfg.vocab_size > 0, "the model's vocabulary size is not set");
        match cfg.model {
            Architecture::Bigram => Model::Bigram(Bigram::new(cfg.vocab_size, rng)),
            Architecture::Gpt => Model::Gpt(Gpt::new(cfg, rng, drop_rng)),
        }
    }

    fn module(&self) -> &dyn Module {
        match self {
            Model::Bigram(m) => m,
            Model::Gpt(m) => m,
        }
    }

    fn module_mut(&mut self) -> &mut dyn Module {
        match self {
            Model::Bigram(m) => m,
            Model::Gpt(m) => m,
        }
    }

    /// Logits `(B, T, V)` for `ids (B, T)`, on the model's device (`ids` may be anywhere).
    pub fn logits(&self, ids: &Tensor) -> Var {
        match self {
            Model::Bigram(m) => m.logits(ids),
            Model::Gpt(m) => m.logits(ids),
        }
    }

    /// Hidden states `(B, T, C)` of `ids (B, T)` after the final layer norm, what the heads of
    /// [`heads`] read; the bigram model has none.
    pub fn hidden(&self, ids: &Tensor) -> crate::Result<Var> {
        match self {
            Model::Bigram(_) => Err(crate::Error::Invalid(
                "the bigram model has no hidden states to put a head on".into(),
            )),
            Model::Gpt(m) => Ok(m.hidden(ids)),
        }
    }

    /// The width `C` of the hidden states (the bigram model's is its vocabulary).
    pub fn width(&self) -> usize {
        match self {
            Model::Bigram(m) => m.table.weight.dim(1),
            Model::Gpt(m) => m.wte.weight.dim(1),
        }
    }

    /// Mean cross-entropy of the logits for `ids` against `targets` (both `(B, T)`, on any
    /// device), on the model's device.
    pub fn loss(&self, ids: &Tensor, targets: &Tensor) -> Var {
        let logits = self.logits(ids);
        logits.cross_entropy(&targets.to_device(logits.device()), None)
    }

    /// The longest sequence the model takes (unbounded for the bigram model).
    pub fn context(&self) -> usize {
        match self {
            Model::Bigram(_) => usize::MAX,
            Model::Gpt(m) => m.block_size,
        }
    }

    /// An empty decoding state.
    pub fn start_decoding(&self) -> DecodeState {
        let layers = match self {
            Model::Bigram(_) => 0,
            Model::Gpt(m) => m.blocks.len(),
        };
        DecodeState {
            caches: (0..layers).map(|_| KvCache::new()).collect(),
        }
    }

    /// Logits `(B, V)` after feeding `ids (B, T_new)` (on any device) on top of `state`, which
    /// is extended.
    pub fn logits_next(&self, ids: &Tensor, state: &mut DecodeState) -> Var {
        match self {
            Model::Bigram(m) => {
                let last = ids.narrow(1, ids.dim(1) - 1, 1);
                m.logits(&last).squeeze(1)
            }
            Model::Gpt(m) => m.logits_cached(ids, &mut state.caches),
        }
    }
}

impl Module for Model {
    fn forward(&self, x: &Var) -> Var {
        self.module().forward(x)
    }
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        self.module().visit_params(prefix, f)
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        self.module().visit_buffers(prefix, f)
    }
    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        self.module_mut().visit_linears_mut(prefix, f)
    }
    fn set_training(&mut self, training: bool) {
        self.module_mut().set_training(training)
    }
}
