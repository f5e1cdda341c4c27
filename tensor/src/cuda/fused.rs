//! Fused kernels on the GPU: layer norm (`layer_norm.cu`), cross-entropy
//! (`cross_entropy.cu`) and causal attention (`attention.cu`), each with its backward.

use super::launch::{self, elementwise, float_suffix, per_row, Float};
use super::CudaStorage;
use crate::backend::AttentionDims;
use crate::backend::BackendStorage;
use crate::cpu::CpuStorage;
use crate::error::{Error, Result};
use crate::DType;
use cuda_kernels::{Family, LaunchConfig, BLOCK_THREADS};

/// Device address of an optional buffer (0, a null pointer, when absent).
fn ptr_or_null(s: Option<&CudaStorage>) -> u64 {
    s.map_or(0, CudaStorage::ptr)
}

/// Checks that every storage in `others` has `x`'s dtype.
fn same_dtypes(op: &'static str, x: &CudaStorage, others: &[&CudaStorage]) -> Result<()> {
    others.iter().try_for_each(|o| x.same_dtype(op, o))
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

/// Cross-entropy targets read back and checked as on the CPU: `-1` for ignored rows, else the
/// class; and the number of rows counted.
fn targets(t: &CudaStorage, v: usize, ignore: Option<i64>) -> Result<(Vec<i64>, usize)> {
    let raw: Vec<i64> = match t.to_cpu()? {
        CpuStorage::U32(t) => t.iter().map(|&x| x as i64).collect(),
        CpuStorage::I64(t) => t,
        other => {
            return Err(Error::UnsupportedDType {
                op: "cross_entropy targets",
                dtype: other.dtype(),
            })
        }
    };
    let checked: Vec<i64> = raw
        .into_iter()
        .map(|t| match t {
            t if Some(t) == ignore => Ok(-1),
            t if t >= 0 && (t as usize) < v => Ok(t),
            t => Err(Error::InvalidArgument(format!(
                "cross_entropy: target {t} is out of range for {v} classes"
            ))),
        })
        .collect::<Result<_>>()?;
    let count = checked.iter().filter(|&&t| t >= 0).count();
    Ok((checked, count))
}

/// Mean cross-entropy of contiguous logits rows of length `v`: `(loss, lse)`.
pub fn cross_entropy(
    logits: &CudaStorage,
    v: usize,
    targets_s: &CudaStorage,
    ignore: Option<i64>,
) -> Result<(CudaStorage, CudaStorage)> {
    let (t, count) = targets(targets_s, v, ignore)?;
    logits.float("cross_entropy")?;
    let rows = t.len();
    let t = logits.upload(&CpuStorage::I64(t))?;
    let (lse, row_loss, loss) = (
        logits.alloc(logits.dtype, rows)?,
        logits.alloc(logits.dtype, rows)?,
        logits.alloc(logits.dtype, 1)?,
    );
    let suffix = float_suffix(logits.dtype);
    let (xp, tp, lp, rlp, lossp) = (logits.ptr(), t.ptr(), lse.ptr(), row_loss.ptr(), loss.ptr());
    let (r64, v64) = (rows as u64, v as u64);
    if rows > 0 {
        // SAFETY: `cross_entropy_rows_T(logits, targets, lse, row_loss, rows, v)`; `logits`
        // holds `rows * v` elements, the targets (checked above) `rows`, the outputs `rows`.
        unsafe {
            launch::launch(
                &logits.gpu,
                Family::CrossEntropy,
                &format!("cross_entropy_rows_{suffix}"),
                per_row(rows),
                &[&xp, &tp, &lp, &rlp, &r64, &v64],
            )
        }?;
    }
    let count = Float::new(logits.dtype, count as f64);
    // SAFETY: `cross_entropy_mean_T(row_loss, rows, count, loss)` in one block; `row_loss`
    // holds `rows` elements and `loss` one.
    unsafe {
        launch::launch(
            &logits.gpu,
            Family::CrossEntropy,
            &format!("cross_entropy_mean_{suffix}"),
            per_row(1),
            &[&rlp, &r64, &count, &lossp],
        )
    }?;
    Ok((loss, lse))
}

/// Backward of cross-entropy for upstream gradient `grad` of the mean loss.
pub fn cross_entropy_backward(
    logits: &CudaStorage,
    v: usize,
    targets_s: &CudaStorage,
    ignore: Option<i64>,
    lse: &CudaStorage,
    grad: f64,
) -> Result<CudaStorage> {
    let (t, count) = targets(targets_s, v, ignore)?;
    let op = "cross_entropy_backward";
    logits.float(op)?;
    logits.same_dtype(op, lse)?;
    let rows = t.len();
    if rows == 0 || v == 0 {
        return CudaStorage::zeros(&logits.gpu, logits.dtype, logits.len);
    }
    let out = logits.alloc(logits.dtype, logits.len)?;
    // The scale in the element type, as the CPU computes it: grad / count.
    let scale = match logits.dtype {
        DType::F64 => Float::F64(grad / count as f64),
        _ => Float::F32(grad as f32 / count as f32),
    };
    let t = logits.upload(&CpuStorage::I64(t))?;
    let (xp, tp, lp, dp, r64, v64) = (
        logits.ptr(),
        t.ptr(),
        lse.ptr(),
        out.ptr(),
        rows as u64,
        v as u64,
    );
    // SAFETY: `cross_entropy_backward_T(logits, targets, lse, dlogits, rows, v, scale)`;
    // `logits` and `out` hold `rows * v` elements, the targets and `lse` `rows`.
    unsafe {
        launch::launch(
            &logits.gpu,
            Family::CrossEntropy,
            &format!("cross_entropy_backward_{}", float_suffix(logits.dtype)),
            per_row(rows),
            &[&xp, &tp, &lp, &dp, &r64, &v64, &scale],
        )
    }?;
    Ok(out)
}

/// Query (or key) rows per block of the attention kernels, one warp each (`ATT_WARPS`).
const ATT_WARPS: usize = 4;
/// Rows per shared-memory tile (`ATT_BC`).
const ATT_BC: usize = 32;
/// Largest head size the kernels take (`ATT_MAX_D`).
const ATT_MAX_D: usize = 128;

/// Checks the sizes the attention kernels take.
fn attention_fits(dims: AttentionDims) -> Result<()> {
    if dims.d > ATT_MAX_D {
        return Err(Error::InvalidArgument(format!(
            "attention: head size {} is above {ATT_MAX_D}, the largest the CUDA kernel takes",
            dims.d
        )));
    }
    if dims.bh > 65_535 || dims.tk > i32::MAX as usize {
        return Err(Error::InvalidArgument(format!(
            "attention: {} heads of {} keys exceed the CUDA kernel's grid",
            dims.bh, dims.tk
        )));
    }
    Ok(())
}

/// A launch over `rows` rows of each of `bh` heads, with the shared memory every attention
/// kernel needs (two padded tiles, two rows per warp, two values per tile row).
fn attention_cfg(rows: usize, dims: AttentionDims, dtype: DType) -> LaunchConfig {
    let elems = 2 * ATT_BC * (dims.d + 1) + 2 * ATT_WARPS * dims.d + 2 * ATT_BC;
    LaunchConfig {
        grid_dim: (rows.div_ceil(ATT_WARPS) as u32, dims.bh as u32, 1),
        block_dim: ((32 * ATT_WARPS) as u32, 1, 1),
        shared_mem_bytes: (elems * dtype.size_in_bytes()) as u32,
    }
}

/// `1 / sqrt(D)` in the element type, as the CPU computes it.
fn attention_scale(dtype: DType, d: usize) -> Float {
    match dtype {
        DType::F64 => Float::F64(1.0 / (d as f64).sqrt()),
        _ => Float::F32(1.0 / (d as f32).sqrt()),
    }
}

/// Causal attention over contiguous `q (BH, Tq, D)`, `k, v (BH, Tk, D)`: `(out, lse)`.
pub fn attention(
    q: &CudaStorage,
    k: &CudaStorage,
    v: &CudaStorage,
    dims: AttentionDims,
) -> Result<(CudaStorage, CudaStorage)> {
    let op = "attention";
    q.float(op)?;
    same_dtypes(op, q, &[k, v])?;
    let AttentionDims { bh, tq, tk, d } = dims;
    if tq == 0 || d == 0 {
        let zeros = |n| CudaStorage::zeros(&q.gpu, q.dtype, n);
        return Ok((zeros(bh * tq * d)?, zeros(bh * tq)?));
    }
    attention_fits(dims)?;
    let (out, lse) = (q.alloc(q.dtype, bh * tq * d)?, q.alloc(q.dtype, bh * tq)?);
    let (qp, kp, vp, op_, lp) = (q.ptr(), k.ptr(), v.ptr(), out.ptr(), lse.ptr());
    let (tq32, tk32, d32, scale) = (tq as i32, tk as i32, d as i32, attention_scale(q.dtype, d));
    // SAFETY: `attention_forward_T(q, k, v, out, lse, tq, tk, d, scale)`; the buffers hold
    // the `(BH, T, D)` and `(BH, Tq)` elements of `dims`, `d <= ATT_MAX_D`, and the launch
    // gives the kernel its shared memory.
    unsafe {
        launch::launch(
            &q.gpu,
            Family::Attention,
            &format!("attention_forward_{}", float_suffix(q.dtype)),
            attention_cfg(tq, dims, q.dtype),
            &[&qp, &kp, &vp, &op_, &lp, &tq32, &tk32, &d32, &scale],
        )
    }?;
    Ok((out, lse))
}

/// Backward of causal attention: `(dq, dk, dv)`.
pub fn attention_backward(
    q: &CudaStorage,
    [k, v, out, lse, dout]: [&CudaStorage; 5],
    dims: AttentionDims,
) -> Result<(CudaStorage, CudaStorage, CudaStorage)> {
    let op = "attention_backward";
    q.float(op)?;
    same_dtypes(op, q, &[k, v, out, lse, dout])?;
    let AttentionDims { bh, tq, tk, d } = dims;
    let zeros = |n| CudaStorage::zeros(&q.gpu, q.dtype, n);
    if tq == 0 || d == 0 {
        return Ok((
            zeros(bh * tq * d)?,
            zeros(bh * tk * d)?,
            zeros(bh * tk * d)?,
        ));
    }
    attention_fits(dims)?;
    let suffix = float_suffix(q.dtype);
    let delta = q.alloc(q.dtype, bh * tq)?;
    let (op_, dop, dp, rows, d32) = (
        out.ptr(),
        dout.ptr(),
        delta.ptr(),
        (bh * tq) as i64,
        d as i32,
    );
    let delta_cfg = LaunchConfig {
        grid_dim: ((bh * tq).div_ceil(ATT_WARPS).min(65_535) as u32, 1, 1),
        block_dim: ((32 * ATT_WARPS) as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: `attention_delta_T(out, dout, delta, rows, d)`; `out` and `dout` hold
    // `rows * d` elements and `delta` `rows`.
    unsafe {
        launch::launch(
            &q.gpu,
            Family::Attention,
            &format!("attention_delta_{suffix}"),
            delta_cfg,
            &[&op_, &dop, &dp, &rows, &d32],
        )
    }?;
    let (dq, dk, dv) = (
        q.alloc(q.dtype, bh * tq * d)?,
        q.alloc(q.dtype, bh * tk * d)?,
        q.alloc(q.dtype, bh * tk * d)?,
    );
    let (qp, kp, vp, lp) = (q.ptr(), k.ptr(), v.ptr(), lse.ptr());
    let (dqp, dkp, dvp) = (dq.ptr(), dk.ptr(), dv.ptr());
    let (tq32, tk32, scale) = (tq as i32, tk as i32, attention_scale(q.dtype, d));
    // SAFETY: `attention_backward_dq_T(q, k, v, dout, lse, delta, dq, tq, tk, d, scale)`;
    // every buffer holds the elements `dims` gives it and the launch gives the shared memory.
    unsafe {
        launch::launch(
            &q.gpu,
            Family::Attention,
            &format!("attention_backward_dq_{suffix}"),
            attention_cfg(tq, dims, q.dtype),
            &[
                &qp, &kp, &vp, &dop, &lp, &dp, &dqp, &tq32, &tk32, &d32, &scale,
            ],
        )
    }?;
    // SAFETY: `attention_backward_dkdv_T(q, k, v, dout, lse, delta, dk, dv, tq, tk, d,
    // scale)`; as above, with one warp per key row.
    unsafe {
        launch::launch(
            &q.gpu,
            Family::Attention,
            &format!("attention_backward_dkdv_{suffix}"),
            attention_cfg(tk, dims, q.dtype),
            &[
                &qp, &kp, &vp, &dop, &lp, &dp, &dkp, &dvp, &tq32, &tk32, &d32, &scale,
            ],
        )
    }?;
    Ok((dq, dk, dv))
}
