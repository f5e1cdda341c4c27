//! Fused kernels the layers above need, each with its backward: layer norm, cross-entropy
//! over logits, causal attention, and GELU's derivative. The math is in the kernel files under
//! `cpu/`; this file checks shapes and flattens leading dims into rows.

pub use crate::backend::AttentionDims;
pub use crate::backend::Gelu;
use crate::error::{Error, Result};
use crate::Tensor;

/// Layer norm results: the output and the per-row statistics its backward needs.
pub struct LayerNormOutput {
    /// Normalized output, shaped like the input.
    pub y: Tensor,
    /// Row means, shaped like the input without its last dim.
    pub mean: Tensor,
    /// Row reciprocal standard deviations `1 / sqrt(var + eps)`, same shape as `mean`.
    pub rstd: Tensor,
}

/// Gradients from the layer-norm backward.
pub struct LayerNormGrads {
    /// Gradient of the input, shaped like the input.
    pub dx: Tensor,
    /// Gradient of the weight, shape `(C)`; `None` when the forward had no weight.
    pub dweight: Option<Tensor>,
    /// Gradient of the bias, shape `(C)`; `None` unless `has_bias` was set.
    pub dbias: Option<Tensor>,
}

fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::ShapeMismatch {
            op,
            lhs: a.shape().to_vec(),
            rhs: b.shape().to_vec(),
        });
    }
    Ok(())
}

fn last_dim(op: &'static str, x: &Tensor) -> Result<usize> {
    x.shape()
        .last()
        .copied()
        .ok_or_else(|| Error::InvalidArgument(format!("{op}: needs at least 1 dim, got a scalar")))
}

/// Checks an optional per-channel parameter of shape `(c)`.
fn channel_param(op: &'static str, p: Option<&Tensor>, c: usize) -> Result<Option<Tensor>> {
    p.map(|p| {
        if p.shape() != [c] {
            return Err(Error::ShapeMismatch {
                op,
                lhs: vec![c],
                rhs: p.shape().to_vec(),
            });
        }
        p.try_compact()
    })
    .transpose()
}

impl Tensor {
    /// Layer norm over the last dim: `y = (x - mean) / sqrt(var + eps) * weight + bias`
    /// (biased variance); `weight` and `bias` have shape `(C)` and are optional.
    pub fn try_layer_norm(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<LayerNormOutput> {
        let c = last_dim("layer_norm", self)?;
        let w = channel_param("layer_norm weight", weight, c)?;
        let b = channel_param("layer_norm bias", bias, c)?;
        let x = self.try_compact()?;
        let (y, mean, rstd) = x.storage().layer_norm(
            c,
            w.as_ref().map(Tensor::storage),
            b.as_ref().map(Tensor::storage),
            eps,
        )?;
        let rows = &self.shape()[..self.rank() - 1];
        Ok(LayerNormOutput {
            y: Tensor::from_storage(y, self.shape()),
            mean: Tensor::from_storage(mean, rows),
            rstd: Tensor::from_storage(rstd, rows),
        })
    }

    /// Backward of [`Tensor::try_layer_norm`] (self is `dy`), given the saved statistics.
    pub fn try_layer_norm_backward(
        &self,
        x: &Tensor,
        weight: Option<&Tensor>,
        mean: &Tensor,
        rstd: &Tensor,
        has_bias: bool,
    ) -> Result<LayerNormGrads> {
        same_shape("layer_norm_backward", self, x)?;
        let c = last_dim("layer_norm_backward", x)?;
        let w = channel_param("layer_norm_backward weight", weight, c)?;
        let (dy, x) = (self.try_compact()?, x.try_compact()?);
        let (mean, rstd) = (mean.try_compact()?, rstd.try_compact()?);
        let (dx, dw, db) = dy.storage().layer_norm_backward(
            x.storage(),
            c,
            w.as_ref().map(Tensor::storage),
            mean.storage(),
            rstd.storage(),
            has_bias,
        )?;
        Ok(LayerNormGrads {
            dx: Tensor::from_storage(dx, x.shape()),
            dweight: dw.map(|s| Tensor::from_storage(s, &[c])),
            dbias: db.map(|s| Tensor::from_storage(s, &[c])),
        })
    }

    /// Mean cross-entropy of logits `(..., V)` against integer targets `(...)`; targets equal
    /// to `ignore_index` do not count. Returns the 0-dim loss and the row logsumexp `(...)`.
    pub fn try_cross_entropy(
        &self,
        targets: &Tensor,
        ignore_index: Option<i64>,
    ) -> Result<(Tensor, Tensor)> {
        let v = last_dim("cross_entropy", self)?;
        let rows = &self.shape()[..self.rank() - 1];
        if targets.shape() != rows {
            return Err(Error::ShapeMismatch {
                op: "cross_entropy",
                lhs: self.shape().to_vec(),
                rhs: targets.shape().to_vec(),
            });
        }
        if !targets.dtype().is_index() {
            return Err(Error::UnsupportedDType {
                op: "cross_entropy targets",
                dtype: targets.dtype(),
            });
        }
        let (logits, t) = (self.try_compact()?, targets.try_compact()?);
        let (loss, lse) = logits
            .storage()
            .cross_entropy(v, t.storage(), ignore_index)?;
        Ok((
            Tensor::from_storage(loss, &[]),
            Tensor::from_storage(lse, rows),
        ))
    }

    /// Backward of [`Tensor::try_cross_entropy`] (self is the logits) for upstream gradient
    /// `grad` of the mean loss.
    pub fn try_cross_entropy_backward(
        &self,
        targets: &Tensor,
        ignore_index: Option<i64>,
        lse: &Tensor,
        grad: f64,
    ) -> Result<Tensor> {
        let v = last_dim("cross_entropy_backward", self)?;
        let (logits, t, lse) = (
            self.try_compact()?,
            targets.try_compact()?,
            lse.try_compact()?,
        );
        let d = logits.storage().cross_entropy_backward(
            v,
            t.storage(),
            ignore_index,
            lse.storage(),
            grad,
        )?;
        Ok(Tensor::from_storage(d, self.shape()))
    }

    /// Causal scaled-dot-product attention. `q (..., Tq, D)`, `k, v (..., Tk, D)` with equal
    /// leading dims and `Tq <= Tk`; query `i` sees keys up to position `i + Tk - Tq`. Returns
    /// the output `(..., Tq, D)` and the row logsumexp `(..., Tq)` saved for the backward.
    pub fn try_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let dims = attention_dims(q, k, v)?;
        let (q, k, v) = (q.try_compact()?, k.try_compact()?, v.try_compact()?);
        let (out, lse) = q.storage().attention(k.storage(), v.storage(), dims)?;
        let lse_shape = &q.shape()[..q.rank() - 1];
        Ok((
            Tensor::from_storage(out, q.shape()),
            Tensor::from_storage(lse, lse_shape),
        ))
    }

    /// Backward of [`Tensor::try_attention`]: returns `(dq, dk, dv)`.
    pub fn try_attention_backward(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Tensor,
        lse: &Tensor,
        dout: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let dims = attention_dims(q, k, v)?;
        same_shape("attention_backward", q, dout)?;
        same_shape("attention_backward", q, out)?;
        let c = |t: &Tensor| t.try_compact();
        let (qc, kc, vc, oc, lc, dc) = (c(q)?, c(k)?, c(v)?, c(out)?, c(lse)?, c(dout)?);
        let (dq, dk, dv) = qc.storage().attention_backward(
            kc.storage(),
            vc.storage(),
            oc.storage(),
            lc.storage(),
            dc.storage(),
            dims,
        )?;
        Ok((
            Tensor::from_storage(dq, q.shape()),
            Tensor::from_storage(dk, k.shape()),
            Tensor::from_storage(dv, v.shape()),
        ))
    }

    /// `dx = dy * gelu'(x)` (self is `x`).
    pub fn try_gelu_backward(&self, dy: &Tensor, kind: Gelu) -> Result<Tensor> {
        same_shape("gelu_backward", self, dy)?;
        let (x, dy) = (self.try_compact()?, dy.try_compact()?);
        Ok(Tensor::from_storage(
            x.storage().gelu_backward(dy.storage(), kind)?,
            self.shape(),
        ))
    }
}

/// Validates attention shapes and flattens the leading dims.
fn attention_dims(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<AttentionDims> {
    super::elementwise::check_pair("attention", q, k)?;
    super::elementwise::check_pair("attention", q, v)?;
    let r = q.rank();
    let bad = || Error::ShapeMismatch {
        op: "attention",
        lhs: q.shape().to_vec(),
        rhs: k.shape().to_vec(),
    };
    if r < 2
        || k.shape() != v.shape()
        || k.rank() != r
        || q.shape()[..r - 2] != k.shape()[..r - 2]
        || q.shape()[r - 1] != k.shape()[r - 1]
    {
        return Err(bad());
    }
    let (tq, tk, d) = (q.shape()[r - 2], k.shape()[r - 2], q.shape()[r - 1]);
    if tq > tk {
        return Err(Error::InvalidArgument(format!(
            "attention: {tq} queries but only {tk} keys"
        )));
    }
    Ok(AttentionDims {
        bh: q.shape()[..r - 2].iter().product(),
        tq,
        tk,
        d,
    })
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    #[test]
    fn views_that_start_inside_their_storage_are_handled() {
        // A contiguous batch narrowed along dim 0 starts at an offset in its storage.
        let all = Tensor::arange(4 * 3 * 5, DType::F64)
            .reshape(&[4, 3, 5])
            .mul_scalar(0.1);
        let part = all.narrow(0, 2, 2);
        assert!(part.is_contiguous() && !part.is_compact());
        let copy = part.contiguous().try_compact().unwrap();
        let targets = Tensor::from_vec(vec![1u32, 4, 0, 2, 3, 3], &[2, 3]);
        let (a, _) = part.try_cross_entropy(&targets, None).unwrap();
        let (b, _) = Tensor::from_vec(copy.to_vec::<f64>(), &[2, 3, 5])
            .try_cross_entropy(&targets, None)
            .unwrap();
        assert_eq!(a.item(), b.item());
        let ln = |t: &Tensor| {
            t.try_layer_norm(None, None, 1e-5)
                .unwrap()
                .y
                .to_vec::<f64>()
        };
        assert_eq!(
            ln(&part),
            ln(&Tensor::from_vec(copy.to_vec::<f64>(), &[2, 3, 5]))
        );
        assert_eq!(
            part.softmax(-1).to_vec::<f64>(),
            Tensor::from_vec(copy.to_vec::<f64>(), &[2, 3, 5])
                .softmax(-1)
                .to_vec::<f64>()
        );
    }

    #[test]
    fn layer_norm_rows_have_zero_mean_unit_variance() {
        let x = Tensor::arange(24, DType::F64).reshape(&[2, 3, 4]).square();
        let out = x.try_layer_norm(None, None, 0.0).unwrap();
        assert_eq!(out.mean.shape(), &[2, 3]);
        let m = out.y.mean(&[-1], false).to_vec::<f64>();
        let v = out.y.var(&[-1], false, 0).to_vec::<f64>();
        assert!(m.iter().all(|a| a.abs() < 1e-12) && v.iter().all(|a| (a - 1.0).abs() < 1e-9));
    }

    #[test]
    fn cross_entropy_of_uniform_logits_is_log_v() {
        let logits = Tensor::zeros(&[2, 3, 5], DType::F64);
        let t = Tensor::from_vec(vec![0u32, 4, 2, 1, 1, 3], &[2, 3]);
        let (loss, lse) = logits.try_cross_entropy(&t, None).unwrap();
        assert!((loss.item() - 5f64.ln()).abs() < 1e-12);
        assert_eq!(lse.shape(), &[2, 3]);
        let err = logits
            .try_cross_entropy(&Tensor::from_vec(vec![9u32; 6], &[2, 3]), None)
            .unwrap_err();
        assert!(err.to_string().contains("target 9"), "{err}");
    }

    #[test]
    fn attention_shapes_are_checked() {
        let q = Tensor::zeros(&[1, 2, 4, 8], DType::F32);
        let k = Tensor::zeros(&[1, 2, 3, 8], DType::F32);
        assert!(Tensor::try_attention(&q, &k, &k).is_err());
        let (o, lse) = Tensor::try_attention(&k, &q, &q).unwrap();
        assert_eq!(
            (o.shape(), lse.shape()),
            (&[1, 2, 3, 8][..], &[1, 2, 3][..])
        );
    }
}
