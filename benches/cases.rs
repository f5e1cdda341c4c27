//! The tensor-kernel benchmark cases, shared by the criterion benches (`tensor_ops.rs`) and the
//! side-by-side comparison with PyTorch (`compare/`), whose `torch_ops.py` defines the same cases
//! under the same names.
//!
//! Every case runs in f32 on contiguous inputs through the public [`Tensor`] API (the `mlp` and
//! `attention` cases through autograd: forward and backward), output allocation included. Its
//! `work` is what one call does: floating-point operations for products (`2 M K N` per
//! matrix), or bytes read plus bytes written for the memory-bound kernels (4 per element).

use autograd::Var;
use nn::{Linear, Module};
use tensor::{Rng, Tensor};

/// What a case's `work` counts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Floating-point operations; rates print as GFLOP/s.
    Flop,
    /// Bytes moved to and from memory; rates print as GB/s.
    Byte,
}

/// One call of an op on inputs built by [`Case::setup`]; returns the op's output.
pub type Call = Box<dyn FnMut() -> Tensor>;

/// A benchmark case: `group/id` names it (e.g. `matmul/4096x384x1536`).
pub struct Case {
    pub group: &'static str,
    pub id: String,
    pub unit: Unit,
    /// Flops or bytes per call.
    pub work: u64,
    /// Builds the inputs (only when the case runs, so large ones do not sit in memory).
    pub setup: Box<dyn Fn() -> Call>,
}

/// Square GEMM sizes.
const SQUARE: [usize; 5] = [128, 256, 512, 1024, 2048];
/// GPT-2 small products (M, K, N): QKV projection, MLP down, attention output, LM head.
const GPT: [(usize, usize, usize); 4] = [
    (4096, 384, 1536),
    (4096, 1536, 384),
    (4096, 384, 384),
    (768, 768, 50304),
];
/// Attention's batched products (B, M, K, N): scores `q k^T` and `probs v`, 48 = batch x heads.
const BATCHED: [(usize, usize, usize, usize); 2] = [(48, 256, 64, 256), (48, 256, 256, 64)];
/// Elementwise lengths: 1M and 16M elements (2^20 and 2^24).
const LENGTHS: [(usize, &str); 2] = [(1 << 20, "1M"), (1 << 24, "16M")];
/// Row-wise kernels: 4096 rows of 384 (model width), 65 (character vocabulary) and 50304
/// (GPT-2 vocabulary) columns.
const ROWS: usize = 4096;
const COLS: [usize; 3] = [384, 65, 50304];

/// The MLP case: 4096 rows through four linear layers 384 -> 1536 -> 384 -> 1536 -> 384.
const MLP_ROWS: usize = 4096;
const MLP_WIDTHS: [usize; 5] = [384, 1536, 384, 1536, 384];
/// The attention case: batch, heads, context, head size (nanoGPT's shakespeare-char shape).
const ATTENTION: [usize; 4] = [8, 6, 256, 64];

/// Every case, forward + backward passes first, then products.
pub fn all() -> Vec<Case> {
    let mut cases = vec![mlp(), attention()];
    for s in SQUARE {
        cases.push(matmul(s, s, s));
    }
    for (m, k, n) in GPT {
        cases.push(matmul(m, k, n));
    }
    for (b, m, k, n) in BATCHED {
        cases.push(bmm(b, m, k, n));
    }
    for (len, label) in LENGTHS {
        cases.push(elementwise("add", len, label, 3, |x, y| x.add(y)));
        cases.push(elementwise("mul", len, label, 3, |x, y| x.mul(y)));
        cases.push(elementwise("gelu", len, label, 2, |x, _| x.gelu()));
    }
    for c in COLS {
        cases.push(rows("softmax", c, 2, softmax));
        cases.push(rows("layer_norm", c, 2, layer_norm));
        cases.push(rows("rms_norm", c, 2, rms_norm));
        cases.push(rows("cross_entropy", c, 1, cross_entropy));
    }
    cases
}

/// Forward and backward of the MLP (biases, tanh GELU between layers, loss = sum of the
/// output). Work: three times the forward products' flops (the backward computes two products
/// per forward one).
fn mlp() -> Case {
    let forward_flops: usize = MLP_WIDTHS
        .windows(2)
        .map(|w| 2 * MLP_ROWS * w[0] * w[1])
        .sum();
    Case {
        group: "mlp",
        id: "4096x384x1536_fwd_bwd".to_string(),
        unit: Unit::Flop,
        work: (3 * forward_flops) as u64,
        setup: Box::new(|| {
            let mut rng = Rng::new(0);
            let layers: Vec<Linear> = MLP_WIDTHS
                .windows(2)
                .map(|w| Linear::new(w[0], w[1], true, 0.02, &mut rng))
                .collect();
            let x = Var::constant(random(&[MLP_ROWS, MLP_WIDTHS[0]], 1));
            Box::new(move || {
                let mut h = x.clone();
                for (i, layer) in layers.iter().enumerate() {
                    h = layer.forward(&h);
                    if i + 1 < layers.len() {
                        h = h.gelu();
                    }
                }
                for p in layers.iter().flat_map(|l| l.params()) {
                    p.zero_grad();
                }
                h.sum_all().backward();
                layers[0].params()[0]
                    .grad()
                    .expect("the first weight has a gradient")
            })
        }),
    }
}

/// Forward and backward of causal attention on `(B, H, T, D)` (loss = sum of the output).
/// Work: three times the forward's two `T x T x D` products per head, counted in full (the
/// causal mask skips about half of them on both sides).
fn attention() -> Case {
    let [b, h, t, d] = ATTENTION;
    Case {
        group: "attention",
        id: format!("{b}x{h}x{t}x{d}_fwd_bwd"),
        unit: Unit::Flop,
        work: (3 * 2 * 2 * b * h * t * t * d) as u64,
        setup: Box::new(move || {
            let qkv: Vec<Var> = (1..=3)
                .map(|seed| Var::parameter(random(&[b, h, t, d], seed).mul_scalar(0.25)))
                .collect();
            Box::new(move || {
                for p in &qkv {
                    p.zero_grad();
                }
                Var::attention(&qkv[0], &qkv[1], &qkv[2])
                    .sum_all()
                    .backward();
                qkv[0].grad().expect("q has a gradient")
            })
        }),
    }
}

/// `(M,K) @ (K,N)`.
fn matmul(m: usize, k: usize, n: usize) -> Case {
    Case {
        group: "matmul",
        id: format!("{m}x{k}x{n}"),
        unit: Unit::Flop,
        work: (2 * m * k * n) as u64,
        setup: Box::new(move || {
            let (a, b) = (random(&[m, k], 1), random(&[k, n], 2));
            Box::new(move || a.matmul(&b))
        }),
    }
}

/// `(B,M,K) @ (B,K,N)`.
fn bmm(batch: usize, m: usize, k: usize, n: usize) -> Case {
    Case {
        group: "bmm",
        id: format!("{batch}x{m}x{k}x{n}"),
        unit: Unit::Flop,
        work: (2 * batch * m * k * n) as u64,
        setup: Box::new(move || {
            let (a, b) = (random(&[batch, m, k], 1), random(&[batch, k, n], 2));
            Box::new(move || a.matmul(&b))
        }),
    }
}

/// An elementwise op on one or two vectors of `len`, moving `arrays` arrays of `len` f32.
fn elementwise(
    group: &'static str,
    len: usize,
    label: &str,
    arrays: usize,
    op: fn(&Tensor, &Tensor) -> Tensor,
) -> Case {
    Case {
        group,
        id: label.to_string(),
        unit: Unit::Byte,
        work: (arrays * len * 4) as u64,
        setup: Box::new(move || {
            let (x, y) = (random(&[len], 1), random(&[len], 2));
            Box::new(move || op(&x, &y))
        }),
    }
}

/// A row-wise op on `(ROWS, cols)`, moving `arrays` arrays of that size; `call` turns the
/// input into the call (building any other operands once).
fn rows(group: &'static str, cols: usize, arrays: usize, call: fn(Tensor) -> Call) -> Case {
    Case {
        group,
        id: format!("{ROWS}x{cols}"),
        unit: Unit::Byte,
        work: (arrays * ROWS * cols * 4) as u64,
        setup: Box::new(move || call(random(&[ROWS, cols], 1))),
    }
}

fn softmax(x: Tensor) -> Call {
    Box::new(move || x.softmax(-1))
}

/// Layer norm over the last dim with weight and bias, as in a transformer block.
fn layer_norm(x: Tensor) -> Call {
    let c = x.dim(-1);
    let (w, b) = (random(&[c], 3), random(&[c], 4));
    Box::new(move || x.try_layer_norm(Some(&w), Some(&b), 1e-5).unwrap().y)
}

/// RMS norm over the last dim with a weight, as in a Llama block.
fn rms_norm(x: Tensor) -> Call {
    let w = random(&[x.dim(-1)], 3);
    Box::new(move || x.try_rms_norm(&w, 1e-5).unwrap().0)
}

/// Mean cross-entropy of the rows of `logits` against fixed targets.
fn cross_entropy(logits: Tensor) -> Call {
    let (rows, v) = (logits.dim(0), logits.dim(-1));
    let targets: Vec<i64> = (0..rows).map(|i| ((i * 7919) % v) as i64).collect();
    let t = Tensor::from_vec(targets, &[rows]);
    Box::new(move || logits.try_cross_entropy(&t, None).unwrap().0)
}

/// Values in [-2, 2) from a fixed seed (an xorshift stream: fast for the 200M-element cases).
fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..shape.iter().product())
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
        })
        .collect();
    Tensor::from_vec(v, shape)
}
