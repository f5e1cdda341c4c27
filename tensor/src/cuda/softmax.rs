//! The row normalizations softmax, log-softmax and logsumexp, with the backward of the first
//! two (`softmax.cu`; CPU twin `cpu/softmax.rs`).

use super::launch::{self, float_suffix, per_row};
use super::CudaStorage;
use crate::backend::Softmax;
use crate::error::Result;
use cuda_kernels::Family;

fn softmax_code(kind: Softmax) -> i32 {
    match kind {
        Softmax::Softmax => 0,
        Softmax::LogSoftmax => 1,
    }
}

/// Number of rows of length `n` in a contiguous buffer of `len` (none when `n` is 0).
fn rows(len: usize, n: usize) -> usize {
    len.checked_div(n).unwrap_or(0)
}

/// Softmax or log-softmax over contiguous rows of length `n`.
pub fn softmax(x: &CudaStorage, n: usize, kind: Softmax) -> Result<CudaStorage> {
    x.float("softmax")?;
    let r = rows(x.len, n);
    if r == 0 {
        return CudaStorage::zeros(&x.gpu, x.dtype, x.len);
    }
    let out = x.alloc(x.dtype, x.len)?;
    let (xp, yp, r64, n64, code) = (x.ptr(), out.ptr(), r as u64, n as u64, softmax_code(kind));
    let name = format!("softmax_forward_{}", float_suffix(x.dtype));
    // SAFETY: `softmax_forward_T(x, y, rows, n, kind)`; both hold `rows * n` elements.
    unsafe {
        launch::launch(
            &x.gpu,
            Family::Softmax,
            &name,
            per_row(r),
            &[&xp, &yp, &r64, &n64, &code],
        )
    }?;
    Ok(out)
}

/// Backward of [`softmax`] from its output `y` and `dy`.
pub fn softmax_backward(
    y: &CudaStorage,
    dy: &CudaStorage,
    n: usize,
    kind: Softmax,
) -> Result<CudaStorage> {
    y.float("softmax_backward")?;
    y.same_dtype("softmax_backward", dy)?;
    let r = rows(y.len, n);
    if r == 0 {
        return CudaStorage::zeros(&y.gpu, y.dtype, y.len);
    }
    let out = y.alloc(y.dtype, y.len)?;
    let (yp, gp, dp) = (y.ptr(), dy.ptr(), out.ptr());
    let (r64, n64, code) = (r as u64, n as u64, softmax_code(kind));
    let name = format!("softmax_backward_{}", float_suffix(y.dtype));
    // SAFETY: `softmax_backward_T(y, dy, dx, rows, n, kind)`; all hold `rows * n` elements.
    unsafe {
        launch::launch(
            &y.gpu,
            Family::Softmax,
            &name,
            per_row(r),
            &[&yp, &gp, &dp, &r64, &n64, &code],
        )
    }?;
    Ok(out)
}

/// Logsumexp of each contiguous row of length `n`.
pub fn logsumexp(x: &CudaStorage, n: usize) -> Result<CudaStorage> {
    x.float("logsumexp")?;
    let r = rows(x.len, n);
    let out = x.alloc(x.dtype, r)?;
    if r == 0 {
        return Ok(out);
    }
    let (xp, yp, r64, n64) = (x.ptr(), out.ptr(), r as u64, n as u64);
    let name = format!("logsumexp_{}", float_suffix(x.dtype));
    // SAFETY: `logsumexp_T(x, out, rows, n)`; `x` holds `rows * n`, `out` `rows` elements.
    unsafe {
        launch::launch(
            &x.gpu,
            Family::Softmax,
            &name,
            per_row(r),
            &[&xp, &yp, &r64, &n64],
        )
    }?;
    Ok(out)
}
