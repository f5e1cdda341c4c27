//! [`BackendStorage`] for CPU buffers: picks the typed kernel for the storage's dtype.
//!
//! Float kernels exist for `f32` and `f64`; `f16` and `bf16` are storage types (convert with
//! `to_dtype` first) and integer storages serve as ids, indices and masks. An op on a dtype
//! without a kernel is an [`Error::UnsupportedDType`] naming the op.

use super::adamw;
use super::attention;
use super::gelu;
use super::rope;
use super::softmax;
use super::{binary, copy, cross_entropy, index, layer_norm, matmul, reduce, rms_norm};
use super::{unary, where_cond};
use super::{CpuElement, CpuStorage};
use crate::backend::AdamWStep;
use crate::backend::AttentionDims;
use crate::backend::BackendStorage;
use crate::backend::Gelu;
use crate::backend::RopeDims;
use crate::backend::Softmax;
use crate::dtype::{DType, IndexElement};
use crate::error::{Error, Result};
use crate::op::{BinaryOp, CmpOp, ReduceOp, UnaryOp};
use crate::Layout;

/// Runs `$body` with `$x` bound to the typed slice of a float storage and wraps the returned
/// `Vec` back into a storage of the same dtype; other dtypes are an error naming `$op`.
macro_rules! float_map {
    ($op:expr, $s:expr, |$x:ident| $body:expr) => {
        match $s {
            CpuStorage::F32($x) => Ok(CpuStorage::F32($body)),
            CpuStorage::F64($x) => Ok(CpuStorage::F64($body)),
            other => Err(Error::UnsupportedDType {
                op: $op,
                dtype: other.dtype(),
            }),
        }
    };
}

/// The typed slice of `s` as `T`, or a dtype-mismatch error against `like`.
fn same<'a, T: CpuElement>(op: &'static str, s: &'a CpuStorage) -> Result<&'a [T]> {
    T::slice(s).ok_or(Error::DTypeMismatch {
        op,
        lhs: T::DTYPE,
        rhs: s.dtype(),
    })
}

/// Index values of a `u32`/`i64` storage seen through `l`, checked to be below `size`.
fn indices(op: &'static str, s: &CpuStorage, l: &Layout, size: usize) -> Result<Vec<usize>> {
    fn convert<I: IndexElement>(
        op: &'static str,
        v: &[I],
        l: &Layout,
        size: usize,
    ) -> Result<Vec<usize>> {
        copy::contiguous(v, l)
            .into_iter()
            .map(|i| match i.to_index() {
                Some(u) if u < size => Ok(u),
                _ => Err(Error::IndexOutOfRange {
                    op,
                    index: i.to_f64() as usize,
                    size,
                }),
            })
            .collect()
    }
    match s {
        CpuStorage::U32(v) => convert(op, v, l, size),
        CpuStorage::I64(v) => convert(op, v, l, size),
        other => Err(Error::UnsupportedDType {
            op,
            dtype: other.dtype(),
        }),
    }
}

/// Cross-entropy targets: `None` for ignored rows, else the class checked against `v`.
fn targets(s: &CpuStorage, v: usize, ignore: Option<i64>) -> Result<Vec<Option<usize>>> {
    let raw: Vec<i64> = match s {
        CpuStorage::U32(t) => t.iter().map(|&x| x as i64).collect(),
        CpuStorage::I64(t) => t.clone(),
        other => {
            return Err(Error::UnsupportedDType {
                op: "cross_entropy targets",
                dtype: other.dtype(),
            })
        }
    };
    raw.into_iter()
        .map(|t| match t {
            t if Some(t) == ignore => Ok(None),
            t if t >= 0 && (t as usize) < v => Ok(Some(t as usize)),
            t => Err(Error::InvalidArgument(format!(
                "cross_entropy: target {t} is out of range for {v} classes"
            ))),
        })
        .collect()
}

fn convert_to(s: &CpuStorage, l: &Layout, dtype: DType) -> CpuStorage {
    fn to<T: CpuElement>(s: &CpuStorage, l: &Layout) -> CpuStorage {
        match s {
            CpuStorage::F32(v) => T::wrap(copy::convert(v, l)),
            CpuStorage::F64(v) => T::wrap(copy::convert(v, l)),
            CpuStorage::F16(v) => T::wrap(copy::convert(v, l)),
            CpuStorage::BF16(v) => T::wrap(copy::convert(v, l)),
            CpuStorage::U8(v) => T::wrap(copy::convert(v, l)),
            CpuStorage::U32(v) => T::wrap(copy::convert(v, l)),
            CpuStorage::I64(v) => T::wrap(copy::convert(v, l)),
        }
    }
    match dtype {
        DType::F32 => to::<f32>(s, l),
        DType::F64 => to::<f64>(s, l),
        DType::F16 => to::<half::f16>(s, l),
        DType::BF16 => to::<half::bf16>(s, l),
        DType::U8 => to::<u8>(s, l),
        DType::U32 => to::<u32>(s, l),
        DType::I64 => to::<i64>(s, l),
    }
}

impl BackendStorage for CpuStorage {
    fn dtype(&self) -> DType {
        CpuStorage::dtype(self)
    }

    fn len(&self) -> usize {
        CpuStorage::len(self)
    }

    fn to_cpu(&self) -> Result<CpuStorage> {
        Ok(self.clone())
    }

    fn contiguous(&self, l: &Layout) -> Result<Self> {
        Ok(match self {
            CpuStorage::F32(v) => CpuStorage::F32(copy::contiguous(v, l)),
            CpuStorage::F64(v) => CpuStorage::F64(copy::contiguous(v, l)),
            CpuStorage::F16(v) => CpuStorage::F16(copy::contiguous(v, l)),
            CpuStorage::BF16(v) => CpuStorage::BF16(copy::contiguous(v, l)),
            CpuStorage::U8(v) => CpuStorage::U8(copy::contiguous(v, l)),
            CpuStorage::U32(v) => CpuStorage::U32(copy::contiguous(v, l)),
            CpuStorage::I64(v) => CpuStorage::I64(copy::contiguous(v, l)),
        })
    }

    fn to_dtype(&self, l: &Layout, dtype: DType) -> Result<Self> {
        if dtype == self.dtype() {
            return self.contiguous(l);
        }
        Ok(convert_to(self, l, dtype))
    }

    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self> {
        float_map!(op.name(), self, |x| unary::unary(op, x, l))
    }

    fn binary(&self, l: &Layout, rhs: &Self, rl: &Layout, op: BinaryOp) -> Result<Self> {
        float_map!(op.name(), self, |x| binary::binary(
            op,
            x,
            l,
            same(op.name(), rhs)?,
            rl
        ))
    }

    fn compare(&self, l: &Layout, rhs: &Self, rl: &Layout, op: CmpOp) -> Result<Self> {
        let n = op.name();
        Ok(CpuStorage::U8(match self {
            CpuStorage::F32(x) => binary::compare_broadcast(op, x, l, same(n, rhs)?, rl),
            CpuStorage::F64(x) => binary::compare_broadcast(op, x, l, same(n, rhs)?, rl),
            CpuStorage::U8(x) => binary::compare_broadcast(op, x, l, same(n, rhs)?, rl),
            CpuStorage::U32(x) => binary::compare_broadcast(op, x, l, same(n, rhs)?, rl),
            CpuStorage::I64(x) => binary::compare_broadcast(op, x, l, same(n, rhs)?, rl),
            other => {
                return Err(Error::UnsupportedDType {
                    op: n,
                    dtype: other.dtype(),
                })
            }
        }))
    }

    fn where_cond(
        &self,
        ml: &Layout,
        a: &Self,
        al: &Layout,
        b: &Self,
        bl: &Layout,
    ) -> Result<Self> {
        let mask = same::<u8>("where", self)?;
        let op = "where";
        Ok(match a {
            CpuStorage::F32(a) => {
                CpuStorage::F32(where_cond::where_cond(mask, ml, a, al, same(op, b)?, bl))
            }
            CpuStorage::F64(a) => {
                CpuStorage::F64(where_cond::where_cond(mask, ml, a, al, same(op, b)?, bl))
            }
            CpuStorage::U8(a) => {
                CpuStorage::U8(where_cond::where_cond(mask, ml, a, al, same(op, b)?, bl))
            }
            CpuStorage::U32(a) => {
                CpuStorage::U32(where_cond::where_cond(mask, ml, a, al, same(op, b)?, bl))
            }
            CpuStorage::I64(a) => {
                CpuStorage::I64(where_cond::where_cond(mask, ml, a, al, same(op, b)?, bl))
            }
            other => {
                return Err(Error::UnsupportedDType {
                    op,
                    dtype: other.dtype(),
                })
            }
        })
    }

    fn reduce(&self, l: &Layout, dims: &[usize], op: ReduceOp) -> Result<Self> {
        match op {
            ReduceOp::ArgMax | ReduceOp::ArgMin => Ok(CpuStorage::U32(match self {
                CpuStorage::F32(x) => reduce::arg_reduce(op, x, l, dims[0]),
                CpuStorage::F64(x) => reduce::arg_reduce(op, x, l, dims[0]),
                other => {
                    return Err(Error::UnsupportedDType {
                        op: op.name(),
                        dtype: other.dtype(),
                    })
                }
            })),
            _ => float_map!(op.name(), self, |x| reduce::reduce(op, x, l, dims)),
        }
    }

    fn softmax(&self, n: usize, kind: Softmax) -> Result<Self> {
        float_map!("softmax", self, |x| softmax::forward(kind, x, n))
    }

    fn softmax_backward(&self, dy: &Self, n: usize, kind: Softmax) -> Result<Self> {
        float_map!("softmax_backward", self, |y| softmax::backward(
            kind,
            y,
            same("softmax_backward", dy)?,
            n
        ))
    }

    fn logsumexp(&self, n: usize) -> Result<Self> {
        float_map!("logsumexp", self, |x| softmax::logsumexp(x, n))
    }

    fn matmul(&self, l: &Layout, rhs: &Self, rl: &Layout) -> Result<Self> {
        float_map!("matmul", self, |a| matmul::matmul(
            a,
            l,
            same("matmul", rhs)?,
            rl
        ))
    }

    fn index_select(&self, l: &Layout, dim: usize, ids: &Self, ids_l: &Layout) -> Result<Self> {
        let ids = indices("index_select", ids, ids_l, l.shape()[dim])?;
        Ok(match self {
            CpuStorage::F32(x) => CpuStorage::F32(index::index_select(x, l, dim, &ids)),
            CpuStorage::F64(x) => CpuStorage::F64(index::index_select(x, l, dim, &ids)),
            CpuStorage::F16(x) => CpuStorage::F16(index::index_select(x, l, dim, &ids)),
            CpuStorage::BF16(x) => CpuStorage::BF16(index::index_select(x, l, dim, &ids)),
            CpuStorage::U8(x) => CpuStorage::U8(index::index_select(x, l, dim, &ids)),
            CpuStorage::U32(x) => CpuStorage::U32(index::index_select(x, l, dim, &ids)),
            CpuStorage::I64(x) => CpuStorage::I64(index::index_select(x, l, dim, &ids)),
        })
    }

    fn index_add(
        &self,
        src_shape: &[usize],
        dim: usize,
        ids: &Self,
        ids_l: &Layout,
        size: usize,
    ) -> Result<Self> {
        let ids = indices("index_add", ids, ids_l, size)?;
        float_map!("index_add", self, |s| index::index_add(
            s, src_shape, dim, &ids, size
        ))
    }

    fn gather(&self, l: &Layout, dim: usize, idx: &Self, idx_l: &Layout) -> Result<Self> {
        let idx_v = indices("gather", idx, idx_l, l.shape()[dim])?;
        let shape = idx_l.shape();
        Ok(match self {
            CpuStorage::F32(x) => CpuStorage::F32(index::gather(x, l, dim, &idx_v, shape)),
            CpuStorage::F64(x) => CpuStorage::F64(index::gather(x, l, dim, &idx_v, shape)),
            CpuStorage::U32(x) => CpuStorage::U32(index::gather(x, l, dim, &idx_v, shape)),
            CpuStorage::I64(x) => CpuStorage::I64(index::gather(x, l, dim, &idx_v, shape)),
            other => {
                return Err(Error::UnsupportedDType {
                    op: "gather",
                    dtype: other.dtype(),
                })
            }
        })
    }

    fn scatter_add(
        &self,
        dim: usize,
        idx: &Self,
        idx_l: &Layout,
        dst_shape: &[usize],
    ) -> Result<Self> {
        let idx_v = indices("scatter_add", idx, idx_l, dst_shape[dim])?;
        float_map!("scatter_add", self, |s| index::scatter_add(
            s,
            &idx_v,
            idx_l.shape(),
            dim,
            dst_shape
        ))
    }

    fn layer_norm(
        &self,
        c: usize,
        w: Option<&Self>,
        b: Option<&Self>,
        eps: f64,
    ) -> Result<(Self, Self, Self)> {
        fn run<T: CpuElement + crate::dtype::Float>(
            x: &[T],
            c: usize,
            w: Option<&CpuStorage>,
            b: Option<&CpuStorage>,
            eps: f64,
        ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
            let w = w.map(|w| same::<T>("layer_norm", w)).transpose()?;
            let b = b.map(|b| same::<T>("layer_norm", b)).transpose()?;
            let o = layer_norm::forward(x, c, w, b, eps);
            Ok((T::wrap(o.y), T::wrap(o.mean), T::wrap(o.rstd)))
        }
        match self {
            CpuStorage::F32(x) => run(x, c, w, b, eps),
            CpuStorage::F64(x) => run(x, c, w, b, eps),
            other => Err(Error::UnsupportedDType {
                op: "layer_norm",
                dtype: other.dtype(),
            }),
        }
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
        type Grads = (CpuStorage, Option<CpuStorage>, Option<CpuStorage>);
        #[allow(clippy::too_many_arguments)]
        fn run<T: CpuElement + crate::dtype::Float>(
            dy: &[T],
            x: &CpuStorage,
            c: usize,
            w: Option<&CpuStorage>,
            mean: &CpuStorage,
            rstd: &CpuStorage,
            has_bias: bool,
        ) -> Result<Grads> {
            let op = "layer_norm_backward";
            let w = w.map(|w| same::<T>(op, w)).transpose()?;
            let g = layer_norm::backward(
                dy,
                same(op, x)?,
                c,
                w,
                same(op, mean)?,
                same(op, rstd)?,
                has_bias,
            );
            let dw = w.is_some().then(|| T::wrap(g.dweight));
            let db = has_bias.then(|| T::wrap(g.dbias));
            Ok((T::wrap(g.dx), dw, db))
        }
        match self {
            CpuStorage::F32(dy) => run(dy, x, c, w, mean, rstd, has_bias),
            CpuStorage::F64(dy) => run(dy, x, c, w, mean, rstd, has_bias),
            other => Err(Error::UnsupportedDType {
                op: "layer_norm_backward",
                dtype: other.dtype(),
            }),
        }
    }

    fn rms_norm(&self, c: usize, w: &Self, eps: f64) -> Result<(Self, Self)> {
        fn run<T: CpuElement + crate::dtype::Float>(
            x: &[T],
            c: usize,
            w: &CpuStorage,
            eps: f64,
        ) -> Result<(CpuStorage, CpuStorage)> {
            let o = rms_norm::forward(x, c, same::<T>("rms_norm", w)?, eps);
            Ok((T::wrap(o.y), T::wrap(o.rstd)))
        }
        match self {
            CpuStorage::F32(x) => run(x, c, w, eps),
            CpuStorage::F64(x) => run(x, c, w, eps),
            other => Err(Error::UnsupportedDType {
                op: "rms_norm",
                dtype: other.dtype(),
            }),
        }
    }

    fn rope(&self, cos: &Self, sin: &Self, dims: RopeDims) -> Result<Self> {
        fn run<T: CpuElement + crate::dtype::Float>(
            x: &[T],
            cos: &CpuStorage,
            sin: &CpuStorage,
            dims: RopeDims,
        ) -> Result<CpuStorage> {
            let (cos, sin) = (same::<T>("rope", cos)?, same::<T>("rope", sin)?);
            Ok(T::wrap(rope::apply(x, cos, sin, dims)))
        }
        match self {
            CpuStorage::F32(x) => run(x, cos, sin, dims),
            CpuStorage::F64(x) => run(x, cos, sin, dims),
            other => Err(Error::UnsupportedDType {
                op: "rope",
                dtype: other.dtype(),
            }),
        }
    }

    fn cross_entropy(&self, v: usize, t: &Self, ignore: Option<i64>) -> Result<(Self, Self)> {
        let t = targets(t, v, ignore)?;
        match self {
            CpuStorage::F32(x) => {
                let o = cross_entropy::forward(x, v, &t);
                Ok((CpuStorage::F32(vec![o.loss]), CpuStorage::F32(o.lse)))
            }
            CpuStorage::F64(x) => {
                let o = cross_entropy::forward(x, v, &t);
                Ok((CpuStorage::F64(vec![o.loss]), CpuStorage::F64(o.lse)))
            }
            other => Err(Error::UnsupportedDType {
                op: "cross_entropy",
                dtype: other.dtype(),
            }),
        }
    }

    fn cross_entropy_backward(
        &self,
        v: usize,
        t: &Self,
        ignore: Option<i64>,
        lse: &Self,
        grad: f64,
    ) -> Result<Self> {
        let t = targets(t, v, ignore)?;
        let op = "cross_entropy_backward";
        float_map!(op, self, |x| cross_entropy::backward(
            x,
            v,
            &t,
            same(op, lse)?,
            crate::dtype::Element::from_f64(grad)
        ))
    }

    fn attention(&self, k: &Self, v: &Self, dims: AttentionDims) -> Result<(Self, Self)> {
        let op = "attention";
        match self {
            CpuStorage::F32(q) => {
                let o = attention::forward(q, same(op, k)?, same(op, v)?, dims);
                Ok((CpuStorage::F32(o.out), CpuStorage::F32(o.lse)))
            }
            CpuStorage::F64(q) => {
                let o = attention::forward(q, same(op, k)?, same(op, v)?, dims);
                Ok((CpuStorage::F64(o.out), CpuStorage::F64(o.lse)))
            }
            other => Err(Error::UnsupportedDType {
                op,
                dtype: other.dtype(),
            }),
        }
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
        fn run<T: CpuElement + matmul::Gemm>(
            q: &[T],
            [k, v, out, lse, dout]: [&CpuStorage; 5],
            dims: AttentionDims,
        ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
            let op = "attention_backward";
            let g = attention::backward(
                q,
                same(op, k)?,
                same(op, v)?,
                same(op, out)?,
                same(op, lse)?,
                same(op, dout)?,
                dims,
            );
            Ok((T::wrap(g.dq), T::wrap(g.dk), T::wrap(g.dv)))
        }
        match self {
            CpuStorage::F32(q) => run(q, [k, v, out, lse, dout], dims),
            CpuStorage::F64(q) => run(q, [k, v, out, lse, dout], dims),
            other => Err(Error::UnsupportedDType {
                op: "attention_backward",
                dtype: other.dtype(),
            }),
        }
    }

    fn gelu_backward(&self, dy: &Self, kind: Gelu) -> Result<Self> {
        float_map!("gelu_backward", self, |x| gelu::backward(
            kind,
            x,
            same("gelu_backward", dy)?
        ))
    }

    fn copy_into(&mut self, dl: &Layout, src: &Self, sl: &Layout) -> Result<()> {
        let op = "copy_into";
        match self {
            CpuStorage::F32(d) => copy::copy_into(same(op, src)?, sl, d, dl),
            CpuStorage::F64(d) => copy::copy_into(same(op, src)?, sl, d, dl),
            CpuStorage::F16(d) => copy::copy_into(same(op, src)?, sl, d, dl),
            CpuStorage::BF16(d) => copy::copy_into(same(op, src)?, sl, d, dl),
            CpuStorage::U8(d) => copy::copy_into(same(op, src)?, sl, d, dl),
            CpuStorage::U32(d) => copy::copy_into(same(op, src)?, sl, d, dl),
            CpuStorage::I64(d) => copy::copy_into(same(op, src)?, sl, d, dl),
        }
        Ok(())
    }

    fn binary_inplace(&mut self, dl: &Layout, rhs: &Self, rl: &Layout, op: BinaryOp) -> Result<()> {
        match self {
            CpuStorage::F32(x) => binary::binary_inplace(op, x, dl, same(op.name(), rhs)?, rl),
            CpuStorage::F64(x) => binary::binary_inplace(op, x, dl, same(op.name(), rhs)?, rl),
            other => {
                return Err(Error::UnsupportedDType {
                    op: op.name(),
                    dtype: other.dtype(),
                })
            }
        }
        Ok(())
    }

    fn fill(&mut self, dl: &Layout, value: f64) -> Result<()> {
        use crate::dtype::Element;
        match self {
            CpuStorage::F32(d) => copy::fill(d, dl, f32::from_f64(value)),
            CpuStorage::F64(d) => copy::fill(d, dl, value),
            CpuStorage::F16(d) => copy::fill(d, dl, half::f16::from_f64(value)),
            CpuStorage::BF16(d) => copy::fill(d, dl, half::bf16::from_f64(value)),
            CpuStorage::U8(d) => copy::fill(d, dl, u8::from_f64(value)),
            CpuStorage::U32(d) => copy::fill(d, dl, u32::from_f64(value)),
            CpuStorage::I64(d) => copy::fill(d, dl, i64::from_f64(value)),
        }
        Ok(())
    }

    fn adamw_step(&mut self, grad: &Self, m: &mut Self, v: &mut Self, h: &AdamWStep) -> Result<()> {
        let op = "adamw";
        match (self, m, v) {
            (CpuStorage::F32(p), CpuStorage::F32(m), CpuStorage::F32(v)) => {
                adamw::step(p, same(op, grad)?, m, v, h)
            }
            (CpuStorage::F64(p), CpuStorage::F64(m), CpuStorage::F64(v)) => {
                adamw::step(p, same(op, grad)?, m, v, h)
            }
            (p, m, _) => {
                return Err(Error::DTypeMismatch {
                    op,
                    lhs: p.dtype(),
                    rhs: m.dtype(),
                })
            }
        }
        Ok(())
    }
}
