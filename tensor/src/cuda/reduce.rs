//! Reductions over dims (`reduce.cu`; CPU twin `cpu/reduce.rs`).

use super::launch::{self, float_suffix, per_row, view};
use super::CudaStorage;
use crate::error::{Error, Result};
use crate::op::ReduceOp;
use crate::{DType, Layout};
use cuda_kernels::{Family, LaunchConfig, BLOCK_THREADS};

/// The number of `op` in `reduce.cu`.
fn reduce_code(op: ReduceOp) -> i32 {
    match op {
        ReduceOp::Sum => 0,
        ReduceOp::Max => 1,
        ReduceOp::Min => 2,
        ReduceOp::ArgMax => 3,
        ReduceOp::ArgMin => 4,
    }
}

/// Sum, max or min over sorted distinct `dims`; arg-max / arg-min (`u32`) over `dims[0]`.
pub fn reduce(s: &CudaStorage, l: &Layout, dims: &[usize], op: ReduceOp) -> Result<CudaStorage> {
    s.float(op.name())?;
    let (kept, red) = l.split_dims(dims);
    if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) {
        return arg_reduce(s, &kept, &red, op);
    }
    let (n_out, n_red) = (kept.numel(), red.numel());
    if n_out == 0 {
        return s.alloc(s.dtype, 0);
    }
    let (kv, rv) = (view(&kept)?, view(&red)?);
    let last = |v: &cuda_kernels::Strided| v.strides[v.rank as usize - 1];
    let columns = last(&kv) == 1 && last(&rv) != 1 && n_out >= 256;
    let (kind, cfg) = if columns {
        let blocks = n_out.div_ceil(COLS_OUTPUTS).min(MAX_GRID);
        let cfg = split_launch(blocks, (32, COLS_LANES), n_red, MIN_CHUNK_COLS);
        ("cols", cfg)
    } else {
        let blocks = n_out.min(MAX_GRID);
        let cfg = split_launch(blocks, (BLOCK_THREADS, 1), n_red, MIN_CHUNK_ROWS);
        ("rows", cfg)
    };
    // With the reduced range split into pieces, each piece writes its partial results (one
    // row of `n_out` per piece), and a second pass below reduces them to the output.
    let pieces = cfg.grid_dim.1 as usize;
    let out = s.alloc(s.dtype, pieces * n_out)?;
    let (x, y, code) = (s.ptr(), out.ptr(), reduce_code(op));
    let (n_out64, n_red64, chunk) = (n_out as u64, n_red as u64, n_red.div_ceil(pieces) as u64);
    let name = format!("reduce_{kind}_{}", float_suffix(s.dtype));
    // SAFETY: `reduce_{rows,cols}_T(x, kept, red, n_red, chunk, out, n_out, op)`; every
    // `kept(k) + red(r)` is an element of the layout `l`, which fits `s`, and `out` holds
    // `gridDim.y * n_out` elements.
    unsafe {
        launch::launch(
            &s.gpu,
            Family::Reduce,
            &name,
            cfg,
            &[&x, &kv, &rv, &n_red64, &chunk, &y, &n_out64, &code],
        )
    }?;
    if pieces == 1 {
        return Ok(out);
    }
    reduce(&out, &Layout::contiguous(&[pieces, n_out]), &[0], op)
}

/// Arg-max or arg-min (`u32`) over the one reduced dim `red` of each element of `kept`.
fn arg_reduce(s: &CudaStorage, kept: &Layout, red: &Layout, op: ReduceOp) -> Result<CudaStorage> {
    let (n_out, n_red) = (kept.numel(), red.numel());
    let out = s.alloc(DType::U32, n_out)?;
    if n_out == 0 {
        return Ok(out);
    }
    if n_red == 0 {
        return Err(Error::InvalidArgument(format!(
            "{}: the dim is empty",
            op.name()
        )));
    }
    let (x, kv, y, code) = (s.ptr(), view(kept)?, out.ptr(), reduce_code(op));
    let (n_out64, n_red64, stride) = (n_out as u64, n_red as u64, red.strides()[0] as u64);
    let name = format!("arg_reduce_{}", float_suffix(s.dtype));
    // SAFETY: `arg_reduce_T(x, kept, n, stride, out, n_out, op)`; the views address `s`
    // within its layout, and `out` holds `n_out` indices.
    unsafe {
        launch::launch(
            &s.gpu,
            Family::Reduce,
            &name,
            per_row(n_out),
            &[&x, &kv, &n_red64, &stride, &y, &n_out64, &code],
        )
    }?;
    Ok(out)
}

/// Outputs one block of `reduce_cols` covers (its 32 lanes).
const COLS_OUTPUTS: usize = 32;
/// Rows of threads in a block of `reduce_cols` (`COLS_LANES` in `reduce.cu`).
const COLS_LANES: u32 = 8;
/// Blocks a reduction aims for, at least: several per multiprocessor of a large GPU.
const TARGET_BLOCKS: usize = 1024;
/// The fewest reduced elements per piece worth a block of `reduce_rows` (32 per thread) or
/// a block of `reduce_cols` (8 per thread), so splitting never makes pieces of crumbs.
const MIN_CHUNK_ROWS: usize = 32 * BLOCK_THREADS as usize;
const MIN_CHUNK_COLS: usize = 8 * COLS_LANES as usize;
/// The most blocks along the x dimension that the reduce kernels launch (they loop beyond).
const MAX_GRID: usize = 65_535;

/// The launch of `blocks` blocks of `block` threads over the outputs, with the reduced range
/// of `n_red` elements split into as many pieces (`gridDim.y`) as it takes to reach
/// [`TARGET_BLOCKS`], each piece at least `min_chunk` elements long.
fn split_launch(blocks: usize, block: (u32, u32), n_red: usize, min_chunk: usize) -> LaunchConfig {
    let pieces = (TARGET_BLOCKS / blocks)
        .min(n_red / min_chunk)
        .clamp(1, MAX_GRID);
    LaunchConfig {
        grid_dim: (blocks.max(1) as u32, pieces as u32, 1),
        block_dim: (block.0, block.1, 1),
        shared_mem_bytes: 0,
    }
}
