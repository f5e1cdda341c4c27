//! Errors of tensor operations. Each message names the op and the shapes, dims or indices at
//! fault, so a failure deep inside a model says what went wrong without a debugger.

use crate::{DType, Device};

/// What went wrong in a tensor operation.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    #[error("{op}: shapes {lhs:?} and {rhs:?} do not match")]
    ShapeMismatch {
        op: &'static str,
        lhs: Vec<usize>,
        rhs: Vec<usize>,
    },
    #[error("{op}: dim {dim} is out of range for a tensor of rank {rank}")]
    DimOutOfRange {
        op: &'static str,
        dim: isize,
        rank: usize,
    },
    #[error("{op}: index {index} is out of range for size {size}")]
    IndexOutOfRange {
        op: &'static str,
        index: usize,
        size: usize,
    },
    #[error("{op}: dtypes {lhs} and {rhs} differ")]
    DTypeMismatch {
        op: &'static str,
        lhs: DType,
        rhs: DType,
    },
    #[error("{op} is not supported for dtype {dtype}")]
    UnsupportedDType { op: &'static str, dtype: DType },
    #[error("{op}: tensors are on different devices ({lhs:?} and {rhs:?})")]
    DeviceMismatch {
        op: &'static str,
        lhs: Device,
        rhs: Device,
    },
    #[error("{op}: {numel} elements cannot take shape {shape:?} (from {from:?})")]
    ElementCount {
        op: &'static str,
        numel: usize,
        from: Vec<usize>,
        shape: Vec<usize>,
    },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("in-place update needs uniquely owned storage, but this tensor's storage is shared")]
    SharedStorage,
    #[error("device error: {0}")]
    Device(String),
}

/// Result of a tensor operation.
pub type Result<T> = std::result::Result<T, Error>;

/// Unwraps a tensor result or panics with its message at the caller's location. The
/// non-`try_` ops use this, so a panic points at the user's line, not at the library.
#[track_caller]
pub(crate) fn or_panic<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}
