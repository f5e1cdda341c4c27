//! Reductions over any set of dims: sum, max and min, and arg-max / arg-min over one dim.
//!
//! `out[k] = reduce_{r} x[k, r]`, where `k` runs over the kept dims (row-major, contiguous
//! output) and `r` over the reduced dims. The input is split into a "kept" view and a "reduced"
//! view. The fast version picks a loop by the strides:
//! - rows: the reduced elements of one output are unit-stride (e.g. a sum over the last dim):
//!   each output is a vectorized sum over a slice; one huge row (a full reduction) is cut into
//!   fixed blocks summed on all threads, then combined in order;
//! - columns: consecutive outputs are unit-stride (e.g. a sum over the batch dim, as in a bias
//!   gradient): whole output rows are accumulated one reduced index at a time, vectorized across
//!   outputs;
//! - anything else: a strided walk per output.
//!
//! Every order of accumulation is fixed by the shapes alone, so results are deterministic.

use super::parallel::{for_each_chunk, par_for_each};
use super::simd;
use super::strided::{offsets_reference, Strided};
use crate::dtype::Float;
use crate::op::ReduceOp;
use crate::Layout;

fn identity<T: Float>(op: ReduceOp) -> T {
    match op {
        ReduceOp::Sum => T::ZERO,
        ReduceOp::Max => T::NEG_INFINITY,
        ReduceOp::Min => T::INFINITY,
        ReduceOp::ArgMax | ReduceOp::ArgMin => unreachable!("arg reductions use arg_reduce"),
    }
}

#[inline(always)]
fn combine<T: Float>(op: ReduceOp, a: T, b: T) -> T {
    match op {
        ReduceOp::Sum => a + b,
        ReduceOp::Max => a.max_nan(b),
        _ => a.min_nan(b),
    }
}

/// Plain reference: for each output, walk its reduced elements in row-major order.
pub fn reduce_reference<T: Float>(
    op: ReduceOp,
    x: &[T],
    layout: &Layout,
    dims: &[usize],
) -> Vec<T> {
    let (kept, red) = layout.split_dims(dims);
    let red_offsets = offsets_reference(&red);
    offsets_reference(&kept)
        .into_iter()
        .map(|k| {
            red_offsets
                .iter()
                .fold(identity(op), |acc, &r| combine(op, acc, x[k + r]))
        })
        .collect()
}

/// Elements per block when one long row is reduced on several threads.
const BLOCK: usize = 1 << 16;

/// Reduces one contiguous slice; long slices are cut into fixed blocks reduced in parallel.
fn reduce_slice<T: Float>(op: ReduceOp, x: &[T]) -> T {
    let block = |s: &[T]| match op {
        ReduceOp::Sum => simd::sum(s),
        ReduceOp::Max => simd::max(s),
        _ => simd::min(s),
    };
    if x.len() <= BLOCK {
        return block(x);
    }
    let mut partials = vec![identity(op); x.len().div_ceil(BLOCK)];
    par_for_each(partials.iter_mut().zip(x.chunks(BLOCK)), |(p, s)| {
        *p = block(s)
    });
    partials
        .into_iter()
        .fold(identity(op), |a, b| combine(op, a, b))
}

/// `out[k] = reduce over dims of x`, for Sum, Max and Min. `dims` are sorted and distinct.
pub fn reduce<T: Float>(op: ReduceOp, x: &[T], layout: &Layout, dims: &[usize]) -> Vec<T> {
    let (kept, red) = layout.split_dims(dims);
    let kept_plan = Strided::from_layouts([&kept]);
    let red_plan = Strided::from_layouts([&red]);
    let (n_out, n_red) = (kept.numel(), red.numel());
    let mut out = vec![identity::<T>(op); n_out];
    if n_out == 0 || n_red == 0 {
        return out;
    }
    let [red_stride] = red_plan.inner_strides();
    let [kept_stride] = kept_plan.inner_strides();
    if red_stride == 1 && red_plan.inner_len() >= 16 {
        // Rows: each output reduces runs of unit-stride elements.
        for_each_chunk(&mut out, 1, n_red, |first, chunk| {
            kept_plan.for_each_run(first, first + chunk.len(), |[k0], pos, len| {
                for (i, o) in chunk[pos - first..pos - first + len].iter_mut().enumerate() {
                    let base = k0 + i * kept_stride;
                    let mut acc = identity(op);
                    red_plan.for_each_run(0, n_red, |[r0], _, rlen| {
                        acc = combine(op, acc, reduce_slice(op, &x[base + r0..base + r0 + rlen]));
                    });
                    *o = acc;
                }
            });
        });
    } else if kept_stride == 1 && kept_plan.inner_len() >= 16 {
        // Columns: accumulate whole runs of outputs, one reduced element at a time.
        for_each_chunk(&mut out, 1, n_red, |first, chunk| {
            kept_plan.for_each_run(first, first + chunk.len(), |[k0], pos, len| {
                let acc = &mut chunk[pos - first..pos - first + len];
                red_plan.for_each_run(0, n_red, |[r0], _, rlen| {
                    for j in 0..rlen {
                        let row = &x[k0 + r0 + j * red_stride..][..len];
                        match op {
                            ReduceOp::Sum => simd::axpy(T::ONE, row, acc),
                            _ => {
                                for (a, &v) in acc.iter_mut().zip(row) {
                                    *a = combine(op, *a, v);
                                }
                            }
                        }
                    }
                });
            });
        });
    } else {
        // General strided walk per output.
        for_each_chunk(&mut out, 1, n_red, |first, chunk| {
            kept_plan.for_each_run(first, first + chunk.len(), |[k0], pos, len| {
                for (i, o) in chunk[pos - first..pos - first + len].iter_mut().enumerate() {
                    let base = k0 + i * kept_stride;
                    let mut acc = identity(op);
                    red_plan.for_each_run(0, n_red, |[r0], _, rlen| {
                        for j in 0..rlen {
                            acc = combine(op, acc, x[base + r0 + j * red_stride]);
                        }
                    });
                    *o = acc;
                }
            });
        });
    }
    out
}

/// Index of the first maximum (or minimum) along `dim`; NaN counts as the extreme.
pub fn arg_reduce<T: Float>(op: ReduceOp, x: &[T], layout: &Layout, dim: usize) -> Vec<u32> {
    let (kept, red) = layout.split_dims(&[dim]);
    let kept_offsets = offsets_reference(&kept);
    let (n, stride) = (red.shape()[0], red.strides()[0]);
    let better = |cand: T, best: T| match op {
        ReduceOp::ArgMax => cand > best || (cand.is_nan() && !best.is_nan()),
        _ => cand < best || (cand.is_nan() && !best.is_nan()),
    };
    let mut out = vec![0u32; kept_offsets.len()];
    for_each_chunk(&mut out, 1, n, |first, chunk| {
        for (o, &base) in chunk.iter_mut().zip(&kept_offsets[first..]) {
            let mut best = (0, x[base]);
            for j in 1..n {
                let v = x[base + j * stride];
                if better(v, best.1) {
                    best = (j, v);
                }
            }
            *o = best.0 as u32;
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{assert_close, random_vec, views_of};

    #[test]
    fn fast_matches_reference_for_every_dim_set() {
        let shapes: [&[usize]; 4] = [&[1023], &[7, 33], &[3, 5, 17], &[2, 1, 4, 19]];
        for shape in shapes {
            let rank = shape.len();
            for (layout, len) in views_of(shape) {
                let x = random_vec::<f64>(len, 3);
                for mask in 1..(1u32 << rank) {
                    let dims: Vec<usize> = (0..rank).filter(|d| mask & (1 << d) != 0).collect();
                    for op in ReduceOp::ALL.into_iter().filter(ReduceOp::gives_values) {
                        let got = reduce(op, &x, &layout, &dims);
                        let want = reduce_reference(op, &x, &layout, &dims);
                        assert_close(
                            &got,
                            &want,
                            1e-12,
                            1e-12,
                            &format!("{op:?} {dims:?} {layout:?}"),
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn full_sum_of_a_long_row_is_deterministic_and_close() {
        let x = random_vec::<f32>(1_000_003, 5);
        let l = Layout::contiguous(&[1_000_003]);
        let a = reduce(ReduceOp::Sum, &x, &l, &[0]);
        let b = reduce(ReduceOp::Sum, &x, &l, &[0]);
        assert_eq!(a, b);
        let exact: f64 = x.iter().map(|&v| v as f64).sum();
        assert!((a[0] as f64 - exact).abs() < 1e-2, "{} vs {exact}", a[0]);
    }

    #[test]
    fn column_sums_match_reference() {
        let x = random_vec::<f32>(4096 * 385, 6);
        let l = Layout::contiguous(&[4096, 385]);
        let got = reduce(ReduceOp::Sum, &x, &l, &[0]);
        let want = reduce_reference(ReduceOp::Sum, &x, &l, &[0]);
        assert_close(&got, &want, 1e-4, 1e-5, "column sum");
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        let x = [1.0f32, 3.0, 3.0, 2.0, 5.0, 5.0];
        let l = Layout::contiguous(&[2, 3]);
        assert_eq!(arg_reduce(ReduceOp::ArgMax, &x, &l, 1), vec![1, 1]);
        assert_eq!(arg_reduce(ReduceOp::ArgMax, &x, &l, 0), vec![1, 1, 1]);
        assert_eq!(arg_reduce(ReduceOp::ArgMin, &x, &l, 1), vec![0, 0]);
        let lt = l.transpose(0, 1).unwrap();
        assert_eq!(arg_reduce(ReduceOp::ArgMax, &x, &lt, 0), vec![1, 1]);
    }
}
