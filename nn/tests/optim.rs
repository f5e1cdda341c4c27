//! Optimizer behaviour beyond the PyTorch fixtures: parameter groups, skipped parameters,
//! shared storage, tied weights, and state that saves, loads and resumes exactly.

mod common;

use autograd::Var;
use common::Scratch;
use nn::{AdamW, AdamWConfig, Linear, Module, Optimizer, OptimizerState, Sgd, SgdConfig};
use tensor::{DType, Rng, Tensor};

fn adamw_config() -> AdamWConfig {
    AdamWConfig {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
    }
}

/// Sets every parameter's gradient to a fixed random tensor drawn from `seed`.
fn fake_grads(params: &[(String, Var)], seed: u64) {
    let mut rng = Rng::new(seed);
    for (_, p) in params {
        p.set_grad(Some(Tensor::randn(
            &p.shape(),
            0.0,
            1.0,
            p.dtype(),
            &mut rng,
        )));
    }
}

fn values(params: &[(String, Var)]) -> Vec<Vec<f32>> {
    params
        .iter()
        .map(|(_, p)| p.value().to_vec::<f32>())
        .collect()
}

#[test]
fn weight_decay_skips_vectors() {
    // A zero gradient leaves Adam's update at 0 / (0 + eps) = 0, so only decay moves a value.
    let layer = Linear::new(3, 2, true, 0.5, &mut Rng::new(1));
    layer
        .bias
        .as_ref()
        .unwrap()
        .set_value(Tensor::ones(&[2], DType::F32));
    let params = layer.named_params();
    for (_, p) in &params {
        p.set_grad(Some(p.value().zeros_like()));
    }
    let w0 = layer.weight.value().to_vec::<f32>();
    let mut opt = AdamW::new(params, adamw_config());
    opt.step(0.5).unwrap();
    let w1 = layer.weight.value().to_vec::<f32>();
    for (a, b) in w1.iter().zip(&w0) {
        assert!((a - b * (1.0 - 0.5 * 0.1)).abs() < 1e-7, "{a} vs {b}");
    }
    assert_eq!(
        layer.bias.as_ref().unwrap().value().to_vec::<f32>(),
        vec![1.0; 2]
    );
}

#[test]
fn frozen_and_gradless_parameters_are_skipped() {
    let layer = Linear::new(3, 2, true, 0.5, &mut Rng::new(2));
    let params = layer.named_params();
    fake_grads(&params, 3);
    layer.weight.set_requires_grad(false);
    layer.bias.as_ref().unwrap().zero_grad();
    let before = values(&params);
    for mut opt in [
        Box::new(AdamW::new(params.clone(), adamw_config())) as Box<dyn Optimizer>,
        Box::new(Sgd::new(params.clone(), SgdConfig::default())),
    ] {
        opt.step(0.1).unwrap();
        assert_eq!(values(&params), before);
        assert!(
            opt.state().tensors.is_empty(),
            "no state for skipped parameters"
        );
    }
}

#[test]
fn zero_grad_clears_every_gradient() {
    let layer = Linear::new(3, 2, true, 0.5, &mut Rng::new(4));
    let params = layer.named_params();
    fake_grads(&params, 5);
    AdamW::new(params.clone(), adamw_config()).zero_grad();
    assert!(params.iter().all(|(_, p)| p.grad().is_none()));
}

#[test]
fn a_parameter_whose_storage_is_shared_is_copied_not_refused() {
    let layer = Linear::new(3, 2, false, 0.5, &mut Rng::new(6));
    let params = layer.named_params();
    fake_grads(&params, 7);
    let held = layer.weight.value(); // e.g. a graph that still holds the weight
    let before = held.to_vec::<f32>();
    for mut opt in [
        Box::new(AdamW::new(params.clone(), adamw_config())) as Box<dyn Optimizer>,
        Box::new(Sgd::new(
            params.clone(),
            SgdConfig {
                momentum: 0.9,
                weight_decay: 0.0,
            },
        )),
    ] {
        let snapshot = opt.state(); // shares the moment buffers after the first step
        opt.step(0.1).unwrap();
        opt.step(0.1).unwrap();
        drop(snapshot);
        assert_eq!(held.to_vec::<f32>(), before, "the held tensor is untouched");
        assert_ne!(
            layer.weight.value().to_vec::<f32>(),
            before,
            "the parameter moved"
        );
    }
}

#[test]
fn tied_parameters_are_updated_once() {
    let shared = Var::parameter(Tensor::ones(&[2, 2], DType::F32));
    shared.set_grad(Some(Tensor::ones(&[2, 2], DType::F32)));
    let tied = vec![
        ("wte".to_string(), shared.clone()),
        ("lm_head".to_string(), shared.clone()),
    ];
    Sgd::new(tied, SgdConfig::default()).step(0.25).unwrap();
    assert_eq!(shared.value().to_vec::<f32>(), vec![0.75; 4]);
}

/// Trains a layer for `steps` steps from a fresh optimizer or from a saved state.
fn run(layer: &Linear, opt: &mut dyn Optimizer, steps: std::ops::Range<u64>) {
    let params = layer.named_params();
    for t in steps {
        fake_grads(&params, 100 + t);
        opt.step(0.01 * (t + 1) as f64).unwrap();
    }
}

fn resume_is_exact(make: impl Fn(Vec<(String, Var)>) -> Box<dyn Optimizer>, what: &str) {
    let dir = Scratch::new(what);
    let path = dir.join("opt.safetensors");
    let straight = Linear::new(4, 3, true, 0.5, &mut Rng::new(8));
    run(&straight, &mut *make(straight.named_params()), 0..6);

    let resumed = Linear::new(4, 3, true, 0.5, &mut Rng::new(8));
    let mut first = make(resumed.named_params());
    run(&resumed, &mut *first, 0..3);
    first.state().save(&path, DType::F32).unwrap();
    drop(first);
    let mut second = make(resumed.named_params());
    second
        .load_state(OptimizerState::load(&path).unwrap())
        .unwrap();
    run(&resumed, &mut *second, 3..6);
    assert_eq!(
        values(&resumed.named_params()),
        values(&straight.named_params()),
        "{what}"
    );
}

#[test]
fn adamw_state_saves_loads_and_resumes_exactly() {
    resume_is_exact(|p| Box::new(AdamW::new(p, adamw_config())), "adamw");
}

#[test]
fn sgd_state_saves_loads_and_resumes_exactly() {
    let cfg = SgdConfig {
        momentum: 0.9,
        weight_decay: 0.01,
    };
    resume_is_exact(|p| Box::new(Sgd::new(p, cfg)), "sgd");
}

#[test]
fn adamw_state_names_its_buffers_and_step() {
    let layer = Linear::new(2, 2, true, 0.5, &mut Rng::new(9));
    let mut opt = AdamW::new(layer.named_params(), adamw_config());
    run(&layer, &mut opt, 0..2);
    let state = opt.state();
    let names: Vec<&str> = state.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "weight.exp_avg",
            "weight.exp_avg_sq",
            "bias.exp_avg",
            "bias.exp_avg_sq"
        ]
    );
    assert_eq!(state.scalars["weight.step"], 2.0);
    assert_eq!(state.tensor("bias.exp_avg").unwrap().shape(), &[2]);
}

#[test]
fn loading_a_state_that_does_not_fit_is_an_error() {
    let layer = Linear::new(2, 2, true, 0.5, &mut Rng::new(10));
    let mut opt = AdamW::new(layer.named_params(), adamw_config());
    run(&layer, &mut opt, 0..1);
    let good = opt.state();

    let mut unknown = good.clone();
    unknown.scalars.insert("ghost.step".into(), 1.0);
    let err = opt.load_state(unknown).unwrap_err().to_string();
    assert!(err.contains("ghost.step"), "{err}");

    let mut wrong = good.clone();
    wrong.tensors[0].1 = Tensor::zeros(&[3], DType::F32);
    let err = opt.load_state(wrong).unwrap_err().to_string();
    assert!(
        err.contains("weight.exp_avg") && err.contains("[3]"),
        "{err}"
    );

    let mut incomplete = good.clone();
    incomplete.tensors.retain(|(n, _)| n != "bias.exp_avg_sq");
    let err = opt.load_state(incomplete).unwrap_err().to_string();
    assert!(
        err.contains("bias.exp_avg_sq") && err.contains("missing"),
        "{err}"
    );

    // The failed loads left the state as it was.
    assert_eq!(opt.state().scalars, good.scalars);
    let err = Sgd::new(layer.named_params(), SgdConfig::default())
        .load_state(good)
        .unwrap_err()
        .to_string();
    assert!(err.contains("match no parameter"), "{err}");
}
