//! Gradient accumulation: summing `loss / k` over `k` micro-batches gives the gradient of one
//! batch `k` times the size (with a mean loss), as `nn::optim`'s documentation states.

use autograd::Var;
use nn::{Mlp, Module, SharedRng};
use tensor::{DType, Rng, Tensor};

/// Mean squared error of the model on rows `rows` of `x` and `y`.
fn loss(model: &Mlp, x: &Tensor, y: &Tensor, rows: std::ops::Range<usize>) -> Var {
    let n = rows.len();
    let xb = Var::constant(x.narrow(0, rows.start, n));
    let yb = Var::constant(y.narrow(0, rows.start, n));
    model.forward(&xb).sub(&yb).square().mean_all()
}

fn grads(model: &Mlp) -> Vec<Vec<f64>> {
    model
        .params()
        .iter()
        .map(|p| p.grad().unwrap().to_vec::<f64>())
        .collect()
}

#[test]
fn accumulated_micro_batches_equal_one_big_batch() {
    let (k, b) = (4, 3);
    let mut rng = Rng::new(1);
    let mut model = Mlp::new(5, 8, true, 0.0, 0.3, &mut rng, SharedRng::new(0));
    model.to_dtype(DType::F64).unwrap();
    model.eval();
    let x = Tensor::randn(&[k * b, 5], 0.0, 1.0, DType::F64, &mut rng);
    let y = Tensor::randn(&[k * b, 5], 0.0, 1.0, DType::F64, &mut rng);

    loss(&model, &x, &y, 0..k * b).backward();
    let big = grads(&model);

    model.zero_grad();
    for i in 0..k {
        loss(&model, &x, &y, i * b..(i + 1) * b)
            .mul_scalar(1.0 / k as f64)
            .backward();
    }
    let accumulated = grads(&model);

    for (g_big, g_acc) in big.iter().zip(&accumulated) {
        for (a, c) in g_big.iter().zip(g_acc) {
            assert!((a - c).abs() < 1e-12, "{a} vs {c}");
        }
    }
    // The comparison means something: the gradient is far from zero.
    let norm = |g: &[Vec<f64>]| g.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
    assert!(norm(&big) > 1e-3);
}
