//! The elementwise and reduction operations, as data. Every backend implements these same
//! enums, so the math of each lives in one place per backend and a new backend plugs in by
//! matching on them.
//!
//! Each enum's `ALL` lists every variant (with sample parameters where a variant has some), and
//! every test that runs "each op" iterates it: the CPU kernels' tests, the CUDA twins' tests,
//! and the check that each differentiable one has its autograd op. A test here fails when a
//! variant is missing from its `ALL`, so a new op cannot be left out of the others.

/// `y = f(x)` elementwise.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(test, derive(strum::EnumIter))]
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
    /// Every unary op, the parameterized ones with sample parameters.
    pub const ALL: [UnaryOp; 18] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Relu,
        UnaryOp::GeluTanh,
        UnaryOp::GeluErf,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Abs,
        UnaryOp::Square,
        UnaryOp::Recip,
        UnaryOp::Clamp(-0.5, 0.7),
        UnaryOp::Powf(1.5),
        UnaryOp::Affine {
            mul: 2.5,
            add: -1.0,
        },
    ];

    /// Whether the op is defined only for positive inputs (tests feed it those).
    pub fn wants_positive_input(&self) -> bool {
        matches!(
            self,
            UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Powf(_)
        )
    }

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
#[cfg_attr(test, derive(strum::EnumIter))]
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
    /// Every binary op.
    pub const ALL: [BinaryOp; 7] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ];

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
#[cfg_attr(test, derive(strum::EnumIter))]
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
    /// Every comparison.
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ];

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
#[cfg_attr(test, derive(strum::EnumIter))]
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
    /// Every reduction.
    pub const ALL: [ReduceOp; 5] = [
        ReduceOp::Sum,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::ArgMax,
        ReduceOp::ArgMin,
    ];

    /// Whether the op reduces to values (not to indices, which only one dim at a time gives).
    pub fn gives_values(&self) -> bool {
        matches!(self, ReduceOp::Sum | ReduceOp::Max | ReduceOp::Min)
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    /// The names of `all`, sorted, against those of every variant.
    fn same_variants(all: &[&'static str], every: impl Iterator<Item = &'static str>) {
        let (mut listed, mut every) = (all.to_vec(), every.collect::<Vec<_>>());
        listed.sort();
        every.sort();
        assert_eq!(listed, every, "an ALL list misses a variant or repeats one");
    }

    #[test]
    fn every_variant_is_in_its_all_list() {
        same_variants(
            &UnaryOp::ALL.map(|o| o.name()),
            UnaryOp::iter().map(|o| o.name()),
        );
        same_variants(
            &BinaryOp::ALL.map(|o| o.name()),
            BinaryOp::iter().map(|o| o.name()),
        );
        same_variants(
            &CmpOp::ALL.map(|o| o.name()),
            CmpOp::iter().map(|o| o.name()),
        );
        same_variants(
            &ReduceOp::ALL.map(|o| o.name()),
            ReduceOp::iter().map(|o| o.name()),
        );
    }
}
