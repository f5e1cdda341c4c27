//! Every fused op against the same math composed from primitive ops: outputs and gradients
//! must agree in float64. A fused kernel with its own hand-derived backward is only trusted
//! once it matches the composition.

use autograd::Var;
use tensor::{DType, Rng, Tensor};

fn rand(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, DType::F64, &mut Rng::new(seed))
}

/// Outputs and input gradients of `f` and `g` on the same inputs and upstream gradient.
fn assert_same(inputs: &[Tensor], f: impl Fn(&[Var]) -> Var, g: impl Fn(&[Var]) -> Var) {
    let run = |h: &dyn Fn(&[Var]) -> Var| {
        let vars: Vec<Var> = inputs.iter().cloned().map(Var::parameter).collect();
        let out = h(&vars);
        let dout = rand(&out.shape(), 99);
        out.backward_with(dout).unwrap();
        let grads: Vec<Vec<f64>> = vars
            .iter()
            .map(|v| v.grad().unwrap().to_vec_f64())
            .collect();
        (out.value().to_vec_f64(), grads)
    };
    let (fo, fg) = run(&f);
    let (go, gg) = run(&g);
    let close = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-10 * (1.0 + y.abs()))
    };
    assert!(close(&fo, &go), "outputs differ:\n{fo:?}\n{go:?}");
    for (i, (a, b)) in fg.iter().zip(&gg).enumerate() {
        assert!(close(a, b), "gradients of input {i} differ:\n{a:?}\n{b:?}");
    }
}

#[test]
fn layer_norm_equals_its_composition() {
    assert_same(
        &[rand(&[3, 4, 6], 1), rand(&[6], 2), rand(&[6], 3)],
        |v| v[0].layer_norm(Some(&v[1]), Some(&v[2]), 1e-5),
        |v| {
            let centered = v[0].sub(&v[0].mean(&[-1], true));
            let rstd = v[0].var(&[-1], true, 0).add_scalar(1e-5).rsqrt();
            centered.mul(&rstd).mul(&v[1]).add(&v[2])
        },
    );
}

#[test]
fn cross_entropy_equals_log_softmax_and_gather() {
    let targets = Tensor::from_slice(&[2u32, 0, 4, 4, 1], &[5]);
    let t2 = targets.clone();
    assert_same(
        &[rand(&[5, 6], 4)],
        move |v| v[0].cross_entropy(&targets, None),
        move |v| {
            v[0].log_softmax(-1)
                .gather(1, &t2.reshape(&[5, 1]))
                .mean_all()
                .neg()
        },
    );
}

#[test]
fn attention_equals_masked_softmax_of_scores() {
    let (t, d) = (6, 4);
    assert_same(
        &[
            rand(&[2, 3, t, d], 5),
            rand(&[2, 3, t, d], 6),
            rand(&[2, 3, t, d], 7),
        ],
        |v| Var::attention(&v[0], &v[1], &v[2]),
        move |v| {
            let scores = v[0].matmul(&v[1].t()).mul_scalar(1.0 / (d as f64).sqrt());
            let future = Tensor::causal_mask(t).eq(&Tensor::scalar(0u8));
            scores
                .masked_fill(&future, f64::NEG_INFINITY)
                .softmax(-1)
                .matmul(&v[2])
        },
    );
}

#[test]
fn gelu_equals_its_tanh_formula() {
    assert_same(
        &[rand(&[4, 5], 8)],
        |v| v[0].gelu(),
        |v| {
            let x = &v[0];
            let inner = x
                .add(&x.powf(3.0).mul_scalar(0.044715))
                .mul_scalar((2.0 / std::f64::consts::PI).sqrt());
            x.mul(&inner.tanh().add_scalar(1.0)).mul_scalar(0.5)
        },
    );
}

#[test]
fn softmax_equals_exp_minus_logsumexp() {
    assert_same(
        &[rand(&[3, 7], 9)],
        |v| v[0].softmax(-1),
        |v| v[0].sub(&v[0].logsumexp(-1, true)).exp(),
    );
}

#[test]
fn rms_norm_equals_its_composition() {
    assert_same(
        &[rand(&[3, 4, 6], 11), rand(&[6], 12)],
        |v| v[0].rms_norm(&v[1], 1e-5),
        |v| {
            let rstd = v[0].square().mean(&[-1], true).add_scalar(1e-5).rsqrt();
            v[0].mul(&rstd).mul(&v[1])
        },
    );
}

#[test]
fn rope_equals_rotating_each_pair() {
    let (b, nh, t, hs, start) = (2, 3, 5, 8, 4);
    let angles = rand(&[start + t, hs / 2], 13);
    let (cos, sin) = (angles.cos(), angles.sin());
    let (c2, s2) = (cos.clone(), sin.clone());
    assert_same(
        &[rand(&[b, nh, t, hs], 14)],
        move |v| v[0].rope(&cos, &sin, start),
        move |v| {
            let table = |a: &Tensor| Var::constant(a.narrow(0, start, t).reshape(&[t, hs / 2, 1]));
            let (cos, sin) = (table(&c2), table(&s2));
            let pairs = v[0].reshape(&[b, nh, t, hs / 2, 2]);
            let (even, odd) = (pairs.narrow(4, 0, 1), pairs.narrow(4, 1, 1));
            let first = even.mul(&cos).sub(&odd.mul(&sin));
            let second = even.mul(&sin).add(&odd.mul(&cos));
            Var::cat(&[&first, &second], 4).reshape(&[b, nh, t, hs])
        },
    );
}
