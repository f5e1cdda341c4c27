//! Elementwise unary ops: `y[i] = f(x[i])` for every [`UnaryOp`], any shape and strides.
//!
//! The reference applies the exact library function to each element through a plain index walk.
//! The fast version runs a vectorized loop per op over contiguous data (a non-contiguous input is
//! first gathered into a contiguous buffer), split across threads for large tensors.

use super::copy::contiguous;
use super::gelu;
use super::parallel::collect_chunks;
use super::simd;
use super::strided::offsets_reference;
use crate::dtype::Float;
use crate::op::UnaryOp;
use crate::Layout;
use std::mem::MaybeUninit;

/// The exact scalar definition of each op.
pub fn apply_reference<T: Float>(op: UnaryOp, x: T) -> T {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => T::ONE / x.sqrt(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => T::ONE / (T::ONE + (-x).exp()),
        UnaryOp::Relu => relu(x),
        UnaryOp::GeluTanh => gelu::tanh_reference(x),
        UnaryOp::GeluErf => gelu::erf_reference(x),
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
        UnaryOp::Abs => x.abs(),
        UnaryOp::Square => x * x,
        UnaryOp::Recip => T::ONE / x,
        UnaryOp::Clamp(lo, hi) => clamp(x, T::from_f64(lo), T::from_f64(hi)),
        UnaryOp::Powf(e) => x.powf(T::from_f64(e)),
        UnaryOp::Affine { mul, add } => x * T::from_f64(mul) + T::from_f64(add),
    }
}

/// `max(x, 0)`, letting NaN through as PyTorch does.
#[inline(always)]
fn relu<T: Float>(x: T) -> T {
    if x < T::ZERO {
        T::ZERO
    } else {
        x
    }
}

/// Compare-based clamp (NaN passes through).
#[inline(always)]
fn clamp<T: Float>(x: T, lo: T, hi: T) -> T {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// Plain reference over any layout.
pub fn unary_reference<T: Float>(op: UnaryOp, src: &[T], layout: &Layout) -> Vec<T> {
    offsets_reference(layout)
        .into_iter()
        .map(|o| apply_reference(op, src[o]))
        .collect()
}

/// Relative cost of one element, to decide when threads pay off.
fn cost(op: UnaryOp) -> usize {
    match op {
        UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Square | UnaryOp::Relu | UnaryOp::Affine { .. } => 1,
        UnaryOp::Clamp(..) | UnaryOp::Recip | UnaryOp::Sqrt | UnaryOp::Rsqrt => 2,
        _ => 16,
    }
}

/// `y = op(x)` over any layout, returning a contiguous buffer.
pub fn unary<T: Float>(op: UnaryOp, src: &[T], layout: &Layout) -> Vec<T> {
    let gathered;
    let x = match layout.contiguous_range() {
        Some(range) => &src[range],
        None => {
            gathered = contiguous(src, layout);
            &gathered[..]
        }
    };
    // SAFETY: `apply_slice` writes every element of `y`.
    unsafe {
        collect_chunks(x.len(), 1, cost(op), |first, y| {
            apply_slice(op, &x[first..first + y.len()], y)
        })
    }
}

/// One vectorized loop per op over contiguous slices, writing every element of `y`.
fn apply_slice<T: Float>(op: UnaryOp, x: &[T], y: &mut [MaybeUninit<T>]) {
    match op {
        UnaryOp::Neg => simd::map_uninit(x, y, |v| -v),
        UnaryOp::Exp => simd::map_uninit(x, y, T::fast_exp),
        UnaryOp::Log => simd::map_uninit(x, y, T::ln),
        UnaryOp::Sqrt => simd::map_uninit(x, y, T::sqrt),
        UnaryOp::Rsqrt => simd::map_uninit(x, y, |v| T::ONE / v.sqrt()),
        UnaryOp::Tanh => simd::map_uninit(x, y, T::fast_tanh),
        UnaryOp::Sigmoid => simd::map_uninit(x, y, |v| T::ONE / (T::ONE + (-v).fast_exp())),
        UnaryOp::Relu => simd::map_uninit(x, y, relu),
        UnaryOp::GeluTanh => simd::map_uninit(x, y, gelu::tanh_fast),
        UnaryOp::GeluErf => simd::map_uninit(x, y, gelu::erf_fast),
        UnaryOp::Sin => simd::map_uninit(x, y, T::sin),
        UnaryOp::Cos => simd::map_uninit(x, y, T::cos),
        UnaryOp::Abs => simd::map_uninit(x, y, T::abs),
        UnaryOp::Square => simd::map_uninit(x, y, |v| v * v),
        UnaryOp::Recip => simd::map_uninit(x, y, |v| T::ONE / v),
        UnaryOp::Clamp(lo, hi) => {
            let (lo, hi) = (T::from_f64(lo), T::from_f64(hi));
            simd::map_uninit(x, y, |v| clamp(v, lo, hi))
        }
        UnaryOp::Powf(e) => {
            let e = T::from_f64(e);
            simd::map_uninit(x, y, |v| v.powf(e))
        }
        UnaryOp::Affine { mul, add } => {
            let (m, a) = (T::from_f64(mul), T::from_f64(add));
            simd::map_uninit(x, y, |v| v * m + a)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{assert_close, random_vec, random_views};

    #[test]
    fn fast_matches_reference_on_all_views() {
        let shapes: &[&[usize]] = &[&[1], &[7], &[1023], &[5, 1, 9], &[3, 4, 5]];
        for op in UnaryOp::ALL {
            for (layout, len) in random_views(shapes) {
                let mut src = random_vec::<f32>(len, 7);
                if op.wants_positive_input() {
                    src.iter_mut().for_each(|v| *v = v.abs() + 0.1);
                }
                let got = unary(op, &src, &layout);
                let want = unary_reference(op, &src, &layout);
                assert_close(&got, &want, 1e-6, 2e-6, &format!("{op:?} f32 {layout:?}"));
                let src64: Vec<f64> = src.iter().map(|&v| v as f64).collect();
                let got = unary(op, &src64, &layout);
                let want = unary_reference(op, &src64, &layout);
                assert_close(&got, &want, 0.0, 1e-15, &format!("{op:?} f64 {layout:?}"));
            }
        }
    }

    #[test]
    fn large_inputs_use_threads_and_agree() {
        let x = random_vec::<f32>(1 << 20, 9);
        let l = Layout::contiguous(&[1 << 20]);
        let got = unary(UnaryOp::GeluTanh, &x, &l);
        assert_close(
            &got,
            &unary_reference(UnaryOp::GeluTanh, &x, &l),
            1e-6,
            2e-6,
            "gelu 1M",
        );
    }

    #[test]
    fn relu_and_clamp_pass_nan() {
        let l = Layout::contiguous(&[1]);
        assert!(unary(UnaryOp::Relu, &[f32::NAN], &l)[0].is_nan());
        assert!(unary(UnaryOp::Clamp(0.0, 1.0), &[f64::NAN], &l)[0].is_nan());
    }
}
