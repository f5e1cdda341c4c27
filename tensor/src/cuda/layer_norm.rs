//! Layer norm on the GPU, forward and backward (`layer_norm.cu`; CPU twin `cpu/layer_norm.rs`).

use super::launch::{self, elementwise, float_suffix, per_row, same_dtypes, Float};
use super::CudaStorage;
use crate::error::Result;
use cuda_kernels::{Family, LaunchConfig, BLOCK_THREADS};

/// Device address of an optional buffer (0, a null pointer, when absent).
fn ptr_or_null(s: Option<&CudaStorage>) -> u64 {
    s.map_or(0, CudaStorage::ptr)
}

/// Layer norm over contiguous rows of length `c`: `(y, mean, rstd)`.
pub fn layer_norm(
    x: &CudaStorage,
    c: usize,
    w: Option<&CudaStorage>,
    b: Option<&CudaStorage>,
    eps: f64,
) -> Result<(CudaStorage, CudaStorage, CudaStorage)> {
    x.float("layer_norm")?;
    same_dtypes("layer_norm", x, &w.into_iter().chain(b).collect::<Vec<_>>())?;
    let rows = x.len.checked_div(c).unwrap_or(0);
    let (mean, rstd) = (x.alloc(x.dtype, rows)?, x.alloc(x.dtype, rows)?);
    if rows == 0 {
        return Ok((CudaStorage::zeros(&x.gpu, x.dtype, x.len)?, mean, rstd));
    }
    let y = x.alloc(x.dtype, x.len)?;
    let (xp, wp, bp) = (x.ptr(), ptr_or_null(w), ptr_or_null(b));
    let (yp, mp, rp) = (y.ptr(), mean.ptr(), rstd.ptr());
    let (r64, c64, eps) = (rows as u64, c as u64, Float::new(x.dtype, eps));
    let name = format!("layer_norm_forward_{}", float_suffix(x.dtype));
    // SAFETY: `layer_norm_forward_T(x, w, b, y, mean, rstd, rows, c, eps)`; `x` and `y` hold
    // `rows * c` elements, `w` and `b` `c` each or are null, `mean` and `rstd` `rows`.
    unsafe {
        launch::launch(
            &x.gpu,
            Family::LayerNorm,
            &name,
            per_row(rows),
            &[&xp, &wp, &bp, &yp, &mp, &rp, &r64, &c64, &eps],
        )
    }?;
    Ok((y, mean, rstd))
}

/// Rows per block of the partial column sums of the layer-norm parameter gradients.
const ROWS_PER_PART: usize = 64;

type LayerNormGrads = (CudaStorage, Option<CudaStorage>, Option<CudaStorage>);

/// Backward of layer norm (`dy` is self on the trait): `(dx, dweight, dbias)`.
pub fn layer_norm_backward(
    dy: &CudaStorage,
    x: &CudaStorage,
    c: usize,
    w: Option<&CudaStorage>,
    mean: &CudaStorage,
    rstd: &CudaStorage,
    has_bias: bool,
) -> Result<LayerNormGrads> {
    let op = "layer_norm_backward";
    dy.float(op)?;
    same_dtypes(op, dy, &[x, mean, rstd])?;
    same_dtypes(op, dy, &w.into_iter().collect::<Vec<_>>())?;
    let rows = mean.len;
    let zeros = |n| CudaStorage::zeros(&dy.gpu, dy.dtype, n);
    let dw = w.map(|_| zeros(c)).transpose()?;
    let db = has_bias.then(|| zeros(c)).transpose()?;
    if rows == 0 || c == 0 {
        return Ok((zeros(x.len)?, dw, db));
    }
    let dx = dy.alloc(dy.dtype, x.len)?;
    let suffix = float_suffix(dy.dtype);
    let (gp, xp, wp, mp, rp, dxp) = (
        dy.ptr(),
        x.ptr(),
        ptr_or_null(w),
        mean.ptr(),
        rstd.ptr(),
        dx.ptr(),
    );
    let (r64, c64) = (rows as u64, c as u64);
    // SAFETY: `layer_norm_backward_dx_T(dy, x, w, mean, rstd, dx, rows, c)`; `dy`, `x` and
    // `dx` hold `rows * c` elements, `w` `c` or is null, `mean` and `rstd` `rows`.
    unsafe {
        launch::launch(
            &dy.gpu,
            Family::LayerNorm,
            &format!("layer_norm_backward_dx_{suffix}"),
            per_row(rows),
            &[&gp, &xp, &wp, &mp, &rp, &dxp, &r64, &c64],
        )
    }?;
    if dw.is_none() && db.is_none() {
        return Ok((dx, dw, db));
    }
    let per_part = ROWS_PER_PART.max(rows.div_ceil(65_535));
    let parts = rows.div_ceil(per_part);
    let part_w = dw
        .as_ref()
        .map(|_| dy.alloc(dy.dtype, parts * c))
        .transpose()?;
    let part_b = db
        .as_ref()
        .map(|_| dy.alloc(dy.dtype, parts * c))
        .transpose()?;
    let (pwp, pbp, pp64) = (
        ptr_or_null(part_w.as_ref()),
        ptr_or_null(part_b.as_ref()),
        per_part as u64,
    );
    let cfg = LaunchConfig {
        grid_dim: (c.div_ceil(BLOCK_THREADS as usize) as u32, parts as u32, 1),
        block_dim: (BLOCK_THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: `layer_norm_backward_params_T(dy, x, mean, rstd, part_w, part_b, rows, c,
    // rows_per_part)`; each present partial buffer holds `parts * c` elements (absent: null).
    unsafe {
        launch::launch(
            &dy.gpu,
            Family::LayerNorm,
            &format!("layer_norm_backward_params_{suffix}"),
            cfg,
            &[&gp, &xp, &mp, &rp, &pwp, &pbp, &r64, &c64, &pp64],
        )
    }?;
    let parts64 = parts as u64;
    for (part, out) in [(&part_w, &dw), (&part_b, &db)] {
        if let (Some(part), Some(out)) = (part, out) {
            let (pp, op) = (part.ptr(), out.ptr());
            // SAFETY: `column_sum_T(part, parts, c, out)`; `part` holds `parts * c` elements
            // and `out` `c`.
            unsafe {
                launch::launch(
                    &dy.gpu,
                    Family::LayerNorm,
                    &format!("column_sum_{suffix}"),
                    elementwise(c),
                    &[&pp, &parts64, &c64, &op],
                )
            }?;
        }
    }
    Ok((dx, dw, db))
}
