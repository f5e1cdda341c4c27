//! Errors of tensor operations. Each message names the op and the shapes, dims or indices at
//! fault, so a failure deep inside a model says what went wrong without a debugger.

use crate::{DType, Device};

/// What went wrong in a tensor operation.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// Two shapes that the op needs to agree (equal, or broadcastable) do not.
    #[error("{op}: shapes {lhs:?} and {rhs:?} do not match")]
    ShapeMismatch {
        /// Name of the op that failed.
        op: &'static str,
        /// The first shape compared (usually the receiver's, or the one expected).
        lhs: Vec<usize>,
        /// The second shape compared (usually the other operand's).
        rhs: Vec<usize>,
    },
    /// A dim index outside `-rank..rank` (negative dims count from the end).
    #[error("{op}: dim {dim} is out of range for a tensor of rank {rank}")]
    DimOutOfRange {
        /// Name of the op that failed.
        op: &'static str,
        /// The dim as given (may be negative).
        dim: isize,
        /// The rank the dim was resolved against: the tensor's, or one more for ops that
        /// insert a dim (`unsqueeze`, `stack`).
        rank: usize,
    },
    /// An element index is not below the size of its dim.
    #[error("{op}: index {index} is out of range for size {size}")]
    IndexOutOfRange {
        /// Name of the op that failed.
        op: &'static str,
        /// The index as given.
        index: usize,
        /// Size of the dim it indexes.
        size: usize,
    },
    /// Two operands have different dtypes; ops do not promote.
    #[error("{op}: dtypes {lhs} and {rhs} differ")]
    DTypeMismatch {
        /// Name of the op that failed.
        op: &'static str,
        /// The first dtype (the first operand's, or the one expected).
        lhs: DType,
        /// The second dtype (the other operand's, or the one found).
        rhs: DType,
    },
    /// The op has no kernel for this dtype (for example float math on an integer tensor).
    #[error("{op} is not supported for dtype {dtype}")]
    UnsupportedDType {
        /// Name of the op that failed.
        op: &'static str,
        /// DType of the operand.
        dtype: DType,
    },
    /// Two operands live on different devices; nothing is moved implicitly.
    #[error("{op}: tensors are on different devices ({lhs:?} and {rhs:?})")]
    DeviceMismatch {
        /// Name of the op that failed.
        op: &'static str,
        /// Device of the first operand.
        lhs: Device,
        /// Device of the second operand.
        rhs: Device,
    },
    /// A reshape, or a constructor given a buffer, whose element count does not match the
    /// shape asked for.
    #[error("{op}: {numel} elements cannot take shape {shape:?} (from {from:?})")]
    ElementCount {
        /// Name of the op that failed.
        op: &'static str,
        /// Number of elements available.
        numel: usize,
        /// The shape the elements come from.
        from: Vec<usize>,
        /// The shape asked for.
        shape: Vec<usize>,
    },
    /// Any other invalid argument; the message says which and why.
    #[error("{0}")]
    InvalidArgument(String),
    /// An in-place op was called on a tensor whose storage another tensor or view also holds.
    #[error("in-place update needs uniquely owned storage, but this tensor's storage is shared")]
    SharedStorage,
    /// A device could not be used: the backend reported a failure (CUDA driver, allocation,
    /// kernel launch), or the build has no support for the device. The message says which.
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
