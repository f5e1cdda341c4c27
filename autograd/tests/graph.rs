//! Graph semantics: reused nodes, accumulation, long chains, freezing, detaching, and errors.

use autograd::{no_grad, Var};
use tensor::{DType, Tensor};

fn scalar(v: f64) -> Var {
    Var::parameter(Tensor::from_vec(vec![v], &[]))
}

#[test]
fn reused_node_gets_every_path() {
    // b = a + a; c = b + b  =>  dc/da = 4
    let a = scalar(3.0);
    let b = a.add(&a);
    let c = b.add(&b);
    c.backward();
    assert_eq!(a.grad().unwrap().item(), 4.0);
}

#[test]
fn two_passes_without_zeroing_accumulate_exactly_twice() {
    let a = Var::parameter(Tensor::from_vec(vec![1.5f64, -2.0], &[2]));
    let once = || a.square().sum_all().backward(); // d/da = 2a
    once();
    let first = a.grad().unwrap().to_vec::<f64>();
    once();
    assert_eq!(
        a.grad().unwrap().to_vec::<f64>(),
        first.iter().map(|g| 2.0 * g).collect::<Vec<_>>()
    );
    a.zero_grad();
    assert!(a.grad().is_none());
}

#[test]
fn keeping_the_graph_allows_a_second_walk_and_freeing_forbids_it() {
    let a = scalar(2.0);
    let y = a.mul(&a);
    let one = Tensor::from_vec(vec![1.0f64], &[]);
    y.backward_keep_graph(one.clone()).unwrap();
    y.backward_keep_graph(one.clone()).unwrap();
    assert_eq!(a.grad().unwrap().item(), 8.0);
    y.backward_with(one.clone()).unwrap();
    assert_eq!(a.grad().unwrap().item(), 12.0);
    let err = y.backward_with(one).unwrap_err().to_string();
    assert!(err.contains("already freed"), "{err}");
}

#[test]
fn a_chain_of_ten_thousand_ops_backpropagates() {
    let a = scalar(1.0);
    let mut x = a.clone();
    for _ in 0..10_000 {
        x = x.mul_scalar(1.0001);
    }
    x.backward();
    let want = 1.0001f64.powi(10_000);
    assert!((a.grad().unwrap().item() - want).abs() < 1e-9 * want);
}

#[test]
fn frozen_parameters_get_no_gradient_and_record_nothing() {
    let w = scalar(2.0);
    let frozen = scalar(5.0);
    frozen.set_requires_grad(false);
    assert!(!frozen.square().requires_grad());
    let y = w.mul(&frozen);
    y.backward();
    assert_eq!(w.grad().unwrap().item(), 5.0);
    assert!(frozen.grad().is_none());
}

#[test]
fn detach_stops_gradients() {
    let a = scalar(3.0);
    let y = a.mul(&a.detach()); // d/da treats the detached copy as a constant: 3
    y.backward();
    assert_eq!(a.grad().unwrap().item(), 3.0);
}

#[test]
fn no_grad_records_nothing() {
    let a = scalar(1.0);
    let y = no_grad(|| a.exp().mul(&a));
    assert!(!y.requires_grad() && y.op().is_none());
    assert!(y
        .try_backward()
        .unwrap_err()
        .to_string()
        .contains("does not depend"));
    assert!(autograd::grad_enabled());
}

#[test]
fn non_scalar_backward_needs_an_upstream_gradient() {
    let a = Var::parameter(Tensor::ones(&[2, 2], DType::F64));
    let y = a.mul_scalar(3.0);
    assert!(y
        .try_backward()
        .unwrap_err()
        .to_string()
        .contains("single-element"));
    y.backward_with(Tensor::full(&[2, 2], 2.0, DType::F64))
        .unwrap();
    assert_eq!(a.grad().unwrap().to_vec::<f64>(), vec![6.0; 4]);
}

#[test]
fn dropping_a_long_unused_graph_does_not_overflow_the_stack() {
    let a = scalar(1.0);
    let mut x = a.clone();
    for _ in 0..200_000 {
        x = x.add_scalar(1.0);
    }
    drop(x);
    assert!(a.grad().is_none());
}

#[test]
fn a_linear_layers_weight_gradient_is_contiguous() {
    // y = x W^T with W stored (out, in): the gradient must arrive in W's own layout.
    let w = Var::parameter(Tensor::randn(
        &[3, 4],
        0.0,
        1.0,
        DType::F64,
        &mut tensor::Rng::new(0),
    ));
    let x = Var::constant(Tensor::randn(
        &[2, 5, 4],
        0.0,
        1.0,
        DType::F64,
        &mut tensor::Rng::new(1),
    ));
    x.matmul(&w.t()).sum_all().backward();
    let g = w.grad().unwrap();
    assert!(g.is_contiguous() && g.shape() == [3, 4]);
    // d/dW sum(x W^T) = sum over rows of x, for every output row.
    let col_sums = x.value().sum(&[0, 1], false).to_vec::<f64>();
    for row in g.to_vec::<f64>().chunks(4) {
        for (a, b) in row.iter().zip(&col_sums) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
