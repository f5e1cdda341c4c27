//! Causal attention on the GPU, forward and backward (`attention.cu`; CPU twin
//! `cpu/attention.rs`).

use super::launch::{self, float_suffix, same_dtypes, Float};
use super::CudaStorage;
use crate::backend::AttentionDims;
use crate::error::{Error, Result};
use crate::DType;
use cuda_kernels::{Family, LaunchConfig};

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
