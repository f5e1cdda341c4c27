//! Heads and pooling: in the float64 gradient check, pooling picks the right states of a
//! right-padded batch, and a padded batch gives each example what it gives alone.

use autograd::{gradcheck_params, Var};
use llm::model::config::Config;
use llm::model::heads::{pool, ClassifierHead, Pool, ScalarHead};
use llm::model::Model;
use nn::{Module, SharedRng};
use tensor::{DType, Rng, Tensor};

fn states(shape: &[usize], seed: u64) -> Var {
    Var::parameter(Tensor::randn(
        shape,
        0.0,
        1.0,
        DType::F64,
        &mut Rng::new(seed),
    ))
}

/// Head weights drawn larger than 0.02, so every path carries a visible gradient.
fn widened(module: &dyn Module, seed: u64) {
    module.to_dtype(DType::F64).unwrap();
    let mut rng = Rng::new(seed);
    for p in module.params() {
        p.set_value(Tensor::randn(&p.shape(), 0.0, 0.5, DType::F64, &mut rng));
    }
}

#[test]
fn classifier_and_scalar_heads_on_every_pooling_pass_the_gradient_check() {
    let hidden = states(&[3, 4, 5], 1);
    let lengths = [4, 2, 1];
    let head = ClassifierHead::new(5, 3, &mut Rng::new(2));
    widened(&head, 3);
    for how in [Pool::Last, Pool::Position, Pool::First, Pool::Mean] {
        let mut leaves = head.params();
        leaves.push(hidden.clone());
        let f = || {
            head.forward(&pool(&hidden, &lengths, how))
                .square()
                .sum_all()
        };
        if let Err(e) = gradcheck_params(&format!("classifier, {how:?}"), f, &leaves) {
            panic!("{e}");
        }
    }
    let scalar = ScalarHead::new(5, &mut Rng::new(4));
    widened(&scalar, 5);
    let mut leaves = scalar.params();
    leaves.push(hidden.clone());
    let f = || scalar.forward(&hidden).square().sum_all();
    if let Err(e) = gradcheck_params("scalar head", f, &leaves) {
        panic!("{e}");
    }
}

#[test]
fn pooling_reads_the_real_tokens_of_a_right_padded_batch() {
    let hidden = states(&[2, 4, 3], 6);
    let h = hidden.value().to_vec::<f64>();
    let at = |b: usize, t: usize| &h[(b * 4 + t) * 3..(b * 4 + t) * 3 + 3];
    let lengths = [3, 1];
    let rows = |how| pool(&hidden, &lengths, how).value().to_vec::<f64>();
    assert_eq!(rows(Pool::Last), [at(0, 2), at(1, 0)].concat());
    assert_eq!(rows(Pool::First), [at(0, 0), at(1, 0)].concat());
    assert_eq!(rows(Pool::Position), [at(0, 3), at(1, 3)].concat());
    let mean = rows(Pool::Mean);
    for c in 0..3 {
        let want = (at(0, 0)[c] + at(0, 1)[c] + at(0, 2)[c]) / 3.0;
        assert!((mean[c] - want).abs() < 1e-12);
        assert!((mean[3 + c] - at(1, 0)[c]).abs() < 1e-12);
    }
}

#[test]
fn a_padded_batch_gives_each_example_its_own_hidden_states() {
    let cfg = Config {
        vocab_size: 50,
        n_layer: 2,
        n_head: 2,
        n_embd: 8,
        block_size: 8,
        ..Config::char_small()
    };
    let model = Model::new(&cfg, &mut Rng::new(7), &SharedRng::new(0));
    let examples: [&[u32]; 3] = [&[5, 9, 2, 7, 1], &[3, 3], &[40]];
    let width = 6;
    let padded: Vec<u32> = examples
        .iter()
        .flat_map(|e| e.iter().copied().chain(std::iter::repeat(0)).take(width))
        .collect();
    let batch = model
        .hidden(&Tensor::from_vec(padded, &[3, width]))
        .unwrap()
        .value();
    for (b, e) in examples.iter().enumerate() {
        let alone = model
            .hidden(&Tensor::from_slice(e, &[1, e.len()]))
            .unwrap()
            .value()
            .to_vec::<f32>();
        let rows = batch.narrow(0, b, 1).narrow(1, 0, e.len()).to_vec::<f32>();
        for (x, y) in rows.iter().zip(&alone) {
            assert!(
                (x - y).abs() <= 1e-6 * y.abs().max(1.0),
                "example {b}: {x} vs {y}"
            );
        }
    }
}
