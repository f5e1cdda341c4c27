//! CUDA storage: [`BackendStorage`] on an NVIDIA GPU, with the kernels of the `cuda-kernels`
//! crate (each a twin of a CPU kernel under `cpu/`).
//!
//! A [`CudaStorage`] is a device buffer from the device's caching allocator plus its dtype and
//! length. Every op queues kernels on the device's one stream and returns at once; only reads
//! back to the host ([`BackendStorage::to_cpu`], index checks) wait for the device.
//!
//! Dtypes: every kernel that the CPU backend has for `f32` and `f64` exists for both here, and
//! the integer dtypes serve as masks, ids and indices as on the CPU. Copies, fills, selections
//! and transfers move raw bits, so they work for every dtype; conversions to or from `f16` and
//! `bf16` (storage types, used for checkpoints) go through the host.
//!
//! Indices are read back to the host, checked exactly as on the CPU (so a bad index is the
//! same error on both devices) and uploaded as `i64`.

mod attention;
mod cross_entropy;
mod elementwise;
mod index;
mod launch;
mod layer_norm;
mod matmul;
mod reduce;
mod rms_norm;
mod rope;
mod softmax;

use crate::backend::AdamWStep;
use crate::backend::AttentionDims;
use crate::backend::BackendStorage;
use crate::backend::Gelu;
use crate::backend::RopeDims;
use crate::backend::Softmax;
use crate::cpu::CpuStorage;
use crate::error::{Error, Result};
use crate::op::{BinaryOp, CmpOp, ReduceOp, UnaryOp};
use crate::{DType, Layout};
use cuda_kernels::{DeviceBuffer, Gpu};
use std::sync::Arc;

pub use cuda_kernels::profile::{table as kernel_time_table, KernelTime};
pub use cuda_kernels::{probe, DeviceInfo};

/// What was found when GPU `ordinal` was opened (opening it now if it was not yet), or why it
/// cannot be.
pub fn device_info(ordinal: usize) -> Result<DeviceInfo> {
    Gpu::get(ordinal).map(|g| g.info().clone()).map_err(device)
}

/// Starts (clearing earlier figures) or stops timing every kernel GPU `ordinal` runs; see
/// [`cuda_kernels::profile`]. Profiled work runs slower than unprofiled work.
pub fn set_profiling(ordinal: usize, on: bool) -> Result<()> {
    Gpu::get(ordinal)
        .map(|g| g.set_profiling(on))
        .map_err(device)
}

/// Time per kernel on GPU `ordinal` since profiling was started, most first (waits for the
/// queued work).
pub fn kernel_times(ordinal: usize) -> Result<Vec<KernelTime>> {
    Gpu::get(ordinal)
        .map_err(device)?
        .kernel_times()
        .map_err(device)
}

/// Milliseconds the host has waited for GPU `ordinal` (reads back, uploads, synchronizations)
/// since profiling was started; see [`cuda_kernels::Gpu::host_wait_ms`].
pub fn host_wait_ms(ordinal: usize) -> Result<f64> {
    Gpu::get(ordinal).map(|g| g.host_wait_ms()).map_err(device)
}

/// A buffer of `len` elements of `dtype` on one GPU.
pub struct CudaStorage {
    buf: DeviceBuffer,
    dtype: DType,
    len: usize,
    gpu: Arc<Gpu>,
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaStorage(cuda:{}, {}, {})",
            self.ordinal(),
            self.dtype,
            self.len
        )
    }
}

/// A device error from the `cuda-kernels` crate.
pub(crate) fn device(e: String) -> Error {
    Error::Device(e)
}

/// The mutable bytes of a host buffer.
fn bytes_mut(s: &mut CpuStorage) -> &mut [u8] {
    match s {
        CpuStorage::F32(v) => bytemuck::cast_slice_mut(v),
        CpuStorage::F64(v) => bytemuck::cast_slice_mut(v),
        CpuStorage::F16(v) => bytemuck::cast_slice_mut(v),
        CpuStorage::BF16(v) => bytemuck::cast_slice_mut(v),
        CpuStorage::U8(v) => v,
        CpuStorage::U32(v) => bytemuck::cast_slice_mut(v),
        CpuStorage::I64(v) => bytemuck::cast_slice_mut(v),
    }
}

impl CudaStorage {
    /// Copies a host buffer to GPU `ordinal`; fails with one sentence when CUDA is unavailable.
    pub fn from_cpu(cpu: &CpuStorage, ordinal: usize) -> Result<CudaStorage> {
        let gpu = Gpu::get(ordinal).map_err(device)?;
        let buf = gpu.upload(cpu.as_bytes()).map_err(device)?;
        Ok(CudaStorage {
            buf,
            dtype: cpu.dtype(),
            len: cpu.len(),
            gpu,
        })
    }

    /// The GPU's index.
    pub fn ordinal(&self) -> usize {
        self.gpu.info().ordinal
    }

    /// A new buffer of `len` elements of `dtype` on `gpu`, contents unspecified (the kernel
    /// that receives it writes every element).
    fn uninit(gpu: &Arc<Gpu>, dtype: DType, len: usize) -> Result<CudaStorage> {
        let buf = gpu.alloc(len * dtype.size_in_bytes()).map_err(device)?;
        Ok(CudaStorage {
            buf,
            dtype,
            len,
            gpu: gpu.clone(),
        })
    }

    /// A new zeroed buffer of `len` elements of `dtype` on `gpu`.
    fn zeros(gpu: &Arc<Gpu>, dtype: DType, len: usize) -> Result<CudaStorage> {
        let buf = gpu
            .alloc_zeroed(len * dtype.size_in_bytes())
            .map_err(device)?;
        Ok(CudaStorage {
            buf,
            dtype,
            len,
            gpu: gpu.clone(),
        })
    }

    /// A new buffer like this one's device.
    fn alloc(&self, dtype: DType, len: usize) -> Result<CudaStorage> {
        CudaStorage::uninit(&self.gpu, dtype, len)
    }

    /// Device address of element `offset`.
    fn at(&self, offset: usize) -> u64 {
        self.buf.ptr() + (offset * self.dtype.size_in_bytes()) as u64
    }

    /// Device address of element 0.
    fn ptr(&self) -> u64 {
        self.buf.ptr()
    }

    /// Uploads a host buffer to this storage's device.
    fn upload(&self, cpu: &CpuStorage) -> Result<CudaStorage> {
        let buf = self.gpu.upload(cpu.as_bytes()).map_err(device)?;
        Ok(CudaStorage {
            buf,
            dtype: cpu.dtype(),
            len: cpu.len(),
            gpu: self.gpu.clone(),
        })
    }

    /// Errors unless `other` has this storage's dtype.
    fn same_dtype(&self, op: &'static str, other: &CudaStorage) -> Result<()> {
        if other.dtype != self.dtype {
            return Err(Error::DTypeMismatch {
                op,
                lhs: self.dtype,
                rhs: other.dtype,
            });
        }
        Ok(())
    }

    /// Errors unless this storage is `f32` or `f64`.
    fn float(&self, op: &'static str) -> Result<()> {
        match self.dtype {
            DType::F32 | DType::F64 => Ok(()),
            dtype => Err(Error::UnsupportedDType { op, dtype }),
        }
    }
}

impl BackendStorage for CudaStorage {
    fn dtype(&self) -> DType {
        self.dtype
    }

    fn len(&self) -> usize {
        self.len
    }

    fn to_cpu(&self) -> Result<CpuStorage> {
        let mut host = CpuStorage::zeros(self.dtype, self.len);
        self.gpu
            .download(&self.buf, bytes_mut(&mut host))
            .map_err(device)?;
        Ok(host)
    }

    fn contiguous(&self, l: &Layout) -> Result<Self> {
        elementwise::contiguous(self, l)
    }

    fn to_dtype(&self, l: &Layout, dtype: DType) -> Result<Self> {
        elementwise::to_dtype(self, l, dtype)
    }

    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self> {
        elementwise::unary(self, l, op)
    }

    fn binary(&self, l: &Layout, rhs: &Self, rl: &Layout, op: BinaryOp) -> Result<Self> {
        elementwise::binary(self, l, rhs, rl, op)
    }

    fn compare(&self, l: &Layout, rhs: &Self, rl: &Layout, op: CmpOp) -> Result<Self> {
        elementwise::compare(self, l, rhs, rl, op)
    }

    fn where_cond(
        &self,
        ml: &Layout,
        a: &Self,
        al: &Layout,
        b: &Self,
        bl: &Layout,
    ) -> Result<Self> {
        elementwise::where_cond(self, ml, a, al, b, bl)
    }

    fn reduce(&self, l: &Layout, dims: &[usize], op: ReduceOp) -> Result<Self> {
        reduce::reduce(self, l, dims, op)
    }

    fn softmax(&self, n: usize, kind: Softmax) -> Result<Self> {
        softmax::softmax(self, n, kind)
    }

    fn softmax_backward(&self, dy: &Self, n: usize, kind: Softmax) -> Result<Self> {
        softmax::softmax_backward(self, dy, n, kind)
    }

    fn logsumexp(&self, n: usize) -> Result<Self> {
        softmax::logsumexp(self, n)
    }

    fn matmul(&self, l: &Layout, rhs: &Self, rl: &Layout) -> Result<Self> {
        matmul::matmul(self, l, rhs, rl)
    }

    fn index_select(&self, l: &Layout, dim: usize, ids: &Self, ids_l: &Layout) -> Result<Self> {
        index::index_select(self, l, dim, ids, ids_l)
    }

    fn index_add(
        &self,
        src_shape: &[usize],
        dim: usize,
        ids: &Self,
        ids_l: &Layout,
        size: usize,
    ) -> Result<Self> {
        index::index_add(self, src_shape, dim, ids, ids_l, size)
    }

    fn gather(&self, l: &Layout, dim: usize, idx: &Self, idx_l: &Layout) -> Result<Self> {
        index::gather(self, l, dim, idx, idx_l)
    }

    fn scatter_add(
        &self,
        dim: usize,
        idx: &Self,
        idx_l: &Layout,
        dst_shape: &[usize],
    ) -> Result<Self> {
        index::scatter_add(self, dim, idx, idx_l, dst_shape)
    }

    fn layer_norm(
        &self,
        c: usize,
        w: Option<&Self>,
        b: Option<&Self>,
        eps: f64,
    ) -> Result<(Self, Self, Self)> {
        layer_norm::layer_norm(self, c, w, b, eps)
    }

    fn layer_norm_backward(
        &self,
        x: &Self,
        c: usize,
        w: Option<&Self>,
        mean: &Self,
        rstd: &Self,
        has_bias: bool,
    ) -> Result<(Self, Option<Self>, Option<Self>)> {
        layer_norm::layer_norm_backward(self, x, c, w, mean, rstd, has_bias)
    }

    fn rms_norm(&self, c: usize, w: &Self, eps: f64) -> Result<(Self, Self)> {
        rms_norm::forward(self, c, w, eps)
    }

    fn rope(&self, cos: &Self, sin: &Self, dims: RopeDims) -> Result<Self> {
        rope::apply(self, cos, sin, dims)
    }

    fn cross_entropy(&self, v: usize, targets: &Self, ignore: Option<i64>) -> Result<(Self, Self)> {
        cross_entropy::cross_entropy(self, v, targets, ignore)
    }

    fn cross_entropy_backward(
        &self,
        v: usize,
        targets: &Self,
        ignore: Option<i64>,
        lse: &Self,
        grad: f64,
    ) -> Result<Self> {
        cross_entropy::cross_entropy_backward(self, v, targets, ignore, lse, grad)
    }

    fn attention(&self, k: &Self, v: &Self, dims: AttentionDims) -> Result<(Self, Self)> {
        attention::attention(self, k, v, dims)
    }

    fn attention_backward(
        &self,
        k: &Self,
        v: &Self,
        out: &Self,
        lse: &Self,
        dout: &Self,
        dims: AttentionDims,
    ) -> Result<(Self, Self, Self)> {
        attention::attention_backward(self, [k, v, out, lse, dout], dims)
    }

    fn gelu_backward(&self, dy: &Self, kind: Gelu) -> Result<Self> {
        elementwise::gelu_backward(self, dy, kind)
    }

    fn copy_into(&mut self, dl: &Layout, src: &Self, sl: &Layout) -> Result<()> {
        elementwise::copy_into(self, dl, src, sl)
    }

    fn binary_inplace(&mut self, dl: &Layout, rhs: &Self, rl: &Layout, op: BinaryOp) -> Result<()> {
        elementwise::binary_inplace(self, dl, rhs, rl, op)
    }

    fn fill(&mut self, dl: &Layout, value: f64) -> Result<()> {
        elementwise::fill(self, dl, value)
    }

    fn adamw_step(&mut self, grad: &Self, m: &mut Self, v: &mut Self, h: &AdamWStep) -> Result<()> {
        elementwise::adamw_step(self, grad, m, v, h)
    }
}
