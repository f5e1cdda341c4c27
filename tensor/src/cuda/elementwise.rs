//! Elementwise CUDA ops: copies, fills and conversions (`copy.cu`), unary math (`unary.cu`),
//! binary ops and comparisons (`binary.cu`), selection (`where_cond.cu`), the GELU backward
//! (`gelu.cu`) and the AdamW update (`adamw.cu`). Inputs may be any strided views; outputs are
//! contiguous.

use super::launch::{self, bits_suffix, elementwise, float_suffix, views, Float};
use super::{device, CudaStorage};
use crate::backend::AdamWStep;
use crate::backend::BackendStorage;
use crate::backend::Gelu;
use crate::dtype::Element;
use crate::error::{Error, Result};
use crate::op::{BinaryOp, CmpOp, UnaryOp};
use crate::{DType, Layout};
use cuda_kernels::Family;
use half::{bf16, f16};

/// Dtypes the conversion, comparison and selection kernels are written for.
fn is_kernel_dtype(dtype: DType) -> bool {
    matches!(
        dtype,
        DType::F32 | DType::F64 | DType::U8 | DType::U32 | DType::I64
    )
}

/// Copies the view `sl` of `src` into the view `dl` of `dst` (one shape; `dl` must not
/// overlap itself).
fn copy_view(src: &CudaStorage, sl: &Layout, dst: &CudaStorage, dl: &Layout) -> Result<()> {
    let n = dl.numel();
    if n == 0 {
        return Ok(());
    }
    let [dv, sv] = views([dl, sl])?;
    let (s, d, n) = (src.ptr(), dst.ptr(), n as u64);
    let name = format!("copy_{}", bits_suffix(src.dtype));
    // SAFETY: `copy_bN(src, sv, dst, dv, n)`; both layouts fit their storages (checked by the
    // tensor layer) and hold elements of the kernel's size.
    unsafe {
        launch::launch(
            &src.gpu,
            Family::Copy,
            &name,
            elementwise(n as usize),
            &[&s, &sv, &d, &dv, &n],
        )
    }
}

/// The view `l` of `s` as a new contiguous storage.
pub fn contiguous(s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    let n = l.numel();
    let out = s.alloc(s.dtype, n)?;
    match l.contiguous_range() {
        Some(range) => {
            // SAFETY: `range` lies in `s` (the layout fits its storage) and `out` holds `n`
            // elements; they are different buffers.
            unsafe {
                s.gpu
                    .copy(out.ptr(), s.at(range.start), n * s.dtype.size_in_bytes())
            }
            .map_err(device)?;
        }
        None => copy_view(s, l, &out, &Layout::contiguous(l.shape()))?,
    }
    Ok(out)
}

/// `src[sl]` written into `dst[dl]`.
pub fn copy_into(dst: &mut CudaStorage, dl: &Layout, src: &CudaStorage, sl: &Layout) -> Result<()> {
    dst.same_dtype("copy_into", src)?;
    copy_view(src, sl, dst, dl)
}

/// The bits of `value` converted to `dtype` as on the CPU, in an argument of the element's size.
fn fill_value(dtype: DType, value: f64) -> Box<dyn cuda_kernels::KernelArg> {
    match dtype {
        DType::F32 => Box::new(f32::from_f64(value).to_bits()),
        DType::F64 => Box::new(value.to_bits()),
        DType::F16 => Box::new(f16::from_f64(value).to_bits()),
        DType::BF16 => Box::new(bf16::from_f64(value).to_bits()),
        DType::U8 => Box::new(u8::from_f64(value)),
        DType::U32 => Box::new(u32::from_f64(value)),
        DType::I64 => Box::new(i64::from_f64(value) as u64),
    }
}

/// `dst[dl] = value`.
pub fn fill(dst: &mut CudaStorage, dl: &Layout, value: f64) -> Result<()> {
    let n = dl.numel() as u64;
    if n == 0 {
        return Ok(());
    }
    let dv = launch::view(dl)?;
    let (d, v) = (dst.ptr(), fill_value(dst.dtype, value));
    let name = format!("fill_{}", bits_suffix(dst.dtype));
    // SAFETY: `fill_bN(dst, dv, n, value)` with a value of the element's size; the layout fits
    // the storage.
    unsafe {
        launch::launch(
            &dst.gpu,
            Family::Copy,
            &name,
            elementwise(n as usize),
            &[&d, &dv, &n, v.as_ref()],
        )
    }
}

/// The view converted to `dtype` (contiguous). Conversions between `f32`, `f64`, `u8`, `u32`
/// and `i64` run on the device; those involving `f16` or `bf16` go through the host.
pub fn to_dtype(s: &CudaStorage, l: &Layout, dtype: DType) -> Result<CudaStorage> {
    if dtype == s.dtype {
        return contiguous(s, l);
    }
    let n = l.numel();
    if !(is_kernel_dtype(s.dtype) && is_kernel_dtype(dtype)) {
        let host = contiguous(s, l)?.to_cpu()?;
        return s.upload(&host.to_dtype(&Layout::contiguous(&[n]), dtype)?);
    }
    let out = s.alloc(dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let sv = launch::view(l)?;
    let (x, y, n64) = (s.ptr(), out.ptr(), n as u64);
    let name = format!("convert_{}_{}", s.dtype.name(), dtype.name());
    // SAFETY: `convert_S_D(src, sv, dst, n)`; `out` holds `n` elements of `dtype`.
    unsafe {
        launch::launch(
            &s.gpu,
            Family::Copy,
            &name,
            elementwise(n),
            &[&x, &sv, &y, &n64],
        )
    }?;
    Ok(out)
}

/// The number of `op` in `unary.cu` and its two parameters.
fn unary_code(op: UnaryOp) -> (i32, f64, f64) {
    match op {
        UnaryOp::Neg => (0, 0.0, 0.0),
        UnaryOp::Exp => (1, 0.0, 0.0),
        UnaryOp::Log => (2, 0.0, 0.0),
        UnaryOp::Sqrt => (3, 0.0, 0.0),
        UnaryOp::Rsqrt => (4, 0.0, 0.0),
        UnaryOp::Tanh => (5, 0.0, 0.0),
        UnaryOp::Sigmoid => (6, 0.0, 0.0),
        UnaryOp::Relu => (7, 0.0, 0.0),
        UnaryOp::GeluTanh => (8, 0.0, 0.0),
        UnaryOp::GeluErf => (9, 0.0, 0.0),
        UnaryOp::Sin => (10, 0.0, 0.0),
        UnaryOp::Cos => (11, 0.0, 0.0),
        UnaryOp::Abs => (12, 0.0, 0.0),
        UnaryOp::Square => (13, 0.0, 0.0),
        UnaryOp::Recip => (14, 0.0, 0.0),
        UnaryOp::Clamp(lo, hi) => (15, lo, hi),
        UnaryOp::Powf(e) => (16, e, 0.0),
        UnaryOp::Affine { mul, add } => (17, mul, add),
    }
}

/// `y = op(x)` over the view.
pub fn unary(s: &CudaStorage, l: &Layout, op: UnaryOp) -> Result<CudaStorage> {
    s.float(op.name())?;
    let n = l.numel();
    let out = s.alloc(s.dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let (code, p0, p1) = unary_code(op);
    let (p0, p1) = (Float::new(s.dtype, p0), Float::new(s.dtype, p1));
    let xv = launch::view(l)?;
    let (x, y, n64) = (s.ptr(), out.ptr(), n as u64);
    let name = format!("unary_{}", float_suffix(s.dtype));
    // SAFETY: `unary_T(x, xv, y, n, op, p0, p1)`; `out` holds `n` elements.
    unsafe {
        launch::launch(
            &s.gpu,
            Family::Unary,
            &name,
            elementwise(n),
            &[&x, &xv, &y, &n64, &code, &p0, &p1],
        )
    }?;
    Ok(out)
}

/// The number of `op` in `binary.cu`.
fn binary_code(op: BinaryOp) -> i32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Pow => 4,
        BinaryOp::Maximum => 5,
        BinaryOp::Minimum => 6,
    }
}

/// The number of `op` in `binary.cu`.
fn compare_code(op: CmpOp) -> i32 {
    match op {
        CmpOp::Eq => 0,
        CmpOp::Ne => 1,
        CmpOp::Lt => 2,
        CmpOp::Le => 3,
        CmpOp::Gt => 4,
        CmpOp::Ge => 5,
    }
}

/// `z = x op y` for broadcast layouts of one shape.
pub fn binary(
    x: &CudaStorage,
    xl: &Layout,
    y: &CudaStorage,
    yl: &Layout,
    op: BinaryOp,
) -> Result<CudaStorage> {
    x.float(op.name())?;
    x.same_dtype(op.name(), y)?;
    let n = xl.numel();
    let out = x.alloc(x.dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let [xv, yv] = views([xl, yl])?;
    let (xp, yp, zp, n64, code) = (x.ptr(), y.ptr(), out.ptr(), n as u64, binary_code(op));
    let name = format!("binary_{}", float_suffix(x.dtype));
    // SAFETY: `binary_T(x, xv, y, yv, z, n, op)`; both layouts fit their storages and `out`
    // holds `n` elements.
    unsafe {
        launch::launch(
            &x.gpu,
            Family::Binary,
            &name,
            elementwise(n),
            &[&xp, &xv, &yp, &yv, &zp, &n64, &code],
        )
    }?;
    Ok(out)
}

/// `x[xl] = x[xl] op y[yl]` in place.
pub fn binary_inplace(
    x: &mut CudaStorage,
    xl: &Layout,
    y: &CudaStorage,
    yl: &Layout,
    op: BinaryOp,
) -> Result<()> {
    x.float(op.name())?;
    x.same_dtype(op.name(), y)?;
    let n = xl.numel();
    if n == 0 {
        return Ok(());
    }
    let [xv, yv] = views([xl, yl])?;
    let (xp, yp, n64, code) = (x.ptr(), y.ptr(), n as u64, binary_code(op));
    let name = format!("binary_inplace_{}", float_suffix(x.dtype));
    // SAFETY: `binary_inplace_T(x, xv, y, yv, n, op)`; `xl` does not overlap itself (the
    // tensor layer rejects broadcast destinations), so each element has one writer.
    unsafe {
        launch::launch(
            &x.gpu,
            Family::Binary,
            &name,
            elementwise(n),
            &[&xp, &xv, &yp, &yv, &n64, &code],
        )
    }
}

/// `u8` mask of `x op y` for broadcast layouts of one shape.
pub fn compare(
    x: &CudaStorage,
    xl: &Layout,
    y: &CudaStorage,
    yl: &Layout,
    op: CmpOp,
) -> Result<CudaStorage> {
    if !is_kernel_dtype(x.dtype) {
        return Err(Error::UnsupportedDType {
            op: op.name(),
            dtype: x.dtype,
        });
    }
    x.same_dtype(op.name(), y)?;
    let n = xl.numel();
    let out = x.alloc(DType::U8, n)?;
    if n == 0 {
        return Ok(out);
    }
    let [xv, yv] = views([xl, yl])?;
    let (xp, yp, mp, n64, code) = (x.ptr(), y.ptr(), out.ptr(), n as u64, compare_code(op));
    let name = format!("compare_{}", x.dtype.name());
    // SAFETY: `compare_T(x, xv, y, yv, mask, n, op)`; `out` holds `n` bytes.
    unsafe {
        launch::launch(
            &x.gpu,
            Family::Binary,
            &name,
            elementwise(n),
            &[&xp, &xv, &yp, &yv, &mp, &n64, &code],
        )
    }?;
    Ok(out)
}

/// `mask ? a : b` for broadcast layouts of one shape.
pub fn where_cond(
    mask: &CudaStorage,
    ml: &Layout,
    a: &CudaStorage,
    al: &Layout,
    b: &CudaStorage,
    bl: &Layout,
) -> Result<CudaStorage> {
    let op = "where";
    if mask.dtype != DType::U8 {
        return Err(Error::DTypeMismatch {
            op,
            lhs: DType::U8,
            rhs: mask.dtype,
        });
    }
    if !is_kernel_dtype(a.dtype) {
        return Err(Error::UnsupportedDType { op, dtype: a.dtype });
    }
    a.same_dtype(op, b)?;
    let n = ml.numel();
    let out = a.alloc(a.dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let [mv, av, bv] = views([ml, al, bl])?;
    let (mp, ap, bp, op_, n64) = (mask.ptr(), a.ptr(), b.ptr(), out.ptr(), n as u64);
    let name = format!("where_{}", bits_suffix(a.dtype));
    // SAFETY: `where_bN(mask, mv, a, av, b, bv, out, n)`; `out` holds `n` elements.
    unsafe {
        launch::launch(
            &a.gpu,
            Family::WhereCond,
            &name,
            elementwise(n),
            &[&mp, &mv, &ap, &av, &bp, &bv, &op_, &n64],
        )
    }?;
    Ok(out)
}

/// `dx = dy * gelu'(x)` over contiguous buffers.
pub fn gelu_backward(x: &CudaStorage, dy: &CudaStorage, kind: Gelu) -> Result<CudaStorage> {
    let op = "gelu_backward";
    x.float(op)?;
    x.same_dtype(op, dy)?;
    if dy.len != x.len {
        return Err(Error::ShapeMismatch {
            op,
            lhs: vec![x.len],
            rhs: vec![dy.len],
        });
    }
    let n = x.len;
    let out = x.alloc(x.dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let code: i32 = match kind {
        Gelu::Tanh => 0,
        Gelu::Erf => 1,
    };
    let (xp, gp, dp, n64) = (x.ptr(), dy.ptr(), out.ptr(), n as u64);
    let name = format!("gelu_backward_{}", float_suffix(x.dtype));
    // SAFETY: `gelu_backward_T(x, dy, dx, n, kind)`; all three hold `n` elements.
    unsafe {
        launch::launch(
            &x.gpu,
            Family::Gelu,
            &name,
            elementwise(n),
            &[&xp, &gp, &dp, &n64, &code],
        )
    }?;
    Ok(out)
}

/// One AdamW step on contiguous buffers of one length.
pub fn adamw_step(
    p: &mut CudaStorage,
    g: &CudaStorage,
    m: &mut CudaStorage,
    v: &mut CudaStorage,
    h: &AdamWStep,
) -> Result<()> {
    let op = "adamw";
    for other in [&*m, &*v] {
        p.same_dtype(op, other)?;
    }
    p.float(op)?;
    p.same_dtype(op, g)?;
    if [g.len, m.len, v.len].iter().any(|&l| l != p.len) {
        return Err(Error::InvalidArgument(
            "adamw: buffer lengths differ".into(),
        ));
    }
    let n = p.len;
    if n == 0 {
        return Ok(());
    }
    let bc1 = 1.0 - h.beta1.powi(h.step as i32);
    let bc2 = 1.0 - h.beta2.powi(h.step as i32);
    let f = |x: f64| Float::new(p.dtype, x);
    let coeffs = [
        f(1.0 - h.lr * h.weight_decay),
        f(1.0 - h.beta1),
        f(h.beta2),
        f(1.0 - h.beta2),
        f(h.lr / bc1),
        f(1.0 / bc2.sqrt()),
        f(h.eps),
    ];
    let (pp, gp, mp, vp, n64) = (p.ptr(), g.ptr(), m.ptr(), v.ptr(), n as u64);
    let [c0, c1, c2, c3, c4, c5, c6] = &coeffs;
    let name = format!("adamw_{}", float_suffix(p.dtype));
    // SAFETY: `adamw_T(p, g, m, v, n, decay, 1-b1, b2, 1-b2, step_size, 1/sqrt(bc2), eps)`;
    // all four buffers hold `n` elements.
    unsafe {
        launch::launch(
            &p.gpu,
            Family::AdamW,
            &name,
            elementwise(n),
            &[&pp, &gp, &mp, &vp, &n64, c0, c1, c2, c3, c4, c5, c6],
        )
    }
}
