//! CPU storage and kernels.
//!
//! Each kernel family lives in its own file: a doc comment with the math and shapes, a plain
//! reference implementation (`*_reference`), the optimized version (SIMD through
//! runtime-dispatched vectorized loops, rayon above a size threshold), and tests that hold the
//! optimized version to the reference on random, odd-sized, non-contiguous, broadcast and offset
//! inputs. What the kernels are built from (vector loop bodies, threads, strided walks) is in
//! [`support`], whose modules are re-exported here under their own names.

pub mod adamw;
pub mod attention;
pub mod attention_decode;
pub mod backend;
pub mod binary;
pub mod copy;
pub mod cross_entropy;
pub mod gelu;
pub mod gemm;
pub mod index;
pub mod layer_norm;
pub mod matmul;
pub mod reduce;
pub mod rms_norm;
pub mod rope;
pub mod softmax;
pub mod support;
pub mod unary;
pub mod where_cond;

#[cfg(test)]
pub(crate) mod testing;

pub use support::{lanes, math, parallel, pool, simd, strided};

use crate::dtype::{DType, Element};
use half::{bf16, f16};

/// A CPU buffer of one dtype. Its elements are addressed through a [`crate::Layout`].
#[derive(Clone, Debug, PartialEq)]
pub enum CpuStorage {
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f64` elements.
    F64(Vec<f64>),
    /// `f16` elements.
    F16(Vec<f16>),
    /// `bf16` elements.
    BF16(Vec<bf16>),
    /// `u8` elements.
    U8(Vec<u8>),
    /// `u32` elements.
    U32(Vec<u32>),
    /// `i64` elements.
    I64(Vec<i64>),
}

impl CpuStorage {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::U8(_) => DType::U8,
            CpuStorage::U32(_) => DType::U32,
            CpuStorage::I64(_) => DType::I64,
        }
    }

    /// Number of elements in the buffer.
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
            CpuStorage::F16(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
            CpuStorage::U8(v) => v.len(),
            CpuStorage::U32(v) => v.len(),
            CpuStorage::I64(v) => v.len(),
        }
    }

    /// True when the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer as raw little-endian bytes (all supported hosts are little-endian).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            CpuStorage::F32(v) => bytemuck::cast_slice(v),
            CpuStorage::F64(v) => bytemuck::cast_slice(v),
            CpuStorage::F16(v) => bytemuck::cast_slice(v),
            CpuStorage::BF16(v) => bytemuck::cast_slice(v),
            CpuStorage::U8(v) => v,
            CpuStorage::U32(v) => bytemuck::cast_slice(v),
            CpuStorage::I64(v) => bytemuck::cast_slice(v),
        }
    }

    /// A zero-filled buffer of `len` elements.
    pub fn zeros(dtype: DType, len: usize) -> CpuStorage {
        match dtype {
            DType::F32 => CpuStorage::F32(vec![0.0; len]),
            DType::F64 => CpuStorage::F64(vec![0.0; len]),
            DType::F16 => CpuStorage::F16(vec![f16::ZERO; len]),
            DType::BF16 => CpuStorage::BF16(vec![bf16::ZERO; len]),
            DType::U8 => CpuStorage::U8(vec![0; len]),
            DType::U32 => CpuStorage::U32(vec![0; len]),
            DType::I64 => CpuStorage::I64(vec![0; len]),
        }
    }
}

/// Moves typed vectors in and out of [`CpuStorage`], so kernels can be generic over `T`.
pub trait CpuElement: Element {
    /// Wraps a vector of this type in the matching [`CpuStorage`] variant.
    fn wrap(v: Vec<Self>) -> CpuStorage;
    /// The elements, or `None` when the storage holds another dtype.
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
    /// The elements mutably, or `None` when the storage holds another dtype.
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]>;
}

macro_rules! cpu_element_impl {
    ($t:ty, $variant:ident) => {
        impl CpuElement for $t {
            fn wrap(v: Vec<Self>) -> CpuStorage {
                CpuStorage::$variant(v)
            }
            fn slice(s: &CpuStorage) -> Option<&[Self]> {
                match s {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
                match s {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

cpu_element_impl!(f32, F32);
cpu_element_impl!(f64, F64);
cpu_element_impl!(f16, F16);
cpu_element_impl!(bf16, BF16);
cpu_element_impl!(u8, U8);
cpu_element_impl!(u32, U32);
cpu_element_impl!(i64, I64);
