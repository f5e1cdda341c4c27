//! Branch-free `f32` approximations of exp, tanh and erf that the compiler can vectorize.
//!
//! The standard library's `f32::exp` is a call into libm, which stops loops from vectorizing.
//! These versions are straight-line arithmetic plus compare-selects, so a loop calling them
//! compiles to SIMD code (AVX-512, AVX2 or SSE2, whatever [`super::simd`] dispatched). Each is
//! tested against libm over a dense sweep of inputs; NaN propagates and infinities map to the
//! right limits.

/// `a * b + c`: one fused multiply-add (a single rounding) when `FUSED`, else a multiply and
/// an add. Only code compiled for a CPU with FMA may pass `FUSED = true`: elsewhere the fused
/// form is a library call per element, correct but slow, and it stops loops from vectorizing.
#[inline(always)]
pub fn mul_add<const FUSED: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FUSED {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `e^x` with relative error below 3e-7 (a few ulp); below `e^-86.5` (about 3e-38, near the
/// end of the normal `f32` range) it flushes to 0. `FUSED` as in [`mul_add`]: fused, the
/// polynomial costs half the instructions (the results differ in the last bits).
///
/// Range reduction: `x = n ln2 + r` with integer `n` and `|r| <= ln2/2`, so `e^x = 2^n e^r`.
/// `n` is rounded by the float-add trick (adding 1.5 * 2^23 leaves the nearest integer in the
/// low mantissa bits), `ln2` is split in a high and a low part so `r` keeps its precision
/// (Cody and Waite), `e^r` is its Taylor series to degree 7, and `2^n` is built in the exponent
/// bits, in two factors so that `n = 128` does not overflow early.
/// Accuracy: Taylor truncation below 1e-8; float rounding brings the total to 3e-7.
#[inline(always)]
pub fn exp_f32<const FUSED: bool>(x: f32) -> f32 {
    const LO: f32 = -86.5;
    const HI: f32 = 88.722_83;
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const SHIFTER: f32 = 12_582_912.0; // 1.5 * 2^23
    /// Taylor coefficients `1/k!`, highest degree first.
    const TAYLOR: [f32; 8] = [
        1.0 / 5040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
    let fma = mul_add::<FUSED>;
    // `clamp` compares, so NaN passes through (f32::max would swallow it).
    let xc = x.clamp(LO, HI);
    let t = fma(xc, LOG2E, SHIFTER);
    let n = t - SHIFTER;
    let r = fma(n, -LN2_LO, fma(n, -LN2_HI, xc));
    let p = TAYLOR[1..].iter().fold(TAYLOR[0], |p, &c| fma(p, r, c));
    let ni = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    let scale = f32::from_bits((ni.wrapping_add(126) << 23) as u32);
    let y = p * scale * 2.0;
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else {
        y
    }
}

/// `tanh(x)` with relative error below 3e-7.
///
/// Small `|x| < 0.625`: an odd minimax polynomial (Cephes' `tanhf` coefficients), which keeps
/// full relative precision near zero. Otherwise `1 - 2 / (e^(2|x|) + 1)` with the sign of `x`.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let ax = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328e-1)
            * z
            * x
            + x;
    let big = 1.0 - 2.0 / (exp_f32::<false>(2.0 * ax) + 1.0);
    let big = if x < 0.0 { -big } else { big };
    if ax < 0.625 {
        small
    } else {
        big
    }
}

/// `erf(x)` with absolute error below 3e-7. Small `|x| < 0.5`: the Taylor series
/// `2/sqrt(pi) (x - x^3/3 + x^5/10 - x^7/42 + x^9/216 - x^11/1320)`. Otherwise through `erfc`:
/// `erfc(x) = t exp(-x^2 + P(t))` with `t = 1 / (1 + x/2)` and `P` the degree-9 Chebyshev fit
/// of Numerical Recipes' `erfcc` (fractional error below 1.2e-7); `erf = 1 - erfc`, odd in `x`.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let ax = x.abs();
    let t = 1.0 / (1.0 + 0.5 * ax);
    let p = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_204
                                + t * (1.488_515_9 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let big = 1.0 - t * exp_f32::<false>(-ax * ax + p);
    let big = if x < 0.0 { -big } else { big };
    let z = x * x;
    let small = std::f32::consts::FRAC_2_SQRT_PI
        * x
        * (1.0 + z * (-1.0 / 3.0 + z * (0.1 + z * (-1.0 / 42.0 + z * (1.0 / 216.0 - z / 1320.0)))));
    if ax < 0.5 {
        small
    } else {
        big
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep() -> impl Iterator<Item = f32> {
        (-200_000..=200_000).map(|i| i as f32 * 4.5e-4)
    }

    /// `exp_f32`, fused or not.
    fn both_exps() -> [fn(f32) -> f32; 2] {
        [exp_f32::<false>, exp_f32::<true>]
    }

    #[test]
    fn exp_matches_libm() {
        for (exp_f32, x) in both_exps()
            .into_iter()
            .flat_map(|e| sweep().map(move |x| (e, x * 2.0)))
        {
            let (got, want) = (exp_f32(x), x.exp());
            if x < -86.5 {
                // Below e^-86.5 the result flushes to zero (libm returns tiny values).
                assert!(got == 0.0 && want < 3e-38, "exp({x}) = {got}, want {want}");
            } else {
                assert!(
                    got == want || (got - want).abs() <= 3e-7 * want,
                    "exp({x}) = {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn exp_limits_and_nan() {
        for exp_f32 in both_exps() {
            exp_limits(exp_f32);
        }
    }

    fn exp_limits(exp_f32: fn(f32) -> f32) {
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(0.0), 1.0);
        let big = 88.4f32;
        assert!((exp_f32(big) - big.exp()).abs() <= 3e-7 * big.exp());
    }

    #[test]
    fn tanh_matches_libm() {
        for x in sweep() {
            let (got, want) = (tanh_f32(x), x.tanh());
            assert!(
                (got - want).abs() <= 3e-7 * want.abs() + 1e-30,
                "tanh({x}) = {got}, want {want}"
            );
        }
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn erf_matches_libm() {
        for x in sweep().map(|x| x / 10.0) {
            let (got, want) = (erf_f32(x), libm::erff(x));
            assert!((got - want).abs() <= 3e-7, "erf({x}) = {got}, want {want}");
        }
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
    }
}
