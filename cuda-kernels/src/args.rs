//! What a launch hands a kernel: strided views of tensors and scalar arguments, in the C
//! layout the kernels declare.

use cudarc::driver::DeviceRepr;
use std::ffi::c_void;

/// The most dims a [`Strided`] view holds (`MAX_DIMS` in `common.cuh`).
pub const MAX_DIMS: usize = 8;

/// A strided view as kernels take it: element `[i0, ...]` lives at
/// `offset + sum_k i_k * strides[k]`. The C layout of `struct Strided` in `common.cuh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Strided {
    /// Number of dims in use (at most [`MAX_DIMS`]).
    pub rank: u64,
    /// Index of the first element, in elements.
    pub offset: u64,
    /// Size of each dim; entries from `rank` on are unused.
    pub shape: [u64; MAX_DIMS],
    /// Elements to step per unit of each dim; entries from `rank` on are unused.
    pub strides: [u64; MAX_DIMS],
}

// SAFETY: `Strided` is plain data with the C layout of the kernels' `struct Strided`.
unsafe impl DeviceRepr for Strided {}

/// A value that can be passed to a kernel: the launch copies it from its address.
pub trait KernelArg {
    /// The address of the value, as `cuLaunchKernel` takes its parameters.
    fn as_param(&self) -> *mut c_void;
}

macro_rules! kernel_arg {
    ($($t:ty),*) => {$(
        impl KernelArg for $t {
            fn as_param(&self) -> *mut c_void {
                self as *const $t as *mut c_void
            }
        }
    )*};
}
kernel_arg!(u8, u16, u32, u64, i32, i64, f32, f64, Strided);
