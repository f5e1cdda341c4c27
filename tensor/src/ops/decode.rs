//! One decoding step of attention over per-sequence key/value caches (the math is in
//! [`crate::cpu::attention_decode`]).

use crate::cpu::attention_decode::{self, Cache, Heads};
use crate::cpu::CpuElement;
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::{DType, Tensor};

/// One sequence's cache for [`Tensor::try_attention_decode`]: key and value buffers
/// `(1, NKV, cap, D)`, of which the first `len` positions are filled. `NKV` divides the
/// queries' `NH`; each key/value head serves a group of `NH / NKV` query heads.
#[derive(Clone, Copy)]
pub struct CacheView<'a> {
    /// Keys `(1, NKV, cap, D)`.
    pub k: &'a Tensor,
    /// Values, shaped as the keys.
    pub v: &'a Tensor,
    /// Filled positions, `1..=cap`.
    pub len: usize,
}

impl Tensor {
    /// Attention of one new query per sequence over its own cache: `q (B, NH, 1, D)`, one
    /// [`CacheView`] per sequence; returns `(B, NH, 1, D)`, row `b` equal to
    /// [`Tensor::try_attention`] of `q[b]` over the first `len_b` cached keys and values (each
    /// key/value head repeated for its group of query heads).
    ///
    /// On the CPU one kernel runs every sequence and head, reading the caches where they lie;
    /// on other devices each sequence runs through [`Tensor::try_attention`] on a copy of its
    /// filled positions.
    pub fn try_attention_decode(q: &Tensor, caches: &[CacheView]) -> Result<Tensor> {
        let heads = decode_dims(q, caches)?;
        let q = q.try_compact()?;
        let on_cpu = |t: &Tensor| t.storage().as_cpu().is_some() && t.is_contiguous();
        let all_cpu = on_cpu(&q) && caches.iter().all(|c| on_cpu(c.k) && on_cpu(c.v));
        match q.dtype() {
            DType::F32 if all_cpu => decode_cpu::<f32>(&q, caches, heads),
            DType::F64 if all_cpu => decode_cpu::<f64>(&q, caches, heads),
            _ => decode_composed(&q, caches, heads),
        }
    }

    /// [`Tensor::try_attention_decode`], panicking on error.
    #[track_caller]
    pub fn attention_decode(q: &Tensor, caches: &[CacheView]) -> Tensor {
        crate::error::or_panic(Tensor::try_attention_decode(q, caches))
    }
}

/// Checks the shapes; returns the heads and head size.
fn decode_dims(q: &Tensor, caches: &[CacheView]) -> Result<Heads> {
    let bad = |what: String| Err(Error::InvalidArgument(format!("attention_decode: {what}")));
    if q.rank() != 4 || q.dim(2) != 1 || q.dim(0) != caches.len() {
        return bad(format!(
            "queries {:?} for {} caches; want (B, NH, 1, D), one cache per row",
            q.shape(),
            caches.len()
        ));
    }
    let (nh, d) = (q.dim(1), q.dim(3));
    let nkv = caches.first().map_or(nh, |c| c.k.dim(1));
    for (b, c) in caches.iter().enumerate() {
        let s = c.k.shape();
        if s.len() != 4 || s[0] != 1 || s[1] != nkv || s[3] != d || c.v.shape() != s {
            return bad(format!(
                "cache {b} holds keys {s:?} and values {:?}; want (1, {nkv}, cap, {d})",
                c.v.shape()
            ));
        }
        if c.len == 0 || c.len > s[2] {
            return bad(format!("cache {b}: {} positions filled of {}", c.len, s[2]));
        }
        if c.k.dtype() != q.dtype() || c.v.dtype() != q.dtype() {
            return bad(format!("cache {b} is not of the queries' dtype"));
        }
    }
    if nkv == 0 || !nh.is_multiple_of(nkv) {
        return bad(format!(
            "{nkv} key/value heads do not divide {nh} query heads"
        ));
    }
    Ok(Heads { nh, nkv, d })
}

/// The CPU kernel on the buffers where they lie (all contiguous CPU tensors of dtype `T`).
fn decode_cpu<T: Float + CpuElement>(
    q: &Tensor,
    caches: &[CacheView],
    heads: Heads,
) -> Result<Tensor> {
    let views = caches
        .iter()
        .map(|c| {
            Ok(Cache {
                k: elements::<T>(c.k)?,
                v: elements::<T>(c.v)?,
                cap: c.k.dim(2),
                len: c.len,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let q_rows = elements::<T>(q)?;
    attention_decode::check(q_rows.len(), &views, heads).map_err(Error::InvalidArgument)?;
    let out = attention_decode::decode(q_rows, &views, heads);
    Tensor::try_from_vec(out, q.shape())
}

/// The elements of a contiguous CPU tensor of dtype `T`.
fn elements<T: CpuElement>(t: &Tensor) -> Result<&[T]> {
    let all = t.cpu_data::<T>().ok_or(Error::InvalidArgument(
        "attention_decode: a cache is not a CPU buffer of the queries' dtype".into(),
    ))?;
    Ok(&all[..t.numel()])
}

/// Sequence by sequence through the causal attention op, on copies of the filled positions
/// (each key/value head repeated for its group).
fn decode_composed(q: &Tensor, caches: &[CacheView], heads: Heads) -> Result<Tensor> {
    let rows = caches
        .iter()
        .enumerate()
        .map(|(b, c)| {
            let filled = |t: &Tensor| repeat_heads(&t.try_narrow(2, 0, c.len)?, heads.nh);
            let (k, v) = (filled(c.k)?, filled(c.v)?);
            Ok(Tensor::try_attention(&q.try_narrow(0, b, 1)?, &k, &v)?.0)
        })
        .collect::<Result<Vec<_>>>()?;
    Tensor::try_cat(&rows.iter().collect::<Vec<_>>(), 0)
}

/// `x (B, NKV, T, D)` with each head repeated for its group: `(B, NH, T, D)`, head `h` equal to
/// head `h / (NH / NKV)` of `x`.
pub fn repeat_heads(x: &Tensor, nh: usize) -> Result<Tensor> {
    let (b, nkv, t, d) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
    if nkv == nh {
        return Ok(x.clone());
    }
    x.try_unsqueeze(2)?
        .try_expand(&[b, nkv, nh / nkv, t, d])?
        .try_reshape(&[b, nh, t, d])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec((0..n).map(|_| rng.normal()).collect::<Vec<f64>>(), shape)
    }

    /// The kernel (with a transposed, non-contiguous query) against the composed path, with
    /// as many key/value heads as query heads and with fewer.
    #[test]
    fn the_cpu_kernel_matches_the_composed_path() {
        for (nh, nkv) in [(2, 2), (6, 2)] {
            kernel_matches_composed(Heads { nh, nkv, d: 7 });
        }
    }

    fn kernel_matches_composed(heads: Heads) {
        let mut rng = Rng::new(3);
        let Heads { nh, nkv, d } = heads;
        let bufs: Vec<(Tensor, Tensor, usize)> = [(3, 5), (1, 1), (9, 12)]
            .iter()
            .map(|&(len, cap)| {
                let s = [1, nkv, cap, d];
                (random(&s, &mut rng), random(&s, &mut rng), len)
            })
            .collect();
        let caches: Vec<CacheView> = bufs
            .iter()
            .map(|(k, v, len)| CacheView { k, v, len: *len })
            .collect();
        let q = random(&[3, nh, 2, d], &mut rng).narrow(2, 1, 1);
        assert!(!q.is_contiguous());
        let fast = Tensor::attention_decode(&q, &caches).to_vec::<f64>();
        let composed = decode_composed(&q, &caches, heads).unwrap().to_vec::<f64>();
        for (a, b) in fast.iter().zip(&composed) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn shapes_are_checked() {
        let k = Tensor::zeros(&[1, 2, 4, 3], DType::F32);
        let q = Tensor::zeros(&[1, 2, 1, 3], DType::F32);
        let ok = CacheView {
            k: &k,
            v: &k,
            len: 4,
        };
        assert!(Tensor::try_attention_decode(&q, &[ok]).is_ok());
        assert!(Tensor::try_attention_decode(&q, &[ok, ok]).is_err());
        assert!(Tensor::try_attention_decode(&q, &[CacheView { len: 5, ..ok }]).is_err());
        assert!(Tensor::try_attention_decode(&q, &[CacheView { len: 0, ..ok }]).is_err());
        let wide = Tensor::zeros(&[1, 2, 4, 5], DType::F32);
        assert!(Tensor::try_attention_decode(&q, &[CacheView { k: &wide, ..ok }]).is_err());
        let three = Tensor::zeros(&[1, 3, 1, 3], DType::F32);
        assert!(
            Tensor::try_attention_decode(&three, &[ok]).is_err(),
            "2 heads serve 3"
        );
        let f64s = Tensor::zeros(&[1, 2, 4, 3], DType::F64);
        assert!(Tensor::try_attention_decode(&q, &[CacheView { v: &f64s, ..ok }]).is_err());
    }
}
