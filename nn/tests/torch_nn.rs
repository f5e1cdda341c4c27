//! BatchNorm1d, AdamW, SGD, clipping and the schedule against PyTorch (fixtures written by
//! `tests/fixtures/make_nn_fixtures.py`, read through `nn::state_dict`).
//!
//! Float64 results match to 1e-10; the float32 AdamW run matches PyTorch's float32 run to 1e-6.

use autograd::Var;
use nn::clip::clip_grad_norm;
use nn::state_dict::{self, StateDict};
use nn::{AdamW, AdamWConfig, BatchNorm1d, Module, Optimizer, Schedule, Sgd, SgdConfig};
use tensor::{DType, Tensor};

fn fixtures() -> StateDict {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/nn.safetensors"
    );
    state_dict::load(path).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn get(f: &StateDict, name: &str) -> Tensor {
    f.tensor(name)
        .unwrap_or_else(|| panic!("fixture `{name}` is missing"))
}

/// `|got - want| <= tol * (1 + |want|)` elementwise, naming the worst element on failure.
#[track_caller]
fn assert_close(got: &Tensor, want: &Tensor, tol: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let (g, w) = (got.to_vec_f64(), want.to_vec_f64());
    let worst = (0..g.len())
        .max_by(|&i, &j| {
            let e = |k: usize| (g[k] - w[k]).abs() / (1.0 + w[k].abs());
            e(i).total_cmp(&e(j))
        })
        .unwrap_or(0);
    if let (Some(a), Some(b)) = (g.get(worst), w.get(worst)) {
        assert!(
            (a - b).abs() <= tol * (1.0 + b.abs()),
            "{what}[{worst}]: got {a}, PyTorch {b}"
        );
    }
}

fn batch_norm_case(name: &str) {
    let f = fixtures();
    let mut bn = BatchNorm1d::new(3);
    bn.to_dtype(DType::F64).unwrap();
    bn.weight.set_value(get(&f, &format!("{name}.weight")));
    bn.bias.set_value(get(&f, &format!("{name}.bias")));
    for t in 0..3 {
        let x = Var::parameter(get(&f, &format!("{name}.x{t}")));
        let y = bn.forward(&x);
        assert_close(
            &y.value(),
            &get(&f, &format!("{name}.y{t}")),
            1e-10,
            &format!("{name} y{t}"),
        );
        y.backward_with(get(&f, &format!("{name}.dout{t}")))
            .unwrap();
        assert_close(
            &x.grad().unwrap(),
            &get(&f, &format!("{name}.dx{t}")),
            1e-10,
            &format!("{name} dx{t}"),
        );
        for stat in ["running_mean", "running_var"] {
            let running = if stat == "running_mean" {
                &bn.running_mean
            } else {
                &bn.running_var
            };
            assert_close(
                &running.value(),
                &get(&f, &format!("{name}.{stat}{t}")),
                1e-12,
                &format!("{name} {stat} after step {t}"),
            );
        }
    }
    bn.eval();
    let y = bn.forward(&Var::constant(get(&f, &format!("{name}.x_eval"))));
    assert_close(
        &y.value(),
        &get(&f, &format!("{name}.y_eval")),
        1e-10,
        &format!("{name} eval"),
    );
}

#[test]
fn batch_norm_on_n_c_inputs() {
    batch_norm_case("bn2d");
}

#[test]
fn batch_norm_on_n_c_l_inputs() {
    batch_norm_case("bn3d");
}

/// Runs the fixture's regression with `opt`, checking the loss before and the parameters
/// after every step.
fn regression(
    case: &str,
    dtype: DType,
    tol: f64,
    make: impl Fn(Vec<(String, Var)>) -> Box<dyn Optimizer>,
) {
    let f = fixtures();
    let at = |name: &str| get(&f, name).to_dtype(dtype);
    let w = Var::parameter(at("opt.W0"));
    let b = Var::parameter(at("opt.b0"));
    let (x, y) = (Var::constant(at("opt.X")), Var::constant(at("opt.Y")));
    let mut opt = make(vec![("w".into(), w.clone()), ("b".into(), b.clone())]);
    let lrs = get(&f, &format!("{case}.lr")).to_vec::<f64>();
    let losses = get(&f, &format!("{case}.loss")).to_vec::<f64>();
    for (t, lr) in lrs.into_iter().enumerate() {
        opt.zero_grad();
        let loss = x.matmul(&w.t()).add(&b).sub(&y).square().mean_all();
        let l = loss.value().item();
        assert!(
            (l - losses[t]).abs() <= tol * (1.0 + losses[t].abs()),
            "{case}: loss before step {t}: {l} vs PyTorch {}",
            losses[t]
        );
        loss.backward();
        opt.step(lr).unwrap();
        assert_close(
            &w.value(),
            &get(&f, &format!("{case}.W{t}")),
            tol,
            &format!("{case} W{t}"),
        );
        assert_close(
            &b.value(),
            &get(&f, &format!("{case}.b{t}")),
            tol,
            &format!("{case} b{t}"),
        );
    }
}

fn adamw(params: Vec<(String, Var)>) -> Box<dyn Optimizer> {
    let config = AdamWConfig {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
    };
    Box::new(AdamW::new(params, config))
}

#[test]
fn adamw_matches_torch_over_ten_steps() {
    regression("adamw", DType::F64, 1e-10, adamw);
}

#[test]
fn adamw_in_float32_matches_torch_float32() {
    regression("adamw_f32", DType::F32, 1e-6, adamw);
}

#[test]
fn sgd_with_momentum_matches_torch_over_ten_steps() {
    regression("sgd", DType::F64, 1e-10, |params| {
        let config = SgdConfig {
            momentum: 0.9,
            weight_decay: 0.01,
        };
        Box::new(Sgd::new(params, config))
    });
}

#[test]
fn clip_grad_norm_matches_torch() {
    let f = fixtures();
    let params: Vec<Var> = (0..3)
        .map(|i| {
            let g = get(&f, &format!("clip.g{i}"));
            let p = Var::parameter(g.zeros_like());
            p.set_grad(Some(g));
            p
        })
        .collect();
    let max_norm = get(&f, "clip.max_norm").item();
    let norm = clip_grad_norm(&params, max_norm);
    let want = get(&f, "clip.norm").item();
    assert!((norm - want).abs() < 1e-12, "norm {norm} vs PyTorch {want}");
    assert!(norm > max_norm, "the fixture must exercise clipping");
    for (i, p) in params.iter().enumerate() {
        assert_close(
            &p.grad().unwrap(),
            &get(&f, &format!("clip.clipped{i}")),
            1e-12,
            &format!("clipped {i}"),
        );
    }
    // Below the threshold nothing moves, and the norm is the clipped one.
    let before = params[0].grad().unwrap().to_vec::<f64>();
    let again = clip_grad_norm(&params, 2.0 * max_norm);
    assert!((again - max_norm).abs() < 1e-5, "{again}");
    assert_eq!(params[0].grad().unwrap().to_vec::<f64>(), before);
}

#[test]
fn warmup_cosine_matches_nanogpt() {
    let want = get(&fixtures(), "schedule.lr").to_vec::<f64>();
    let s = Schedule::WarmupCosine {
        max_lr: 6e-4,
        min_lr: 6e-5,
        warmup_iters: 5,
        decay_iters: 20,
    };
    for (step, w) in want.iter().enumerate() {
        assert!(
            (s.lr(step) - w).abs() < 1e-18,
            "step {step}: {} vs {w}",
            s.lr(step)
        );
    }
}
