//! Loop bodies that vectorize once inlined into a function compiled for a SIMD instruction set.
//!
//! Every public function here is `#[inline(always)]` and carries no instruction set of its
//! own. Called from a `#[multiversion]` function (see [`super::simd`]), it is compiled into
//! each of that function's clones, at each clone's vector width. Row kernels (softmax, layer
//! norm, cross-entropy) build one multiversioned function over a whole block of rows from these
//! bodies, so that a short row pays for no dispatch: a row of 65 columns is only five AVX-512
//! vectors.
//!
//! Floating-point sums are not associative, so a compiler never vectorizes `s += x[i]` by
//! itself; the reductions keep [`LANES`] independent partial results instead, which vectorize,
//! and combine them in a fixed order, which keeps results deterministic.

use crate::dtype::Float;
use std::mem::MaybeUninit;

/// Independent partial results per reduction: one AVX-512 register of f32.
pub const LANES: usize = 16;

/// Combines lane partials pairwise with `op`, in a fixed order: a tree of `log2(LANES)` vector
/// steps (a left-to-right fold would be a chain of `LANES` dependent scalar steps).
///
/// Never inlined, on purpose: inlined, the tree's last, narrow steps led the compiler to
/// vectorize the whole reduction loop two lanes at a time (an SSE-width loop on an AVX-512
/// CPU); a call per reduction is far cheaper.
fn combine<T: Copy>(mut acc: [T; LANES], op: &impl Fn(T, T) -> T) -> T {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] = op(acc[i], acc[i + width]);
        }
    }
    acc[0]
}

/// Folds `x` with `acc = step(acc, x[i])` and reduces the partials with `op`: the elements of
/// whole `LANES`-chunks go to lane `i % LANES`, the tail (fewer than `LANES` elements) in order
/// to one more partial, every partial starting at `init`. The lanes are then combined as a
/// tree, the tail partial last.
///
/// The tail never indexes the lane array: an index known only at run time would make the
/// compiler keep the lanes in memory.
#[inline(always)]
fn fold<T: Copy>(x: &[T], init: T, step: impl Fn(T, T) -> T, op: impl Fn(T, T) -> T) -> T {
    let mut acc = [init; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] = step(acc[i], c[i]);
        }
    }
    let rest = tail.iter().fold(init, |a, &v| step(a, v));
    op(combine(acc, &op), rest)
}

/// `sum_i x[i]`, with `LANES` partial sums.
#[inline(always)]
pub fn sum<T: Float>(x: &[T]) -> T {
    fold(x, T::ZERO, |a, v| a + v, |a, b| a + b)
}

/// `sum_i f(x[i])`, with `LANES` partial sums.
#[inline(always)]
pub fn sum_map<T: Float>(x: &[T], f: impl Fn(T) -> T) -> T {
    fold(x, T::ZERO, |a, v| a + f(v), |a, b| a + b)
}

/// `y[i] = f(x[i])`, returning `sum_i y[i]` in one pass (the value [`sum`] of `y` would give).
#[inline(always)]
pub fn map_sum<T: Float>(x: &[T], y: &mut [T], f: impl Fn(T) -> T) -> T {
    assert_eq!(x.len(), y.len(), "map_sum: lengths differ");
    let mut acc = [T::ZERO; LANES];
    let xs = x.chunks_exact(LANES);
    let mut ys = y.chunks_exact_mut(LANES);
    let xt = xs.remainder();
    for (a, b) in xs.zip(&mut ys) {
        for i in 0..LANES {
            b[i] = f(a[i]);
            acc[i] += b[i];
        }
    }
    let mut rest = T::ZERO;
    for (a, b) in xt.iter().zip(ys.into_remainder()) {
        *b = f(*a);
        rest += *b;
    }
    combine(acc, &|a, b| a + b) + rest
}

/// `x[i] = f(x[i])` in place, returning the new `sum_i x[i]` (as [`map_sum`]).
#[inline(always)]
pub fn map_sum_inplace<T: Float>(x: &mut [T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::ZERO; LANES];
    let mut xs = x.chunks_exact_mut(LANES);
    for a in &mut xs {
        for i in 0..LANES {
            a[i] = f(a[i]);
            acc[i] += a[i];
        }
    }
    let mut rest = T::ZERO;
    for a in xs.into_remainder() {
        *a = f(*a);
        rest += *a;
    }
    combine(acc, &|a, b| a + b) + rest
}

/// `sum_i x[i] * y[i]`, with `LANES` partial sums.
#[inline(always)]
pub fn dot<T: Float>(x: &[T], y: &[T]) -> T {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut acc = [T::ZERO; LANES];
    let xs = x.chunks_exact(LANES);
    let ys = y.chunks_exact(LANES);
    let (xt, yt) = (xs.remainder(), ys.remainder());
    for (a, b) in xs.zip(ys) {
        for i in 0..LANES {
            acc[i] += a[i] * b[i];
        }
    }
    let rest = xt.iter().zip(yt).fold(T::ZERO, |a, (&u, &v)| a + u * v);
    combine(acc, &|a, b| a + b) + rest
}

/// [`dot`] of `x` with each of four slices at once: each result has the bits `dot` gives it,
/// and each element of `x` is loaded once for all four (the one-row matrix product's inner
/// loop, where a dot product of a few vectors would spend more on its reduction than on its
/// multiplies).
#[inline(always)]
pub fn dot4<T: Float>(x: &[T], ys: [&[T]; 4]) -> [T; 4] {
    let n = ys.iter().fold(x.len(), |n, y| n.min(y.len()));
    let [y0, y1, y2, y3] = ys.map(|y| &y[..n]);
    let x = &x[..n];
    let (mut a0, mut a1, mut a2, mut a3) = (
        [T::ZERO; LANES],
        [T::ZERO; LANES],
        [T::ZERO; LANES],
        [T::ZERO; LANES],
    );
    let chunks = x
        .chunks_exact(LANES)
        .zip(y0.chunks_exact(LANES))
        .zip(y1.chunks_exact(LANES))
        .zip(y2.chunks_exact(LANES))
        .zip(y3.chunks_exact(LANES));
    for ((((a, b0), b1), b2), b3) in chunks {
        for i in 0..LANES {
            a0[i] += a[i] * b0[i];
            a1[i] += a[i] * b1[i];
            a2[i] += a[i] * b2[i];
            a3[i] += a[i] * b3[i];
        }
    }
    let whole = n - n % LANES;
    let tail = |y: &[T]| {
        x[whole..]
            .iter()
            .zip(&y[whole..])
            .fold(T::ZERO, |a, (&u, &v)| a + u * v)
    };
    let sum = |acc: [T; LANES], y: &[T]| combine(acc, &|a, b| a + b) + tail(y);
    [sum(a0, y0), sum(a1, y1), sum(a2, y2), sum(a3, y3)]
}

/// The larger of `a` and `b`, or `a` when either is NaN: a single `max` instruction per vector.
#[inline(always)]
fn larger<T: Float>(a: T, b: T) -> T {
    if b > a {
        b
    } else {
        a
    }
}

/// The smaller of `a` and `b`, or `a` when either is NaN: a single `min` instruction per vector.
#[inline(always)]
fn smaller<T: Float>(a: T, b: T) -> T {
    if b < a {
        b
    } else {
        a
    }
}

/// `max_i x[i]` over the elements that are not NaN (`-inf` when there are none).
///
/// Kernels that go on to sum `exp(x[i] - max)` use this one: a NaN element still reaches their
/// result through that sum.
#[inline(always)]
pub fn max_skipping_nan<T: Float>(x: &[T]) -> T {
    fold(x, T::NEG_INFINITY, larger, larger)
}

/// A NaN element of `x`, if there is one.
///
/// Testing every element would cost more than a maximum, so the elements are summed first: the
/// sum is NaN only if an element is NaN or both infinities occur, and only then is `x` scanned.
#[inline(always)]
fn first_nan<T: Float>(x: &[T]) -> Option<T> {
    if sum(x).is_nan() {
        x.iter().copied().find(|v| v.is_nan())
    } else {
        None
    }
}

/// `max_i x[i]`, NaN when any element is NaN (`-inf` for an empty slice).
#[inline(always)]
pub fn max<T: Float>(x: &[T]) -> T {
    let m = max_skipping_nan(x);
    first_nan(x).unwrap_or(m)
}

/// `min_i x[i]`, NaN when any element is NaN (`+inf` for an empty slice); as [`max`].
#[inline(always)]
pub fn min<T: Float>(x: &[T]) -> T {
    let m = fold(x, T::INFINITY, smaller, smaller);
    first_nan(x).unwrap_or(m)
}

/// `x[i] = f(x[i])` in place.
#[inline(always)]
pub fn map_inplace<T: Copy>(x: &mut [T], f: impl Fn(T) -> T) {
    for a in x.iter_mut() {
        *a = f(*a);
    }
}

/// `y[i] = f(x[i])` into uninitialized `y`, every element written.
#[inline(always)]
pub fn map_uninit<T: Copy>(x: &[T], y: &mut [MaybeUninit<T>], f: impl Fn(T) -> T) {
    assert_eq!(x.len(), y.len(), "map_uninit: lengths differ");
    for (a, b) in x.iter().zip(y.iter_mut()) {
        b.write(f(*a));
    }
}

/// `z[i] = f(x[i], y[i])` into uninitialized `z`, every element written.
#[inline(always)]
pub fn zip_map_uninit<T: Copy>(x: &[T], y: &[T], z: &mut [MaybeUninit<T>], f: impl Fn(T, T) -> T) {
    assert!(
        x.len() == z.len() && y.len() == z.len(),
        "zip_map_uninit: lengths differ"
    );
    for ((a, b), c) in x.iter().zip(y).zip(z.iter_mut()) {
        c.write(f(*a, *b));
    }
}

/// `z[i] = f(x[i], y[i], w[i])` into uninitialized `z`, every element written.
#[inline(always)]
pub fn zip3_map_uninit<T: Copy>(
    x: &[T],
    y: &[T],
    w: &[T],
    z: &mut [MaybeUninit<T>],
    f: impl Fn(T, T, T) -> T,
) {
    assert!(
        x.len() == z.len() && y.len() == z.len() && w.len() == z.len(),
        "zip3_map_uninit: lengths differ"
    );
    for (((a, b), c), d) in x.iter().zip(y).zip(w).zip(z.iter_mut()) {
        d.write(f(*a, *b, *c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_dots_at_once_have_the_bits_of_one_at_a_time() {
        for n in [0, 1, 15, 16, 17, 64, 172, 1023] {
            let row = |s: usize| -> Vec<f32> {
                (0..n)
                    .map(|i| ((i * 31 + s * 7) % 97) as f32 / 13.0 - 3.5)
                    .collect()
            };
            let (x, ys) = (row(0), [row(1), row(2), row(3), row(4)]);
            let got = dot4(&x, [&ys[0], &ys[1], &ys[2], &ys[3]]);
            for (g, y) in got.iter().zip(&ys) {
                assert_eq!(g.to_bits(), dot(&x, y).to_bits(), "n={n}");
            }
        }
    }

    #[test]
    fn max_and_min_propagate_nan_and_keep_infinities() {
        for n in [1, 7, 31, 32, 33, 65, 1023] {
            for at in [0, n / 2, n - 1] {
                let mut x: Vec<f32> = (0..n).map(|i| (i * 37 % 101) as f32 - 50.0).collect();
                let want_max = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let want_min = x.iter().cloned().fold(f32::INFINITY, f32::min);
                assert_eq!(max(&x), want_max, "max n={n}");
                assert_eq!(min(&x), want_min, "min n={n}");
                x[at] = f32::NAN;
                assert!(max(&x).is_nan() && min(&x).is_nan(), "NaN at {at} of {n}");
                if n > 1 {
                    assert!(!max_skipping_nan(&x).is_nan(), "skipping, n={n}");
                }
                // Both infinities make the running sum NaN without any NaN element.
                x[at] = f32::INFINITY;
                x[0] = f32::NEG_INFINITY;
                if at != 0 {
                    assert_eq!(max(&x), f32::INFINITY, "+inf at {at} of {n}");
                    assert_eq!(min(&x), f32::NEG_INFINITY, "-inf of {n}");
                }
            }
        }
        assert_eq!(max::<f64>(&[]), f64::NEG_INFINITY);
        assert_eq!(min::<f64>(&[]), f64::INFINITY);
        assert_eq!(max_skipping_nan(&[f32::NAN; 5]), f32::NEG_INFINITY);
    }
}
