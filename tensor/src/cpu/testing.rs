//! Test helpers for kernels: random data, a zoo of strided views of a given shape, and a
//! tolerance check that names the worst element.

use crate::dtype::Element;
use crate::Layout;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `len` values uniform in [-2, 2) from a fixed seed.
pub fn random_vec<T: Element>(len: usize, seed: u64) -> Vec<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| T::from_f64(rng.gen_range(-2.0..2.0)))
        .collect()
}

/// Views with logical shape `shape` laid over storage in different ways: contiguous, offset,
/// permuted (transposed storage), narrowed (padded storage), and broadcast (stride 0 in the
/// first dim of size > 1). Returns each layout with the storage length it needs.
pub fn views_of(shape: &[usize]) -> Vec<(Layout, usize)> {
    let mut out = vec![];
    let numel: usize = shape.iter().product();
    out.push((Layout::contiguous(shape), numel));
    // Offset: the data starts 3 elements into the buffer.
    let l = Layout::new(
        shape.to_vec(),
        Layout::contiguous(shape).strides().to_vec(),
        3,
    );
    out.push((l, numel + 3));
    // Permuted: storage holds the reversed shape; reversing the dims gives `shape` back.
    if shape.len() >= 2 {
        let rev: Vec<usize> = shape.iter().rev().cloned().collect();
        let dims: Vec<usize> = (0..shape.len()).rev().collect();
        let l = Layout::contiguous(&rev).permute(&dims).unwrap();
        out.push((l, numel));
    }
    // Narrowed: the last dim is padded by 2 in storage and we view the middle.
    if let Some(&last) = shape.last() {
        let mut padded = shape.to_vec();
        *padded.last_mut().unwrap() = last + 2;
        let l = Layout::contiguous(&padded)
            .narrow(shape.len() - 1, 1, last)
            .unwrap();
        let len = padded.iter().product();
        out.push((l, len));
    }
    // Broadcast: the first dim of size > 1 comes from a single stored slice.
    if let Some(d) = shape.iter().position(|&s| s > 1) {
        let mut small = shape.to_vec();
        small[d] = 1;
        let l = Layout::contiguous(&small).broadcast_to(shape).unwrap();
        out.push((l, small.iter().product()));
    }
    out
}

/// [`views_of`] for each shape in a list.
pub fn random_views(shapes: &[&[usize]]) -> Vec<(Layout, usize)> {
    shapes.iter().flat_map(|s| views_of(s)).collect()
}

/// Panics, naming the worst element, unless `|got - want| <= atol + rtol * |want|` everywhere.
#[track_caller]
pub fn assert_close<T: Element>(got: &[T], want: &[T], atol: f64, rtol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst: Option<(usize, f64)> = None;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.to_f64(), w.to_f64());
        if g.is_nan() && w.is_nan() || g == w {
            continue;
        }
        let excess = (g - w).abs() - (atol + rtol * w.abs());
        if excess > 0.0 || g.is_nan() != w.is_nan() {
            let excess = if excess.is_nan() {
                f64::INFINITY
            } else {
                excess
            };
            if worst.is_none_or(|(_, e)| excess > e) {
                worst = Some((i, excess));
            }
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: element {i} is {:?}, expected {:?} (atol {atol}, rtol {rtol})",
            got[i], want[i]
        );
    }
}
