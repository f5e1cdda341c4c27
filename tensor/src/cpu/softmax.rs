//! Softmax, log-softmax and logsumexp over the rows of a contiguous `(rows, n)` buffer, with
//! their backward kernels. (Tensor-level ops move the chosen dim last first.)
//!
//! With `m = max_j x_j` subtracted for stability:
//! - `logsumexp(x) = m + ln sum_j exp(x_j - m)`
//! - `softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m)`
//! - `log_softmax(x)_i = x_i - logsumexp(x)`
//! Backward, given the output `y` and upstream `dy`:
//! - softmax: `dx_i = y_i (dy_i - sum_j dy_j y_j)`
//! - log_softmax: `dx_i = dy_i - exp(y_i) sum_j dy_j`

use super::parallel::{collect_chunks, for_each_chunk};
use super::simd;
use crate::dtype::Float;

/// Which normalization of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Softmax {
    /// `y_i = exp(x_i - max) / sum_j exp(x_j - max)`.
    Softmax,
    /// `y_i = x_i - logsumexp_j x_j`.
    LogSoftmax,
}

/// Plain reference for one row with exact library math.
pub fn row_reference<T: Float>(kind: Softmax, x: &[T]) -> Vec<T> {
    let m = x.iter().fold(T::NEG_INFINITY, |a, &b| a.max_nan(b));
    let sum: T = x.iter().map(|&v| (v - m).exp()).sum();
    match kind {
        Softmax::Softmax => x.iter().map(|&v| (v - m).exp() / sum).collect(),
        Softmax::LogSoftmax => x.iter().map(|&v| v - m - sum.ln()).collect(),
    }
}

/// Plain reference over all rows.
pub fn forward_reference<T: Float>(kind: Softmax, x: &[T], n: usize) -> Vec<T> {
    x.chunks(n.max(1))
        .flat_map(|r| row_reference(kind, r))
        .collect()
}

/// `logsumexp` of one contiguous row, vectorized.
pub fn row_logsumexp<T: Float>(x: &[T]) -> T {
    let m = simd::max(x);
    if m == T::NEG_INFINITY || m == T::INFINITY {
        return m;
    }
    m + simd::sum_map(x, |v| (v - m).fast_exp()).ln()
}

/// Softmax or log-softmax of every row of `x` (`rows * n` elements), vectorized and threaded.
///
/// Per row: the max; then softmax writes `e_i = exp(x_i - m)` to a scratch row while summing
/// them, and writes `e_i / sum` to the output, so the output is written once and never read.
pub fn forward<T: Float>(kind: Softmax, x: &[T], n: usize) -> Vec<T> {
    if n == 0 {
        return vec![T::ZERO; x.len()];
    }
    // SAFETY: every row of every chunk is written by `map_uninit`.
    unsafe {
        collect_chunks(x.len(), n, 8 * n, |first, chunk| {
            let mut e = vec![T::ZERO; n];
            for (r, y) in chunk.chunks_mut(n).enumerate() {
                let row = &x[(first + r) * n..(first + r + 1) * n];
                let m = simd::max(row);
                match kind {
                    Softmax::Softmax => {
                        let inv = T::ONE / simd::map_sum(row, &mut e, |v| (v - m).fast_exp());
                        simd::map_uninit(&e, y, |v| v * inv);
                    }
                    Softmax::LogSoftmax => {
                        let lse = m + simd::sum_map(row, |v| (v - m).fast_exp()).ln();
                        simd::map_uninit(row, y, |v| v - lse);
                    }
                }
            }
        })
    }
}

/// `logsumexp` of every row, threaded.
pub fn logsumexp<T: Float>(x: &[T], n: usize) -> Vec<T> {
    let rows = if n == 0 { 0 } else { x.len() / n };
    let mut out = vec![T::NEG_INFINITY; rows];
    for_each_chunk(&mut out, 1, 4 * n, |first, chunk| {
        for (r, o) in chunk.iter_mut().enumerate() {
            *o = row_logsumexp(&x[(first + r) * n..(first + r + 1) * n]);
        }
    });
    out
}

/// Plain reference backward for all rows.
pub fn backward_reference<T: Float>(kind: Softmax, y: &[T], dy: &[T], n: usize) -> Vec<T> {
    let mut dx = Vec::with_capacity(y.len());
    for (yr, gr) in y.chunks(n.max(1)).zip(dy.chunks(n.max(1))) {
        match kind {
            Softmax::Softmax => {
                let s: T = yr.iter().zip(gr).map(|(&a, &b)| a * b).sum();
                dx.extend(yr.iter().zip(gr).map(|(&a, &b)| a * (b - s)));
            }
            Softmax::LogSoftmax => {
                let s: T = gr.iter().copied().sum();
                dx.extend(yr.iter().zip(gr).map(|(&a, &b)| b - a.exp() * s));
            }
        }
    }
    dx
}

/// Backward of [`forward`] from its output `y` and upstream `dy`, vectorized and threaded.
pub fn backward<T: Float>(kind: Softmax, y: &[T], dy: &[T], n: usize) -> Vec<T> {
    if n == 0 {
        return vec![T::ZERO; y.len()];
    }
    // SAFETY: every row of every chunk is written by `zip_map_uninit`.
    unsafe {
        collect_chunks(y.len(), n, 6 * n, |first, chunk| {
            for (r, d) in chunk.chunks_mut(n).enumerate() {
                let (yr, gr) = (&y[(first + r) * n..][..n], &dy[(first + r) * n..][..n]);
                match kind {
                    Softmax::Softmax => {
                        let s = simd::dot(yr, gr);
                        simd::zip_map_uninit(yr, gr, d, |a, b| a * (b - s));
                    }
                    Softmax::LogSoftmax => {
                        let s = simd::sum(gr);
                        simd::zip_map_uninit(yr, gr, d, |a, b| b - a.fast_exp() * s);
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{assert_close, random_vec};

    #[test]
    fn forward_and_backward_match_reference() {
        for (rows, n) in [(1, 1), (3, 7), (5, 65), (64, 1023), (4096, 65)] {
            let x: Vec<f32> = random_vec::<f32>(rows * n, 1)
                .iter()
                .map(|v| v * 5.0)
                .collect();
            let dy = random_vec::<f32>(rows * n, 2);
            for kind in [Softmax::Softmax, Softmax::LogSoftmax] {
                let y = forward(kind, &x, n);
                assert_close(&y, &forward_reference(kind, &x, n), 1e-6, 1e-5, "forward");
                let dx = backward(kind, &y, &dy, n);
                assert_close(
                    &dx,
                    &backward_reference(kind, &y, &dy, n),
                    1e-6,
                    1e-5,
                    "backward",
                );
            }
            let lse = logsumexp(&x, n);
            let want: Vec<f32> = x
                .chunks(n)
                .map(|r| {
                    let m = r.iter().cloned().fold(f32::MIN, f32::max);
                    m + r.iter().map(|v| (v - m).exp()).sum::<f32>().ln()
                })
                .collect();
            assert_close(&lse, &want, 1e-6, 1e-6, "logsumexp");
        }
    }

    #[test]
    fn large_inputs_are_stable() {
        let x = [1000.0f64, 1000.0, -1000.0];
        let y = forward(Softmax::Softmax, &x, 3);
        assert_close(&y, &[0.5, 0.5, 0.0], 1e-15, 0.0, "softmax");
        let y = forward(Softmax::LogSoftmax, &x, 3);
        assert_close(
            &y,
            &[-(2f64.ln()), -(2f64.ln()), -2000.0 - 2f64.ln()],
            1e-12,
            1e-12,
            "log",
        );
    }
}
