//! The elementwise and reduction operations, as data. Every backend implements these same
//! enums, so the math of each lives in one place per backend and a new backend plugs in by
//! matching on them.

/// `y = f(x)` elementwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `e^x`.
    Exp,
    /// Natural logarithm.
    Log,
    /// `sqrt(x)`.
    Sqrt,
    /// `1 / sqrt(x)`.
    Rsqrt,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `max(x, 0)`.
    Relu,
    /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, GPT-2's GELU.
    GeluTanh,
    /// `0.5 x (1 + erf(x / sqrt(2)))`, the exact GELU.
    GeluErf,
    /// `sin(x)`, x in radians.
    Sin,
    /// `cos(x)`, x in radians.
    Cos,
    /// `|x|`.
    Abs,
    /// `x * x`.
    Square,
    /// `1 / x`.
    Recip,
    /// `clamp(x, min, max)`.
    Clamp(f64, f64),
    /// `x ^ e`.
    Powf(f64),
    /// `x * mul + add`.
    Affine {
        /// Factor applied first.
        mul: f64,
        /// Offset added after the product.
        add: f64,
    },
}

impl UnaryOp {
    /// The op's lower-case name, as used in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::GeluTanh => "gelu_tanh",
            UnaryOp::GeluErf => "gelu_erf",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Abs => "abs",
            UnaryOp::Square => "square",
            UnaryOp::Recip => "recip",
            UnaryOp::Clamp(..) => "clamp",
            UnaryOp::Powf(_) => "powf",
            UnaryOp::Affine { .. } => "affine",
        }
    }
}

/// `z = f(x, y)` elementwise with broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `x + y`.
    Add,
    /// `x - y`.
    Sub,
    /// `x * y`.
    Mul,
    /// `x / y`.
    Div,
    /// `x ^ y`.
    Pow,
    /// Elementwise max (NaN propagates).
    Maximum,
    /// Elementwise min (NaN propagates).
    Minimum,
}

impl BinaryOp {
    /// The op's lower-case name, as used in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        }
    }
}

/// `mask = x <op> y` elementwise with broadcasting; the result is a `u8` tensor of 0s and 1s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `x == y`.
    Eq,
    /// `x != y`.
    Ne,
    /// `x < y`.
    Lt,
    /// `x <= y`.
    Le,
    /// `x > y`.
    Gt,
    /// `x >= y`.
    Ge,
}

impl CmpOp {
    /// The op's lower-case name, as used in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }
}

/// A reduction over a set of dims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum of the elements (0 for an empty reduction).
    Sum,
    /// Largest element; NaN propagates. An empty dim is an error.
    Max,
    /// Smallest element; NaN propagates. An empty dim is an error.
    Min,
    /// Index of the first maximum (as `u32`); only over one dim.
    ArgMax,
    /// Index of the first minimum (as `u32`); only over one dim.
    ArgMin,
}

impl ReduceOp {
    /// The op's lower-case name, as used in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::ArgMax => "argmax",
            ReduceOp::ArgMin => "argmin",
        }
    }
}
