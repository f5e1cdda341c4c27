//! A pre-norm transformer block: `x = x + attn(ln1(x)); x = x + mlp(ln2(x))`, the norms being
//! layer norms unless the configuration chooses another kind ([`crate::norm`]).

use crate::attention::{CausalSelfAttention, KvCache};
use crate::dropout::SharedRng;
use crate::linear::Linear;
use crate::mlp::Mlp;
use crate::module::{join, Module};
use crate::norm::{Norm, NormKind};
use autograd::Var;
use tensor::Rng;

/// Shape and regularisation of a block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockConfig {
    /// Width of the residual stream `C`.
    pub dim: usize,
    /// Number of attention heads.
    pub n_head: usize,
    /// Whether linear layers and layer norms have biases.
    pub bias: bool,
    /// Dropout probability after attention and MLP.
    pub dropout: f64,
    /// Std of the residual projections' initial weights.
    pub proj_std: f64,
    /// The kind of the two norms.
    pub norm: NormKind,
}

/// Attention and MLP, each behind a norm and added to the residual stream.
pub struct Block {
    /// Norm before attention.
    pub ln1: Norm,
    /// Causal self-attention.
    pub attn: CausalSelfAttention,
    /// Norm before the MLP.
    pub ln2: Norm,
    /// Feed-forward block.
    pub mlp: Mlp,
}

impl Block {
    /// A block initialised as GPT-2's: weights from `N(0, 0.02)`, residual projections from
    /// `N(0, cfg.proj_std)`; dropout layers draw from `drop_rng`.
    pub fn new(cfg: BlockConfig, rng: &mut Rng, drop_rng: &SharedRng) -> Block {
        let BlockConfig {
            dim,
            n_head,
            bias,
            dropout,
            proj_std,
            norm,
        } = cfg;
        Block {
            ln1: Norm::new(norm, dim, bias),
            attn: CausalSelfAttention::new(
                dim,
                n_head,
                bias,
                dropout,
                proj_std,
                rng,
                drop_rng.clone(),
            ),
            ln2: Norm::new(norm, dim, bias),
            mlp: Mlp::new(dim, 4 * dim, bias, dropout, proj_std, rng, drop_rng.clone()),
        }
    }

    /// The block on new positions, reusing and extending this layer's key/value cache.
    pub fn forward_cached(&self, x: &Var, cache: &mut KvCache) -> Var {
        let x = x.add(&self.attn.forward_cached(&self.ln1.forward(x), cache));
        x.add(&self.mlp.forward(&self.ln2.forward(&x)))
    }

    /// The block on one new position per sequence, each sequence with its own cache (see
    /// [`CausalSelfAttention::forward_ragged`]).
    pub fn forward_ragged(&self, x: &Var, caches: &mut [&mut KvCache]) -> Var {
        let x = x.add(&self.attn.forward_ragged(&self.ln1.forward(x), caches));
        x.add(&self.mlp.forward(&self.ln2.forward(&x)))
    }
}

impl Module for Block {
    fn forward(&self, x: &Var) -> Var {
        let x = x.add(&self.attn.forward(&self.ln1.forward(x)));
        x.add(&self.mlp.forward(&self.ln2.forward(&x)))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        self.ln1.visit_params(&join(prefix, "ln1"), f);
        self.attn.visit_params(&join(prefix, "attn"), f);
        self.ln2.visit_params(&join(prefix, "ln2"), f);
        self.mlp.visit_params(&join(prefix, "mlp"), f);
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        self.ln1.visit_buffers(&join(prefix, "ln1"), f);
        self.ln2.visit_buffers(&join(prefix, "ln2"), f);
    }

    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        self.attn.visit_linears_mut(&join(prefix, "attn"), f);
        self.mlp.visit_linears_mut(&join(prefix, "mlp"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.ln1.set_training(training);
        self.attn.set_training(training);
        self.ln2.set_training(training);
        self.mlp.set_training(training);
    }
}
