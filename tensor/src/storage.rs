//! A tensor's buffer on some device, and the one place that dispatches on the device.
//!
//! [`Storage`] wraps the storage of one backend (CPU, or CUDA with the `cuda` feature) and
//! forwards every [`BackendStorage`] method to it; operands of one op must live on one device.
//! Storages are counted while alive ([`live_storage`]), which lets tests prove that graphs and
//! buffers are freed.

use crate::backend::AdamWStep;
use crate::backend::AttentionDims;
use crate::backend::BackendStorage;
use crate::backend::Gelu;
use crate::backend::RopeDims;
use crate::backend::Softmax;
use crate::cpu::CpuStorage;
use crate::error::{Error, Result};
use crate::op::{BinaryOp, CmpOp, ReduceOp, UnaryOp};
use crate::{DType, Device, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

#[cfg(feature = "cuda")]
use crate::cuda::CudaStorage;

static LIVE_COUNT: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Number of storages alive in this process and their total size in bytes.
pub fn live_storage() -> (usize, usize) {
    (
        LIVE_COUNT.load(Ordering::Relaxed),
        LIVE_BYTES.load(Ordering::Relaxed),
    )
}

/// The buffer of one backend.
#[derive(Debug)]
enum Kind {
    Cpu(CpuStorage),
    #[cfg(feature = "cuda")]
    Cuda(CudaStorage),
}

/// A counted buffer on one device.
#[derive(Debug)]
pub struct Storage {
    kind: Kind,
    bytes: usize,
}

impl Drop for Storage {
    fn drop(&mut self) {
        LIVE_COUNT.fetch_sub(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Borrows the backend storage of the same kind as the one being dispatched on.
trait Of: Sized {
    fn of(s: &Storage) -> Result<&Self>;
    fn of_mut(s: &mut Storage) -> Result<&mut Self>;
}

fn device_mismatch(a: Device, b: Device) -> Error {
    Error::DeviceMismatch {
        op: "storage",
        lhs: a,
        rhs: b,
    }
}

impl Of for CpuStorage {
    #[allow(unreachable_patterns)]
    fn of(s: &Storage) -> Result<&Self> {
        match &s.kind {
            Kind::Cpu(c) => Ok(c),
            _ => Err(device_mismatch(Device::Cpu, s.device())),
        }
    }
    #[allow(unreachable_patterns)]
    fn of_mut(s: &mut Storage) -> Result<&mut Self> {
        let dev = s.device();
        match &mut s.kind {
            Kind::Cpu(c) => Ok(c),
            _ => Err(device_mismatch(Device::Cpu, dev)),
        }
    }
}

#[cfg(feature = "cuda")]
impl Of for CudaStorage {
    fn of(s: &Storage) -> Result<&Self> {
        match &s.kind {
            Kind::Cuda(c) => Ok(c),
            _ => Err(device_mismatch(Device::Cuda(0), s.device())),
        }
    }
    fn of_mut(s: &mut Storage) -> Result<&mut Self> {
        let dev = s.device();
        match &mut s.kind {
            Kind::Cuda(c) => Ok(c),
            _ => Err(device_mismatch(Device::Cuda(0), dev)),
        }
    }
}

/// Runs `$body` with `$x` bound to the backend storage of `$s` and `$B` naming its type, so
/// the body can borrow the other operands as `$B::of(..)`.
macro_rules! on_backend {
    ($s:expr, |$x:ident: $B:ident| $body:expr) => {
        match $s {
            Kind::Cpu($x) => {
                #[allow(dead_code)]
                type $B = CpuStorage;
                $body
            }
            #[cfg(feature = "cuda")]
            Kind::Cuda($x) => {
                #[allow(dead_code)]
                type $B = CudaStorage;
                $body
            }
        }
    };
}

impl From<CpuStorage> for Storage {
    fn from(s: CpuStorage) -> Self {
        Storage::new(Kind::Cpu(s))
    }
}

#[cfg(feature = "cuda")]
impl From<CudaStorage> for Storage {
    fn from(s: CudaStorage) -> Self {
        Storage::new(Kind::Cuda(s))
    }
}

/// Converts a pair or triple of backend storages into storages.
fn into2<B: Into<Storage>>((a, b): (B, B)) -> (Storage, Storage) {
    (a.into(), b.into())
}

impl Storage {
    fn new(kind: Kind) -> Self {
        let bytes = match &kind {
            Kind::Cpu(c) => c.len() * c.dtype().size_in_bytes(),
            #[cfg(feature = "cuda")]
            Kind::Cuda(c) => c.len() * c.dtype().size_in_bytes(),
        };
        LIVE_COUNT.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
        Storage { kind, bytes }
    }

    /// Places a host buffer on `device`.
    pub fn from_cpu(cpu: CpuStorage, device: Device) -> Result<Storage> {
        match device {
            Device::Cpu => Ok(cpu.into()),
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => Ok(CudaStorage::from_cpu(&cpu, i)?.into()),
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => Err(Error::Device(
                "this build has no CUDA support; rebuild with `--features cuda`".into(),
            )),
        }
    }

    /// The device the buffer lives on.
    pub fn device(&self) -> Device {
        match &self.kind {
            Kind::Cpu(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Kind::Cuda(c) => Device::Cuda(c.ordinal()),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        on_backend!(&self.kind, |s: B| s.dtype())
    }

    /// Number of elements in the buffer (not bytes).
    pub fn len(&self) -> usize {
        on_backend!(&self.kind, |s: B| s.len())
    }

    /// True when the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The CPU buffer, if this storage is on the CPU (no copy).
    pub fn as_cpu(&self) -> Option<&CpuStorage> {
        CpuStorage::of(self).ok()
    }

    /// The CPU buffer, mutably, if this storage is on the CPU.
    pub fn as_cpu_mut(&mut self) -> Option<&mut CpuStorage> {
        CpuStorage::of_mut(self).ok()
    }

    /// A host copy of the buffer.
    pub fn to_cpu(&self) -> Result<CpuStorage> {
        on_backend!(&self.kind, |s: B| s.to_cpu())
    }

    /// [`BackendStorage::contiguous`] on this storage's device.
    pub fn contiguous(&self, l: &Layout) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s.contiguous(l)?.into()))
    }

    /// [`BackendStorage::to_dtype`] on this storage's device.
    pub fn to_dtype(&self, l: &Layout, dtype: DType) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s.to_dtype(l, dtype)?.into()))
    }

    /// [`BackendStorage::unary`] on this storage's device.
    pub fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s.unary(l, op)?.into()))
    }

    /// [`BackendStorage::binary`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn binary(&self, l: &Layout, rhs: &Storage, rl: &Layout, op: BinaryOp) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s
            .binary(l, B::of(rhs)?, rl, op)?
            .into()))
    }

    /// [`BackendStorage::compare`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn compare(&self, l: &Layout, rhs: &Storage, rl: &Layout, op: CmpOp) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s
            .compare(l, B::of(rhs)?, rl, op)?
            .into()))
    }

    /// [`BackendStorage::where_cond`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn where_cond(
        &self,
        ml: &Layout,
        a: &Storage,
        al: &Layout,
        b: &Storage,
        bl: &Layout,
    ) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s
            .where_cond(ml, B::of(a)?, al, B::of(b)?, bl)?
            .into()))
    }

    /// [`BackendStorage::reduce`] on this storage's device.
    pub fn reduce(&self, l: &Layout, dims: &[usize], op: ReduceOp) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s.reduce(l, dims, op)?.into()))
    }

    /// [`BackendStorage::softmax`] on this storage's device.
    pub fn softmax(&self, n: usize, kind: Softmax) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s.softmax(n, kind)?.into()))
    }

    /// [`BackendStorage::softmax_backward`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn softmax_backward(&self, dy: &Storage, n: usize, kind: Softmax) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s
            .softmax_backward(B::of(dy)?, n, kind)?
            .into()))
    }

    /// [`BackendStorage::logsumexp`] on this storage's device.
    pub fn logsumexp(&self, n: usize) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s.logsumexp(n)?.into()))
    }

    /// [`BackendStorage::matmul`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn matmul(&self, l: &Layout, rhs: &Storage, rl: &Layout) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s.matmul(l, B::of(rhs)?, rl)?.into()))
    }

    /// [`BackendStorage::index_select`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn index_select(
        &self,
        l: &Layout,
        dim: usize,
        ids: &Storage,
        ids_l: &Layout,
    ) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s
            .index_select(l, dim, B::of(ids)?, ids_l)?
            .into()))
    }

    /// [`BackendStorage::index_add`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn index_add(
        &self,
        shape: &[usize],
        dim: usize,
        ids: &Storage,
        ids_l: &Layout,
        size: usize,
    ) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s
            .index_add(shape, dim, B::of(ids)?, ids_l, size)?
            .into()))
    }

    /// [`BackendStorage::gather`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn gather(&self, l: &Layout, dim: usize, idx: &Storage, idx_l: &Layout) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s
            .gather(l, dim, B::of(idx)?, idx_l)?
            .into()))
    }

    /// [`BackendStorage::scatter_add`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn scatter_add(
        &self,
        dim: usize,
        idx: &Storage,
        idx_l: &Layout,
        dst_shape: &[usize],
    ) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s
            .scatter_add(dim, B::of(idx)?, idx_l, dst_shape)?
            .into()))
    }

    /// [`BackendStorage::layer_norm`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn layer_norm(
        &self,
        c: usize,
        w: Option<&Storage>,
        b: Option<&Storage>,
        eps: f64,
    ) -> Result<(Storage, Storage, Storage)> {
        on_backend!(&self.kind, |s: B| {
            let w = w.map(B::of).transpose()?;
            let b = b.map(B::of).transpose()?;
            let (y, m, r) = s.layer_norm(c, w, b, eps)?;
            Ok((y.into(), m.into(), r.into()))
        })
    }

    /// [`BackendStorage::layer_norm_backward`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    #[allow(clippy::too_many_arguments)]
    pub fn layer_norm_backward(
        &self,
        x: &Storage,
        c: usize,
        w: Option<&Storage>,
        mean: &Storage,
        rstd: &Storage,
        has_bias: bool,
    ) -> Result<(Storage, Option<Storage>, Option<Storage>)> {
        on_backend!(&self.kind, |s: B| {
            let w = w.map(B::of).transpose()?;
            let (dx, dw, db) =
                s.layer_norm_backward(B::of(x)?, c, w, B::of(mean)?, B::of(rstd)?, has_bias)?;
            Ok((dx.into(), dw.map(Into::into), db.map(Into::into)))
        })
    }

    /// [`BackendStorage::rms_norm`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn rms_norm(&self, c: usize, w: &Storage, eps: f64) -> Result<(Storage, Storage)> {
        on_backend!(&self.kind, |s: B| Ok(into2(s.rms_norm(
            c,
            B::of(w)?,
            eps
        )?)))
    }

    /// [`BackendStorage::rope`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn rope(&self, cos: &Storage, sin: &Storage, dims: RopeDims) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s
            .rope(B::of(cos)?, B::of(sin)?, dims)?
            .into()))
    }

    /// [`BackendStorage::cross_entropy`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn cross_entropy(
        &self,
        v: usize,
        targets: &Storage,
        ignore: Option<i64>,
    ) -> Result<(Storage, Storage)> {
        on_backend!(&self.kind, |s: B| Ok(into2(s.cross_entropy(
            v,
            B::of(targets)?,
            ignore
        )?)))
    }

    /// [`BackendStorage::cross_entropy_backward`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn cross_entropy_backward(
        &self,
        v: usize,
        targets: &Storage,
        ignore: Option<i64>,
        lse: &Storage,
        grad: f64,
    ) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| {
            Ok(
                s.cross_entropy_backward(v, B::of(targets)?, ignore, B::of(lse)?, grad)?
                    .into(),
            )
        })
    }

    /// [`BackendStorage::attention`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn attention(
        &self,
        k: &Storage,
        v: &Storage,
        dims: AttentionDims,
    ) -> Result<(Storage, Storage)> {
        on_backend!(&self.kind, |s: B| Ok(into2(s.attention(
            B::of(k)?,
            B::of(v)?,
            dims
        )?)))
    }

    /// [`BackendStorage::attention_backward`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    #[allow(clippy::too_many_arguments)]
    pub fn attention_backward(
        &self,
        k: &Storage,
        v: &Storage,
        out: &Storage,
        lse: &Storage,
        dout: &Storage,
        dims: AttentionDims,
    ) -> Result<(Storage, Storage, Storage)> {
        on_backend!(&self.kind, |s: B| {
            let (dq, dk, dv) = s.attention_backward(
                B::of(k)?,
                B::of(v)?,
                B::of(out)?,
                B::of(lse)?,
                B::of(dout)?,
                dims,
            )?;
            Ok((dq.into(), dk.into(), dv.into()))
        })
    }

    /// [`BackendStorage::gelu_backward`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn gelu_backward(&self, dy: &Storage, kind: Gelu) -> Result<Storage> {
        on_backend!(&self.kind, |s: B| Ok(s
            .gelu_backward(B::of(dy)?, kind)?
            .into()))
    }

    /// [`BackendStorage::copy_into`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn copy_into(&mut self, dl: &Layout, src: &Storage, sl: &Layout) -> Result<()> {
        on_backend!(&mut self.kind, |s: B| s.copy_into(dl, B::of(src)?, sl))
    }

    /// [`BackendStorage::binary_inplace`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn binary_inplace(
        &mut self,
        dl: &Layout,
        rhs: &Storage,
        rl: &Layout,
        op: BinaryOp,
    ) -> Result<()> {
        on_backend!(&mut self.kind, |s: B| s.binary_inplace(
            dl,
            B::of(rhs)?,
            rl,
            op
        ))
    }

    /// [`BackendStorage::fill`] on this storage's device.
    pub fn fill(&mut self, dl: &Layout, value: f64) -> Result<()> {
        on_backend!(&mut self.kind, |s: B| s.fill(dl, value))
    }

    /// [`BackendStorage::adamw_step`] on this storage's device.
    /// Every other storage must be on the same device, else [`Error::DeviceMismatch`].
    pub fn adamw_step(
        &mut self,
        grad: &Storage,
        m: &mut Storage,
        v: &mut Storage,
        h: &AdamWStep,
    ) -> Result<()> {
        on_backend!(&mut self.kind, |s: B| s.adamw_step(
            B::of(grad)?,
            B::of_mut(m)?,
            B::of_mut(v)?,
            h
        ))
    }
}
