//! One decoding step of attention for several sequences at once, each over its own key/value
//! cache: the new token of sequence `b` attends to the `len_b` positions cached for it.
//!
//! Shapes: `q (B, NH, D)`, one query row per sequence and head. Sequence `b`'s cache is a
//! buffer of `(NKV, cap_b, D)` keys and one of values, whose first `len_b <= cap_b` positions
//! are filled (a cache grows by writing into spare room, so its rows are not packed tightly:
//! head `g` starts at `g cap_b D`). `NKV` divides `NH`: query head `h` reads key/value head
//! `g = h / (NH / NKV)` (grouped-query attention; `NKV = NH` is plain multi-head attention),
//! so a group of query heads shares its keys and values without copies of them.
//! With `scale = 1 / sqrt(D)`, for each sequence and query head:
//!
//! `s_j = scale q . k_j`, `p = softmax(s)` over `j < len_b`, `out = sum_j p_j v_j`.
//!
//! The query is the newest position, so it sees every cached key: causal by construction. This
//! equals [`super::attention`]'s forward with one query row over the first `len_b` keys (the
//! test holds it to that); it exists because that kernel wants its keys contiguous, which would
//! mean copying every cache at every step. Sequences and heads are spread over the threads.

use super::parallel::for_each_chunk;
use super::{lanes, softmax};
use crate::dtype::Float;
use multiversion::multiversion;

/// One sequence's cache: keys and values `(NH, cap, D)`, the first `len` positions filled.
#[derive(Clone, Copy, Debug)]
pub struct Cache<'a, T> {
    /// Keys, `NH * cap * D` elements.
    pub k: &'a [T],
    /// Values, laid out as the keys.
    pub v: &'a [T],
    /// Positions the buffers have room for.
    pub cap: usize,
    /// Positions filled (at least one).
    pub len: usize,
}

impl<T> Cache<'_, T> {
    /// Rows `0..len` of head `h` of `buf` (keys or values), `len * d` elements.
    fn head<'b>(&self, buf: &'b [T], h: usize, d: usize) -> &'b [T] {
        &buf[h * self.cap * d..][..self.len * d]
    }
}

/// Query heads, key/value heads and head size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heads {
    /// Query heads `NH`.
    pub nh: usize,
    /// Key/value heads `NKV` in each cache, dividing `NH`.
    pub nkv: usize,
    /// Features per head `D`.
    pub d: usize,
}

impl Heads {
    /// The key/value head that query head `h` reads.
    fn kv_of(&self, h: usize) -> usize {
        h / (self.nh / self.nkv)
    }
}

/// Checks that every cache holds `nkv` heads of `d` and at least one filled position, and
/// that `nkv` divides `nh`.
pub fn check<T>(q_len: usize, caches: &[Cache<T>], heads: Heads) -> Result<(), String> {
    let Heads { nh, nkv, d } = heads;
    if nkv == 0 || !nh.is_multiple_of(nkv) {
        return Err(format!(
            "{nkv} key/value heads do not divide {nh} query heads"
        ));
    }
    if q_len != caches.len() * nh * d {
        return Err(format!(
            "{q_len} query elements for {} caches of {nh} heads of {d}",
            caches.len()
        ));
    }
    for (b, c) in caches.iter().enumerate() {
        let size = nkv * c.cap * d;
        if c.len == 0 || c.len > c.cap || c.k.len() < size || c.v.len() < size {
            return Err(format!(
                "cache {b}: {} of {} positions filled in buffers of {} and {} elements, \
                 {nkv} heads of {d}",
                c.len,
                c.cap,
                c.k.len(),
                c.v.len()
            ));
        }
    }
    Ok(())
}

/// The output `(B, NH, D)` (see the module docs). [`check`] must hold.
pub fn decode<T: Float>(q: &[T], caches: &[Cache<T>], heads: Heads) -> Vec<T> {
    let Heads { nh, d, .. } = heads;
    let mut out = vec![T::ZERO; q.len()];
    let longest = caches.iter().map(|c| c.len).max().unwrap_or(0);
    // Work per head: one unit per cached element of a key and a value, about what a unit of an
    // elementwise op costs. (Counted four times over, eight heads of 8 over 256 positions went
    // to two threads for 3 us of work, and decoding stories260K on 2 threads ran at 0.7x the
    // speed of 1.)
    for_each_chunk(&mut out, d, longest * d, |first, chunk| {
        for (i, o) in chunk.chunks_exact_mut(d).enumerate() {
            let row = first + i;
            let (cache, h) = (&caches[row / nh], row % nh);
            head(&q[row * d..][..d], cache, heads.kv_of(h), d, o);
        }
    });
    out
}

/// One sequence and query head, reading key/value head `g`: scores against the cached keys, softmax, weighted sum of values.
/// Compiled per instruction set as a whole, so the short dot products and sums inline.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
fn head<T: Float>(q: &[T], cache: &Cache<T>, g: usize, d: usize, out: &mut [T]) {
    let scale = T::ONE / T::from_usize(d).sqrt();
    let (keys, values) = (cache.head(cache.k, g, d), cache.head(cache.v, g, d));
    // Plain loops: an iterator chain's `fold` may be left out of line, outside this clone's
    // instruction set.
    let mut p = vec![T::ZERO; cache.len];
    match d {
        8 => scores::<T, 8>(q, keys, &mut p),
        16 => scores::<T, 16>(q, keys, &mut p),
        _ => {
            for (pj, k) in p.iter_mut().zip(keys.chunks_exact(d)) {
                *pj = lanes::dot(q, k);
            }
        }
    }
    p.iter_mut().for_each(|pj| *pj = scale * *pj);
    softmax::row_in_place(&mut p);
    match d {
        8 => weighted_sum::<T, 8>(&p, values, out),
        16 => weighted_sum::<T, 16>(&p, values, out),
        32 => weighted_sum::<T, 32>(&p, values, out),
        48 => weighted_sum::<T, 48>(&p, values, out),
        64 => weighted_sum::<T, 64>(&p, values, out),
        _ => {
            for (&pj, v) in p.iter().zip(values.chunks_exact(d)) {
                for (o, &x) in out.iter_mut().zip(v) {
                    *o += pj * x;
                }
            }
        }
    }
}

/// `out += sum_j p[j] v_j` for rows of a size known when compiling, summed in a local array
/// the compiler keeps in registers (a sum through `out` would store and reload it at every
/// row). The same additions in the same order as the loop for other sizes.
#[inline(always)]
fn weighted_sum<T: Float, const D: usize>(p: &[T], values: &[T], out: &mut [T]) {
    let mut acc = [T::ZERO; D];
    acc.copy_from_slice(&out[..D]);
    for (&pj, v) in p.iter().zip(values.chunks_exact(D)) {
        for (a, &x) in acc.iter_mut().zip(v) {
            *a += pj * x;
        }
    }
    out[..D].copy_from_slice(&acc);
}

/// `p[j] = q . k_j` for rows of a size known when compiling: the products of a row added as
/// a tree of halves (which vectorizes within the row), the rows independent of each other.
/// Rows of a few vectors would otherwise spend more on reducing partial sums than on the
/// multiplies.
#[inline(always)]
fn scores<T: Float, const D: usize>(q: &[T], keys: &[T], p: &mut [T]) {
    let q: &[T; D] = q.try_into().expect("a query row of D features");
    for (pj, k) in p.iter_mut().zip(keys.chunks_exact(D)) {
        let mut prod = [T::ZERO; D];
        for ((x, &a), &b) in prod.iter_mut().zip(q).zip(k) {
            *x = a * b;
        }
        let mut width = D;
        while width > 1 {
            width /= 2;
            for c in 0..width {
                prod[c] += prod[c + width];
            }
        }
        *pj = prod[0];
    }
}

/// Plain reference: the same sums, one element at a time.
pub fn decode_reference<T: Float>(q: &[T], caches: &[Cache<T>], heads: Heads) -> Vec<T> {
    let Heads { nh, d, .. } = heads;
    let scale = T::ONE / T::from_usize(d).sqrt();
    let mut out = vec![T::ZERO; q.len()];
    for (b, cache) in caches.iter().enumerate() {
        for h in 0..nh {
            let row = b * nh + h;
            let qr = &q[row * d..][..d];
            let g = heads.kv_of(h);
            let at = |buf: &[T], j: usize, c: usize| buf[(g * cache.cap + j) * d + c];
            let s: Vec<T> = (0..cache.len)
                .map(|j| scale * (0..d).map(|c| qr[c] * at(cache.k, j, c)).sum::<T>())
                .collect();
            let m = s.iter().fold(T::NEG_INFINITY, |a, &x| a.max_nan(x));
            let total: T = s.iter().map(|&x| (x - m).exp()).sum();
            for (j, &sj) in s.iter().enumerate() {
                let pj = (sj - m).exp() / total;
                for c in 0..d {
                    out[row * d + c] += pj * at(cache.v, j, c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::AttentionDims;
    use crate::cpu::attention::forward_reference;
    use crate::Rng;

    fn random(n: usize, rng: &mut Rng) -> Vec<f64> {
        (0..n).map(|_| rng.normal()).collect()
    }

    /// Sequences of odd lengths in buffers with spare room, against the reference and against
    /// the causal attention kernel's last query row over the filled positions (each key/value
    /// head repeated for its group), for head sizes with a kernel of their own (8, 16, 48) and
    /// without (5), with and without grouped key/value heads.
    #[test]
    fn matches_the_reference_and_full_attention() {
        for d in [5, 8, 16, 48] {
            for (nh, nkv) in [(3, 3), (6, 2), (4, 1)] {
                matches_for(Heads { nh, nkv, d });
            }
        }
    }

    fn matches_for(heads: Heads) {
        let mut rng = Rng::new(7);
        let Heads { nh, nkv, d } = heads;
        let shapes = [(1, 1), (7, 9), (13, 13), (4, 31)];
        let bufs: Vec<(Vec<f64>, Vec<f64>)> = shapes
            .iter()
            .map(|&(_, cap)| {
                (
                    random(nkv * cap * d, &mut rng),
                    random(nkv * cap * d, &mut rng),
                )
            })
            .collect();
        let caches: Vec<Cache<f64>> = shapes
            .iter()
            .zip(&bufs)
            .map(|(&(len, cap), (k, v))| Cache { k, v, cap, len })
            .collect();
        let q = random(shapes.len() * nh * d, &mut rng);
        check(q.len(), &caches, heads).unwrap();
        let fast = decode(&q, &caches, heads);
        let plain = decode_reference(&q, &caches, heads);
        for (a, b) in fast.iter().zip(&plain) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        for (b, c) in caches.iter().enumerate() {
            let packed = |buf: &[f64]| -> Vec<f64> {
                (0..nh)
                    .flat_map(|h| c.head(buf, heads.kv_of(h), d).to_vec())
                    .collect()
            };
            let dims = AttentionDims {
                bh: nh,
                tq: 1,
                tk: c.len,
                d,
            };
            let rows = &q[b * nh * d..][..nh * d];
            let full = forward_reference(rows, &packed(c.k), &packed(c.v), dims).out;
            for (a, e) in fast[b * nh * d..][..nh * d].iter().zip(&full) {
                assert!((a - e).abs() < 1e-12, "sequence {b}: {a} vs {e}");
            }
        }
    }

    #[test]
    fn bad_caches_are_refused() {
        let k = vec![0.0f32; 2 * 4 * 3];
        let ok = Cache {
            k: &k,
            v: &k,
            cap: 4,
            len: 2,
        };
        let h = Heads {
            nh: 2,
            nkv: 2,
            d: 3,
        };
        assert!(check(6, &[ok], h).is_ok());
        assert!(check(5, &[ok], h).is_err());
        assert!(check(6, &[Cache { len: 0, ..ok }], h).is_err());
        assert!(check(6, &[Cache { len: 5, ..ok }], h).is_err());
        assert!(check(6, &[Cache { cap: 5, ..ok }], h).is_err());
        // Four query heads share the two cached heads in pairs; three cannot.
        assert!(check(12, &[ok], Heads { nh: 4, ..h }).is_ok());
        assert!(check(9, &[ok], Heads { nh: 3, ..h }).is_err());
    }
}
