//! In-place updates for optimizers and gradient accumulation. They need the tensor to be the
//! only owner of its storage (no other tensor or view shares it), so an update can never be
//! seen through another handle; otherwise they fail with [`Error::SharedStorage`].

pub use crate::backend::AdamWStep;
use crate::error::{Error, Result};
use crate::op::BinaryOp;
use crate::Tensor;

impl Tensor {
    fn inplace_binary(&mut self, rhs: &Tensor, op: BinaryOp) -> Result<()> {
        super::elementwise::check_pair(op.name(), self, rhs)?;
        let rl = rhs
            .layout()
            .broadcast_to(self.shape())
            .map_err(|_| Error::ShapeMismatch {
                op: op.name(),
                lhs: self.shape().to_vec(),
                rhs: rhs.shape().to_vec(),
            })?;
        if self
            .layout()
            .strides()
            .iter()
            .zip(self.shape())
            .any(|(&s, &d)| s == 0 && d > 1)
        {
            return Err(Error::InvalidArgument(format!(
                "{}_: cannot update a broadcast view in place",
                op.name()
            )));
        }
        let layout = self.layout().clone();
        self.storage_mut()?
            .binary_inplace(&layout, rhs.storage(), &rl, op)
    }

    /// `self += rhs` (rhs broadcasts to self's shape).
    pub fn add_(&mut self, rhs: &Tensor) -> Result<()> {
        self.inplace_binary(rhs, BinaryOp::Add)
    }

    /// `self -= rhs` (rhs broadcasts to self's shape).
    pub fn sub_(&mut self, rhs: &Tensor) -> Result<()> {
        self.inplace_binary(rhs, BinaryOp::Sub)
    }

    /// `self *= rhs` (rhs broadcasts to self's shape).
    pub fn mul_(&mut self, rhs: &Tensor) -> Result<()> {
        self.inplace_binary(rhs, BinaryOp::Mul)
    }

    /// `self *= v`.
    pub fn mul_scalar_(&mut self, v: f64) -> Result<()> {
        let s = self.scalar_like(v);
        self.inplace_binary(&s, BinaryOp::Mul)
    }

    /// Sets every element to `v`.
    pub fn fill_(&mut self, v: f64) -> Result<()> {
        let layout = self.layout().clone();
        self.storage_mut()?.fill(&layout, v)
    }

    /// Copies `src` (same shape, or broadcastable to it) into self.
    pub fn copy_(&mut self, src: &Tensor) -> Result<()> {
        super::elementwise::check_pair("copy_", self, src)?;
        let sl = src.layout().broadcast_to(self.shape())?;
        let layout = self.layout().clone();
        self.storage_mut()?.copy_into(&layout, src.storage(), &sl)
    }

    /// Copies `src` into positions `start..start + src.dim(dim)` of `dim` of self (every other
    /// dim the same size): a key/value cache written where it has room.
    pub fn copy_slice_(&mut self, dim: usize, start: usize, src: &Tensor) -> Result<()> {
        let len = src.shape().get(dim).copied().unwrap_or(0);
        let region = self.layout().narrow(dim, start, len)?;
        if region.shape() != src.shape() || src.dtype() != self.dtype() {
            return Err(Error::ShapeMismatch {
                op: "copy_slice_",
                lhs: region.shape().to_vec(),
                rhs: src.shape().to_vec(),
            });
        }
        let sl = src.layout().clone();
        self.storage_mut()?.copy_into(&region, src.storage(), &sl)
    }

    /// One AdamW step: self is the parameter, `m` and `v` the moment buffers; all contiguous,
    /// same shape and dtype, each uniquely owned.
    pub fn adamw_step_(
        &mut self,
        grad: &Tensor,
        m: &mut Tensor,
        v: &mut Tensor,
        h: &AdamWStep,
    ) -> Result<()> {
        for t in [&*m, &*v, grad] {
            if t.shape() != self.shape() {
                return Err(Error::ShapeMismatch {
                    op: "adamw",
                    lhs: self.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                });
            }
        }
        if !(self.is_compact() && m.is_compact() && v.is_compact()) {
            return Err(Error::InvalidArgument(
                "adamw: parameter and moments must each fill their own storage".into(),
            ));
        }
        let g = grad.try_compact()?;
        let (ms, vs) = (m.storage_mut()?, v.storage_mut()?);
        self.storage_mut()?.adamw_step(g.storage(), ms, vs, h)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Error, Tensor};

    #[test]
    fn in_place_updates_need_unique_storage() {
        let mut a = Tensor::ones(&[2, 3], DType::F32);
        a.add_(&Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]))
            .unwrap();
        assert_eq!(a.to_vec::<f32>(), vec![2., 3., 4., 2., 3., 4.]);
        a.mul_scalar_(0.5).unwrap();
        assert_eq!(a.to_vec::<f32>(), vec![1., 1.5, 2., 1., 1.5, 2.]);
        let view = a.t();
        assert_eq!(a.fill_(0.0).unwrap_err(), Error::SharedStorage);
        drop(view);
        a.fill_(7.0).unwrap();
        assert_eq!(a.to_vec::<f32>(), vec![7.0; 6]);
    }

    #[test]
    fn copy_slice_writes_only_its_positions() {
        let mut buf = Tensor::zeros(&[1, 2, 4, 2], DType::F32);
        let new = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[1, 2, 1, 2]);
        buf.copy_slice_(2, 1, &new).unwrap();
        let got = buf.to_vec::<f32>();
        let want = [
            0., 0., 1., 2., 0., 0., 0., 0., 0., 0., 3., 4., 0., 0., 0., 0.,
        ];
        assert_eq!(got, want);
        assert!(buf.copy_slice_(2, 4, &new).is_err(), "past the end");
        let wrong = Tensor::zeros(&[1, 3, 1, 2], DType::F32);
        assert!(buf.copy_slice_(2, 0, &wrong).is_err(), "other dims differ");
        let view = buf.clone();
        assert_eq!(
            buf.copy_slice_(2, 0, &new).unwrap_err(),
            Error::SharedStorage
        );
        drop(view);
    }
}
