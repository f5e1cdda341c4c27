//! Element types a tensor can hold, and the traits kernels are generic over.
//!
//! `f32` is the training type and `f64` the gradient-check and reference type: every
//! float kernel exists for both. `f16` and `bf16` are storage types (checkpoints, later mixed
//! precision) that convert to and from `f32`. `u8` holds boolean masks (0 or 1), and `u32` and
//! `i64` hold token ids and indices.

use half::{bf16, f16};
use std::fmt;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit IEEE float, the training type.
    F32,
    /// 64-bit IEEE float, for gradient checks and references.
    F64,
    /// 16-bit IEEE half float; a storage type (math ops take only `f32` and `f64`).
    F16,
    /// bfloat16 (8 exponent, 7 mantissa bits); a storage type like `F16`.
    BF16,
    /// Unsigned byte; boolean masks hold 0 or 1.
    U8,
    /// Unsigned 32-bit integer (token ids, arg-max results).
    U32,
    /// Signed 64-bit integer (indices).
    I64,
}

impl DType {
    /// Every dtype, in a fixed order.
    pub const ALL: [DType; 7] = [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::U8,
        DType::U32,
        DType::I64,
    ];

    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::U32 => 4,
            DType::F64 | DType::I64 => 8,
        }
    }

    /// True for the floating-point dtypes.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// True for the dtypes that index ops accept as indices.
    pub fn is_index(self) -> bool {
        matches!(self, DType::U32 | DType::I64)
    }

    /// The short lowercase name (`f32`, `bf16`, ...), as used in file formats.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::U8 => "u8",
            DType::U32 => "u32",
            DType::I64 => "i64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A type that can be stored in a tensor.
pub trait Element:
    Copy + Send + Sync + fmt::Debug + PartialEq + Default + bytemuck::Pod + 'static
{
    /// The dtype tag of this element type.
    const DTYPE: DType;
    /// Lossless for every type but `i64` beyond 2^53.
    fn to_f64(self) -> f64;
    /// Rounds to the nearest representable value (saturating for integers).
    fn from_f64(v: f64) -> Self;
}

macro_rules! element_impl {
    ($t:ty, $dtype:expr, $to:expr, $from:expr) => {
        impl Element for $t {
            const DTYPE: DType = $dtype;
            #[inline]
            fn to_f64(self) -> f64 {
                $to(self)
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                $from(v)
            }
        }
    };
}

element_impl!(f32, DType::F32, |x: f32| x as f64, |v: f64| v as f32);
element_impl!(f64, DType::F64, |x: f64| x, |v: f64| v);
element_impl!(f16, DType::F16, |x: f16| x.to_f64(), f16::from_f64);
element_impl!(bf16, DType::BF16, |x: bf16| x.to_f64(), bf16::from_f64);
element_impl!(u8, DType::U8, |x: u8| x as f64, |v: f64| v as u8);
element_impl!(u32, DType::U32, |x: u32| x as f64, |v: f64| v as u32);
element_impl!(i64, DType::I64, |x: i64| x as f64, |v: f64| v as i64);

/// An index element (`u32` or `i64`) usable by gather, index_select and embedding.
pub trait IndexElement: Element {
    /// The index as `usize`, or `None` when it is negative.
    fn to_index(self) -> Option<usize>;
}

impl IndexElement for u32 {
    #[inline]
    fn to_index(self) -> Option<usize> {
        Some(self as usize)
    }
}

impl IndexElement for i64 {
    #[inline]
    fn to_index(self) -> Option<usize> {
        usize::try_from(self).ok()
    }
}

/// The floating-point types every math kernel is written for: `f32` and `f64`.
///
/// The `fast_*` functions are what the optimized kernels call: for `f32` they are branch-free
/// polynomial approximations that the compiler vectorizes (accurate to a few ulp); for `f64`
/// they are the exact library functions, so gradient checks run on exact math.
pub trait Float:
    Element
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + std::iter::Sum
{
    /// Additive identity, `0`.
    const ZERO: Self;
    /// Multiplicative identity, `1`.
    const ONE: Self;
    /// Positive infinity.
    const INFINITY: Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;

    /// Converts from `f32` (exact for both implementing types).
    fn from_f32(v: f32) -> Self;
    /// Converts a count through `f64` (rounds above 2^24 for `f32`, 2^53 for `f64`).
    fn from_usize(v: usize) -> Self {
        Self::from_f64(v as f64)
    }
    /// `e^self`, the library function.
    fn exp(self) -> Self;
    /// Natural logarithm, the library function.
    fn ln(self) -> Self;
    /// Square root (NaN for negative input).
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent, the library function.
    fn tanh(self) -> Self;
    /// Sine, argument in radians.
    fn sin(self) -> Self;
    /// Cosine, argument in radians.
    fn cos(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `self ^ e`.
    fn powf(self, e: Self) -> Self;
    /// The error function, `erf(x) = 2/sqrt(pi) * integral from 0 to x of e^(-t^2) dt`
    /// (from `libm`).
    fn erf(self) -> Self;
    /// True when the value is NaN.
    fn is_nan(self) -> bool;
    /// `max` that propagates NaN, like PyTorch's `maximum`.
    fn max_nan(self, other: Self) -> Self {
        if self.is_nan() || self > other {
            self
        } else {
            other
        }
    }
    /// `min` that propagates NaN, like PyTorch's `minimum`.
    fn min_nan(self, other: Self) -> Self {
        if self.is_nan() || self < other {
            self
        } else {
            other
        }
    }
    /// Fast `exp` for vectorized kernels (see the trait doc).
    fn fast_exp(self) -> Self {
        self.fast_exp_with::<false>()
    }
    /// [`Float::fast_exp`], its polynomial on fused multiply-adds when `FUSED`: only for code
    /// compiled for a CPU with FMA (see [`crate::cpu::math::mul_add`]).
    fn fast_exp_with<const FUSED: bool>(self) -> Self;
    /// Fast `tanh` for vectorized kernels (see the trait doc).
    fn fast_tanh(self) -> Self;
    /// Fast `erf` for vectorized kernels (see the trait doc).
    fn fast_erf(self) -> Self;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const INFINITY: Self = f32::INFINITY;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    #[inline]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline]
    fn exp(self) -> Self {
        f32::exp(self)
    }
    #[inline]
    fn ln(self) -> Self {
        f32::ln(self)
    }
    #[inline]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline]
    fn tanh(self) -> Self {
        f32::tanh(self)
    }
    #[inline]
    fn sin(self) -> Self {
        f32::sin(self)
    }
    #[inline]
    fn cos(self) -> Self {
        f32::cos(self)
    }
    #[inline]
    fn abs(self) -> Self {
        f32::abs(self)
    }
    #[inline]
    fn powf(self, e: Self) -> Self {
        f32::powf(self, e)
    }
    #[inline]
    fn erf(self) -> Self {
        libm::erff(self)
    }
    #[inline]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline(always)]
    fn fast_exp_with<const FUSED: bool>(self) -> Self {
        crate::cpu::math::exp_f32::<FUSED>(self)
    }
    #[inline(always)]
    fn fast_tanh(self) -> Self {
        crate::cpu::math::tanh_f32(self)
    }
    #[inline(always)]
    fn fast_erf(self) -> Self {
        crate::cpu::math::erf_f32(self)
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const INFINITY: Self = f64::INFINITY;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    #[inline]
    fn from_f32(v: f32) -> Self {
        v as f64
    }
    #[inline]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    #[inline]
    fn sin(self) -> Self {
        f64::sin(self)
    }
    #[inline]
    fn cos(self) -> Self {
        f64::cos(self)
    }
    #[inline]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline]
    fn powf(self, e: Self) -> Self {
        f64::powf(self, e)
    }
    #[inline]
    fn erf(self) -> Self {
        libm::erf(self)
    }
    #[inline]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    #[inline(always)]
    fn fast_exp_with<const FUSED: bool>(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn fast_tanh(self) -> Self {
        f64::tanh(self)
    }
    #[inline(always)]
    fn fast_erf(self) -> Self {
        libm::erf(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_rust_types() {
        assert_eq!(DType::F32.size_in_bytes(), std::mem::size_of::<f32>());
        assert_eq!(DType::BF16.size_in_bytes(), std::mem::size_of::<bf16>());
        assert_eq!(DType::I64.size_in_bytes(), std::mem::size_of::<i64>());
    }

    #[test]
    fn max_and_min_propagate_nan() {
        assert!(f32::NAN.max_nan(1.0).is_nan());
        assert!(1.0f32.max_nan(f32::NAN).is_nan());
        assert!(f64::NAN.min_nan(1.0).is_nan());
        assert!(1.0f64.min_nan(f64::NAN).is_nan());
        assert_eq!(2.0f32.max_nan(3.0), 3.0);
        assert_eq!(2.0f64.min_nan(3.0), 2.0);
    }
}
