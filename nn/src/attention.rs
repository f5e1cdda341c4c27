//! Multi-head causal self-attention: one fused `qkv` projection, the fused causal attention op,
//! an output projection and residual dropout; plus a key/value cache for generation.
//!
//! Shapes: `x (B, T, C)`, `NH` heads of size `HS = C / NH`. `qkv(x)` is `(B, T, 3C)`; each of
//! `q, k, v` is a `(B, T, C)` slice of it viewed as `(B, NH, T, HS)`. Attention runs on those
//! heads with scale `1/sqrt(HS)`; the heads are put back side by side to `(B, T, C)` and
//! projected. (Dropout applies to the projected output; the fused attention kernel has no
//! dropout on the attention probabilities.)

use crate::dropout::{Dropout, SharedRng};
use crate::linear::Linear;
use crate::module::{join, Module};
use autograd::Var;
use tensor::{Rng, Tensor};

/// Keys and values `(B, NH, T, HS)` of the positions seen so far, for one layer.
#[derive(Default, Clone)]
pub struct KvCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> KvCache {
        KvCache::default()
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.k.as_ref().map_or(0, |k| k.dim(2))
    }

    /// True before the first position is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends new keys and values along the time dim and returns all of them.
    fn extend(&mut self, k: Tensor, v: Tensor) -> (Tensor, Tensor) {
        let join = |old: &Option<Tensor>, new: Tensor| match old {
            Some(old) => Tensor::cat(&[old, &new], 2),
            None => new.contiguous(),
        };
        let (k, v) = (join(&self.k, k), join(&self.v, v));
        self.k = Some(k.clone());
        self.v = Some(v.clone());
        (k, v)
    }
}

/// Causal self-attention with `n_head` heads.
pub struct CausalSelfAttention {
    /// The fused query, key and value projection, `C -> 3C`.
    pub qkv: Linear,
    /// The output projection, `C -> C`.
    pub proj: Linear,
    /// Number of heads `NH`.
    pub n_head: usize,
    /// Dropout on the projected output.
    pub dropout: Dropout,
}

impl CausalSelfAttention {
    /// `proj_std` initialises the output projection (scaled by depth in GPT-2).
    pub fn new(
        dim: usize,
        n_head: usize,
        bias: bool,
        dropout: f64,
        proj_std: f64,
        rng: &mut Rng,
        drop_rng: SharedRng,
    ) -> Self {
        assert!(
            dim.is_multiple_of(n_head),
            "attention: width {dim} is not divisible by {n_head} heads"
        );
        CausalSelfAttention {
            qkv: Linear::new(dim, 3 * dim, bias, crate::init::GPT2_STD, rng),
            proj: Linear::new(dim, dim, bias, proj_std, rng),
            n_head,
            dropout: Dropout::new(dropout, drop_rng),
        }
    }

    /// `q, k, v` as `(B, NH, T, HS)` views of the fused projection.
    fn heads(&self, x: &Var) -> [Var; 3] {
        let (b, t, c) = (x.dim(0), x.dim(1), x.dim(2));
        let (nh, hs) = (self.n_head, c / self.n_head);
        let qkv = self.qkv.forward(x);
        [0, 1, 2].map(|i| {
            qkv.narrow(2, i * c, c)
                .reshape(&[b, t, nh, hs])
                .transpose(1, 2)
        })
    }

    /// Heads `(B, NH, T, HS)` back to `(B, T, C)`, projected, with dropout.
    fn merge(&self, y: &Var) -> Var {
        let (b, nh, t, hs) = (y.dim(0), y.dim(1), y.dim(2), y.dim(3));
        let y = y.transpose(1, 2).reshape(&[b, t, nh * hs]);
        self.dropout.forward(&self.proj.forward(&y))
    }

    /// Incremental forward for generation: `x (B, T_new, C)` are the positions after those in
    /// `cache`, whose keys and values are reused and extended. Meant for inference (the cached
    /// keys carry no gradient).
    pub fn forward_cached(&self, x: &Var, cache: &mut KvCache) -> Var {
        let [q, k, v] = self.heads(x);
        let (k, v) = cache.extend(k.value(), v.value());
        self.merge(&Var::attention(&q, &Var::constant(k), &Var::constant(v)))
    }

    /// One new position for each of several sequences that each keep their own cache (of any
    /// length): row `b` of `x (B, 1, C)` follows the positions in `caches[b]`. The projections
    /// run on all rows together; attention runs per sequence, its query against its own keys
    /// and values, so no sequence is padded. For batched generation (no gradient).
    pub fn forward_ragged(&self, x: &Var, caches: &mut [&mut KvCache]) -> Var {
        assert_eq!(x.dim(0), caches.len(), "one cache per row");
        let [q, k, v] = self.heads(x);
        let (k, v) = (k.value(), v.value());
        let rows: Vec<Var> = caches
            .iter_mut()
            .enumerate()
            .map(|(b, cache)| {
                let (kb, vb) = cache.extend(k.narrow(0, b, 1), v.narrow(0, b, 1));
                Var::attention(&q.narrow(0, b, 1), &Var::constant(kb), &Var::constant(vb))
            })
            .collect();
        self.merge(&Var::cat(&rows.iter().collect::<Vec<_>>(), 0))
    }
}

impl Module for CausalSelfAttention {
    fn forward(&self, x: &Var) -> Var {
        let [q, k, v] = self.heads(x);
        self.merge(&Var::attention(&q, &k, &v))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        self.qkv.visit_params(&join(prefix, "qkv"), f);
        self.proj.visit_params(&join(prefix, "proj"), f);
    }

    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        self.qkv.visit_linears_mut(&join(prefix, "qkv"), f);
        self.proj.visit_linears_mut(&join(prefix, "proj"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.qkv.set_training(training);
        self.proj.set_training(training);
        self.dropout.set_training(training);
    }
}
