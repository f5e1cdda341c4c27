//! The float64 gradient-check suite: every differentiable op on at least three shapes,
//! including non-contiguous (transposed, narrowed) and broadcast (stride 0) inputs and size-1
//! dims. Each case also checks the float32 path against the float64 one. A test fails when any
//! op of the registry (`autograd::Op::all()`) is exercised by fewer than three cases.

use autograd::{gradcheck, Op, Var};
use std::collections::BTreeMap;
use tensor::{DType, Rng, Tensor};

type Fun = Box<dyn Fn(&[Var]) -> Var>;

struct Case {
    name: String,
    inputs: Vec<Tensor>,
    f: Fun,
}

fn case(name: &str, inputs: Vec<Tensor>, f: impl Fn(&[Var]) -> Var + 'static) -> Case {
    Case {
        name: name.to_string(),
        inputs,
        f: Box::new(f),
    }
}

/// Uniform in [-1, 1).
fn rand(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand(shape, -1.0, 1.0, DType::F64, &mut Rng::new(seed))
}

/// Uniform in [0.5, 2): for logs, roots, powers and divisors.
fn pos(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand(shape, 0.5, 2.0, DType::F64, &mut Rng::new(seed))
}

fn ids(values: &[u32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(values, shape)
}

fn binary_cases(name: &str, op: fn(&Var, &Var) -> Var, positive: bool) -> Vec<Case> {
    let gen = move |shape: &[usize], seed| {
        if positive {
            pos(shape, seed)
        } else {
            rand(shape, seed)
        }
    };
    vec![
        case(
            &format!("{name}/same shape"),
            vec![gen(&[3, 4], 1), rand(&[3, 4], 2)],
            move |v| op(&v[0], &v[1]),
        ),
        case(
            &format!("{name}/broadcast row"),
            vec![gen(&[2, 3, 4], 3), rand(&[4], 4)],
            move |v| op(&v[0], &v[1]),
        ),
        case(
            &format!("{name}/transposed and size-1 dims"),
            vec![gen(&[4, 3], 5), rand(&[3, 1], 6)],
            move |v| op(&v[0].t(), &v[1]),
        ),
        case(
            &format!("{name}/expanded operand"),
            vec![gen(&[1, 4], 7), rand(&[3, 4], 8)],
            move |v| op(&v[0].expand(&[3, 4]), &v[1]),
        ),
    ]
}

fn unary_cases(name: &str, op: fn(&Var) -> Var, positive: bool) -> Vec<Case> {
    let gen = move |shape: &[usize], seed| {
        if positive {
            pos(shape, seed)
        } else {
            rand(shape, seed)
        }
    };
    vec![
        case(&format!("{name}/vector"), vec![gen(&[7], 11)], move |v| {
            op(&v[0])
        }),
        case(
            &format!("{name}/narrowed"),
            vec![gen(&[2, 3, 6], 12)],
            move |v| op(&v[0].narrow(2, 1, 4)),
        ),
        case(
            &format!("{name}/transposed with size-1 dim"),
            vec![gen(&[3, 1, 4], 13)],
            move |v| op(&v[0].transpose(0, 2)),
        ),
    ]
}

fn all_cases() -> Vec<Case> {
    let mut c = vec![];
    c.extend(binary_cases("add", Var::add, false));
    c.extend(binary_cases("sub", Var::sub, false));
    c.extend(binary_cases("mul", Var::mul, false));
    c.extend(binary_cases("div", |a, b| b.div(a), true));
    c.extend(binary_cases("pow", Var::pow, true));
    c.extend(binary_cases("maximum", Var::maximum, false));
    c.extend(binary_cases("minimum", Var::minimum, false));
    c.extend(unary_cases("neg", Var::neg, false));
    c.extend(unary_cases("exp", Var::exp, false));
    c.extend(unary_cases("log", Var::log, true));
    c.extend(unary_cases("sqrt", Var::sqrt, true));
    c.extend(unary_cases("rsqrt", Var::rsqrt, true));
    c.extend(unary_cases("tanh", Var::tanh, false));
    c.extend(unary_cases("sigmoid", Var::sigmoid, false));
    c.extend(unary_cases("relu", Var::relu, false));
    c.extend(unary_cases("gelu tanh", Var::gelu, false));
    c.extend(unary_cases("gelu erf", Var::gelu_erf, false));
    c.extend(unary_cases("sin", Var::sin, false));
    c.extend(unary_cases("cos", Var::cos, false));
    c.extend(unary_cases("abs", Var::abs, false));
    c.extend(unary_cases("square", Var::square, false));
    c.extend(unary_cases("recip", Var::recip, true));
    c.extend(unary_cases("clamp", |x| x.clamp(-0.4, 0.3), false));
    c.extend(unary_cases("powf", |x| x.powf(2.5), true));
    c.extend(unary_cases("affine", |x| x.affine(-1.5, 0.25), false));
    c.extend(view_cases());
    c.extend(reduce_cases());
    c.extend(matmul_cases());
    c.extend(index_cases());
    c.extend(fused_cases());
    c
}

fn view_cases() -> Vec<Case> {
    vec![
        case("reshape/split dim", vec![rand(&[6, 4], 20)], |v| {
            v[0].reshape(&[2, 3, 4]).exp()
        }),
        case(
            "reshape/of a transpose (copies)",
            vec![rand(&[3, 4], 21)],
            |v| v[0].t().reshape(&[12]).square(),
        ),
        case("reshape/unsqueeze and squeeze", vec![rand(&[5], 22)], |v| {
            v[0].unsqueeze(0).unsqueeze(2).squeeze(0).tanh()
        }),
        case("permute/3d", vec![rand(&[2, 3, 4], 23)], |v| {
            v[0].permute(&[2, 0, 1]).mul_scalar(3.0).sin()
        }),
        case("permute/transpose", vec![rand(&[3, 5], 24)], |v| {
            v[0].t().square()
        }),
        case("permute/with size-1 dim", vec![rand(&[1, 4, 2], 25)], |v| {
            v[0].permute(&[1, 2, 0]).exp()
        }),
        case("narrow/middle", vec![rand(&[4, 6], 26)], |v| {
            v[0].narrow(1, 2, 3).square()
        }),
        case("narrow/first dim", vec![rand(&[5, 3], 27)], |v| {
            v[0].narrow(0, 0, 2).exp()
        }),
        case("narrow/select and split", vec![rand(&[3, 4], 28)], |v| {
            let parts = v[0].split(3, 1);
            parts[0]
                .mul(&parts[0])
                .sum(&[1], false)
                .add(&parts[1].squeeze(1))
                .add(&v[0].select(1, 2))
        }),
        case("expand/leading dim", vec![rand(&[3], 29)], |v| {
            v[0].expand(&[4, 3]).square()
        }),
        case("expand/size-1 dims", vec![rand(&[2, 1, 3], 30)], |v| {
            v[0].expand(&[2, 4, 3]).sin()
        }),
        case("expand/scalar", vec![rand(&[1, 1], 31)], |v| {
            v[0].expand(&[3, 2]).exp()
        }),
        case(
            "cat/two along dim 1",
            vec![rand(&[2, 3], 32), rand(&[2, 2], 33)],
            |v| Var::cat(&[&v[0], &v[1]], 1).square(),
        ),
        case(
            "cat/three along dim 0",
            vec![rand(&[1, 3], 34), rand(&[2, 3], 35), rand(&[1, 3], 36)],
            |v| Var::cat(&[&v[0], &v[1], &v[2]], 0).exp(),
        ),
        case(
            "cat/stack",
            vec![rand(&[2, 3], 37), rand(&[2, 3], 38)],
            |v| Var::stack(&[&v[0], &v[1].t().t()], 1).square(),
        ),
        case("contiguous/of a transpose", vec![rand(&[3, 4], 39)], |v| {
            v[0].t().contiguous().mul_scalar(2.0)
        }),
    ]
}

fn reduce_cases() -> Vec<Case> {
    vec![
        case("sum/last dim", vec![rand(&[3, 4], 40)], |v| {
            v[0].sum(&[-1], false).square()
        }),
        case("sum/two dims keepdim", vec![rand(&[2, 3, 4], 41)], |v| {
            v[0].sum(&[0, 2], true).exp()
        }),
        case("sum/of transposed all", vec![rand(&[4, 3], 42)], |v| {
            v[0].t().sum_all().mul(&v[0].sum_all())
        }),
        case("mean and var", vec![rand(&[3, 5], 43)], |v| {
            v[0].mean(&[1], true).add(&v[0].var(&[1], true, 1))
        }),
        case("max/last dim", vec![rand(&[3, 5], 44)], |v| {
            v[0].max(&[-1], false)
        }),
        case(
            "max/two dims of transpose",
            vec![rand(&[4, 3, 2], 45)],
            |v| v[0].transpose(0, 1).max(&[0, 2], true),
        ),
        case("max/size-1 dim", vec![rand(&[1, 6], 46)], |v| {
            v[0].max(&[0], false).square()
        }),
        case("min/last dim", vec![rand(&[3, 5], 47)], |v| {
            v[0].min(&[1], false)
        }),
        case("min/first dim keepdim", vec![rand(&[4, 3], 48)], |v| {
            v[0].min(&[0], true).exp()
        }),
        case("min/narrowed", vec![rand(&[3, 7], 49)], |v| {
            v[0].narrow(1, 2, 4).min(&[1], false)
        }),
        case("logsumexp/last", vec![rand(&[3, 5], 50)], |v| {
            v[0].logsumexp(-1, false)
        }),
        case(
            "logsumexp/middle keepdim",
            vec![rand(&[2, 4, 3], 51)],
            |v| v[0].logsumexp(1, true).square(),
        ),
        case("logsumexp/transposed", vec![rand(&[5, 2], 52)], |v| {
            v[0].t().logsumexp(1, false)
        }),
        case("softmax/last", vec![rand(&[3, 5], 53)], |v| {
            v[0].softmax(-1)
        }),
        case("softmax/middle", vec![rand(&[2, 4, 3], 54)], |v| {
            v[0].softmax(1)
        }),
        case("softmax/transposed", vec![rand(&[5, 3], 55)], |v| {
            v[0].t().softmax(-1).square()
        }),
        case("log_softmax/last", vec![rand(&[3, 5], 56)], |v| {
            v[0].log_softmax(-1)
        }),
        case("log_softmax/first", vec![rand(&[4, 3], 57)], |v| {
            v[0].log_softmax(0)
        }),
        case("log_softmax/narrowed", vec![rand(&[3, 8], 58)], |v| {
            v[0].narrow(1, 1, 6).log_softmax(1)
        }),
    ]
}

fn matmul_cases() -> Vec<Case> {
    vec![
        case(
            "matmul/2d",
            vec![rand(&[3, 4], 60), rand(&[4, 5], 61)],
            |v| v[0].matmul(&v[1]),
        ),
        case(
            "matmul/batch times matrix",
            vec![rand(&[2, 3, 4], 62), rand(&[4, 2], 63)],
            |v| v[0].matmul(&v[1]),
        ),
        case(
            "matmul/transposed operands",
            vec![rand(&[4, 3], 64), rand(&[5, 4], 65)],
            |v| v[0].t().matmul(&v[1].t()),
        ),
        case(
            "matmul/broadcast batch",
            vec![rand(&[2, 1, 3, 4], 66), rand(&[3, 4, 2], 67)],
            |v| v[0].matmul(&v[1]),
        ),
        case(
            "matmul/size-1 dims",
            vec![rand(&[1, 4], 68), rand(&[4, 1], 69)],
            |v| v[0].matmul(&v[1]),
        ),
    ]
}

fn index_cases() -> Vec<Case> {
    vec![
        case(
            "index_select/dim 0 with repeats",
            vec![rand(&[4, 3], 70)],
            |v| v[0].index_select(0, &ids(&[3, 0, 3, 1], &[4])),
        ),
        case("index_select/dim 1", vec![rand(&[2, 5], 71)], |v| {
            v[0].index_select(1, &ids(&[4, 4, 2], &[3])).exp()
        }),
        case("index_select/of transpose", vec![rand(&[3, 4], 72)], |v| {
            v[0].t().index_select(0, &ids(&[1, 3], &[2]))
        }),
        case("embedding/2d ids", vec![rand(&[5, 3], 73)], |v| {
            v[0].embedding(&ids(&[4, 0, 4, 2, 2, 2], &[2, 3])).square()
        }),
        case("embedding/1d ids", vec![rand(&[3, 4], 74)], |v| {
            v[0].embedding(&ids(&[1, 1, 0], &[3]))
        }),
        case("embedding/single row", vec![rand(&[1, 2], 75)], |v| {
            v[0].embedding(&ids(&[0, 0], &[1, 2])).exp()
        }),
        case("gather/dim 1", vec![rand(&[3, 4], 76)], |v| {
            v[0].gather(1, &ids(&[3, 0, 1, 1, 2, 2], &[3, 2]))
        }),
        case("gather/dim 0", vec![rand(&[3, 2], 77)], |v| {
            v[0].gather(0, &ids(&[2, 0, 2, 2], &[2, 2])).square()
        }),
        case("gather/transposed", vec![rand(&[2, 3], 78)], |v| {
            v[0].t().gather(1, &ids(&[1, 0, 1], &[3, 1]))
        }),
        case(
            "where/same shape",
            vec![rand(&[2, 3], 79), rand(&[2, 3], 80)],
            |v| {
                let m = Tensor::from_slice(&[1u8, 0, 1, 0, 0, 1], &[2, 3]);
                Var::where_cond(&m, &v[0], &v[1])
            },
        ),
        case(
            "where/broadcast operands",
            vec![rand(&[3], 81), rand(&[2, 1], 82)],
            |v| {
                let m = Tensor::from_slice(&[1u8, 0, 0, 1, 1, 0], &[2, 3]);
                Var::where_cond(&m, &v[0], &v[1]).square()
            },
        ),
        case("where/masked_fill causal", vec![rand(&[3, 3], 83)], |v| {
            let masked = Tensor::causal_mask(3).eq(&Tensor::scalar(0u8));
            v[0].masked_fill(&masked, -1e9).softmax(-1)
        }),
    ]
}

/// Rotary tables `cos, sin (positions, half)` of fixed, unequal angles, in `dtype`.
fn rope_tables(positions: usize, half: usize, dtype: DType) -> (Tensor, Tensor) {
    let angles = rand(&[positions, half], 139).mul_scalar(3.0);
    (angles.cos().to_dtype(dtype), angles.sin().to_dtype(dtype))
}

fn fused_cases() -> Vec<Case> {
    vec![
        case(
            "layer_norm/weight and bias",
            vec![rand(&[2, 3, 5], 90), rand(&[5], 91), rand(&[5], 92)],
            |v| v[0].layer_norm(Some(&v[1]), Some(&v[2]), 1e-5),
        ),
        case(
            "layer_norm/no affine, transposed input",
            vec![rand(&[4, 3], 93)],
            |v| v[0].t().layer_norm(None, None, 1e-5),
        ),
        case(
            "layer_norm/weight only, row of one",
            vec![rand(&[3, 1, 4], 94), rand(&[4], 95)],
            |v| v[0].layer_norm(Some(&v[1]), None, 1e-5),
        ),
        case(
            "rms_norm/3d input",
            vec![rand(&[2, 3, 5], 130), rand(&[5], 131)],
            |v| v[0].rms_norm(&v[1], 1e-5),
        ),
        case(
            "rms_norm/transposed input, broadcast weight",
            vec![rand(&[4, 3], 132), rand(&[1], 133)],
            |v| v[0].t().rms_norm(&v[1].expand(&[4]), 1e-5),
        ),
        case(
            "rms_norm/size-1 dims, rows of two",
            vec![rand(&[1, 3, 2], 134), rand(&[2], 135)],
            |v| v[0].rms_norm(&v[1], 1e-5),
        ),
        case("rope/from position 0", vec![rand(&[2, 3, 4], 136)], |v| {
            let (cos, sin) = rope_tables(5, 2, v[0].dtype());
            v[0].rope(&cos, &sin, 0)
        }),
        case(
            "rope/later positions",
            vec![rand(&[1, 2, 2, 6], 137)],
            |v| {
                let (cos, sin) = rope_tables(6, 3, v[0].dtype());
                v[0].rope(&cos, &sin, 4)
            },
        ),
        case("rope/transposed heads", vec![rand(&[3, 2, 4], 138)], |v| {
            let (cos, sin) = rope_tables(4, 2, v[0].dtype());
            v[0].transpose(0, 1).rope(&cos, &sin, 1)
        }),
        case("cross_entropy/ignore index", vec![rand(&[4, 5], 96)], |v| {
            v[0].mul_scalar(3.0)
                .cross_entropy(&Tensor::from_slice(&[1i64, -100, 4, 0], &[4]), Some(-100))
        }),
        case("cross_entropy/3d logits", vec![rand(&[2, 3, 4], 97)], |v| {
            v[0].cross_entropy(&ids(&[0, 3, 3, 1, 2, 0], &[2, 3]), None)
        }),
        case(
            "cross_entropy/transposed logits",
            vec![rand(&[6, 2], 98)],
            |v| v[0].t().cross_entropy(&ids(&[5, 0], &[2]), None),
        ),
        case(
            "attention/square",
            vec![
                rand(&[1, 2, 4, 3], 100),
                rand(&[1, 2, 4, 3], 101),
                rand(&[1, 2, 4, 3], 102),
            ],
            |v| Var::attention(&v[0], &v[1], &v[2]),
        ),
        case(
            "attention/heads from a (B,T,H,D) layout",
            vec![
                rand(&[2, 5, 2, 3], 103),
                rand(&[2, 5, 2, 3], 104),
                rand(&[2, 5, 2, 3], 105),
            ],
            |v| {
                Var::attention(
                    &v[0].transpose(1, 2),
                    &v[1].transpose(1, 2),
                    &v[2].transpose(1, 2),
                )
            },
        ),
        case(
            "attention/fewer queries than keys",
            vec![
                rand(&[1, 2, 3], 106),
                rand(&[1, 5, 3], 107),
                rand(&[1, 5, 3], 108),
            ],
            |v| Var::attention(&v[0], &v[1], &v[2]),
        ),
        case("dropout/vector", vec![rand(&[20], 110)], |v| {
            v[0].dropout(0.3, &mut Rng::new(1))
        }),
        case("dropout/transposed", vec![rand(&[4, 5], 111)], |v| {
            v[0].t().dropout(0.5, &mut Rng::new(2)).square()
        }),
        case("dropout/broadcast", vec![rand(&[1, 6], 112)], |v| {
            v[0].expand(&[3, 6]).dropout(0.2, &mut Rng::new(3))
        }),
    ]
}

#[test]
fn every_case_passes_and_every_op_is_covered() {
    let mut coverage: BTreeMap<Op, Vec<String>> = BTreeMap::new();
    let mut failures = vec![];
    for c in all_cases() {
        match gradcheck(&c.name, &c.f, &c.inputs) {
            Ok(report) => {
                for op in report.ops {
                    coverage.entry(op).or_default().push(c.name.clone());
                }
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} gradient checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let thin: Vec<String> = Op::all()
        .filter(|op| coverage.get(op).map_or(0, Vec::len) < 3)
        .map(|op| format!("{op:?} ({} cases)", coverage.get(&op).map_or(0, Vec::len)))
        .collect();
    assert!(
        thin.is_empty(),
        "ops with fewer than three gradient checks: {}",
        thin.join(", ")
    );
}
