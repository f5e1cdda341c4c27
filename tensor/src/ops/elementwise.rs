//! Elementwise ops: unary math, binary arithmetic with numpy broadcasting, comparisons to
//! `u8` masks, and selection by mask.

use crate::error::{or_panic, Error, Result};
use crate::layout::broadcast_shape;
use crate::op::{BinaryOp, CmpOp, UnaryOp};
use crate::{DType, Tensor};

/// Checks that two operands can meet in one op.
pub(crate) fn check_pair(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch {
            op,
            lhs: a.dtype(),
            rhs: b.dtype(),
        });
    }
    if a.device() != b.device() {
        return Err(Error::DeviceMismatch {
            op,
            lhs: a.device(),
            rhs: b.device(),
        });
    }
    Ok(())
}

impl Tensor {
    /// `y = op(x)` elementwise.
    pub fn try_unary(&self, op: UnaryOp) -> Result<Tensor> {
        let storage = self.storage().unary(self.layout(), op)?;
        Ok(Tensor::from_storage(storage, self.shape()))
    }

    /// [`Tensor::try_unary`], panicking on error.
    #[track_caller]
    pub fn unary(&self, op: UnaryOp) -> Tensor {
        or_panic(self.try_unary(op))
    }

    /// `-x` elementwise.
    #[track_caller]
    pub fn neg(&self) -> Tensor {
        self.unary(UnaryOp::Neg)
    }
    /// `e^x` elementwise.
    #[track_caller]
    pub fn exp(&self) -> Tensor {
        self.unary(UnaryOp::Exp)
    }
    /// Natural logarithm elementwise.
    #[track_caller]
    pub fn log(&self) -> Tensor {
        self.unary(UnaryOp::Log)
    }
    /// `sqrt(x)` elementwise.
    #[track_caller]
    pub fn sqrt(&self) -> Tensor {
        self.unary(UnaryOp::Sqrt)
    }
    /// `1 / sqrt(x)` elementwise.
    #[track_caller]
    pub fn rsqrt(&self) -> Tensor {
        self.unary(UnaryOp::Rsqrt)
    }
    /// `tanh(x)` elementwise.
    #[track_caller]
    pub fn tanh(&self) -> Tensor {
        self.unary(UnaryOp::Tanh)
    }
    /// `1 / (1 + e^-x)` elementwise.
    #[track_caller]
    pub fn sigmoid(&self) -> Tensor {
        self.unary(UnaryOp::Sigmoid)
    }
    /// `max(x, 0)` elementwise.
    #[track_caller]
    pub fn relu(&self) -> Tensor {
        self.unary(UnaryOp::Relu)
    }
    /// GELU, tanh approximation (GPT-2's).
    #[track_caller]
    pub fn gelu(&self) -> Tensor {
        self.unary(UnaryOp::GeluTanh)
    }
    /// GELU, exact erf form.
    #[track_caller]
    pub fn gelu_erf(&self) -> Tensor {
        self.unary(UnaryOp::GeluErf)
    }
    /// `sin(x)` elementwise, x in radians.
    #[track_caller]
    pub fn sin(&self) -> Tensor {
        self.unary(UnaryOp::Sin)
    }
    /// `cos(x)` elementwise, x in radians.
    #[track_caller]
    pub fn cos(&self) -> Tensor {
        self.unary(UnaryOp::Cos)
    }
    /// `|x|` elementwise.
    #[track_caller]
    pub fn abs(&self) -> Tensor {
        self.unary(UnaryOp::Abs)
    }
    /// `x * x` elementwise.
    #[track_caller]
    pub fn square(&self) -> Tensor {
        self.unary(UnaryOp::Square)
    }
    /// `1 / x` elementwise.
    #[track_caller]
    pub fn recip(&self) -> Tensor {
        self.unary(UnaryOp::Recip)
    }
    /// Limits every element to `[lo, hi]`.
    #[track_caller]
    pub fn clamp(&self, lo: f64, hi: f64) -> Tensor {
        self.unary(UnaryOp::Clamp(lo, hi))
    }
    /// `x ^ e` for a scalar exponent.
    #[track_caller]
    pub fn powf(&self, e: f64) -> Tensor {
        self.unary(UnaryOp::Powf(e))
    }
    /// `x * mul + add`.
    #[track_caller]
    pub fn affine(&self, mul: f64, add: f64) -> Tensor {
        self.unary(UnaryOp::Affine { mul, add })
    }
    /// `x + v` elementwise.
    #[track_caller]
    pub fn add_scalar(&self, v: f64) -> Tensor {
        self.affine(1.0, v)
    }
    /// `x * v` elementwise.
    #[track_caller]
    pub fn mul_scalar(&self, v: f64) -> Tensor {
        self.affine(v, 0.0)
    }

    /// `z = x op y` with numpy broadcasting.
    pub fn try_binary(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        check_pair(op.name(), self, rhs)?;
        let shape = broadcast_shape(op.name(), self.shape(), rhs.shape())?;
        let (l, r) = (
            self.layout().broadcast_to(&shape)?,
            rhs.layout().broadcast_to(&shape)?,
        );
        let storage = self.storage().binary(&l, rhs.storage(), &r, op)?;
        Ok(Tensor::from_storage(storage, &shape))
    }

    /// [`Tensor::try_binary`], panicking on error.
    #[track_caller]
    pub fn binary(&self, rhs: &Tensor, op: BinaryOp) -> Tensor {
        or_panic(self.try_binary(rhs, op))
    }

    /// `x + y` with broadcasting; an error for mismatched dtypes, devices or shapes.
    pub fn try_add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.try_binary(rhs, BinaryOp::Add)
    }
    /// `x - y` with broadcasting; an error for mismatched dtypes, devices or shapes.
    pub fn try_sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.try_binary(rhs, BinaryOp::Sub)
    }
    /// `x * y` with broadcasting; an error for mismatched dtypes, devices or shapes.
    pub fn try_mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.try_binary(rhs, BinaryOp::Mul)
    }
    /// `x / y` with broadcasting; an error for mismatched dtypes, devices or shapes.
    pub fn try_div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.try_binary(rhs, BinaryOp::Div)
    }
    /// `x + y` with broadcasting (panics on error).
    #[track_caller]
    pub fn add(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, BinaryOp::Add)
    }
    /// `x - y` with broadcasting (panics on error).
    #[track_caller]
    pub fn sub(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, BinaryOp::Sub)
    }
    /// `x * y` with broadcasting (panics on error).
    #[track_caller]
    pub fn mul(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, BinaryOp::Mul)
    }
    /// `x / y` with broadcasting (panics on error).
    #[track_caller]
    pub fn div(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, BinaryOp::Div)
    }
    /// `x ^ y` elementwise.
    #[track_caller]
    pub fn pow(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, BinaryOp::Pow)
    }
    /// Elementwise max with broadcasting; NaN propagates.
    #[track_caller]
    pub fn maximum(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, BinaryOp::Maximum)
    }
    /// Elementwise min with broadcasting; NaN propagates.
    #[track_caller]
    pub fn minimum(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, BinaryOp::Minimum)
    }

    /// `x op y` with broadcasting, as a `u8` mask of 0s and 1s.
    pub fn try_compare(&self, rhs: &Tensor, op: CmpOp) -> Result<Tensor> {
        check_pair(op.name(), self, rhs)?;
        let shape = broadcast_shape(op.name(), self.shape(), rhs.shape())?;
        let (l, r) = (
            self.layout().broadcast_to(&shape)?,
            rhs.layout().broadcast_to(&shape)?,
        );
        let storage = self.storage().compare(&l, rhs.storage(), &r, op)?;
        Ok(Tensor::from_storage(storage, &shape))
    }

    /// [`Tensor::try_compare`], panicking on error.
    #[track_caller]
    pub fn compare(&self, rhs: &Tensor, op: CmpOp) -> Tensor {
        or_panic(self.try_compare(rhs, op))
    }
    /// `u8` mask of `x == y`, with broadcasting.
    #[track_caller]
    pub fn eq(&self, rhs: &Tensor) -> Tensor {
        self.compare(rhs, CmpOp::Eq)
    }
    /// `u8` mask of `x != y`, with broadcasting.
    #[track_caller]
    pub fn ne(&self, rhs: &Tensor) -> Tensor {
        self.compare(rhs, CmpOp::Ne)
    }
    /// `u8` mask of `x < y`, with broadcasting.
    #[track_caller]
    pub fn lt(&self, rhs: &Tensor) -> Tensor {
        self.compare(rhs, CmpOp::Lt)
    }
    /// `u8` mask of `x <= y`, with broadcasting.
    #[track_caller]
    pub fn le(&self, rhs: &Tensor) -> Tensor {
        self.compare(rhs, CmpOp::Le)
    }
    /// `u8` mask of `x > y`, with broadcasting.
    #[track_caller]
    pub fn gt(&self, rhs: &Tensor) -> Tensor {
        self.compare(rhs, CmpOp::Gt)
    }
    /// `u8` mask of `x >= y`, with broadcasting.
    #[track_caller]
    pub fn ge(&self, rhs: &Tensor) -> Tensor {
        self.compare(rhs, CmpOp::Ge)
    }
    /// Compares against a scalar of this tensor's dtype.
    #[track_caller]
    pub fn compare_scalar(&self, v: f64, op: CmpOp) -> Tensor {
        self.compare(&self.scalar_like(v), op)
    }

    /// `mask ? on_true : on_false` elementwise, all three broadcast together; the mask is `u8`.
    pub fn try_where_cond(mask: &Tensor, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        if mask.dtype() != DType::U8 {
            return Err(Error::DTypeMismatch {
                op: "where",
                lhs: DType::U8,
                rhs: mask.dtype(),
            });
        }
        check_pair("where", on_true, on_false)?;
        let shape = broadcast_shape("where", on_true.shape(), on_false.shape())?;
        let shape = broadcast_shape("where", mask.shape(), &shape)?;
        let ml = mask.layout().broadcast_to(&shape)?;
        let al = on_true.layout().broadcast_to(&shape)?;
        let bl = on_false.layout().broadcast_to(&shape)?;
        let storage =
            mask.storage()
                .where_cond(&ml, on_true.storage(), &al, on_false.storage(), &bl)?;
        Ok(Tensor::from_storage(storage, &shape))
    }

    /// [`Tensor::try_where_cond`], panicking on error.
    #[track_caller]
    pub fn where_cond(mask: &Tensor, on_true: &Tensor, on_false: &Tensor) -> Tensor {
        or_panic(Tensor::try_where_cond(mask, on_true, on_false))
    }

    /// `value` where `mask` is 1, else this tensor's element.
    #[track_caller]
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Tensor {
        Tensor::where_cond(mask, &self.scalar_like(value), self)
    }
}

macro_rules! operator {
    ($trait:ident, $method:ident, $op:ident) => {
        impl std::ops::$trait<&Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                self.binary(rhs, BinaryOp::$op)
            }
        }
        impl std::ops::$trait<Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                self.binary(&rhs, BinaryOp::$op)
            }
        }
    };
}

operator!(Add, add, Add);
operator!(Sub, sub, Sub);
operator!(Mul, mul, Mul);
operator!(Div, div, Div);

impl std::ops::Neg for &Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        self.unary(UnaryOp::Neg)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};
    use proptest::prelude::*;

    #[test]
    fn broadcasting_add_and_mask_ops() {
        let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3, 1]);
        let b = Tensor::from_vec(vec![10.0f32, 20.0], &[2]);
        let c = &a + &b;
        assert_eq!(c.shape(), &[3, 2]);
        assert_eq!(c.to_vec::<f32>(), vec![11., 21., 12., 22., 13., 23.]);
        let m = c.gt(&Tensor::scalar(15.0f32));
        assert_eq!(m.dtype(), DType::U8);
        assert_eq!(m.to_vec::<u8>(), vec![0, 1, 0, 1, 0, 1]);
        let f = c.masked_fill(&m, -1.0);
        assert_eq!(f.to_vec::<f32>(), vec![11., -1., 12., -1., 13., -1.]);
        let causal = Tensor::ones(&[3, 3], DType::F32)
            .masked_fill(&Tensor::causal_mask(3).eq(&Tensor::scalar(0u8)), 0.0);
        assert_eq!(
            causal.to_vec::<f32>(),
            vec![1., 0., 0., 1., 1., 0., 1., 1., 1.]
        );
    }

    #[test]
    fn mismatches_are_errors_naming_op_and_shapes() {
        let a = Tensor::zeros(&[2, 3], DType::F32);
        let err = a
            .try_add(&Tensor::zeros(&[4], DType::F32))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("add") && err.contains("[2, 3]") && err.contains("[4]"),
            "{err}"
        );
        let err = a
            .try_mul(&Tensor::zeros(&[3], DType::F64))
            .unwrap_err()
            .to_string();
        assert!(err.contains("f32") && err.contains("f64"), "{err}");
        let err = Tensor::zeros(&[2], DType::U32)
            .try_unary(crate::UnaryOp::Exp)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exp") && err.contains("u32"), "{err}");
    }

    proptest! {
        /// Broadcast arithmetic agrees with a naive model that indexes every element.
        #[test]
        fn broadcast_matches_index_model(
            a_shape in proptest::collection::vec(1usize..4, 0..4),
            drop in proptest::collection::vec(any::<bool>(), 4),
        ) {
            // b's shape: a suffix of a's with some dims set to 1.
            let b_shape: Vec<usize> = a_shape.iter().enumerate().skip(a_shape.len() / 2)
                .map(|(i, &d)| if drop[i % 4] { 1 } else { d }).collect();
            let a = Tensor::arange(a_shape.iter().product(), DType::F64).reshape(&a_shape);
            let b = Tensor::arange(b_shape.iter().product(), DType::F64).affine(0.5, 3.0).reshape(&b_shape);
            let z = a.sub(&b);
            let (av, bv, zv) = (a.to_vec::<f64>(), b.to_vec::<f64>(), z.to_vec::<f64>());
            let rank = a_shape.len();
            let lead = rank - b_shape.len();
            for (flat, &got) in zv.iter().enumerate() {
                let mut idx = vec![0; rank];
                let mut r = flat;
                for k in (0..rank).rev() { idx[k] = r % a_shape[k]; r /= a_shape[k]; }
                let mut bi = 0;
                for (k, &bd) in b_shape.iter().enumerate() {
                    bi = bi * bd + if bd == 1 { 0 } else { idx[lead + k] };
                }
                prop_assert_eq!(got, av[flat] - bv[bi]);
            }
        }
    }
}
