//! Softmax, log-softmax and logsumexp over the rows of a contiguous `(rows, n)` buffer, with
//! their backward kernels. (Tensor-level ops move the chosen dim last first.)
//!
//! With `m = max_j x_j` subtracted for stability:
//! - `logsumexp(x) = m + ln sum_j exp(x_j - m)`
//! - `softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m)`
//! - `log_softmax(x)_i = x_i - logsumexp(x)`
//!
//! Backward, given the output `y` and upstream `dy`:
//! - softmax: `dx_i = y_i (dy_i - sum_j dy_j y_j)`
//! - log_softmax: `dx_i = dy_i - exp(y_i) sum_j dy_j`

use super::lanes;
use super::parallel::{collect_chunks, for_each_chunk};
use crate::backend::Softmax;
use crate::dtype::Float;
use multiversion::multiversion;
use multiversion::target::target_cfg_f;
use std::mem::MaybeUninit;

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

/// Softmax or log-softmax of every row of `x` (`rows * n` elements), vectorized and threaded.
pub fn forward<T: Float>(kind: Softmax, x: &[T], n: usize) -> Vec<T> {
    if n == 0 {
        return vec![T::ZERO; x.len()];
    }
    // SAFETY: `forward_rows` writes every element of every chunk.
    unsafe {
        collect_chunks(x.len(), n, 8 * n, |first, chunk| {
            forward_rows(kind, &x[first * n..][..chunk.len()], chunk, n)
        })
    }
}

/// [`forward`] on a block of whole rows, with the exponential that suits the CPU: one
/// dispatch per block, so a short row costs no call.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
fn forward_rows<T: Float>(kind: Softmax, x: &[T], y: &mut [MaybeUninit<T>], n: usize) {
    if target_cfg_f!(target_feature = "fma") {
        forward_rows_with::<T, true>(kind, x, y, n)
    } else {
        forward_rows_with::<T, false>(kind, x, y, n)
    }
}

/// Per row: the max `m`; then softmax writes `e_i = exp(x_i - m)` to a scratch row while
/// summing them, and writes `e_i / sum` to the output, so the output is written once and never
/// read. (A NaN needs no test: it turns the sum NaN, and so the whole row, as in PyTorch.)
#[inline(always)]
fn forward_rows_with<T: Float, const FUSED: bool>(
    kind: Softmax,
    x: &[T],
    y: &mut [MaybeUninit<T>],
    n: usize,
) {
    let mut e = vec![T::ZERO; n];
    for (row, y) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
        let m = lanes::max_skipping_nan(row);
        match kind {
            Softmax::Softmax => {
                let sum = lanes::map_sum(row, &mut e, |v| (v - m).fast_exp_with::<FUSED>());
                let inv = T::ONE / sum;
                lanes::map_uninit(&e, y, |v| v * inv);
            }
            Softmax::LogSoftmax => {
                let lse = m + lanes::sum_map(row, |v| (v - m).fast_exp_with::<FUSED>()).ln();
                lanes::map_uninit(row, y, |v| v - lse);
            }
        }
    }
}

/// Softmax of one row in place, returning the row's logsumexp `m + ln sum_j exp(x_j - m)`:
/// for kernels (attention) that normalize rows of their own buffers. One dispatch per row.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn row_in_place<T: Float>(row: &mut [T]) -> T {
    if target_cfg_f!(target_feature = "fma") {
        row_in_place_with::<T, true>(row)
    } else {
        row_in_place_with::<T, false>(row)
    }
}

#[inline(always)]
fn row_in_place_with<T: Float, const FUSED: bool>(row: &mut [T]) -> T {
    let m = lanes::max_skipping_nan(row);
    let sum = lanes::map_sum_inplace(row, |v| (v - m).fast_exp_with::<FUSED>());
    let inv = T::ONE / sum;
    lanes::map_inplace(row, |v| v * inv);
    m + sum.ln()
}

/// `logsumexp` of every row, threaded.
pub fn logsumexp<T: Float>(x: &[T], n: usize) -> Vec<T> {
    let rows = x.len().checked_div(n).unwrap_or(0);
    let mut out = vec![T::NEG_INFINITY; rows];
    if n > 0 {
        for_each_chunk(&mut out, 1, 4 * n, |first, chunk| {
            logsumexp_rows(&x[first * n..][..chunk.len() * n], n, chunk)
        });
    }
    out
}

/// [`logsumexp`] of a block of whole rows into `out`, one element per row.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
fn logsumexp_rows<T: Float>(x: &[T], n: usize, out: &mut [T]) {
    if target_cfg_f!(target_feature = "fma") {
        logsumexp_rows_with::<T, true>(x, n, out)
    } else {
        logsumexp_rows_with::<T, false>(x, n, out)
    }
}

/// `m + ln sum_j exp(x_j - m)` per row; a row whose max is infinite is its max, unless it holds
/// a NaN.
#[inline(always)]
fn logsumexp_rows_with<T: Float, const FUSED: bool>(x: &[T], n: usize, out: &mut [T]) {
    for (row, o) in x.chunks_exact(n).zip(out) {
        let m = lanes::max_skipping_nan(row);
        *o = if m == T::NEG_INFINITY || m == T::INFINITY {
            row.iter().copied().find(|v| v.is_nan()).unwrap_or(m)
        } else {
            m + lanes::sum_map(row, |v| (v - m).fast_exp_with::<FUSED>()).ln()
        };
    }
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
    // SAFETY: `backward_rows` writes every element of every chunk.
    unsafe {
        collect_chunks(y.len(), n, 6 * n, |first, chunk| {
            let (y, dy) = (
                &y[first * n..][..chunk.len()],
                &dy[first * n..][..chunk.len()],
            );
            backward_rows(kind, y, dy, chunk, n)
        })
    }
}

/// [`backward`] on a block of whole rows, one dispatch per block.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
fn backward_rows<T: Float>(kind: Softmax, y: &[T], dy: &[T], dx: &mut [MaybeUninit<T>], n: usize) {
    if target_cfg_f!(target_feature = "fma") {
        backward_rows_with::<T, true>(kind, y, dy, dx, n)
    } else {
        backward_rows_with::<T, false>(kind, y, dy, dx, n)
    }
}

#[inline(always)]
fn backward_rows_with<T: Float, const FUSED: bool>(
    kind: Softmax,
    y: &[T],
    dy: &[T],
    dx: &mut [MaybeUninit<T>],
    n: usize,
) {
    let rows = y.chunks_exact(n).zip(dy.chunks_exact(n));
    for ((yr, gr), d) in rows.zip(dx.chunks_exact_mut(n)) {
        match kind {
            Softmax::Softmax => {
                let s = lanes::dot(yr, gr);
                lanes::zip_map_uninit(yr, gr, d, |a, b| a * (b - s));
            }
            Softmax::LogSoftmax => {
                let s = lanes::sum(gr);
                lanes::zip_map_uninit(yr, gr, d, |a, b| b - a.fast_exp_with::<FUSED>() * s);
            }
        }
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
                // The backward subtracts nearly equal terms, so the reference runs in f64 on
                // the same inputs: an f32 reference's own rounding would be of the same size.
                let dx = backward(kind, &y, &dy, n);
                let wide = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
                let want: Vec<f32> = backward_reference(kind, &wide(&y), &wide(&dy), n)
                    .iter()
                    .map(|&a| a as f32)
                    .collect();
                assert_close(&dx, &want, 1e-6, 1e-5, "backward");
            }
            let mut in_place = x.clone();
            let lse_in_place: Vec<f32> = in_place.chunks_mut(n).map(row_in_place).collect();
            let want = forward_reference(Softmax::Softmax, &x, n);
            assert_close(&in_place, &want, 1e-6, 1e-5, "row_in_place");
            let lse = logsumexp(&x, n);
            assert_close(&lse_in_place, &lse, 1e-6, 1e-6, "row_in_place logsumexp");
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
    fn logsumexp_of_infinities_and_nan() {
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        let rows = [
            [-inf, -inf, -inf],
            [1.0, inf, 2.0],
            [nan, -inf, -inf],
            [nan, inf, 0.0],
            [0.0, 1.0, nan],
        ];
        let lse = logsumexp(rows.as_flattened(), 3);
        assert_eq!(&lse[..2], &[-inf, inf]);
        assert!(lse[2..].iter().all(|v| v.is_nan()), "{lse:?}");
        let y = forward(Softmax::Softmax, &rows[4], 3);
        assert!(
            y.iter().all(|v| v.is_nan()),
            "a NaN spreads over its row: {y:?}"
        );
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
