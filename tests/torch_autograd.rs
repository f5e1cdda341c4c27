//! Outputs and input gradients against PyTorch in float64 (fixtures written by
//! `tests/fixtures/make_autograd_fixtures.py`), compared at 1e-10.

use autograd::Var;
use safetensors::{Dtype, SafeTensors};
use tensor::Tensor;

const FIXTURES: &[u8] = include_bytes!("fixtures/autograd.safetensors");

fn load(st: &SafeTensors, name: &str) -> Tensor {
    let view = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    match view.dtype() {
        Dtype::F64 => Tensor::from_vec(
            bytemuck::pod_collect_to_vec::<u8, f64>(view.data()),
            view.shape(),
        ),
        Dtype::I64 => Tensor::from_vec(
            bytemuck::pod_collect_to_vec::<u8, i64>(view.data()),
            view.shape(),
        ),
        other => panic!("fixture {name}: unexpected dtype {other:?}"),
    }
}

#[track_caller]
fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, (g, w)) in got.to_vec_f64().iter().zip(want.to_vec_f64()).enumerate() {
        assert!(
            (g - w).abs() <= 1e-10 * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, PyTorch {w}"
        );
    }
}

/// Runs `f` on the case's inputs, then checks the output and every float input's gradient.
fn check(case: &str, n_inputs: usize, f: impl Fn(&[Var]) -> Var) {
    let st = SafeTensors::deserialize(FIXTURES).unwrap();
    let inputs: Vec<Var> = (0..n_inputs)
        .map(|i| {
            let t = load(&st, &format!("{case}.in{i}"));
            if t.dtype().is_float() {
                Var::parameter(t)
            } else {
                Var::constant(t)
            }
        })
        .collect();
    let out = f(&inputs);
    assert_close(
        &out.value(),
        &load(&st, &format!("{case}.out")),
        &format!("{case} output"),
    );
    out.backward_with(load(&st, &format!("{case}.dout")))
        .unwrap();
    for (i, v) in inputs.iter().enumerate().filter(|(_, v)| v.requires_grad()) {
        assert_close(
            &v.grad().unwrap(),
            &load(&st, &format!("{case}.grad{i}")),
            &format!("{case} grad {i}"),
        );
    }
}

#[test]
fn matmul_with_strided_and_batched_operands() {
    check("matmul_strided", 2, |v| v[0].t().matmul(&v[1].t()));
    check("matmul_batched", 2, |v| v[0].matmul(&v[1]));
}

#[test]
fn broadcast_arithmetic() {
    check("broadcast", 3, |v| {
        v[0].mul(&v[1]).add(&v[2].div(&v[2].abs().add_scalar(1.5)))
    });
}

#[test]
fn softmax_and_log_softmax() {
    check("softmax", 1, |v| v[0].softmax(-1));
    check("log_softmax", 1, |v| v[0].log_softmax(1));
}

#[test]
fn layer_norm() {
    check("layer_norm", 3, |v| {
        v[0].layer_norm(Some(&v[1]), Some(&v[2]), 1e-5)
    });
}

#[test]
fn both_gelus() {
    check("gelu_tanh", 1, |v| v[0].gelu());
    check("gelu_erf", 1, |v| v[0].gelu_erf());
}

#[test]
fn cross_entropy_with_ignore_index() {
    check("cross_entropy", 2, |v| {
        v[0].cross_entropy(&v[1].value(), Some(-100))
    });
}

#[test]
fn causal_attention() {
    check("attention", 3, |v| Var::attention(&v[0], &v[1], &v[2]));
}

#[test]
fn embedding_with_repeated_ids() {
    check("embedding", 2, |v| v[0].embedding(&v[1].value()));
}
