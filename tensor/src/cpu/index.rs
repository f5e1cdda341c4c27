//! Indexing along a dim: index_select (and embedding lookup), its adjoint index_add (the
//! embedding backward), gather, and its adjoint scatter_add.
//!
//! Writing the input as `(O, S, I)` around the indexed dim (outer, size, inner):
//! - `index_select`: `out[o, j, i] = x[o, ids[j], i]`, out `(O, J, I)`;
//! - `index_add`:    `dst[o, ids[j], i] += src[o, j, i]`, dst `(O, S, I)` starting at zero;
//! - `gather`:       `out[p] = x[p with p[dim] replaced by idx[p]]`, out shaped like `idx`;
//! - `scatter_add`:  `dst[p with p[dim] replaced by idx[p]] += src[p]`.
//!
//! Indices arrive validated (`< S`) and contiguous. Accumulation happens in index order, so
//! repeated ids (the same token twice in a batch) add up deterministically.

use super::copy::contiguous;
use super::parallel::for_each_chunk;
use super::strided::{offsets_reference, Strided};
use crate::dtype::{Element, Float};
use crate::layout::sizes_around;
use crate::Layout;

/// Plain reference for index_select.
pub fn index_select_reference<T: Element>(
    x: &[T],
    xl: &Layout,
    dim: usize,
    ids: &[usize],
) -> Vec<T> {
    let x = contiguous(x, xl);
    let (o, s, inner) = sizes_around(xl.shape(), dim);
    let mut out = Vec::with_capacity(o * ids.len() * inner);
    for oi in 0..o {
        for &id in ids {
            for ii in 0..inner {
                out.push(x[(oi * s + id) * inner + ii]);
            }
        }
    }
    out
}

/// `out[o, j, :] = x[o, ids[j], :]`: one slice copy per selected row, threaded.
pub fn index_select<T: Element>(x: &[T], xl: &Layout, dim: usize, ids: &[usize]) -> Vec<T> {
    let gathered;
    let x = match xl.contiguous_range() {
        Some(r) => &x[r],
        None => {
            gathered = contiguous(x, xl);
            &gathered[..]
        }
    };
    let (_, s, inner) = sizes_around(xl.shape(), dim);
    let (o, j) = (xl.shape()[..dim].iter().product::<usize>(), ids.len());
    let mut out = vec![T::default(); o * j * inner];
    if inner == 0 {
        return out;
    }
    for_each_chunk(&mut out, inner, inner, |first, chunk| {
        for (r, row) in chunk.chunks_mut(inner).enumerate() {
            let (oi, ji) = ((first + r) / j, (first + r) % j);
            let src = (oi * s + ids[ji]) * inner;
            row.copy_from_slice(&x[src..src + inner]);
        }
    });
    out
}

/// Plain reference for index_add into a zero `(O, size, I)` buffer.
pub fn index_add_reference<T: Float>(
    src: &[T],
    src_shape: &[usize],
    dim: usize,
    ids: &[usize],
    size: usize,
) -> Vec<T> {
    let (o, j, inner) = sizes_around(src_shape, dim);
    let mut dst = vec![T::ZERO; o * size * inner];
    for oi in 0..o {
        for (ji, &id) in ids.iter().enumerate().take(j) {
            for ii in 0..inner {
                dst[(oi * size + id) * inner + ii] += src[(oi * j + ji) * inner + ii];
            }
        }
    }
    dst
}

/// `dst[o, ids[j], :] += src[o, j, :]` into zeros of `(O, size, I)`; `src` is contiguous.
///
/// Threads own disjoint ranges of destination rows `(o, s)`; each scans all ids of its outer
/// index and adds the source rows that land in its range. Every output row is thus accumulated
/// by one thread, in id order.
pub fn index_add<T: Float>(
    src: &[T],
    src_shape: &[usize],
    dim: usize,
    ids: &[usize],
    size: usize,
) -> Vec<T> {
    let (o, j, inner) = sizes_around(src_shape, dim);
    let mut dst = vec![T::ZERO; o * size * inner];
    if dst.is_empty() {
        return dst;
    }
    let work_per_row = (j * inner).div_ceil(size.max(1)) + j;
    for_each_chunk(&mut dst, inner, work_per_row, |first, chunk| {
        let rows = chunk.len() / inner;
        for oi in first / size..=(first + rows - 1) / size {
            let lo = (oi * size).max(first);
            let hi = ((oi + 1) * size).min(first + rows);
            for (ji, &id) in ids.iter().enumerate().take(j) {
                let row = oi * size + id;
                if row < lo || row >= hi {
                    continue;
                }
                let d = &mut chunk[(row - first) * inner..(row - first + 1) * inner];
                let s = &src[(oi * j + ji) * inner..(oi * j + ji + 1) * inner];
                for (a, &b) in d.iter_mut().zip(s) {
                    *a += b;
                }
            }
        }
    });
    dst
}

/// The view of `x` that lines up with `idx_shape`: each non-`dim` axis is cut to the index's
/// size and the `dim` axis gets stride 0 (its position comes from the index values).
fn aligned_view(xl: &Layout, idx_shape: &[usize], dim: usize) -> Layout {
    let mut strides = xl.strides().to_vec();
    strides[dim] = 0;
    Layout::new(idx_shape.to_vec(), strides, xl.offset())
}

/// Plain reference for gather.
pub fn gather_reference<T: Element>(
    x: &[T],
    xl: &Layout,
    dim: usize,
    idx: &[usize],
    idx_shape: &[usize],
) -> Vec<T> {
    let view = aligned_view(xl, idx_shape, dim);
    let step = xl.strides()[dim];
    offsets_reference(&view)
        .into_iter()
        .zip(idx)
        .map(|(base, &i)| x[base + i * step])
        .collect()
}

/// `out[p] = x[p with p[dim] = idx[p]]`; `idx` is contiguous with shape `idx_shape`.
pub fn gather<T: Element>(
    x: &[T],
    xl: &Layout,
    dim: usize,
    idx: &[usize],
    idx_shape: &[usize],
) -> Vec<T> {
    let view = aligned_view(xl, idx_shape, dim);
    let step = xl.strides()[dim];
    let plan = Strided::from_layouts([&view]);
    let [stride] = plan.inner_strides();
    let mut out = vec![T::default(); idx.len()];
    for_each_chunk(&mut out, 1, 1, |first, chunk| {
        plan.for_each_run(first, first + chunk.len(), |[b], pos, len| {
            for t in 0..len {
                chunk[pos - first + t] = x[b + t * stride + idx[pos + t] * step];
            }
        });
    });
    out
}

/// `dst[p with p[dim] = idx[p]] += src[p]` into zeros of `dst_shape`; `src` and `idx` are
/// contiguous with shape `idx_shape`. Serial, in row-major order of `p`.
pub fn scatter_add<T: Float>(
    src: &[T],
    idx: &[usize],
    idx_shape: &[usize],
    dim: usize,
    dst_shape: &[usize],
) -> Vec<T> {
    let dl = Layout::contiguous(dst_shape);
    let view = aligned_view(&dl, idx_shape, dim);
    let step = dl.strides()[dim];
    let mut dst = vec![T::ZERO; dl.numel()];
    for ((base, &i), &v) in offsets_reference(&view).into_iter().zip(idx).zip(src) {
        dst[base + i * step] += v;
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{assert_close, random_vec, views_of};

    #[test]
    fn index_select_matches_reference_on_views() {
        for (layout, len) in views_of(&[5, 7, 3]) {
            let x = random_vec::<f32>(len, 1);
            for dim in 0..3 {
                let size = layout.shape()[dim];
                let ids: Vec<usize> = (0..9).map(|i| (i * 5 + 1) % size).collect();
                let got = index_select(&x, &layout, dim, &ids);
                assert_eq!(
                    got,
                    index_select_reference(&x, &layout, dim, &ids),
                    "{layout:?} dim {dim}"
                );
            }
        }
    }

    #[test]
    fn index_add_accumulates_repeated_ids() {
        let (v, c, n) = (11, 130, 1023);
        let src = random_vec::<f64>(n * c, 2);
        let ids: Vec<usize> = (0..n).map(|i| (i * i) % v).collect();
        let got = index_add(&src, &[n, c], 0, &ids, v);
        assert_close(
            &got,
            &index_add_reference(&src, &[n, c], 0, &ids, v),
            1e-12,
            1e-12,
            "dim 0",
        );
        let src = random_vec::<f64>(3 * 7 * 5, 3);
        let ids = [2, 0, 2, 1, 2, 0, 1];
        let got = index_add(&src, &[3, 7, 5], 1, &ids, 4);
        assert_close(
            &got,
            &index_add_reference(&src, &[3, 7, 5], 1, &ids, 4),
            1e-12,
            1e-12,
            "dim 1",
        );
    }

    #[test]
    fn gather_and_scatter_add_are_adjoint() {
        // <gather(x), s> == <x, scatter_add(s)> for any x and s.
        for (layout, len) in views_of(&[4, 6, 5]) {
            let x = random_vec::<f64>(len, 4);
            for dim in 0..3 {
                let mut idx_shape = vec![3, 5, 4];
                idx_shape[dim] = 7;
                let n: usize = idx_shape.iter().product();
                let size = layout.shape()[dim];
                let idx: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % size).collect();
                let got = gather(&x, &layout, dim, &idx, &idx_shape);
                assert_eq!(got, gather_reference(&x, &layout, dim, &idx, &idx_shape));
                let s = random_vec::<f64>(n, 5);
                let back = scatter_add(&s, &idx, &idx_shape, dim, layout.shape());
                let xc = contiguous(&x, &layout);
                let lhs: f64 = got.iter().zip(&s).map(|(a, b)| a * b).sum();
                let rhs: f64 = xc.iter().zip(&back).map(|(a, b)| a * b).sum();
                assert!((lhs - rhs).abs() < 1e-10, "{lhs} vs {rhs}");
            }
        }
    }
}
