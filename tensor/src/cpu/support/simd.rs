//! Vectorized loops, compiled once per instruction set and chosen at run time.
//!
//! Each function here is a plain loop that the compiler vectorizes. The `multiversion`
//! attribute compiles it three times, for AVX-512, for AVX2 + FMA and for the x86-64 baseline
//! (SSE2), and picks the best one the running CPU supports on first call. One binary thus runs on
//! a fifteen-year-old CPU and uses 512-bit registers on a new one. Closures passed in (the
//! element math) are inlined into each clone, so they are vectorized at that clone's width.
//!
//! The `*_uninit` loops write into buffers that were never initialized (see
//! [`super::parallel::collect_chunks`]); they require equal lengths and write every output.
//!
//! The reductions and the `*_uninit` loops are the bodies of [`super::lanes`] (where the way
//! sums vectorize is explained) behind a dispatcher; a kernel that runs many of them on short
//! rows builds its own multiversioned function from those bodies instead.

use super::lanes;
use crate::dtype::Float;
use multiversion::multiversion;
use std::mem::MaybeUninit;

/// `y[i] = f(x[i])`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn map<T: Copy, F: Fn(T) -> T>(x: &[T], y: &mut [T], f: F) {
    for (a, b) in x.iter().zip(y.iter_mut()) {
        *b = f(*a);
    }
}

/// `x[i] = f(x[i])` in place.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn map_inplace<T: Copy, F: Fn(T) -> T>(x: &mut [T], f: F) {
    lanes::map_inplace(x, f)
}

/// `z[i] = f(x[i], y[i])`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn zip_map<T: Copy, F: Fn(T, T) -> T>(x: &[T], y: &[T], z: &mut [T], f: F) {
    for ((a, b), c) in x.iter().zip(y).zip(z.iter_mut()) {
        *c = f(*a, *b);
    }
}

/// `x[i] = f(x[i], y[i])` in place.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn zip_map_inplace<T: Copy, F: Fn(T, T) -> T>(x: &mut [T], y: &[T], f: F) {
    for (a, b) in x.iter_mut().zip(y) {
        *a = f(*a, *b);
    }
}

/// `z[i] = f(x[i], s)` for a scalar `s` (one operand broadcast).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn map_scalar<T: Copy, F: Fn(T, T) -> T>(x: &[T], s: T, z: &mut [T], f: F) {
    for (a, c) in x.iter().zip(z.iter_mut()) {
        *c = f(*a, s);
    }
}

/// `z[i] = f(s, y[i])` for a scalar `s` (the other operand broadcast).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn scalar_map<T: Copy, F: Fn(T, T) -> T>(s: T, y: &[T], z: &mut [T], f: F) {
    for (b, c) in y.iter().zip(z.iter_mut()) {
        *c = f(s, *b);
    }
}

/// `y[i] = f(x[i])` into uninitialized `y`, every element written.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn map_uninit<T: Copy, F: Fn(T) -> T>(x: &[T], y: &mut [MaybeUninit<T>], f: F) {
    lanes::map_uninit(x, y, f)
}

/// `z[i] = f(x[i], y[i])` into uninitialized `z`, every element written.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn zip_map_uninit<T: Copy, F: Fn(T, T) -> T>(x: &[T], y: &[T], z: &mut [MaybeUninit<T>], f: F) {
    lanes::zip_map_uninit(x, y, z, f)
}

/// `z[i] = f(x[i], s)` into uninitialized `z`, every element written.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn map_scalar_uninit<T: Copy, F: Fn(T, T) -> T>(x: &[T], s: T, z: &mut [MaybeUninit<T>], f: F) {
    assert_eq!(x.len(), z.len(), "map_scalar_uninit: lengths differ");
    for (a, c) in x.iter().zip(z.iter_mut()) {
        c.write(f(*a, s));
    }
}

/// `z[i] = f(s, y[i])` into uninitialized `z`, every element written.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn scalar_map_uninit<T: Copy, F: Fn(T, T) -> T>(s: T, y: &[T], z: &mut [MaybeUninit<T>], f: F) {
    assert_eq!(y.len(), z.len(), "scalar_map_uninit: lengths differ");
    for (b, c) in y.iter().zip(z.iter_mut()) {
        c.write(f(s, *b));
    }
}

/// `z[i] = f(x[i], y[i], w[i])` into uninitialized `z`, every element written.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn zip3_map_uninit<T: Copy, F: Fn(T, T, T) -> T>(
    x: &[T],
    y: &[T],
    w: &[T],
    z: &mut [MaybeUninit<T>],
    f: F,
) {
    lanes::zip3_map_uninit(x, y, w, z, f)
}

/// `sum_i x[i]`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn sum<T: Float>(x: &[T]) -> T {
    lanes::sum(x)
}

/// `sum_i f(x[i])`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn sum_map<T: Float, F: Fn(T) -> T>(x: &[T], f: F) -> T {
    lanes::sum_map(x, f)
}

/// `y[i] = f(x[i])`, returning `sum_i y[i]` in one pass (the value [`sum`] of `y` would give).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn map_sum<T: Float, F: Fn(T) -> T>(x: &[T], y: &mut [T], f: F) -> T {
    lanes::map_sum(x, y, f)
}

/// `sum_i x[i] * y[i]`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn dot<T: Float>(x: &[T], y: &[T]) -> T {
    lanes::dot(x, y)
}

/// `max_i x[i]`, NaN when any element is NaN (`-inf` for an empty slice).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn max<T: Float>(x: &[T]) -> T {
    lanes::max(x)
}

/// `min_i x[i]`, NaN when any element is NaN (`+inf` for an empty slice).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn min<T: Float>(x: &[T]) -> T {
    lanes::min(x)
}

/// `y[i] += a * x[i]`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
pub fn axpy<T: Float>(a: T, x: &[T], y: &mut [T]) {
    for (xi, yi) in x.iter().zip(y.iter_mut()) {
        *yi += a * *xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_match_plain_loops() {
        for n in [0, 1, 7, 31, 32, 33, 1023] {
            let x: Vec<f64> = (0..n)
                .map(|i| ((i * 37 % 101) as f64) * 0.25 - 9.0)
                .collect();
            let y: Vec<f64> = (0..n).map(|i| ((i * 13 % 17) as f64) - 3.0).collect();
            assert_eq!(sum(&x), x.iter().sum::<f64>(), "sum n={n}");
            assert_eq!(
                dot(&x, &y),
                x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>()
            );
            let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(max(&x), m, "max n={n}");
            assert_eq!(sum_map(&x, |v| v * v), x.iter().map(|v| v * v).sum::<f64>());
            let mut sq = vec![0.0; n];
            assert_eq!(map_sum(&x, &mut sq, |v| v * v), sum_map(&x, |v| v * v));
            assert!(sq.iter().zip(&x).all(|(s, v)| *s == v * v));
        }
    }

    #[test]
    fn max_propagates_nan() {
        let mut x = vec![1.0f32; 100];
        x[57] = f32::NAN;
        assert!(max(&x).is_nan());
    }

    #[test]
    fn maps_apply_elementwise() {
        let x: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let mut y = vec![0.0; 1000];
        map(&x, &mut y, |v| v * 2.0);
        assert!(y.iter().enumerate().all(|(i, &v)| v == 2.0 * i as f32));
        let mut z = vec![0.0; 1000];
        zip_map(&x, &y, &mut z, |a, b| a + b);
        assert!(z.iter().enumerate().all(|(i, &v)| v == 3.0 * i as f32));
        axpy(0.5, &x, &mut z);
        assert!(z.iter().enumerate().all(|(i, &v)| v == 3.5 * i as f32));
    }

    #[test]
    fn uninit_maps_write_every_element() {
        let x: Vec<f32> = (0..1001).map(|i| i as f32).collect();
        let mut out = vec![MaybeUninit::uninit(); 1001];
        let read = |out: &[MaybeUninit<f32>]| -> Vec<f32> {
            // SAFETY: each call before `read` wrote every element of `out`.
            out.iter().map(|v| unsafe { v.assume_init() }).collect()
        };
        map_uninit(&x, &mut out, |v| v * 2.0);
        assert!(read(&out)
            .iter()
            .enumerate()
            .all(|(i, &v)| v == 2.0 * i as f32));
        zip_map_uninit(&x, &x, &mut out, |a, b| a + b);
        assert!(read(&out)
            .iter()
            .enumerate()
            .all(|(i, &v)| v == 2.0 * i as f32));
        map_scalar_uninit(&x, 1.0, &mut out, |a, b| a - b);
        assert!(read(&out)
            .iter()
            .enumerate()
            .all(|(i, &v)| v == i as f32 - 1.0));
        scalar_map_uninit(1.0, &x, &mut out, |a, b| a - b);
        assert!(read(&out)
            .iter()
            .enumerate()
            .all(|(i, &v)| v == 1.0 - i as f32));
        zip3_map_uninit(&x, &x, &x, &mut out, |a, b, c| a + b * c);
        assert!(read(&out).iter().zip(&x).all(|(&v, &a)| v == a + a * a));
    }
}
