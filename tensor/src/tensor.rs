//! The tensor: shared storage plus a layout. Cloning is cheap (an `Arc` clone); views share
//! storage; ops return new tensors. Ops come in pairs: `try_x` returns a [`Result`] and `x`
//! panics with the same message at the caller's line.

use crate::cpu::{CpuElement, CpuStorage};
use crate::dtype::{DType, Element};
use crate::error::{or_panic, Error, Result};
use crate::storage::Storage;
use crate::{Device, Layout};
use std::fmt;
use std::sync::Arc;

/// An n-dimensional array of one dtype on one device.
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    layout: Layout,
}

impl Tensor {
    /// Wraps a storage and a layout; the layout must fit the storage.
    pub(crate) fn from_parts(storage: Arc<Storage>, layout: Layout) -> Tensor {
        debug_assert!(
            layout.required_len() <= storage.len(),
            "layout exceeds storage"
        );
        Tensor { storage, layout }
    }

    /// A contiguous tensor of `shape` over a fresh storage.
    pub(crate) fn from_storage(storage: Storage, shape: &[usize]) -> Tensor {
        Tensor::from_parts(Arc::new(storage), Layout::contiguous(shape))
    }

    /// A view of the same storage with another layout.
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor::from_parts(self.storage.clone(), layout)
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The shared handle of the storage (its address tells storages apart).
    pub(crate) fn storage_arc(&self) -> &Arc<Storage> {
        &self.storage
    }

    /// The elements of a CPU storage of dtype `T` from this tensor's offset to the storage's
    /// end (index them with the layout's strides); `None` on other devices and dtypes.
    pub(crate) fn cpu_data<T: CpuElement>(&self) -> Option<&[T]> {
        let all = T::slice(self.storage.as_cpu()?)?;
        Some(&all[self.layout.offset()..])
    }

    /// The storage, mutably, if this tensor is its only owner.
    pub(crate) fn storage_mut(&mut self) -> Result<&mut Storage> {
        Arc::get_mut(&mut self.storage).ok_or(Error::SharedStorage)
    }

    // ----- creation -----

    /// A tensor of `shape` holding `data` in row-major order.
    pub fn try_from_vec<T: CpuElement>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if data.len() != numel {
            return Err(Error::ElementCount {
                op: "from_vec",
                numel: data.len(),
                from: vec![data.len()],
                shape: shape.to_vec(),
            });
        }
        Ok(Tensor::from_storage(T::wrap(data).into(), shape))
    }

    /// A tensor of `shape` holding `data` in row-major order (panics on a length mismatch).
    #[track_caller]
    pub fn from_vec<T: CpuElement>(data: Vec<T>, shape: &[usize]) -> Tensor {
        or_panic(Tensor::try_from_vec(data, shape))
    }

    /// A tensor of `shape` copied from a slice.
    #[track_caller]
    pub fn from_slice<T: CpuElement>(data: &[T], shape: &[usize]) -> Tensor {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A 0-dimensional tensor.
    pub fn scalar<T: CpuElement>(v: T) -> Tensor {
        Tensor::from_vec(vec![v], &[])
    }

    /// A contiguous tensor over a host buffer.
    pub fn try_from_cpu_storage(storage: CpuStorage, shape: &[usize]) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if storage.len() != numel {
            return Err(Error::ElementCount {
                op: "from_cpu_storage",
                numel: storage.len(),
                from: vec![storage.len()],
                shape: shape.to_vec(),
            });
        }
        Ok(Tensor::from_storage(storage.into(), shape))
    }

    /// `shape` filled with `value` (converted to `dtype`), on the CPU.
    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Tensor {
        let n = shape.iter().product();
        let mut s = CpuStorage::zeros(dtype, n);
        if value != 0.0 {
            or_panic(crate::backend::BackendStorage::fill(
                &mut s,
                &Layout::contiguous(&[n]),
                value,
            ));
        }
        Tensor::from_storage(s.into(), shape)
    }

    /// `shape` filled with zeros, on the CPU.
    pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(shape, 0.0, dtype)
    }

    /// `shape` filled with ones, on the CPU.
    pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(shape, 1.0, dtype)
    }

    /// `shape` filled with `value`, with this tensor's dtype and device.
    pub fn try_full_like(&self, shape: &[usize], value: f64) -> Result<Tensor> {
        Tensor::full(shape, value, self.dtype()).try_to_device(self.device())
    }

    /// Zeros of this tensor's shape, dtype and device.
    #[track_caller]
    pub fn zeros_like(&self) -> Tensor {
        or_panic(self.try_full_like(self.shape(), 0.0))
    }

    /// Ones of this tensor's shape, dtype and device.
    #[track_caller]
    pub fn ones_like(&self) -> Tensor {
        or_panic(self.try_full_like(self.shape(), 1.0))
    }

    /// A 0-dimensional tensor holding `value` with this tensor's dtype and device.
    #[track_caller]
    pub fn scalar_like(&self, value: f64) -> Tensor {
        or_panic(self.try_full_like(&[], value))
    }

    /// `[0, 1, ..., n-1]`.
    pub fn arange(n: usize, dtype: DType) -> Tensor {
        Tensor::arange_step(0.0, n as f64, 1.0, dtype)
    }

    /// `start, start + step, ...` up to but excluding `end` (`step` may be negative).
    pub fn arange_step(start: f64, end: f64, step: f64, dtype: DType) -> Tensor {
        assert!(step != 0.0, "arange: step must not be zero");
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let values: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        Tensor::from_vec(values, &[n]).to_dtype(dtype)
    }

    /// The `n x n` identity matrix.
    pub fn eye(n: usize, dtype: DType) -> Tensor {
        let mut v = vec![0.0f64; n * n];
        for i in 0..n {
            v[i * n + i] = 1.0;
        }
        Tensor::from_vec(v, &[n, n]).to_dtype(dtype)
    }

    /// The `(t, t)` causal mask as `u8`: 1 where key `j <= i` (query `i` may attend), else 0.
    pub fn causal_mask(t: usize) -> Tensor {
        let v: Vec<u8> = (0..t * t).map(|k| (k % t <= k / t) as u8).collect();
        Tensor::from_vec(v, &[t, t])
    }

    // ----- accessors -----

    /// Size of each dim.
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }

    /// Size of `dim` (negative counts from the end).
    #[track_caller]
    pub fn dim(&self, dim: isize) -> usize {
        self.shape()[or_panic(crate::layout::resolve_dim("dim", dim, self.rank()))]
    }

    /// Number of dims (0 for a scalar).
    pub fn rank(&self) -> usize {
        self.layout.rank()
    }

    /// Number of elements: the product of the shape (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// Shape, strides and offset of this view into its storage.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Storage elements to step per unit of each dim (0 for a broadcast dim).
    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    /// Where the storage lives.
    pub fn device(&self) -> Device {
        self.storage.device()
    }

    /// True when the elements are laid out densely in row-major order (the offset may be
    /// nonzero; see [`Tensor::is_compact`]).
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// True when both tensors view the same storage (a view, not a copy).
    pub fn shares_storage_with(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    // ----- conversion and data access -----

    /// This tensor with contiguous row-major layout, copying only if needed.
    #[track_caller]
    pub fn contiguous(&self) -> Tensor {
        or_panic(self.try_contiguous())
    }

    /// This tensor with contiguous row-major layout: a clone sharing storage when it already is,
    /// else a copy.
    pub fn try_contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        Ok(Tensor::from_storage(
            self.storage.contiguous(&self.layout)?,
            self.shape(),
        ))
    }

    /// True when the elements fill the whole storage, densely, in row-major order from its
    /// start: the form kernels that take a bare storage (no layout) require.
    pub fn is_compact(&self) -> bool {
        self.layout.is_contiguous()
            && self.layout.offset() == 0
            && self.storage.len() == self.numel()
    }

    /// This tensor in compact form (see [`Tensor::is_compact`]), copying only when needed. A
    /// contiguous view that starts inside or covers only part of its storage (a narrowed
    /// batch, say) is copied.
    pub fn try_compact(&self) -> Result<Tensor> {
        if self.is_compact() {
            return Ok(self.clone());
        }
        Ok(Tensor::from_storage(
            self.storage.contiguous(&self.layout)?,
            self.shape(),
        ))
    }

    /// A copy converted to `dtype` (a no-op clone when it already is).
    pub fn try_to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        Ok(Tensor::from_storage(
            self.storage.to_dtype(&self.layout, dtype)?,
            self.shape(),
        ))
    }

    /// [`Tensor::try_to_dtype`], panicking on error.
    #[track_caller]
    pub fn to_dtype(&self, dtype: DType) -> Tensor {
        or_panic(self.try_to_dtype(dtype))
    }

    /// A copy on `device` (a no-op clone when it already is there).
    pub fn try_to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        let host = self.storage.contiguous(&self.layout)?.to_cpu()?;
        Ok(Tensor::from_storage(
            Storage::from_cpu(host, device)?,
            self.shape(),
        ))
    }

    /// [`Tensor::try_to_device`], panicking on error.
    #[track_caller]
    pub fn to_device(&self, device: Device) -> Tensor {
        or_panic(self.try_to_device(device))
    }

    /// The elements in row-major order, as a host buffer.
    pub fn to_cpu_storage(&self) -> Result<CpuStorage> {
        self.storage.contiguous(&self.layout)?.to_cpu()
    }

    /// The elements in row-major order; `T` must be this tensor's dtype.
    pub fn try_to_vec<T: CpuElement>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "to_vec",
                lhs: T::DTYPE,
                rhs: self.dtype(),
            });
        }
        let host = self.to_cpu_storage()?;
        Ok(T::slice(&host).expect("dtype checked above").to_vec())
    }

    /// [`Tensor::try_to_vec`], panicking on error (for example when `T` is not the dtype).
    #[track_caller]
    pub fn to_vec<T: CpuElement>(&self) -> Vec<T> {
        or_panic(self.try_to_vec())
    }

    /// The elements in row-major order converted to `f64` (any dtype).
    #[track_caller]
    pub fn to_vec_f64(&self) -> Vec<f64> {
        self.to_dtype(DType::F64).to_vec()
    }

    /// The value of a one-element tensor, as `f64`.
    #[track_caller]
    pub fn item(&self) -> f64 {
        assert_eq!(
            self.numel(),
            1,
            "item: tensor of shape {:?} has {} elements",
            self.shape(),
            self.numel()
        );
        self.to_vec_f64()[0]
    }

    /// The value of a one-element tensor of dtype `T`.
    #[track_caller]
    pub fn to_scalar<T: CpuElement>(&self) -> T {
        assert_eq!(
            self.numel(),
            1,
            "to_scalar: tensor of shape {:?} has {} elements",
            self.shape(),
            self.numel()
        );
        self.to_vec::<T>()[0]
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor(shape={:?}, dtype={}, device={})",
            self.shape(),
            self.dtype(),
            self.device()
        )
    }
}

/// Shows the shape, dtype and up to 8 leading values.
impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = self.to_dtype(DType::F64).to_vec::<f64>();
        let shown: Vec<String> = values.iter().take(8).map(|v| format!("{v:.6}")).collect();
        let more = if values.len() > 8 { ", ..." } else { "" };
        write!(
            f,
            "[{}{}] shape={:?} dtype={}",
            shown.join(", "),
            more,
            self.shape(),
            self.dtype()
        )
    }
}

impl<T: Element> From<&[T]> for Tensor
where
    T: CpuElement,
{
    fn from(v: &[T]) -> Tensor {
        Tensor::from_slice(v, &[v.len()])
    }
}
