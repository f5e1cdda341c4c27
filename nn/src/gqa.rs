//! Llama's causal self-attention: grouped-query attention (Ainslie et al., 2023) with rotary
//! position embeddings, and its key/value cache for generation.
//!
//! Shapes: `x (B, T, C)`; `NH` query heads and `NKV` key/value heads (`NKV` divides `NH`), all
//! of size `HS = C / NH`. Separate projections give `q (B, NH, T, HS)`, `k` and
//! `v (B, NKV, T, HS)`; queries and keys are rotated by their positions ([`Rope`]); query head
//! `h` reads key/value head `h / (NH / NKV)`: for training each key/value head is repeated for
//! its group of `NH / NKV` query heads; when decoding, the cache keeps the `NKV` heads and the
//! decoding kernel reads each for its group, without copies. Causal attention with scale `1/sqrt(HS)`, the heads side by side,
//! then the output projection. With `NKV == NH` it is plain multi-head attention. No biases,
//! no dropout (llama2.c's inference has none).

use crate::attention::{attend_cached, attend_ragged, KvCache};
use crate::linear::Linear;
use crate::module::{join, Module};
use crate::rope::Rope;
use autograd::Var;
use std::sync::Arc;
use tensor::Rng;

/// Grouped-query causal self-attention with rotary embeddings.
pub struct GroupedQueryAttention {
    /// `C -> NH * HS`.
    pub wq: Linear,
    /// `C -> NKV * HS`.
    pub wk: Linear,
    /// `C -> NKV * HS`.
    pub wv: Linear,
    /// `NH * HS -> C`.
    pub wo: Linear,
    /// Query heads `NH`.
    pub n_head: usize,
    /// Key/value heads `NKV`.
    pub n_kv_head: usize,
    /// The rotary tables, shared by the layers of a model.
    pub rope: Arc<Rope>,
}

impl GroupedQueryAttention {
    /// Attention of width `dim` with `n_head` query and `n_kv_head` key/value heads, weights
    /// from `N(0, std)` and the output projection from `N(0, proj_std)`.
    pub fn new(
        dim: usize,
        n_head: usize,
        n_kv_head: usize,
        rope: Arc<Rope>,
        (std, proj_std): (f64, f64),
        rng: &mut Rng,
    ) -> GroupedQueryAttention {
        assert!(
            dim.is_multiple_of(n_head) && n_kv_head > 0 && n_head.is_multiple_of(n_kv_head),
            "attention: {n_head} heads must divide the width {dim}, and {n_kv_head} key/value \
             heads must divide {n_head}"
        );
        let kv = dim / n_head * n_kv_head;
        GroupedQueryAttention {
            wq: Linear::new(dim, dim, false, std, rng),
            wk: Linear::new(dim, kv, false, std, rng),
            wv: Linear::new(dim, kv, false, std, rng),
            wo: Linear::new(dim, dim, false, proj_std, rng),
            n_head,
            n_kv_head,
            rope,
        }
    }

    /// `q (B, NH, T, HS)` and `k, v (B, NKV, T, HS)` of `x (B, T, C)`, before rotation.
    fn project(&self, x: &Var) -> [Var; 3] {
        let (b, t, c) = (x.dim(0), x.dim(1), x.dim(2));
        let hs = c / self.n_head;
        let split = |y: Var, heads: usize| heads_of(&y, [b, t, heads, hs]);
        [
            split(self.wq.forward(x), self.n_head),
            split(self.wk.forward(x), self.n_kv_head),
            split(self.wv.forward(x), self.n_kv_head),
        ]
    }

    /// Projected heads at positions `start..start + T`, queries and keys rotated.
    fn rotated(&self, [q, k, v]: [Var; 3], start: usize) -> [Var; 3] {
        [self.rope.apply(&q, start), self.rope.apply(&k, start), v]
    }

    /// [`Self::rotated`] heads of `x (B, T, C)` at positions `start..start + T`.
    fn heads(&self, x: &Var, start: usize) -> [Var; 3] {
        self.rotated(self.project(x), start)
    }

    /// Key/value heads `(B, NKV, T, HS)` repeated to `(B, NH, T, HS)`: head `h` of the result
    /// is head `h / (NH / NKV)` of the input.
    fn repeat(&self, kv: &Var) -> Var {
        let group = self.n_head / self.n_kv_head;
        if group == 1 {
            return kv.clone();
        }
        let (b, nkv, t, hs) = (kv.dim(0), kv.dim(1), kv.dim(2), kv.dim(3));
        kv.unsqueeze(2)
            .expand(&[b, nkv, group, t, hs])
            .reshape(&[b, nkv * group, t, hs])
    }

    /// Heads `(B, NH, T, HS)` back to `(B, T, C)`, projected.
    fn merge(&self, y: &Var) -> Var {
        let (b, nh, t, hs) = (y.dim(0), y.dim(1), y.dim(2), y.dim(3));
        let merged = if t == 1 {
            y.reshape(&[b, 1, nh * hs])
        } else {
            y.transpose(1, 2).reshape(&[b, t, nh * hs])
        };
        self.wo.forward(&merged)
    }

    /// Incremental forward for generation: `x (B, T_new, C)` are the positions after those in
    /// `cache` (which keeps the `NKV` key/value heads, keys rotated; the attention kernels read
    /// each for its group of query heads). For inference: no gradient reaches the cache.
    pub fn forward_cached(&self, x: &Var, cache: &mut KvCache) -> Var {
        let [q, k, v] = self.heads(x, cache.len());
        self.merge(&attend_cached(&q, &k, &v, cache))
    }

    /// One new position for each of several sequences with their own caches: row `b` of
    /// `x (B, 1, C)` follows the positions of `caches[b]` (and is rotated for its own position).
    pub fn forward_ragged(&self, x: &Var, caches: &mut [&mut KvCache]) -> Var {
        assert_eq!(x.dim(0), caches.len(), "one cache per row");
        assert_eq!(x.dim(1), 1, "one new position per sequence");
        let projected = self.project(x);
        let rows: Vec<[Var; 3]> = (0..x.dim(0))
            .map(|b| {
                let row = projected.clone().map(|h| h.narrow(0, b, 1));
                self.rotated(row, caches[b].len())
            })
            .collect();
        let queries: Vec<&Var> = rows.iter().map(|[q, _, _]| q).collect();
        let q = Var::cat(&queries, 0);
        let kv = rows.iter().map(|[_, k, v]| (k.value(), v.value()));
        self.merge(&attend_ragged(&q, kv, caches))
    }
}

/// `y (B, T, H * HS)` as heads `(B, H, T, HS)`. With one position (a decoding step) the two
/// have the same memory order, and a reshape alone does it: one op fewer per projection.
fn heads_of(y: &Var, [b, t, heads, hs]: [usize; 4]) -> Var {
    if t == 1 {
        y.reshape(&[b, heads, 1, hs])
    } else {
        y.reshape(&[b, t, heads, hs]).transpose(1, 2)
    }
}

impl Module for GroupedQueryAttention {
    fn forward(&self, x: &Var) -> Var {
        let [q, k, v] = self.heads(x, 0);
        self.merge(&Var::attention(&q, &self.repeat(&k), &self.repeat(&v)))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        for (name, layer) in [
            ("wq", &self.wq),
            ("wk", &self.wk),
            ("wv", &self.wv),
            ("wo", &self.wo),
        ] {
            layer.visit_params(&join(prefix, name), f);
        }
    }

    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        for (name, layer) in [
            ("wq", &mut self.wq),
            ("wk", &mut self.wk),
            ("wv", &mut self.wv),
            ("wo", &mut self.wo),
        ] {
            layer.visit_linears_mut(&join(prefix, name), f);
        }
    }
}
