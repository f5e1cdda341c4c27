//! Batched matmul on the GPU: cuBLAS when it can take the operands, else the tiled kernel of
//! `matmul.cu` (see `cuda_kernels::gemm`).

use super::elementwise::contiguous;
use super::{device, CudaStorage};
use crate::error::Result;
use crate::{DType, Layout};
use cuda_kernels::gemm::{self, Operand, Problem};

/// The single stride between consecutive batches of `l`'s leading `rank - 2` dims, if one
/// exists (0 when every batch dim is broadcast or of size 1).
fn batch_stride(l: &Layout) -> Option<usize> {
    let r = l.rank();
    let dims: Vec<(usize, usize)> = l.shape()[..r - 2]
        .iter()
        .zip(&l.strides()[..r - 2])
        .filter(|(&size, _)| size != 1)
        .map(|(&size, &stride)| (size, stride))
        .collect();
    let uniform = dims.windows(2).all(|w| w[0].1 == w[1].1 * w[1].0);
    uniform.then(|| dims.last().map_or(0, |d| d.1))
}

/// A GEMM operand over `s` seen through `l`, copying it to a contiguous buffer (returned, to
/// be kept alive until the product is queued) when its batches have no single stride.
fn operand(s: &CudaStorage, l: &Layout) -> Result<(Operand, Option<CudaStorage>)> {
    let r = l.rank();
    let (rs, cs) = (l.strides()[r - 2] as i64, l.strides()[r - 1] as i64);
    if let Some(bs) = batch_stride(l) {
        let op = Operand {
            ptr: s.at(l.offset()),
            rs,
            cs,
            bs: bs as i64,
        };
        return Ok((op, None));
    }
    let (rows, cols) = (l.shape()[r - 2] as i64, l.shape()[r - 1] as i64);
    let copy = contiguous(s, l)?;
    let op = Operand {
        ptr: copy.ptr(),
        rs: cols,
        cs: 1,
        bs: rows * cols,
    };
    Ok((op, Some(copy)))
}

/// `C = A @ B` for layouts whose batch dims are already broadcast to one shape; returns
/// contiguous `(batch..., M, N)`.
pub fn matmul(a: &CudaStorage, al: &Layout, b: &CudaStorage, bl: &Layout) -> Result<CudaStorage> {
    a.float("matmul")?;
    a.same_dtype("matmul", b)?;
    let (ra, rb) = (al.rank(), bl.rank());
    let p = Problem {
        m: al.shape()[ra - 2],
        k: al.shape()[ra - 1],
        n: bl.shape()[rb - 1],
        batch: al.shape()[..ra - 2].iter().product(),
    };
    let len = p.batch * p.m * p.n;
    if len == 0 || p.k == 0 {
        return CudaStorage::zeros(&a.gpu, a.dtype, len);
    }
    let out = a.alloc(a.dtype, len)?;
    let (ao, _a_copy) = operand(a, al)?;
    let (bo, _b_copy) = operand(b, bl)?;
    // SAFETY: each operand addresses its storage within its layout (or its contiguous copy,
    // alive until after this call queues the product), and `out` holds `batch * m * n`
    // elements in a buffer of its own.
    let done = unsafe {
        match a.dtype {
            DType::F64 => gemm::gemm::<f64>(&a.gpu, p, ao, bo, out.ptr()),
            _ => gemm::gemm::<f32>(&a.gpu, p, ao, bo, out.ptr()),
        }
    };
    done.map_err(device)?;
    Ok(out)
}
