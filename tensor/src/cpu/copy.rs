//! Copies: a strided view into a new contiguous buffer, a strided view into a strided
//! destination (used by `cat` and in-place assignment), and dtype conversion.
//!
//! Math: `out[i] = src[offset + sum_k idx_k(i) * stride_k]` for the row-major index `i`.

use super::parallel::for_each_chunk;
use super::strided::{offsets_reference, Strided};
use crate::dtype::Element;
use crate::Layout;

/// Plain reference: one index computation per element.
pub fn contiguous_reference<T: Copy>(src: &[T], layout: &Layout) -> Vec<T> {
    offsets_reference(layout)
        .into_iter()
        .map(|o| src[o])
        .collect()
}

/// The elements of `src` seen through `layout`, in row-major order.
pub fn contiguous<T: Element>(src: &[T], layout: &Layout) -> Vec<T> {
    if let Some(range) = layout.contiguous_range() {
        return src[range].to_vec();
    }
    let plan = Strided::from_layouts([layout]);
    let [stride] = plan.inner_strides();
    let mut out = vec![T::default(); layout.numel()];
    for_each_chunk(&mut out, 1, 1, |first, chunk| {
        plan.for_each_run(first, first + chunk.len(), |[b], pos, len| {
            let dst = &mut chunk[pos - first..pos - first + len];
            if stride == 1 {
                dst.copy_from_slice(&src[b..b + len]);
            } else {
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = src[b + i * stride];
                }
            }
        });
    });
    out
}

/// Copies `src` seen through `src_layout` into `dst` seen through `dst_layout` (same shape).
/// The destination view must not overlap itself (no stride-0 dims), which callers guarantee by
/// only writing into fresh buffers or narrowed views of them.
pub fn copy_into<T: Element>(src: &[T], src_layout: &Layout, dst: &mut [T], dst_layout: &Layout) {
    debug_assert_eq!(src_layout.shape(), dst_layout.shape());
    let plan = Strided::from_layouts([dst_layout, src_layout]);
    let [ds, ss] = plan.inner_strides();
    plan.for_each_run(0, plan.numel(), |[d, s], _, len| {
        if ds == 1 && ss == 1 {
            dst[d..d + len].copy_from_slice(&src[s..s + len]);
        } else {
            for i in 0..len {
                dst[d + i * ds] = src[s + i * ss];
            }
        }
    });
}

/// Sets every element of `dst` seen through `layout` to `value`.
pub fn fill<T: Element>(dst: &mut [T], layout: &Layout, value: T) {
    if let Some(range) = layout.contiguous_range() {
        dst[range].fill(value);
        return;
    }
    let plan = Strided::from_layouts([layout]);
    let [stride] = plan.inner_strides();
    plan.for_each_run(0, plan.numel(), |[b], _, len| {
        for i in 0..len {
            dst[b + i * stride] = value;
        }
    });
}

/// The elements of `src` seen through `layout`, converted to `U` (through `f64`, which is
/// exact for every supported source but `i64` beyond 2^53; floats round to nearest).
pub fn convert<T: Element, U: Element>(src: &[T], layout: &Layout) -> Vec<U> {
    let values = contiguous(src, layout);
    let mut out = vec![U::default(); values.len()];
    for_each_chunk(&mut out, 1, 4, |first, chunk| {
        for (o, &v) in chunk.iter_mut().zip(&values[first..]) {
            *o = U::from_f64(v.to_f64());
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{random_vec, random_views};
    use half::bf16;

    #[test]
    fn contiguous_matches_reference_on_views() {
        for (layout, len) in random_views(&[&[1], &[7], &[1023], &[3, 5, 7], &[2, 1, 4, 3]]) {
            let src = random_vec::<f32>(len, 1);
            assert_eq!(
                contiguous(&src, &layout),
                contiguous_reference(&src, &layout),
                "{layout:?}"
            );
        }
    }

    #[test]
    fn large_copies_split_across_threads_identically() {
        let l = Layout::contiguous(&[300, 700]).transpose(0, 1).unwrap();
        let src = random_vec::<f64>(300 * 700, 2);
        assert_eq!(contiguous(&src, &l), contiguous_reference(&src, &l));
    }

    #[test]
    fn copy_into_a_narrowed_destination() {
        let src = random_vec::<f32>(6, 3);
        let src_l = Layout::contiguous(&[3, 2]).transpose(0, 1).unwrap();
        let mut dst = vec![0.0f32; 12];
        let dst_l = Layout::contiguous(&[2, 6]).narrow(1, 2, 3).unwrap();
        copy_into(&src, &src_l, &mut dst, &dst_l);
        let got = contiguous(&dst, &dst_l);
        assert_eq!(got, contiguous_reference(&src, &src_l));
        assert_eq!(dst.iter().filter(|&&v| v == 0.0).count(), 6);
    }

    #[test]
    fn conversion_rounds_to_nearest() {
        let src = [1.0f32, 1.0 + 1.0 / 256.0, -3.0e38, 0.1];
        let l = Layout::contiguous(&[4]);
        let out: Vec<bf16> = convert(&src, &l);
        let want: Vec<bf16> = src.iter().map(|&v| bf16::from_f32(v)).collect();
        assert_eq!(out, want);
        let back: Vec<f32> = convert(&out, &l);
        assert_eq!(back[0], 1.0);
    }
}
