//! RMS norm on the GPU (`rms_norm.cu`; CPU twin `cpu/rms_norm.rs`).

use super::launch::{self, float_suffix, per_row, Float};
use super::CudaStorage;
use crate::error::Result;
use cuda_kernels::Family;

/// RMS norm over contiguous rows of length `c` with weight `w (c)`: `(y, rstd)`.
pub fn forward(
    x: &CudaStorage,
    c: usize,
    w: &CudaStorage,
    eps: f64,
) -> Result<(CudaStorage, CudaStorage)> {
    x.float("rms_norm")?;
    x.same_dtype("rms_norm", w)?;
    let rows = x.len.checked_div(c).unwrap_or(0);
    let rstd = x.alloc(x.dtype, rows)?;
    if rows == 0 {
        return Ok((CudaStorage::zeros(&x.gpu, x.dtype, x.len)?, rstd));
    }
    let y = x.alloc(x.dtype, x.len)?;
    let (xp, wp, yp, rp) = (x.ptr(), w.ptr(), y.ptr(), rstd.ptr());
    let (r64, c64, eps) = (rows as u64, c as u64, Float::new(x.dtype, eps));
    let name = format!("rms_norm_forward_{}", float_suffix(x.dtype));
    // SAFETY: `rms_norm_forward_T(x, w, y, rstd, rows, c, eps)`; `x` and `y` hold `rows * c`
    // elements, `w` holds `c` (checked by the caller) and `rstd` `rows`.
    unsafe {
        launch::launch(
            &x.gpu,
            Family::RmsNorm,
            &name,
            per_row(rows),
            &[&xp, &wp, &yp, &rp, &r64, &c64, &eps],
        )
    }?;
    Ok((y, rstd))
}
