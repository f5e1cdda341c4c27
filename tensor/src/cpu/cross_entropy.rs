//! Cross-entropy over logits, fused with the log-softmax, forward and backward.
//!
//! Shapes: `logits (N, V)` contiguous rows, `targets (N)` where `None` marks an ignored row.
//! Forward: `lse_n = logsumexp_v logits[n, v]`, `loss = sum_{n counted} (lse_n - logits[n, t_n])
//! / count` (NaN when no row counts, as in PyTorch). It returns `lse (N)` for the backward.
//! Backward, for upstream gradient `g` of the mean loss:
//! `dlogits[n, v] = g / count * (exp(logits[n, v] - lse_n) - [v == t_n])`, zero on ignored rows.

use super::lanes;
use super::parallel::collect_chunks;
use super::softmax;
use crate::dtype::Float;
use multiversion::multiversion;
use multiversion::target::target_cfg_f;
use std::mem::MaybeUninit;

/// Forward result: the mean loss, the number of counted rows and each row's logsumexp.
pub struct CrossEntropyOut<T> {
    /// Mean loss over the counted rows (NaN when none counts).
    pub loss: T,
    /// Number of rows not ignored.
    pub count: usize,
    /// Logsumexp of each logits row, `(N)`.
    pub lse: Vec<T>,
}

/// Plain reference forward with exact library math.
pub fn forward_reference<T: Float>(
    logits: &[T],
    v: usize,
    targets: &[Option<usize>],
) -> CrossEntropyOut<T> {
    let (mut sum, mut count, mut lse) = (T::ZERO, 0, vec![]);
    for (row, t) in logits.chunks(v).zip(targets) {
        let m = row.iter().fold(T::NEG_INFINITY, |a, &b| a.max_nan(b));
        let l = m + row.iter().map(|&x| (x - m).exp()).sum::<T>().ln();
        if let Some(t) = *t {
            sum += l - row[t];
            count += 1;
        }
        lse.push(l);
    }
    CrossEntropyOut {
        loss: sum / T::from_usize(count),
        count,
        lse,
    }
}

/// Forward: the rows' logsumexp vectorized and threaded ([`softmax::logsumexp`]), losses
/// summed in row order.
pub fn forward<T: Float>(logits: &[T], v: usize, targets: &[Option<usize>]) -> CrossEntropyOut<T> {
    let lse = softmax::logsumexp(logits, v);
    let (mut sum, mut count) = (T::ZERO, 0);
    for (n, t) in targets.iter().enumerate() {
        if let Some(t) = *t {
            sum += lse[n] - logits[n * v + t];
            count += 1;
        }
    }
    CrossEntropyOut {
        loss: sum / T::from_usize(count),
        count,
        lse,
    }
}

/// Plain reference backward.
pub fn backward_reference<T: Float>(
    logits: &[T],
    v: usize,
    targets: &[Option<usize>],
    lse: &[T],
    grad: T,
) -> Vec<T> {
    let count = targets.iter().filter(|t| t.is_some()).count();
    let scale = grad / T::from_usize(count);
    let mut d = Vec::with_capacity(logits.len());
    for (n, row) in logits.chunks(v).enumerate() {
        for (j, &x) in row.iter().enumerate() {
            d.push(match targets[n] {
                None => T::ZERO,
                Some(t) => scale * ((x - lse[n]).exp() - if j == t { T::ONE } else { T::ZERO }),
            });
        }
    }
    d
}

/// Backward, vectorized per row and threaded over rows.
pub fn backward<T: Float>(
    logits: &[T],
    v: usize,
    targets: &[Option<usize>],
    lse: &[T],
    grad: T,
) -> Vec<T> {
    let count = targets.iter().filter(|t| t.is_some()).count();
    let scale = grad / T::from_usize(count);
    if v == 0 {
        return vec![];
    }
    // SAFETY: `backward_rows` writes every element of every chunk.
    unsafe {
        collect_chunks(logits.len(), v, 2 * v, |first, chunk| {
            let rows = first..first + chunk.len() / v;
            let logits = &logits[first * v..][..chunk.len()];
            backward_rows(logits, v, &targets[rows.clone()], &lse[rows], scale, chunk)
        })
    }
}

/// [`backward`] on a block of whole rows (`targets` and `lse` for those rows, `scale` the
/// upstream gradient over the count), one dispatch per block.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
fn backward_rows<T: Float>(
    logits: &[T],
    v: usize,
    targets: &[Option<usize>],
    lse: &[T],
    scale: T,
    d: &mut [MaybeUninit<T>],
) {
    if target_cfg_f!(target_feature = "fma") {
        backward_rows_with::<T, true>(logits, v, targets, lse, scale, d)
    } else {
        backward_rows_with::<T, false>(logits, v, targets, lse, scale, d)
    }
}

#[inline(always)]
fn backward_rows_with<T: Float, const FUSED: bool>(
    logits: &[T],
    v: usize,
    targets: &[Option<usize>],
    lse: &[T],
    scale: T,
    d: &mut [MaybeUninit<T>],
) {
    let rows = logits.chunks_exact(v).zip(d.chunks_exact_mut(v));
    for ((row, dr), (t, &l)) in rows.zip(targets.iter().zip(lse)) {
        match *t {
            Some(t) => {
                let p = |x: T| scale * (x - l).fast_exp_with::<FUSED>();
                lanes::map_uninit(row, dr, p);
                dr[t].write(p(row[t]) - scale);
            }
            None => dr.fill(MaybeUninit::new(T::ZERO)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{assert_close, random_vec};

    #[test]
    fn matches_reference_with_ignored_rows() {
        for (n, v) in [(1, 1), (7, 65), (64, 1023), (4, 50304)] {
            let logits: Vec<f32> = random_vec::<f32>(n * v, 1)
                .iter()
                .map(|x| x * 4.0)
                .collect();
            let targets: Vec<Option<usize>> = (0..n)
                .map(|i| if i % 3 == 2 { None } else { Some((i * 31) % v) })
                .collect();
            let got = forward(&logits, v, &targets);
            let want = forward_reference(&logits, v, &targets);
            assert_eq!(got.count, want.count);
            assert_close(&[got.loss], &[want.loss], 1e-6, 1e-5, "loss");
            assert_close(&got.lse, &want.lse, 1e-6, 1e-5, "lse");
            let d = backward(&logits, v, &targets, &got.lse, 0.7);
            assert_close(
                &d,
                &backward_reference(&logits, v, &targets, &want.lse, 0.7),
                1e-7,
                1e-5,
                "d",
            );
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (n, v) = (3, 5);
        let logits = random_vec::<f64>(n * v, 2);
        let targets = vec![Some(1), None, Some(4)];
        let out = forward(&logits, v, &targets);
        let d = backward(&logits, v, &targets, &out.lse, 1.0);
        for i in 0..n * v {
            let mut p = logits.clone();
            p[i] += 1e-6;
            let mut m = logits.clone();
            m[i] -= 1e-6;
            let num = (forward(&p, v, &targets).loss - forward(&m, v, &targets).loss) / 2e-6;
            assert!((num - d[i]).abs() < 1e-8, "element {i}: {} vs {num}", d[i]);
        }
    }

    #[test]
    fn all_ignored_gives_nan_like_pytorch() {
        let out = forward(&[1.0f32, 2.0], 2, &[None]);
        assert!(out.loss.is_nan());
        assert_eq!(out.count, 0);
    }
}
