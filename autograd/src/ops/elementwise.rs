//! Elementwise ops and their gradients.
//!
//! Binary ops broadcast; each input's gradient is summed back to its own shape
//! ([`super::sum_to_shape`]). Unary rules keep only what their derivative needs, preferring the
//! output when the derivative can be written from it (`exp' = y`, `tanh' = 1 - y^2`).

use super::sum_to_shape;
use crate::op::{Backward, Op};
use crate::var::Var;
use tensor::{BinaryOp, CmpOp, Gelu, Result, Tensor, UnaryOp};

/// Saved for a binary op: both inputs, the output, and the input shapes.
struct BinaryRule {
    op: BinaryOp,
    a: Tensor,
    b: Tensor,
    out: Tensor,
}

/// A `0./1.` mask of `x op y` in `x`'s dtype.
fn mask(x: &Tensor, y: &Tensor, op: CmpOp) -> Tensor {
    x.compare(y, op).to_dtype(x.dtype())
}

impl Backward for BinaryRule {
    fn op(&self) -> Op {
        match self.op {
            BinaryOp::Add => Op::Add,
            BinaryOp::Sub => Op::Sub,
            BinaryOp::Mul => Op::Mul,
            BinaryOp::Div => Op::Div,
            BinaryOp::Pow => Op::Pow,
            BinaryOp::Maximum => Op::Maximum,
            BinaryOp::Minimum => Op::Minimum,
        }
    }

    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let (a, b) = (&self.a, &self.b);
        let (ga, gb) = match self.op {
            // z = a + b
            BinaryOp::Add => (g.clone(), g.clone()),
            // z = a - b
            BinaryOp::Sub => (g.clone(), g.neg()),
            // z = a * b
            BinaryOp::Mul => (g.mul(b), g.mul(a)),
            // z = a / b: dz/db = -a / b^2 = -z / b
            BinaryOp::Div => (g.div(b), g.mul(&self.out).div(b).neg()),
            // z = a ^ b: dz/da = b a^(b-1), dz/db = z ln a
            BinaryOp::Pow => (
                g.mul(b).mul(&a.pow(&b.add_scalar(-1.0))),
                g.mul(&self.out).mul(&a.log()),
            ),
            // z = max(a, b): the larger input takes the gradient; a tie splits it evenly.
            BinaryOp::Maximum => {
                let share = mask(a, b, CmpOp::Gt).add(&mask(a, b, CmpOp::Eq).mul_scalar(0.5));
                (g.mul(&share), g.mul(&share.neg().add_scalar(1.0)))
            }
            // z = min(a, b): the smaller input takes the gradient; a tie splits it evenly.
            BinaryOp::Minimum => {
                let share = mask(a, b, CmpOp::Lt).add(&mask(a, b, CmpOp::Eq).mul_scalar(0.5));
                (g.mul(&share), g.mul(&share.neg().add_scalar(1.0)))
            }
        };
        vec![
            Some(sum_to_shape(&ga, a.shape())),
            Some(sum_to_shape(&gb, b.shape())),
        ]
    }
}

/// What a unary rule keeps: the input, the output, or nothing.
enum Saved {
    Input(Tensor),
    Output(Tensor),
    Nothing,
}

struct UnaryRule {
    op: UnaryOp,
    saved: Saved,
}

impl UnaryRule {
    /// Saves the input or the output, whichever this op's derivative is written in.
    fn new(op: UnaryOp, x: &Tensor, y: &Tensor) -> UnaryRule {
        let saved = match op {
            UnaryOp::Exp
            | UnaryOp::Sqrt
            | UnaryOp::Rsqrt
            | UnaryOp::Tanh
            | UnaryOp::Sigmoid
            | UnaryOp::Recip => Saved::Output(y.clone()),
            UnaryOp::Neg | UnaryOp::Affine { .. } => Saved::Nothing,
            _ => Saved::Input(x.clone()),
        };
        UnaryRule { op, saved }
    }
}

impl Backward for UnaryRule {
    fn op(&self) -> Op {
        match self.op {
            UnaryOp::Neg => Op::Neg,
            UnaryOp::Exp => Op::Exp,
            UnaryOp::Log => Op::Log,
            UnaryOp::Sqrt => Op::Sqrt,
            UnaryOp::Rsqrt => Op::Rsqrt,
            UnaryOp::Tanh => Op::Tanh,
            UnaryOp::Sigmoid => Op::Sigmoid,
            UnaryOp::Relu => Op::Relu,
            UnaryOp::GeluTanh => Op::GeluTanh,
            UnaryOp::GeluErf => Op::GeluErf,
            UnaryOp::Sin => Op::Sin,
            UnaryOp::Cos => Op::Cos,
            UnaryOp::Abs => Op::Abs,
            UnaryOp::Square => Op::Square,
            UnaryOp::Recip => Op::Recip,
            UnaryOp::Clamp(..) => Op::Clamp,
            UnaryOp::Powf(_) => Op::Powf,
            UnaryOp::Affine { .. } => Op::Affine,
        }
    }

    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let dx = match (&self.saved, self.op) {
            // y = -x
            (Saved::Nothing, UnaryOp::Neg) => g.neg(),
            // y = x * mul + add
            (Saved::Nothing, UnaryOp::Affine { mul, .. }) => g.mul_scalar(mul),
            // y = e^x: dy/dx = y
            (Saved::Output(y), UnaryOp::Exp) => g.mul(y),
            // y = sqrt x: dy/dx = 1 / (2y)
            (Saved::Output(y), UnaryOp::Sqrt) => g.div(y).mul_scalar(0.5),
            // y = x^(-1/2): dy/dx = -y^3 / 2
            (Saved::Output(y), UnaryOp::Rsqrt) => g.mul(&y.powf(3.0)).mul_scalar(-0.5),
            // y = tanh x: dy/dx = 1 - y^2
            (Saved::Output(y), UnaryOp::Tanh) => g.mul(&y.square().neg().add_scalar(1.0)),
            // y = 1 / (1 + e^-x): dy/dx = y (1 - y)
            (Saved::Output(y), UnaryOp::Sigmoid) => g.mul(&y.mul(&y.neg().add_scalar(1.0))),
            // y = 1 / x: dy/dx = -y^2
            (Saved::Output(y), UnaryOp::Recip) => g.mul(&y.square()).neg(),
            // y = ln x
            (Saved::Input(x), UnaryOp::Log) => g.div(x),
            // y = max(x, 0)
            (Saved::Input(x), UnaryOp::Relu) => {
                g.mul(&x.compare_scalar(0.0, CmpOp::Gt).to_dtype(x.dtype()))
            }
            // y = gelu(x): the fused derivative kernel.
            (Saved::Input(x), UnaryOp::GeluTanh) => x
                .try_gelu_backward(g, Gelu::Tanh)
                .unwrap_or_else(|e| panic!("{e}")),
            (Saved::Input(x), UnaryOp::GeluErf) => x
                .try_gelu_backward(g, Gelu::Erf)
                .unwrap_or_else(|e| panic!("{e}")),
            // y = sin x
            (Saved::Input(x), UnaryOp::Sin) => g.mul(&x.cos()),
            // y = cos x
            (Saved::Input(x), UnaryOp::Cos) => g.mul(&x.sin()).neg(),
            // y = |x|: dy/dx = sign(x), 0 at 0
            (Saved::Input(x), UnaryOp::Abs) => {
                let pos = x.compare_scalar(0.0, CmpOp::Gt).to_dtype(x.dtype());
                let neg = x.compare_scalar(0.0, CmpOp::Lt).to_dtype(x.dtype());
                g.mul(&pos.sub(&neg))
            }
            // y = x^2
            (Saved::Input(x), UnaryOp::Square) => g.mul(x).mul_scalar(2.0),
            // y = clamp(x, lo, hi): gradient passes inside [lo, hi]
            (Saved::Input(x), UnaryOp::Clamp(lo, hi)) => {
                let above_lo = x.compare_scalar(lo, CmpOp::Ge).to_dtype(x.dtype());
                let below_hi = x.compare_scalar(hi, CmpOp::Le).to_dtype(x.dtype());
                g.mul(&above_lo).mul(&below_hi)
            }
            // y = x^e
            (Saved::Input(x), UnaryOp::Powf(e)) => g.mul(&x.powf(e - 1.0)).mul_scalar(e),
            (_, op) => unreachable!("unary rule for {op:?} saved the wrong tensor"),
        };
        vec![Some(dx)]
    }
}

impl Var {
    /// `z = self op rhs` with broadcasting.
    pub fn try_binary(&self, rhs: &Var, op: BinaryOp) -> Result<Var> {
        let (a, b) = (self.value(), rhs.value());
        let out = a.try_binary(&b, op)?;
        let saved = out.clone();
        Ok(Var::from_op(out, &[self, rhs], || BinaryRule {
            op,
            a,
            b,
            out: saved,
        }))
    }

    /// [`Var::try_binary`], panicking on error.
    #[track_caller]
    pub fn binary(&self, rhs: &Var, op: BinaryOp) -> Var {
        self.try_binary(rhs, op).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `self + rhs` with broadcasting; each gradient is `g` summed back to its input's shape.
    #[track_caller]
    pub fn add(&self, rhs: &Var) -> Var {
        self.binary(rhs, BinaryOp::Add)
    }
    /// `self - rhs` with broadcasting; gradients `g` and `-g`, summed back to each input's shape.
    #[track_caller]
    pub fn sub(&self, rhs: &Var) -> Var {
        self.binary(rhs, BinaryOp::Sub)
    }
    /// `self * rhs` with broadcasting; gradients `g * rhs` and `g * self`.
    #[track_caller]
    pub fn mul(&self, rhs: &Var) -> Var {
        self.binary(rhs, BinaryOp::Mul)
    }
    /// `self / rhs` with broadcasting; gradients `g / rhs` and `-g * out / rhs`.
    #[track_caller]
    pub fn div(&self, rhs: &Var) -> Var {
        self.binary(rhs, BinaryOp::Div)
    }
    /// `self ^ rhs` elementwise with broadcasting; gradients `g * rhs * self^(rhs - 1)` and
    /// `g * out * ln(self)`.
    #[track_caller]
    pub fn pow(&self, rhs: &Var) -> Var {
        self.binary(rhs, BinaryOp::Pow)
    }
    /// Elementwise max with broadcasting; the larger input takes the gradient, a tie splits it
    /// evenly.
    #[track_caller]
    pub fn maximum(&self, rhs: &Var) -> Var {
        self.binary(rhs, BinaryOp::Maximum)
    }
    /// Elementwise min with broadcasting; the smaller input takes the gradient, a tie splits it
    /// evenly.
    #[track_caller]
    pub fn minimum(&self, rhs: &Var) -> Var {
        self.binary(rhs, BinaryOp::Minimum)
    }

    /// `y = op(self)` elementwise.
    #[track_caller]
    pub fn unary(&self, op: UnaryOp) -> Var {
        let x = self.value();
        let y = x.unary(op);
        let saved = y.clone();
        Var::from_op(y, &[self], || UnaryRule::new(op, &x, &saved))
    }

    /// `-x`.
    #[track_caller]
    pub fn neg(&self) -> Var {
        self.unary(UnaryOp::Neg)
    }
    /// `e^x`; gradient `g * y`.
    #[track_caller]
    pub fn exp(&self) -> Var {
        self.unary(UnaryOp::Exp)
    }
    /// Natural logarithm; gradient `g / x`.
    #[track_caller]
    pub fn log(&self) -> Var {
        self.unary(UnaryOp::Log)
    }
    /// `sqrt(x)`; gradient `g / (2 y)`.
    #[track_caller]
    pub fn sqrt(&self) -> Var {
        self.unary(UnaryOp::Sqrt)
    }
    /// `1 / sqrt(x)`; gradient `-g y^3 / 2`.
    #[track_caller]
    pub fn rsqrt(&self) -> Var {
        self.unary(UnaryOp::Rsqrt)
    }
    /// `tanh(x)`; gradient `g (1 - y^2)`.
    #[track_caller]
    pub fn tanh(&self) -> Var {
        self.unary(UnaryOp::Tanh)
    }
    /// `1 / (1 + e^-x)`; gradient `g y (1 - y)`.
    #[track_caller]
    pub fn sigmoid(&self) -> Var {
        self.unary(UnaryOp::Sigmoid)
    }
    /// `max(x, 0)`; the gradient passes where `x > 0` (0 at `x = 0`).
    #[track_caller]
    pub fn relu(&self) -> Var {
        self.unary(UnaryOp::Relu)
    }
    /// GELU, tanh approximation (GPT-2's).
    #[track_caller]
    pub fn gelu(&self) -> Var {
        self.unary(UnaryOp::GeluTanh)
    }
    /// GELU, exact erf form.
    #[track_caller]
    pub fn gelu_erf(&self) -> Var {
        self.unary(UnaryOp::GeluErf)
    }
    /// `sin(x)`, x in radians; gradient `g cos(x)`.
    #[track_caller]
    pub fn sin(&self) -> Var {
        self.unary(UnaryOp::Sin)
    }
    /// `cos(x)`, x in radians; gradient `-g sin(x)`.
    #[track_caller]
    pub fn cos(&self) -> Var {
        self.unary(UnaryOp::Cos)
    }
    /// `|x|`; gradient `g sign(x)`, 0 at `x = 0`.
    #[track_caller]
    pub fn abs(&self) -> Var {
        self.unary(UnaryOp::Abs)
    }
    /// `x^2`; gradient `2 g x`.
    #[track_caller]
    pub fn square(&self) -> Var {
        self.unary(UnaryOp::Square)
    }
    /// `1 / x`; gradient `-g y^2`.
    #[track_caller]
    pub fn recip(&self) -> Var {
        self.unary(UnaryOp::Recip)
    }
    /// `clamp(x, lo, hi)`; the gradient passes where `lo <= x <= hi`, else 0.
    #[track_caller]
    pub fn clamp(&self, lo: f64, hi: f64) -> Var {
        self.unary(UnaryOp::Clamp(lo, hi))
    }
    /// `x^e` for a scalar exponent; gradient `g e x^(e - 1)`.
    #[track_caller]
    pub fn powf(&self, e: f64) -> Var {
        self.unary(UnaryOp::Powf(e))
    }
    /// `self * mul + add`.
    #[track_caller]
    pub fn affine(&self, mul: f64, add: f64) -> Var {
        self.unary(UnaryOp::Affine { mul, add })
    }
    /// `x * v`.
    #[track_caller]
    pub fn mul_scalar(&self, v: f64) -> Var {
        self.affine(v, 0.0)
    }
    /// `x + v`.
    #[track_caller]
    pub fn add_scalar(&self, v: f64) -> Var {
        self.affine(1.0, v)
    }
}

macro_rules! operator {
    ($trait:ident, $method:ident) => {
        impl std::ops::$trait<&Var> for &Var {
            type Output = Var;
            #[track_caller]
            fn $method(self, rhs: &Var) -> Var {
                Var::$method(self, rhs)
            }
        }
    };
}

operator!(Add, add);
operator!(Sub, sub);
operator!(Mul, mul);
operator!(Div, div);
