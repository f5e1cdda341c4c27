//! Batched GEMM: cuBLAS for speed, and the tiled kernel of `matmul.cu` as the readable
//! version (and the fallback when cuBLAS is missing or an operand has no unit stride).
//!
//! `C[b] (M, N) = A[b] (M, K) @ B[b] (K, N)` for `b < batch`, with `C` contiguous. An
//! [`Operand`] gives its batch-0 address and its strides in elements: between rows, between
//! columns and between batches (0 broadcasts one matrix to every batch).
//!
//! cuBLAS is column-major, and a row-major `C (M, N)` is a column-major `(N, M)` matrix, so
//! cuBLAS computes `C^T = B^T A^T`: each row-major operand with unit column stride is its own
//! transpose read column-major (no transposition flag), and one with unit row stride (a
//! transposed view) takes the transposition flag.

use crate::cublas::{Op, Scalar};
use crate::{Family, LaunchConfig, Result};
use crate::{Gpu, KernelArg};
use std::ffi::{c_int, c_longlong};

/// One operand: batch 0's first element and strides in elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operand {
    /// Device address of element `[0, 0]` of batch 0.
    pub ptr: u64,
    /// Stride between rows.
    pub rs: i64,
    /// Stride between columns.
    pub cs: i64,
    /// Stride between batches.
    pub bs: i64,
}

/// Sizes of a batched product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Columns of A, rows of B (the summed dim).
    pub k: usize,
    /// Number of products.
    pub batch: usize,
}

/// Element types with a GEMM: `f32` and `f64`.
pub trait GemmElement: KernelArg + Scalar + 'static {
    /// Dtype suffix of the kernel names.
    const SUFFIX: &'static str;
}

impl GemmElement for f32 {
    const SUFFIX: &'static str = "f32";
}

impl GemmElement for f64 {
    const SUFFIX: &'static str = "f64";
}

/// Side of the tiles of the tiled kernel (`TILE` in `matmul.cu`).
const TILE: usize = 16;

/// `C = A @ B` with the tiled kernel, for any strides.
///
/// # Safety
/// Every element the operands address for `p` must lie in live device memory of type `T`, and
/// `c` must hold `batch * m * n` elements that no operand overlaps.
pub unsafe fn tiled<T: GemmElement>(
    gpu: &Gpu,
    p: Problem,
    a: Operand,
    b: Operand,
    c: u64,
) -> Result<()> {
    if p.m == 0 || p.n == 0 || p.batch == 0 {
        return Ok(());
    }
    let cfg = LaunchConfig {
        grid_dim: (
            p.n.div_ceil(TILE) as u32,
            p.m.div_ceil(TILE) as u32,
            p.batch.min(65_535) as u32,
        ),
        block_dim: (TILE as u32, TILE as u32, 1),
        shared_mem_bytes: 0,
    };
    let (m, n, k, batch) = (p.m as u64, p.n as u64, p.k as u64, p.batch as u64);
    let name = format!("gemm_tiled_{}", T::SUFFIX);
    // SAFETY: the arguments follow `gemm_tiled`'s parameter list; the memory contract is this
    // function's.
    unsafe {
        gpu.launch(
            Family::Matmul,
            &name,
            cfg,
            &[
                &a.ptr, &a.rs, &a.cs, &a.bs, &b.ptr, &b.rs, &b.cs, &b.bs, &c, &m, &n, &k, &batch,
            ],
        )
    }
}

/// How cuBLAS reads a row-major `rows x cols` operand with strides `rs`, `cs` as the
/// column-major transpose it needs: the transposition flag and the leading dimension, or `None`
/// when neither stride is 1.
fn blas_layout(rows: usize, cols: usize, rs: i64, cs: i64) -> Option<(Op, i64)> {
    let (rows, cols) = (rows as i64, cols as i64);
    if cs == 1 && (rows == 1 || rs >= cols) {
        Some((Op::N, rs.max(cols).max(1)))
    } else if rs == 1 && (cols == 1 || cs >= rows) {
        Some((Op::T, cs.max(rows).max(1)))
    } else {
        None
    }
}

/// `C = A @ B` with cuBLAS; `Ok(false)` when cuBLAS is absent or cannot take these operands
/// (no unit stride, or sizes beyond its 32-bit arguments).
///
/// # Safety
/// As [`tiled`].
pub unsafe fn cublas<T: GemmElement>(
    gpu: &Gpu,
    p: Problem,
    a: Operand,
    b: Operand,
    c: u64,
) -> Result<bool> {
    let (Some((ta, lda)), Some((tb, ldb))) = (
        blas_layout(p.m, p.k, a.rs, a.cs),
        blas_layout(p.k, p.n, b.rs, b.cs),
    ) else {
        return Ok(false);
    };
    let fits = |v: i64| c_int::try_from(v).is_ok();
    let sizes = [p.m as i64, p.n as i64, p.k as i64, p.batch as i64, lda, ldb];
    if !sizes.iter().all(|&v| fits(v)) {
        return Ok(false);
    }
    let Some(handle) = gpu.blas() else {
        return Ok(false);
    };
    if p.m == 0 || p.n == 0 || p.batch == 0 {
        return Ok(true);
    }
    gpu.bind()?;
    let mn = (p.m * p.n) as c_longlong;
    // Named by type, sizes and layouts (row-major, `T` for a transposed operand), so a
    // profile tells the model's products apart; built only for a profile or an error.
    let name = || {
        format!(
            "cublas_gemm_{} {}x{}x{}{} {}{}",
            T::SUFFIX,
            p.m,
            p.k,
            p.n,
            if p.batch > 1 {
                format!(" batch {}", p.batch)
            } else {
                String::new()
            },
            if ta == Op::T { "T" } else { "N" },
            if tb == Op::T { "T" } else { "N" },
        )
    };
    gpu.timed(name, || {
        // SAFETY: C^T (N x M) = B^T (N x K) A^T (K x M) column-major, as the module doc
        // explains; the operands' memory is this function's contract.
        unsafe {
            handle.gemm::<T>(
                (tb, ta),
                [p.n as c_int, p.m as c_int, p.k as c_int],
                (b.ptr, ldb as c_int, b.bs),
                (a.ptr, lda as c_int, a.bs),
                (c, p.n as c_int, mn),
                p.batch as c_int,
            )
        }
        .map_err(|e| format!("{}: {e}", name()))
    })?;
    Ok(true)
}

/// `C = A @ B`: cuBLAS when it can, else the tiled kernel.
///
/// # Safety
/// As [`tiled`].
pub unsafe fn gemm<T: GemmElement>(
    gpu: &Gpu,
    p: Problem,
    a: Operand,
    b: Operand,
    c: u64,
) -> Result<()> {
    // SAFETY: forwarded from this function's contract.
    if unsafe { cublas::<T>(gpu, p, a, b, c) }? {
        return Ok(());
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { tiled::<T>(gpu, p, a, b, c) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blas_layouts() {
        use Op::{N, T};
        assert_eq!(blas_layout(4, 3, 3, 1), Some((N, 3)));
        assert_eq!(blas_layout(4, 3, 1, 4), Some((T, 4)));
        assert_eq!(blas_layout(4, 3, 5, 1), Some((N, 5)));
        assert_eq!(blas_layout(1, 3, 0, 1), Some((N, 3)));
        assert_eq!(blas_layout(4, 3, 6, 2), None);
        assert_eq!(blas_layout(4, 3, 1, 1), None);
    }
}
