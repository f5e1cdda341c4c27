//! Cross-entropy over logits on the GPU, forward and backward (`cross_entropy.cu`; CPU twin
//! `cpu/cross_entropy.rs`).

use super::launch::{self, float_suffix, per_row, Float};
use super::CudaStorage;
use crate::backend::BackendStorage;
use crate::cpu::CpuStorage;
use crate::error::{Error, Result};
use crate::DType;
use cuda_kernels::Family;

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
