//! Indexing on the GPU (`index.cu`): index_select and its adjoint index_add (the embedding
//! forward and backward), gather and its adjoint scatter_add.
//!
//! Index tensors are read back to the host and checked exactly as the CPU backend checks them,
//! then uploaded as contiguous `i64`, so the kernels trust their indices.

use super::elementwise::contiguous;
use super::launch::{self, bits_suffix, elementwise, float_suffix, view};
use super::CudaStorage;
use crate::backend::BackendStorage;
use crate::cpu::CpuStorage;
use crate::dtype::IndexElement;
use crate::error::{Error, Result};
use crate::layout::contiguous_strides;
use crate::layout::sizes_around;
use crate::{DType, Layout};
use cuda_kernels::Family;

/// The indices of a `u32`/`i64` storage seen through `l`, each checked to be below `size`.
fn indices(op: &'static str, s: &CudaStorage, l: &Layout, size: usize) -> Result<Vec<i64>> {
    fn check<I: IndexElement>(op: &'static str, v: &[I], size: usize) -> Result<Vec<i64>> {
        v.iter()
            .map(|&i| match i.to_index() {
                Some(u) if u < size => Ok(u as i64),
                _ => Err(Error::IndexOutOfRange {
                    op,
                    index: i.to_f64() as usize,
                    size,
                }),
            })
            .collect()
    }
    if !s.dtype.is_index() {
        return Err(Error::UnsupportedDType { op, dtype: s.dtype });
    }
    match contiguous(s, l)?.to_cpu()? {
        CpuStorage::U32(v) => check(op, &v, size),
        CpuStorage::I64(v) => check(op, &v, size),
        other => Err(Error::UnsupportedDType {
            op,
            dtype: other.dtype(),
        }),
    }
}

/// The first element of `l`'s data, copying the view to a contiguous buffer if it is not
/// contiguous (the copy is returned to be kept alive until the kernel is queued).
fn dense(s: &CudaStorage, l: &Layout) -> Result<(u64, Option<CudaStorage>)> {
    match l.contiguous_range() {
        Some(r) => Ok((s.at(r.start), None)),
        None => {
            let c = contiguous(s, l)?;
            Ok((c.ptr(), Some(c)))
        }
    }
}

/// `out[o, j, i] = x[o, ids[j], i]` along `dim`.
pub fn index_select(
    x: &CudaStorage,
    l: &Layout,
    dim: usize,
    ids: &CudaStorage,
    ids_l: &Layout,
) -> Result<CudaStorage> {
    let (outer, size, inner) = sizes_around(l.shape(), dim);
    let ids = indices("index_select", ids, ids_l, size)?;
    let n = outer * ids.len() * inner;
    let out = x.alloc(x.dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let ids_dev = x.upload(&CpuStorage::I64(ids))?;
    let (xp, _copy) = dense(x, l)?;
    let (size, inner, n_ids, n64) = (size as u64, inner as u64, ids_dev.len as u64, n as u64);
    let (ip, op) = (ids_dev.ptr(), out.ptr());
    let name = format!("index_select_{}", bits_suffix(x.dtype));
    // SAFETY: `index_select_bN(x, size, inner, ids, n_ids, out, n)`; `x` holds the dense
    // `(outer, size, inner)` data, every id is below `size` (checked above), and `out` holds
    // `outer * n_ids * inner` elements.
    unsafe {
        launch::launch(
            &x.gpu,
            Family::Index,
            &name,
            elementwise(n),
            &[&xp, &size, &inner, &ip, &n_ids, &op, &n64],
        )
    }?;
    Ok(out)
}

/// Zeros of `src_shape` with `dim` of size `size`, plus the rows of `src` added at `ids`.
pub fn index_add(
    src: &CudaStorage,
    src_shape: &[usize],
    dim: usize,
    ids: &CudaStorage,
    ids_l: &Layout,
    size: usize,
) -> Result<CudaStorage> {
    let ids = indices("index_add", ids, ids_l, size)?;
    src.float("index_add")?;
    let (outer, n_ids, inner) = sizes_around(src_shape, dim);
    let n = outer * size * inner;
    if n == 0 {
        return CudaStorage::zeros(&src.gpu, src.dtype, n);
    }
    // Group the positions j by id: order[starts[s]..starts[s + 1]] are the j with ids[j] == s,
    // increasing (a counting sort, stable).
    let mut starts = vec![0i64; size + 1];
    for &id in &ids[..n_ids] {
        starts[id as usize + 1] += 1;
    }
    for s in 0..size {
        starts[s + 1] += starts[s];
    }
    let mut next = starts.clone();
    let mut order = vec![0i64; n_ids];
    for (j, &id) in ids[..n_ids].iter().enumerate() {
        order[next[id as usize] as usize] = j as i64;
        next[id as usize] += 1;
    }
    let starts = src.upload(&CpuStorage::I64(starts))?;
    let order = src.upload(&CpuStorage::I64(order))?;
    let out = src.alloc(src.dtype, n)?;
    let (sp, stp, orp, op) = (src.ptr(), starts.ptr(), order.ptr(), out.ptr());
    let (n_ids, inner, size, n64) = (n_ids as u64, inner as u64, size as u64, n as u64);
    let name = format!("index_add_{}", float_suffix(src.dtype));
    // SAFETY: `index_add_T(src, n_ids, inner, size, starts, order, dst, n)`; `src` holds
    // `outer * n_ids * inner` elements, `starts` `size + 1` offsets into `order`, whose
    // entries are below `n_ids`, and `out` holds `n` elements.
    unsafe {
        launch::launch(
            &src.gpu,
            Family::Index,
            &name,
            elementwise(n),
            &[&sp, &n_ids, &inner, &size, &stp, &orp, &op, &n64],
        )
    }?;
    Ok(out)
}

/// The view of a tensor laid out as `shape`/`strides`/`offset` that lines up with an index of
/// `idx_shape`: `dim` gets stride 0, its position coming from the index values.
fn aligned(idx_shape: &[usize], strides: &[usize], offset: usize, dim: usize) -> Layout {
    let mut strides = strides.to_vec();
    strides[dim] = 0;
    Layout::new(idx_shape.to_vec(), strides, offset)
}

/// `out[p] = x[p with p[dim] = idx[p]]`.
pub fn gather(
    x: &CudaStorage,
    l: &Layout,
    dim: usize,
    idx: &CudaStorage,
    idx_l: &Layout,
) -> Result<CudaStorage> {
    let ids = indices("gather", idx, idx_l, l.shape()[dim])?;
    if !matches!(x.dtype, DType::F32 | DType::F64 | DType::U32 | DType::I64) {
        return Err(Error::UnsupportedDType {
            op: "gather",
            dtype: x.dtype,
        });
    }
    let n = ids.len();
    let out = x.alloc(x.dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let xv = view(&aligned(idx_l.shape(), l.strides(), l.offset(), dim))?;
    let ids_dev = x.upload(&CpuStorage::I64(ids))?;
    let (xp, ip, op, step, n64) = (
        x.ptr(),
        ids_dev.ptr(),
        out.ptr(),
        l.strides()[dim] as u64,
        n as u64,
    );
    let name = format!("gather_{}", bits_suffix(x.dtype));
    // SAFETY: `gather_bN(x, view, step, idx, out, n)`; for every position the view's index
    // plus `idx * step` is an element of `l` (indices checked above), and `out` holds `n`.
    unsafe {
        launch::launch(
            &x.gpu,
            Family::Index,
            &name,
            elementwise(n),
            &[&xp, &xv, &step, &ip, &op, &n64],
        )
    }?;
    Ok(out)
}

/// Zeros of `dst_shape` plus `src[p]` added at `p with p[dim] = idx[p]`.
pub fn scatter_add(
    src: &CudaStorage,
    dim: usize,
    idx: &CudaStorage,
    idx_l: &Layout,
    dst_shape: &[usize],
) -> Result<CudaStorage> {
    let ids = indices("scatter_add", idx, idx_l, dst_shape[dim])?;
    src.float("scatter_add")?;
    let out = CudaStorage::zeros(&src.gpu, src.dtype, dst_shape.iter().product())?;
    let n = ids.len();
    if n == 0 {
        return Ok(out);
    }
    let strides = contiguous_strides(dst_shape);
    let dv = view(&aligned(idx_l.shape(), &strides, 0, dim))?;
    let ids_dev = src.upload(&CpuStorage::I64(ids))?;
    let (sp, ip, op, step, n64) = (
        src.ptr(),
        ids_dev.ptr(),
        out.ptr(),
        strides[dim] as u64,
        n as u64,
    );
    let name = format!("scatter_add_{}", float_suffix(src.dtype));
    // SAFETY: `scatter_add_T(src, view, step, idx, dst, n)`; `src` holds `n` elements and
    // every target is an element of the zeroed `out` (indices checked above).
    unsafe {
        launch::launch(
            &src.gpu,
            Family::Index,
            &name,
            elementwise(n),
            &[&sp, &dv, &step, &ip, &op, &n64],
        )
    }?;
    Ok(out)
}
