//! Layer normalization over the last dim, forward and backward.
//!
//! Shapes: `x (N, C)` contiguous rows, `weight (C)`, `bias (C)` (both optional).
//! Forward, per row: `mean = sum_c x_c / C`, `var = sum_c (x_c - mean)^2 / C` (biased),
//! `rstd = 1 / sqrt(var + eps)`, `xhat = (x - mean) rstd`, `y = xhat * weight + bias`.
//! The forward returns `mean (N)` and `rstd (N)` so the backward need not recompute them.
//!
//! Backward, with `g = dy * weight` (the gradient reaching `xhat`):
//! `dx = rstd (g - mean_c(g) - xhat * mean_c(g * xhat))`,
//! `dweight = sum_rows dy * xhat`, `dbias = sum_rows dy`.
//! The column sums are accumulated per fixed block of rows and the blocks combined in order,
//! so the result does not depend on the thread count.

use super::lanes;
use super::parallel::{collect_chunks, collect_chunks_with, for_each_chunk};
use super::simd;
use crate::dtype::Float;
use multiversion::multiversion;
use std::mem::MaybeUninit;

/// Outputs of the forward pass.
pub struct LayerNormOut<T> {
    /// Normalized output `(N, C)`.
    pub y: Vec<T>,
    /// Row means `(N)`.
    pub mean: Vec<T>,
    /// Row reciprocal standard deviations `1 / sqrt(var + eps)`, `(N)`.
    pub rstd: Vec<T>,
}

/// Gradients of the backward pass (`dweight`/`dbias` empty when there was no weight/bias).
pub struct LayerNormGrads<T> {
    /// Gradient of `x`, `(N, C)`.
    pub dx: Vec<T>,
    /// Gradient of the weight `(C)`, or empty.
    pub dweight: Vec<T>,
    /// Gradient of the bias `(C)`, or empty.
    pub dbias: Vec<T>,
}

/// Plain reference forward, two passes per row in order.
pub fn forward_reference<T: Float>(
    x: &[T],
    c: usize,
    w: Option<&[T]>,
    b: Option<&[T]>,
    eps: f64,
) -> LayerNormOut<T> {
    let (mut y, mut mean, mut rstd) = (vec![], vec![], vec![]);
    for row in x.chunks(c) {
        let m = row.iter().copied().sum::<T>() / T::from_usize(c);
        let var = row.iter().map(|&v| (v - m) * (v - m)).sum::<T>() / T::from_usize(c);
        let r = T::ONE / (var + T::from_f64(eps)).sqrt();
        for (i, &v) in row.iter().enumerate() {
            let xhat = (v - m) * r;
            y.push(xhat * w.map_or(T::ONE, |w| w[i]) + b.map_or(T::ZERO, |b| b[i]));
        }
        mean.push(m);
        rstd.push(r);
    }
    LayerNormOut { y, mean, rstd }
}

/// Forward, vectorized per row and threaded over rows. Each row is read from memory once (its
/// statistics then come from cache) and `y` is written once:
/// `y = (x - mean) * rstd * weight + bias` in one pass, rounded in the reference's order.
pub fn forward<T: Float>(
    x: &[T],
    c: usize,
    w: Option<&[T]>,
    b: Option<&[T]>,
    eps: f64,
) -> LayerNormOut<T> {
    let n = x.len().checked_div(c).unwrap_or(0);
    let mut stats = vec![(T::ZERO, T::ZERO); n];
    // SAFETY: `forward_rows` writes every element of every chunk.
    let y = unsafe {
        collect_chunks_with(x.len(), c, 5 * c, &mut stats, |first, chunk, st| {
            forward_rows(&x[first * c..][..chunk.len()], c, w, b, eps, chunk, st)
        })
    };
    let (mean, rstd) = stats.into_iter().unzip();
    LayerNormOut { y, mean, rstd }
}

/// [`forward`] on a block of whole rows, writing each row's `(mean, rstd)` to `stats`: one
/// dispatch per block, so a short row costs no call.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
fn forward_rows<T: Float>(
    x: &[T],
    c: usize,
    w: Option<&[T]>,
    b: Option<&[T]>,
    eps: f64,
    y: &mut [MaybeUninit<T>],
    stats: &mut [(T, T)],
) {
    if c == 0 {
        return;
    }
    let rows = x.chunks_exact(c).zip(y.chunks_exact_mut(c));
    for ((row, yr), s) in rows.zip(stats) {
        let m = lanes::sum(row) / T::from_usize(c);
        let var = lanes::sum_map(row, |v| (v - m) * (v - m)) / T::from_usize(c);
        let rs = T::ONE / (var + T::from_f64(eps)).sqrt();
        *s = (m, rs);
        match (w, b) {
            (Some(w), Some(b)) => {
                lanes::zip3_map_uninit(row, w, b, yr, |v, w, b| (v - m) * rs * w + b)
            }
            (Some(w), None) => lanes::zip_map_uninit(row, w, yr, |v, w| (v - m) * rs * w),
            (None, Some(b)) => lanes::zip_map_uninit(row, b, yr, |v, b| (v - m) * rs + b),
            (None, None) => lanes::map_uninit(row, yr, |v| (v - m) * rs),
        }
    }
}

/// Plain reference backward.
pub fn backward_reference<T: Float>(
    dy: &[T],
    x: &[T],
    c: usize,
    w: Option<&[T]>,
    mean: &[T],
    rstd: &[T],
    has_bias: bool,
) -> LayerNormGrads<T> {
    let mut dx = Vec::with_capacity(x.len());
    let mut dweight = vec![T::ZERO; if w.is_some() { c } else { 0 }];
    let mut dbias = vec![T::ZERO; if has_bias { c } else { 0 }];
    for (r, (row, g)) in x.chunks(c).zip(dy.chunks(c)).enumerate() {
        let xhat: Vec<T> = row.iter().map(|&v| (v - mean[r]) * rstd[r]).collect();
        let gw: Vec<T> = (0..c).map(|i| g[i] * w.map_or(T::ONE, |w| w[i])).collect();
        let mg = gw.iter().copied().sum::<T>() / T::from_usize(c);
        let mgx = gw.iter().zip(&xhat).map(|(&a, &b)| a * b).sum::<T>() / T::from_usize(c);
        for i in 0..c {
            dx.push(rstd[r] * (gw[i] - mg - xhat[i] * mgx));
            if w.is_some() {
                dweight[i] += g[i] * xhat[i];
            }
            if has_bias {
                dbias[i] += g[i];
            }
        }
    }
    LayerNormGrads { dx, dweight, dbias }
}

/// Rows per block of the column sums (`dweight`, `dbias`).
const ROWS_PER_BLOCK: usize = 32;

/// Backward, vectorized per row and threaded over rows.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Float>(
    dy: &[T],
    x: &[T],
    c: usize,
    w: Option<&[T]>,
    mean: &[T],
    rstd: &[T],
    has_bias: bool,
) -> LayerNormGrads<T> {
    let n = mean.len();
    // SAFETY: every row of every chunk is written by `zip_map_uninit`.
    let dx = unsafe {
        collect_chunks(x.len(), c, 8 * c, |first, chunk| {
            let mut gw = vec![T::ZERO; c];
            let mut xhat = vec![T::ZERO; c];
            for (r, d) in chunk.chunks_mut(c).enumerate() {
                let i = first + r;
                let (row, g) = (&x[i * c..(i + 1) * c], &dy[i * c..(i + 1) * c]);
                let (m, rs) = (mean[i], rstd[i]);
                simd::map(row, &mut xhat, |v| (v - m) * rs);
                match w {
                    Some(w) => simd::zip_map(g, w, &mut gw, |a, b| a * b),
                    None => gw.copy_from_slice(g),
                }
                let inv_c = T::ONE / T::from_usize(c);
                let mg = simd::sum(&gw) * inv_c;
                let mgx = simd::dot(&gw, &xhat) * inv_c;
                simd::zip_map_uninit(&gw, &xhat, d, |a, b| rs * (a - mg - b * mgx));
            }
        })
    };
    // Column sums per block of rows, then blocks combined in order.
    let blocks = n.div_ceil(ROWS_PER_BLOCK);
    let want_w = w.is_some();
    let mut partial = vec![T::ZERO; blocks * 2 * c];
    if want_w || has_bias {
        for_each_chunk(
            &mut partial,
            2 * c,
            ROWS_PER_BLOCK * 3 * c,
            |first, chunk| {
                let mut xhat = vec![T::ZERO; c];
                for (bi, p) in chunk.chunks_mut(2 * c).enumerate() {
                    let (pw, pb) = p.split_at_mut(c);
                    let r0 = (first + bi) * ROWS_PER_BLOCK;
                    for i in r0..(r0 + ROWS_PER_BLOCK).min(n) {
                        let (row, g) = (&x[i * c..(i + 1) * c], &dy[i * c..(i + 1) * c]);
                        let (m, rs) = (mean[i], rstd[i]);
                        if want_w {
                            simd::map(row, &mut xhat, |v| (v - m) * rs);
                            simd::zip_map_inplace(&mut xhat, g, |a, b| a * b);
                            simd::zip_map_inplace(pw, &xhat, |a, b| a + b);
                        }
                        if has_bias {
                            simd::zip_map_inplace(pb, g, |a, b| a + b);
                        }
                    }
                }
            },
        );
    }
    let mut dweight = vec![T::ZERO; if want_w { c } else { 0 }];
    let mut dbias = vec![T::ZERO; if has_bias { c } else { 0 }];
    for p in partial.chunks(2 * c) {
        if want_w {
            simd::zip_map_inplace(&mut dweight, &p[..c], |a, b| a + b);
        }
        if has_bias {
            simd::zip_map_inplace(&mut dbias, &p[c..], |a, b| a + b);
        }
    }
    LayerNormGrads { dx, dweight, dbias }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{assert_close, random_vec};

    #[test]
    fn forward_and_backward_match_reference() {
        for (n, c) in [(1, 1), (3, 7), (33, 65), (1024, 384), (5, 1023)] {
            let x: Vec<f64> = random_vec::<f64>(n * c, 1)
                .iter()
                .map(|v| v * 3.0 + 1.0)
                .collect();
            let w = random_vec::<f64>(c, 2);
            let b = random_vec::<f64>(c, 3);
            let dy = random_vec::<f64>(n * c, 4);
            for (wo, bo) in [
                (Some(&w[..]), Some(&b[..])),
                (Some(&w[..]), None),
                (None, Some(&b[..])),
                (None, None),
            ] {
                let got = forward(&x, c, wo, bo, 1e-5);
                let want = forward_reference(&x, c, wo, bo, 1e-5);
                assert_close(&got.y, &want.y, 1e-12, 1e-10, "y");
                assert_close(&got.rstd, &want.rstd, 1e-12, 1e-10, "rstd");
                let g = backward(&dy, &x, c, wo, &got.mean, &got.rstd, bo.is_some());
                let r = backward_reference(&dy, &x, c, wo, &want.mean, &want.rstd, bo.is_some());
                assert_close(&g.dx, &r.dx, 1e-10, 1e-9, "dx");
                assert_close(&g.dweight, &r.dweight, 1e-10, 1e-9, "dweight");
                assert_close(&g.dbias, &r.dbias, 1e-10, 1e-9, "dbias");
            }
        }
    }
}
