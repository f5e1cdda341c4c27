//! Root-mean-square normalization over the last dim, forward (Llama's norm).
//!
//! Shapes: `x (N, C)` contiguous rows, `weight (C)`. Per row:
//! `rstd = 1 / sqrt(sum_c x_c^2 / C + eps)`, `y = x * rstd * weight`.
//! The forward returns `rstd (N)` for the backward, which the autograd rule composes from
//! elementwise ops and sums (with `xhat = x rstd` and `g = dy * weight`:
//! `dx = rstd (g - xhat mean_c(g xhat))`, `dweight = sum_rows dy xhat`).

use super::lanes;
use super::parallel::collect_chunks_with;
use crate::dtype::Float;
use multiversion::multiversion;
use std::mem::MaybeUninit;

/// Outputs of the forward pass.
pub struct RmsNormOut<T> {
    /// Normalized output `(N, C)`.
    pub y: Vec<T>,
    /// Row reciprocal root mean squares `1 / sqrt(mean(x^2) + eps)`, `(N)`.
    pub rstd: Vec<T>,
}

/// Plain reference forward, one element at a time.
pub fn forward_reference<T: Float>(x: &[T], c: usize, w: &[T], eps: f64) -> RmsNormOut<T> {
    let (mut y, mut rstd) = (vec![], vec![]);
    for row in x.chunks(c) {
        let ms = row.iter().map(|&v| v * v).sum::<T>() / T::from_usize(c);
        let r = T::ONE / (ms + T::from_f64(eps)).sqrt();
        y.extend(row.iter().zip(w).map(|(&v, &w)| v * r * w));
        rstd.push(r);
    }
    RmsNormOut { y, rstd }
}

/// Forward, vectorized per row and threaded over rows; each row is read from memory once and
/// `y` written once.
pub fn forward<T: Float>(x: &[T], c: usize, w: &[T], eps: f64) -> RmsNormOut<T> {
    let n = x.len().checked_div(c).unwrap_or(0);
    let mut rstd = vec![T::ZERO; n];
    // SAFETY: `forward_rows` writes every element of every chunk.
    let y = unsafe {
        collect_chunks_with(x.len(), c, 3 * c, &mut rstd, |first, chunk, r| {
            forward_rows(&x[first * c..][..chunk.len()], c, w, eps, chunk, r)
        })
    };
    RmsNormOut { y, rstd }
}

/// [`forward`] on a block of whole rows, writing each row's `rstd`: one dispatch per block.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
fn forward_rows<T: Float>(
    x: &[T],
    c: usize,
    w: &[T],
    eps: f64,
    y: &mut [MaybeUninit<T>],
    rstd: &mut [T],
) {
    if c == 0 {
        return;
    }
    let rows = x.chunks_exact(c).zip(y.chunks_exact_mut(c));
    for ((row, yr), r) in rows.zip(rstd) {
        let ms = lanes::sum_map(row, |v| v * v) / T::from_usize(c);
        let rs = T::ONE / (ms + T::from_f64(eps)).sqrt();
        *r = rs;
        lanes::zip_map_uninit(row, w, yr, |v, w| v * rs * w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{assert_close, random_vec};

    #[test]
    fn forward_matches_the_reference() {
        for (n, c) in [(1, 1), (3, 7), (33, 65), (1024, 64), (5, 1023)] {
            let x: Vec<f64> = random_vec::<f64>(n * c, 1)
                .iter()
                .map(|v| v * 3.0 + 1.0)
                .collect();
            let w = random_vec::<f64>(c, 2);
            let got = forward(&x, c, &w, 1e-5);
            let want = forward_reference(&x, c, &w, 1e-5);
            assert_close(&got.y, &want.y, 1e-12, 1e-10, "y");
            assert_close(&got.rstd, &want.rstd, 1e-12, 1e-10, "rstd");
        }
    }

    #[test]
    fn rows_come_out_with_unit_root_mean_square() {
        let c = 9;
        let x = random_vec::<f64>(4 * c, 3);
        let out = forward(&x, c, &[1.0; 9], 0.0);
        for row in out.y.chunks(c) {
            let ms = row.iter().map(|v| v * v).sum::<f64>() / c as f64;
            assert!((ms - 1.0).abs() < 1e-12, "{ms}");
        }
    }
}
