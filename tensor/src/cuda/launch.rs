//! What every CUDA op needs: kernel views of layouts, launch shapes, dtype names and typed
//! scalar arguments.

use super::device;
use super::CudaStorage;
use crate::error::{Error, Result};
use crate::{DType, Layout};
use cuda_kernels::{Family, Gpu, KernelArg, LaunchConfig, Strided, BLOCK_THREADS, MAX_DIMS};
use std::ffi::c_void;

/// Kernel views of `N` layouts of one shape, with the dims that every view walks as one
/// merged (`stride[k] == stride[k + 1] * shape[k + 1]` in all views) and size-1 dims dropped,
/// so a contiguous view becomes one dim and kernels do little index arithmetic.
pub fn views<const N: usize>(layouts: [&Layout; N]) -> Result<[Strided; N]> {
    let shape = layouts[0].shape();
    let mut dims: Vec<(usize, [usize; N])> = vec![];
    for (k, &size) in shape.iter().enumerate() {
        if size == 1 {
            continue;
        }
        let strides: [usize; N] = std::array::from_fn(|v| layouts[v].strides()[k]);
        match dims.last_mut() {
            Some((prev, ps)) if (0..N).all(|v| ps[v] == strides[v] * size) => {
                *prev *= size;
                *ps = strides;
            }
            _ => dims.push((size, strides)),
        }
    }
    if dims.is_empty() {
        dims.push((1, [0; N]));
    }
    if dims.len() > MAX_DIMS {
        return Err(Error::InvalidArgument(format!(
            "CUDA kernels take views of at most {MAX_DIMS} dims after merging; shape {shape:?} has {}",
            dims.len()
        )));
    }
    Ok(std::array::from_fn(|v| {
        let mut s = Strided {
            rank: dims.len() as u64,
            offset: layouts[v].offset() as u64,
            ..Strided::default()
        };
        for (d, (size, strides)) in dims.iter().enumerate() {
            s.shape[d] = *size as u64;
            s.strides[d] = strides[v] as u64;
        }
        s
    }))
}

/// The kernel view of one layout.
pub fn view(l: &Layout) -> Result<Strided> {
    views([l]).map(|[v]| v)
}

/// Grid-stride launch over `n` elements.
pub fn elementwise(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (
            n.div_ceil(BLOCK_THREADS as usize).clamp(1, 65_535) as u32,
            1,
            1,
        ),
        block_dim: (BLOCK_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One block per row (grid-stride over rows).
pub fn per_row(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.clamp(1, 65_535) as u32, 1, 1),
        block_dim: (BLOCK_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Kernel name suffix of a float dtype (`f32`, `f64`).
pub fn float_suffix(dtype: DType) -> &'static str {
    match dtype {
        DType::F64 => "f64",
        _ => "f32",
    }
}

/// Kernel name suffix of the raw-bits kernels for a dtype's element size.
pub fn bits_suffix(dtype: DType) -> &'static str {
    match dtype.size_in_bytes() {
        1 => "b8",
        2 => "b16",
        4 => "b32",
        _ => "b64",
    }
}

/// A float kernel argument of the storage's dtype.
pub enum Float {
    F32(f32),
    F64(f64),
}

impl Float {
    /// `v` as the float type of `dtype` (`f64` for `F64`, else `f32`).
    pub fn new(dtype: DType, v: f64) -> Float {
        match dtype {
            DType::F64 => Float::F64(v),
            _ => Float::F32(v as f32),
        }
    }
}

impl KernelArg for Float {
    fn as_param(&self) -> *mut c_void {
        match self {
            Float::F32(v) => v.as_param(),
            Float::F64(v) => v.as_param(),
        }
    }
}

/// Queues `name` of `family`; errors become [`Error::Device`].
///
/// # Safety
/// As [`Gpu::launch`]: `args` match the kernel's parameters, and the memory they address is
/// live and large enough for the kernel's accesses.
pub unsafe fn launch(
    gpu: &Gpu,
    family: Family,
    name: &str,
    cfg: LaunchConfig,
    args: &[&dyn KernelArg],
) -> Result<()> {
    // SAFETY: forwarded from this function's contract.
    unsafe { gpu.launch(family, name, cfg, args) }.map_err(device)
}

/// Checks that every storage in `others` has `x`'s dtype.
pub fn same_dtypes(op: &'static str, x: &CudaStorage, others: &[&CudaStorage]) -> Result<()> {
    others.iter().try_for_each(|o| x.same_dtype(op, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_views_merge_to_one_dim() {
        let [v] = views([&Layout::contiguous(&[3, 4, 5])]).unwrap();
        assert_eq!((v.rank, v.shape[0], v.strides[0]), (1, 60, 1));
    }

    #[test]
    fn broadcast_and_transposed_views_keep_their_dims() {
        let a = Layout::contiguous(&[3, 4]);
        let b = Layout::contiguous(&[4]).broadcast_to(&[3, 4]).unwrap();
        let [va, vb] = views([&a, &b]).unwrap();
        assert_eq!((va.rank, &va.strides[..2]), (2, &[4, 1][..]));
        assert_eq!(&vb.strides[..2], &[0, 1]);
        let t = Layout::contiguous(&[4, 3])
            .transpose(0, 1)
            .unwrap()
            .narrow(0, 1, 2)
            .unwrap();
        let v = view(&t).unwrap();
        assert_eq!(
            (v.rank, v.offset, &v.shape[..2], &v.strides[..2]),
            (2, 1, &[2, 4][..], &[1, 3][..])
        );
    }

    #[test]
    fn size_one_and_scalar_views() {
        let v = view(&Layout::new(vec![1, 1], vec![7, 9], 5)).unwrap();
        assert_eq!((v.rank, v.offset, v.shape[0]), (1, 5, 1));
    }
}
