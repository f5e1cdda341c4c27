//! Memory discipline, measured with the tensor crate's live-storage counter. One test
//! function, so no other test in this process allocates while it measures.

use autograd::{no_grad, Var};
use tensor::{live_storage, DType, Rng, Tensor};

/// A small MLP forward pass: enough ops to build a real graph.
fn forward(x: &Var, w1: &Var, w2: &Var) -> Var {
    x.matmul(w1).gelu().matmul(w2).square().mean_all()
}

#[test]
fn graphs_are_freed_and_no_grad_keeps_nothing() {
    let mut rng = Rng::new(0);
    let x = Var::constant(Tensor::randn(&[8, 16], 0.0, 1.0, DType::F32, &mut rng));
    let w1 = Var::parameter(Tensor::randn(&[16, 32], 0.0, 0.1, DType::F32, &mut rng));
    let w2 = Var::parameter(Tensor::randn(&[32, 4], 0.0, 0.1, DType::F32, &mut rng));

    // One no_grad pass, then a thousand: live storage must not grow.
    let y = no_grad(|| forward(&x, &w1, &w2));
    drop(y);
    let after_one = live_storage();
    for _ in 0..1000 {
        let y = no_grad(|| forward(&x, &w1, &w2));
        assert_eq!(y.op(), None);
    }
    assert_eq!(
        live_storage(),
        after_one,
        "no_grad passes left storage behind"
    );

    // A recorded pass holds saved tensors until backward frees them.
    let loss = forward(&x, &w1, &w2);
    let (count_with_graph, _) = live_storage();
    assert!(
        count_with_graph > after_one.0 + 4,
        "the graph should hold saved tensors"
    );
    loss.backward();
    w1.zero_grad();
    w2.zero_grad();
    // Only the loss value itself (kept alive by `loss`) remains beyond the start.
    assert_eq!(
        live_storage().0,
        after_one.0 + 1,
        "backward did not free the graph"
    );
    drop(loss);
    assert_eq!(live_storage(), after_one);
}
