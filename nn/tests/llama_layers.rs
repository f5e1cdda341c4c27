//! Llama's layers: each in the float64 gradient check; RMS norm against its formula; grouped
//! key/value heads equal full heads that repeat them; the cached and ragged paths equal the
//! full pass.

use autograd::{gradcheck_params, Var};
use nn::{
    GroupedQueryAttention, KvCache, LlamaBlock, LlamaBlockConfig, Module, RmsNorm, Rope, SwiGlu,
};
use std::sync::Arc;
use tensor::{DType, Rng, Tensor};

fn input(shape: &[usize], seed: u64) -> Var {
    Var::parameter(Tensor::randn(
        shape,
        0.0,
        1.0,
        DType::F64,
        &mut Rng::new(seed),
    ))
}

/// Float64 parameters drawn from `N(0, 0.5)`, so every path carries a visible gradient.
fn widen(module: &dyn Module, seed: u64) {
    module.to_dtype(DType::F64).unwrap();
    let mut rng = Rng::new(seed);
    for p in module.params() {
        p.set_value(Tensor::randn(&p.shape(), 0.0, 0.5, DType::F64, &mut rng));
    }
}

fn check(name: &str, module: &dyn Module, x: &Var) {
    let mut leaves = module.params();
    leaves.push(x.clone());
    if let Err(e) = gradcheck_params(name, || module.forward(x), &leaves) {
        panic!("{e}");
    }
}

fn close(a: &Tensor, b: &Tensor, tol: f64, what: &str) {
    let (a, b) = (
        a.contiguous().to_vec::<f64>(),
        b.contiguous().to_vec::<f64>(),
    );
    assert_eq!(a.len(), b.len(), "{what}: sizes");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() < tol, "{what}: element {i}: {x} vs {y}");
    }
}

fn attention(n_head: usize, n_kv_head: usize, seed: u64) -> GroupedQueryAttention {
    let rope = Arc::new(Rope::new(4, 64, 10_000.0));
    let attn = GroupedQueryAttention::new(
        4 * n_head,
        n_head,
        n_kv_head,
        rope,
        (0.5, 0.5),
        &mut Rng::new(seed),
    );
    widen(&attn, seed + 1);
    attn
}

#[test]
fn rms_norm_follows_its_formula_and_its_gradients() {
    let norm = RmsNorm::new(5, 1e-5);
    widen(&norm, 1);
    let x = input(&[3, 5], 2);
    let y = norm.forward(&x).value().to_vec::<f64>();
    let (xs, w) = (
        x.value().to_vec::<f64>(),
        norm.weight.value().to_vec::<f64>(),
    );
    for (row, out) in xs.chunks(5).zip(y.chunks(5)) {
        let rms = (row.iter().map(|v| v * v).sum::<f64>() / 5.0 + 1e-5).sqrt();
        for i in 0..5 {
            assert!((out[i] - row[i] / rms * w[i]).abs() < 1e-12);
        }
    }
    check("rms norm", &norm, &x);
}

#[test]
fn swiglu_gradients() {
    let ffn = SwiGlu::new(4, 6, 0.5, 0.5, &mut Rng::new(3));
    widen(&ffn, 4);
    check("swiglu", &ffn, &input(&[2, 3, 4], 5));
}

#[test]
fn grouped_query_attention_gradients() {
    check("gqa 4/2", &attention(4, 2, 6), &input(&[2, 5, 16], 7));
    check("gqa 2/2", &attention(2, 2, 8), &input(&[1, 4, 8], 9));
}

#[test]
fn grouped_heads_equal_full_heads_that_repeat_them() {
    let grouped = attention(4, 2, 10);
    let full = attention(4, 4, 12);
    full.wq.weight.set_value(grouped.wq.weight.value());
    full.wo.weight.set_value(grouped.wo.weight.value());
    // Full key/value head h is grouped head h / 2: rows of 4 (one head) repeated in pairs.
    let repeat = |w: &Var| {
        let w = w.value();
        let heads: Vec<Tensor> = (0..4).map(|h| w.narrow(0, (h / 2) * 4, 4)).collect();
        Tensor::cat(&heads.iter().collect::<Vec<_>>(), 0).contiguous()
    };
    full.wk.weight.set_value(repeat(&grouped.wk.weight));
    full.wv.weight.set_value(repeat(&grouped.wv.weight));
    let x = input(&[2, 6, 16], 14);
    close(
        &grouped.forward(&x).value(),
        &full.forward(&x).value(),
        1e-12,
        "grouped vs full",
    );
}

#[test]
fn cached_and_ragged_paths_equal_the_full_pass() {
    let attn = attention(4, 2, 15);
    let x = input(&[2, 20, 16], 16);
    let full = attn.forward(&x).value();
    // A prompt of 3 positions, then one at a time (the decoding kernel).
    let mut cache = KvCache::new();
    let head = attn.forward_cached(&x.narrow(1, 0, 3), &mut cache).value();
    close(&head, &full.narrow(1, 0, 3), 1e-12, "prompt");
    for t in 3..20 {
        let step = attn.forward_cached(&x.narrow(1, t, 1), &mut cache).value();
        close(
            &step,
            &full.narrow(1, t, 1),
            1e-12,
            &format!("position {t}"),
        );
    }
    // Two sequences at different positions, one step each, in one ragged call.
    let (mut a, mut b) = (KvCache::new(), KvCache::new());
    attn.forward_cached(&x.narrow(0, 0, 1).narrow(1, 0, 5), &mut a);
    attn.forward_cached(&x.narrow(0, 1, 1).narrow(1, 0, 9), &mut b);
    let next = Var::cat(
        &[
            &x.narrow(0, 0, 1).narrow(1, 5, 1),
            &x.narrow(0, 1, 1).narrow(1, 9, 1),
        ],
        0,
    );
    let out = attn.forward_ragged(&next, &mut [&mut a, &mut b]).value();
    close(
        &out.narrow(0, 0, 1),
        &full.narrow(0, 0, 1).narrow(1, 5, 1),
        1e-12,
        "row 0",
    );
    close(
        &out.narrow(0, 1, 1),
        &full.narrow(0, 1, 1).narrow(1, 9, 1),
        1e-12,
        "row 1",
    );
}

#[test]
fn llama_block_gradients_and_cache() {
    let cfg = LlamaBlockConfig {
        dim: 8,
        n_head: 2,
        n_kv_head: 1,
        hidden_dim: 12,
        norm_eps: 1e-5,
        std: 0.5,
        proj_std: 0.5,
    };
    let block = LlamaBlock::new(cfg, Arc::new(Rope::new(4, 16, 10_000.0)), &mut Rng::new(17));
    widen(&block, 18);
    let x = input(&[1, 4, 8], 19);
    check("llama block", &block, &x);
    let full = block.forward(&x).value();
    let mut cache = KvCache::new();
    block.forward_cached(&x.narrow(1, 0, 2), &mut cache);
    let tail = block.forward_cached(&x.narrow(1, 2, 2), &mut cache).value();
    close(&tail, &full.narrow(1, 2, 2), 1e-12, "block cached");
}
