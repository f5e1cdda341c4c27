//! Rotary position embeddings on the GPU (`rope.cu`; CPU twin `cpu/rope.rs`).

use super::launch::{self, elementwise, float_suffix, Float};
use super::CudaStorage;
use crate::backend::RopeDims;
use crate::error::Result;
use cuda_kernels::Family;

/// `x` rotated by the tables `cos, sin (P, HS / 2)` (see `cpu::rope`).
pub fn apply(
    x: &CudaStorage,
    cos: &CudaStorage,
    sin: &CudaStorage,
    d: RopeDims,
) -> Result<CudaStorage> {
    x.float("rope")?;
    x.same_dtype("rope", cos)?;
    x.same_dtype("rope", sin)?;
    let pairs = d.rows * (d.hs / 2);
    if pairs == 0 {
        return CudaStorage::zeros(&x.gpu, x.dtype, x.len);
    }
    let y = x.alloc(x.dtype, x.len)?;
    let (xp, cp, sp, yp) = (x.ptr(), cos.ptr(), sin.ptr(), y.ptr());
    let (rows, t, hs, start) = (d.rows as u64, d.t as u64, d.hs as u64, d.start as u64);
    let sign = Float::new(x.dtype, if d.inverse { -1.0 } else { 1.0 });
    let name = format!("rope_{}", float_suffix(x.dtype));
    // SAFETY: `rope_T(x, cos, sin, y, rows, t, hs, start, sign)`; `x` and `y` hold `rows * hs`
    // elements and the tables cover positions `start..start + t` (checked by the caller).
    unsafe {
        launch::launch(
            &x.gpu,
            Family::Rope,
            &name,
            elementwise(pairs),
            &[&xp, &cp, &sp, &yp, &rows, &t, &hs, &start, &sign],
        )
    }?;
    Ok(y)
}
