//! GELU, forward and backward, in both forms.
//!
//! Tanh form (GPT-2): `y = 0.5 x (1 + tanh(u))`, `u = c (x + 0.044715 x^3)`, `c = sqrt(2/pi)`.
//!   `dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) c (1 + 3 * 0.044715 x^2)`.
//! Erf form (exact): `y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))`.
//!   `dy/dx = Phi(x) + x phi(x)`, `phi(x) = exp(-x^2 / 2) / sqrt(2 pi)`.
//!
//! Shapes: any; the backward takes `x` and `dy` of one shape (contiguous) and returns `dx`.

use super::parallel::collect_chunks;
use super::simd;
use crate::backend::Gelu;
use crate::dtype::Float;

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const COEF: f64 = 0.044_715;
const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Tanh-form GELU with exact library math (the reference).
pub fn tanh_reference<T: Float>(x: T) -> T {
    let u = T::from_f64(SQRT_2_OVER_PI) * (x + T::from_f64(COEF) * x * x * x);
    T::from_f64(0.5) * x * (T::ONE + u.tanh())
}

/// Erf-form GELU with exact library math (the reference).
pub fn erf_reference<T: Float>(x: T) -> T {
    T::from_f64(0.5) * x * (T::ONE + (x * T::from_f64(FRAC_1_SQRT_2)).erf())
}

/// Tanh-form GELU with the vectorizable approximations.
#[inline(always)]
pub fn tanh_fast<T: Float>(x: T) -> T {
    let u = T::from_f64(SQRT_2_OVER_PI) * (x + T::from_f64(COEF) * x * x * x);
    T::from_f64(0.5) * x * (T::ONE + u.fast_tanh())
}

/// Erf-form GELU with the vectorizable approximations.
#[inline(always)]
pub fn erf_fast<T: Float>(x: T) -> T {
    T::from_f64(0.5) * x * (T::ONE + (x * T::from_f64(FRAC_1_SQRT_2)).fast_erf())
}

/// `dy/dx` of the tanh form; `exact` picks library math (reference) or the approximations.
#[inline(always)]
fn tanh_derivative<T: Float>(x: T, exact: bool) -> T {
    let c = T::from_f64(SQRT_2_OVER_PI);
    let x2 = x * x;
    let u = c * (x + T::from_f64(COEF) * x2 * x);
    let t = if exact { u.tanh() } else { u.fast_tanh() };
    let half = T::from_f64(0.5);
    half * (T::ONE + t) + half * x * (T::ONE - t * t) * c * (T::ONE + T::from_f64(3.0 * COEF) * x2)
}

/// `dy/dx` of the erf form; `exact` picks library math (reference) or the approximations.
#[inline(always)]
fn erf_derivative<T: Float>(x: T, exact: bool) -> T {
    let z = x * T::from_f64(FRAC_1_SQRT_2);
    let (erf, gauss) = if exact {
        (z.erf(), (-(x * x) * T::from_f64(0.5)).exp())
    } else {
        (z.fast_erf(), (-(x * x) * T::from_f64(0.5)).fast_exp())
    };
    T::from_f64(0.5) * (T::ONE + erf) + x * gauss * T::from_f64(FRAC_1_SQRT_2PI)
}

/// `dx = dy * gelu'(x)` with exact library math (the reference).
pub fn backward_reference<T: Float>(kind: Gelu, x: &[T], dy: &[T]) -> Vec<T> {
    x.iter()
        .zip(dy)
        .map(|(&x, &g)| {
            g * match kind {
                Gelu::Tanh => tanh_derivative(x, true),
                Gelu::Erf => erf_derivative(x, true),
            }
        })
        .collect()
}

/// `dx = dy * gelu'(x)` over contiguous slices, vectorized and threaded.
pub fn backward<T: Float>(kind: Gelu, x: &[T], dy: &[T]) -> Vec<T> {
    assert_eq!(x.len(), dy.len(), "gelu backward: x and dy lengths differ");
    // SAFETY: `zip_map_uninit` writes every element of the chunk.
    unsafe {
        collect_chunks(x.len(), 1, 16, |first, dx| {
            let (x, dy) = (&x[first..first + dx.len()], &dy[first..first + dx.len()]);
            match kind {
                Gelu::Tanh => simd::zip_map_uninit(x, dy, dx, |x, g| g * tanh_derivative(x, false)),
                Gelu::Erf => simd::zip_map_uninit(x, dy, dx, |x, g| g * erf_derivative(x, false)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{assert_close, random_vec};

    #[test]
    fn fast_forward_matches_reference() {
        let x = random_vec::<f32>(10_007, 1);
        for (fast, reference) in [
            (
                tanh_fast::<f32> as fn(f32) -> f32,
                tanh_reference::<f32> as fn(f32) -> f32,
            ),
            (erf_fast::<f32>, erf_reference::<f32>),
        ] {
            let got: Vec<f32> = x.iter().map(|&v| fast(v * 3.0)).collect();
            let want: Vec<f32> = x.iter().map(|&v| reference(v * 3.0)).collect();
            assert_close(&got, &want, 1e-6, 1e-5, "gelu forward");
        }
    }

    #[test]
    fn backward_matches_reference_and_finite_differences() {
        for kind in [Gelu::Tanh, Gelu::Erf] {
            let x = random_vec::<f64>(1023, 2);
            let dy = random_vec::<f64>(1023, 3);
            let got = backward(kind, &x, &dy);
            assert_close(
                &got,
                &backward_reference(kind, &x, &dy),
                1e-12,
                1e-12,
                "f64",
            );
            let f = |v: f64| match kind {
                Gelu::Tanh => tanh_reference(v),
                Gelu::Erf => erf_reference(v),
            };
            let numeric: Vec<f64> = x
                .iter()
                .zip(&dy)
                .map(|(&v, &g)| g * (f(v + 1e-6) - f(v - 1e-6)) / 2e-6)
                .collect();
            assert_close(&got, &numeric, 1e-8, 1e-6, "finite differences");
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
            let got32 = backward(kind, &x32, &dy32);
            assert_close(
                &got32,
                &backward_reference(kind, &x32, &dy32),
                1e-6,
                1e-5,
                "f32",
            );
        }
    }
}
