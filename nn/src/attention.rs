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
use tensor::ops::decode::repeat_heads;
use tensor::{CacheView, Rng, Tensor};

/// Keys and values `(B, NH, T, HS)` of the positions seen so far, for one layer (`NKV` heads
/// in place of `NH` for grouped-query attention).
///
/// They live in buffers `(B, NH, cap, HS)` with room for more positions, and each step writes
/// only its new positions into that room; a full buffer is replaced by one of twice the room
/// (so a sequence of `T` positions copies `O(T)` cached elements in all, not `O(T^2)`). A clone
/// shares the buffers until either side writes: the writer then takes a copy of its own.
#[derive(Default, Clone)]
pub struct KvCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
    len: usize,
    /// Room asked for by [`KvCache::reserve`].
    reserved: usize,
}

/// Room, in positions, of a cache's first buffers.
const FIRST_ROOM: usize = 16;

impl KvCache {
    /// An empty cache.
    pub fn new() -> KvCache {
        KvCache::default()
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first position is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes room for `positions` in all, so that a sequence whose final length is known is
    /// never moved to a larger buffer.
    pub fn reserve(&mut self, positions: usize) {
        self.reserved = positions;
        if let Some(buf) = self.k.clone().filter(|buf| buf.dim(2) < positions) {
            self.reallocate(&buf, positions);
        }
    }

    /// Writes new keys and values `(B, NH, T_new, HS)` after the cached positions.
    fn append(&mut self, k: &Tensor, v: &Tensor) {
        let need = self.len + k.dim(2);
        if self.k.as_ref().is_none_or(|buf| buf.dim(2) < need) {
            let room = if self.reserved >= need {
                self.reserved
            } else {
                need.next_power_of_two().max(FIRST_ROOM)
            };
            self.reallocate(k, room);
        }
        if self.write(k, v).is_err() {
            // The buffers are shared with a clone: copy them, then write into the copy.
            let room = self.k.as_ref().map_or(need, |buf| buf.dim(2));
            self.reallocate(k, room);
            self.write(k, v).expect("a fresh buffer is ours alone");
        }
        self.len = need;
    }

    fn write(&mut self, k: &Tensor, v: &Tensor) -> tensor::Result<()> {
        let (kb, vb) = (self.k.as_mut(), self.v.as_mut());
        let (kb, vb) = (kb.expect("allocated"), vb.expect("allocated"));
        kb.copy_slice_(2, self.len, k)?;
        vb.copy_slice_(2, self.len, v)
    }

    /// New buffers with room for `room` positions (shaped and typed like `like`), holding the
    /// cached positions.
    fn reallocate(&mut self, like: &Tensor, room: usize) {
        let (b, nh, hs) = (like.dim(0), like.dim(1), like.dim(3));
        let len = self.len;
        let fresh = |old: &Option<Tensor>| {
            let mut buf = like
                .try_full_like(&[b, nh, room, hs], 0.0)
                .expect("a zero buffer of the keys' dtype and device");
            if let Some(old) = old.as_ref().filter(|_| len > 0) {
                buf.copy_slice_(2, 0, &old.narrow(2, 0, len))
                    .expect("a fresh buffer is ours alone");
            }
            buf
        };
        self.k = Some(fresh(&self.k));
        self.v = Some(fresh(&self.v));
    }

    /// The cached keys and values `(B, NH, len, HS)`, as views of the buffers.
    fn filled(&self) -> (Tensor, Tensor) {
        let view = |buf: &Option<Tensor>| buf.as_ref().expect("appended").narrow(2, 0, self.len);
        (view(&self.k), view(&self.v))
    }

    /// Row `b` of the buffers, for [`Tensor::attention_decode`].
    fn rows(&self, b: usize) -> (Tensor, Tensor) {
        let row = |buf: &Option<Tensor>| buf.as_ref().expect("appended").narrow(0, b, 1);
        (row(&self.k), row(&self.v))
    }
}

/// Appends keys and values `k, v (B, NKV, T_new, HS)` to `cache`, and attends the queries
/// `q (B, NH, T_new, HS)` to every cached position, each key/value head serving `NH / NKV`
/// query heads: the decoding kernel for one new position, the fused causal attention for
/// several. For inference (no gradient reaches the cache).
pub(crate) fn attend_cached(q: &Var, k: &Var, v: &Var, cache: &mut KvCache) -> Var {
    cache.append(&k.value(), &v.value());
    if q.dim(2) == 1 {
        let rows: Vec<_> = (0..q.dim(0)).map(|b| cache.rows(b)).collect();
        return decode(q, &rows, |_| cache.len());
    }
    let (k, v) = cache.filled();
    let heads = |t: &Tensor| Var::constant(repeat_heads(t, q.dim(1)).expect("whole groups"));
    Var::attention(q, &heads(&k), &heads(&v))
}

/// One new position per sequence: row `b` of `q (B, NH, 1, HS)` attends to `caches[b]` after
/// the `b`-th keys and values of `rows` (each `(1, NKV, 1, HS)`) are appended to it.
pub(crate) fn attend_ragged(
    q: &Var,
    rows: impl Iterator<Item = (Tensor, Tensor)>,
    caches: &mut [&mut KvCache],
) -> Var {
    for (cache, (k, v)) in caches.iter_mut().zip(rows) {
        cache.append(&k, &v);
    }
    let cached: Vec<_> = caches.iter().map(|c| c.rows(0)).collect();
    decode(q, &cached, |b| caches[b].len())
}

/// One decoding step: `q (B, NH, 1, HS)`, row `b` attending to the `len` positions of
/// `rows[b]` (keys and values `(1, NKV, cap, HS)`).
fn decode(q: &Var, rows: &[(Tensor, Tensor)], len: impl Fn(usize) -> usize) -> Var {
    let views: Vec<CacheView> = rows
        .iter()
        .enumerate()
        .map(|(b, (k, v))| CacheView { k, v, len: len(b) })
        .collect();
    Var::constant(Tensor::attention_decode(&q.value(), &views))
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
    /// keys carry no gradient, and a single new position skips the autograd graph).
    pub fn forward_cached(&self, x: &Var, cache: &mut KvCache) -> Var {
        let [q, k, v] = self.heads(x);
        self.merge(&attend_cached(&q, &k, &v, cache))
    }

    /// One new position for each of several sequences that each keep their own cache (of any
    /// length): row `b` of `x (B, 1, C)` follows the positions in `caches[b]`. The projections
    /// run on all rows together, and so does attention, each query against its own cache, so
    /// no sequence is padded. For batched generation (no gradient).
    pub fn forward_ragged(&self, x: &Var, caches: &mut [&mut KvCache]) -> Var {
        assert_eq!(x.dim(0), caches.len(), "one cache per row");
        assert_eq!(x.dim(1), 1, "one new position per sequence");
        let [q, k, v] = self.heads(x);
        let (k, v) = (k.value(), v.value());
        let rows = (0..x.dim(0)).map(|b| (k.narrow(0, b, 1), v.narrow(0, b, 1)));
        self.merge(&attend_ragged(&q, rows, caches))
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
