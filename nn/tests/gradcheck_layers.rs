//! Every layer in the float64 gradient check: gradients of its parameters and of its input.

use autograd::{gradcheck_params, Var};
use nn::{
    BatchNorm1d, Block, BlockConfig, CausalSelfAttention, Embedding, KvCache, LayerNorm, Linear,
    LoraConfig, Mlp, Module, SharedRng,
};
use tensor::{DType, Rng, Tensor};

/// An input that also requires a gradient, so the check covers `d out / d x` too.
fn input(shape: &[usize], seed: u64) -> Var {
    Var::parameter(Tensor::randn(
        shape,
        0.0,
        1.0,
        DType::F64,
        &mut Rng::new(seed),
    ))
}

/// Checks a module's parameters and input on a forward pass from `x`.
fn check(name: &str, module: &dyn Module, x: &Var) {
    module.to_dtype(DType::F64).unwrap();
    let mut leaves = module.params();
    if x.dtype().is_float() {
        leaves.push(x.clone());
    }
    if let Err(e) = gradcheck_params(name, || module.forward(x), &leaves) {
        panic!("{e}");
    }
}

/// Parameters drawn larger than GPT-2's 0.02 so every path carries a visible gradient.
fn widen(module: &dyn Module, seed: u64) {
    let mut rng = Rng::new(seed);
    for p in module.params() {
        p.set_value(Tensor::randn(&p.shape(), 0.0, 0.5, DType::F64, &mut rng));
    }
}

#[test]
fn linear_with_and_without_bias() {
    let mut rng = Rng::new(1);
    check(
        "linear",
        &Linear::new(4, 3, true, 0.5, &mut rng),
        &input(&[2, 5, 4], 2),
    );
    check(
        "linear no bias",
        &Linear::new(3, 2, false, 0.5, &mut rng),
        &input(&[4, 3], 3),
    );
}

#[test]
fn embedding() {
    let emb = Embedding::new(6, 3, 0.5, &mut Rng::new(4));
    let ids = Var::constant(Tensor::from_slice(&[5u32, 0, 5, 2], &[2, 2]));
    check("embedding", &emb, &ids);
}

#[test]
fn layer_norm() {
    let ln = LayerNorm::new(5, true);
    ln.to_dtype(DType::F64).unwrap();
    widen(&ln, 5);
    check("layer norm", &ln, &input(&[3, 5], 6));
    check(
        "layer norm without bias",
        &LayerNorm::new(4, false),
        &input(&[2, 4], 7),
    );
}

#[test]
fn mlp_in_eval_mode() {
    let mut mlp = Mlp::new(4, 8, true, 0.1, 0.5, &mut Rng::new(8), SharedRng::new(0));
    mlp.eval();
    check("mlp", &mlp, &input(&[2, 3, 4], 9));
}

#[test]
fn attention_and_its_cached_path() {
    let mut attn =
        CausalSelfAttention::new(6, 2, true, 0.0, 0.5, &mut Rng::new(10), SharedRng::new(0));
    attn.to_dtype(DType::F64).unwrap();
    widen(&attn, 11);
    let x = input(&[2, 5, 6], 12);
    check("attention", &attn, &x);
    // The cached path on the last two positions equals the full pass on them.
    attn.eval();
    let full = attn.forward(&x).value();
    let mut cache = KvCache::new();
    attn.forward_cached(&x.narrow(1, 0, 3), &mut cache);
    let tail = attn.forward_cached(&x.narrow(1, 3, 2), &mut cache).value();
    let want = full.narrow(1, 3, 2).contiguous().to_vec::<f64>();
    for (a, b) in tail.to_vec::<f64>().iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "cached {a} vs full {b}");
    }
    assert_eq!(cache.len(), 5);
    // One position at a time (the decoding kernel), past the cache's first room, and a clone
    // that writes on its own copy while the original goes on unchanged.
    let long = input(&[2, 40, 6], 13);
    let full = attn.forward(&long).value();
    let mut cache = KvCache::new();
    attn.forward_cached(&long.narrow(1, 0, 3), &mut cache);
    let mut fork = cache.clone();
    attn.forward_cached(&x.narrow(1, 3, 1), &mut fork);
    for t in 3..40 {
        let step = attn
            .forward_cached(&long.narrow(1, t, 1), &mut cache)
            .value();
        let want = full.narrow(1, t, 1).contiguous().to_vec::<f64>();
        for (a, b) in step.to_vec::<f64>().iter().zip(want) {
            assert!(
                (a - b).abs() < 1e-12,
                "position {t}: cached {a} vs full {b}"
            );
        }
    }
    assert_eq!((cache.len(), fork.len()), (40, 4));
}

#[test]
fn transformer_block() {
    let cfg = BlockConfig {
        dim: 4,
        n_head: 2,
        bias: true,
        dropout: 0.0,
        proj_std: 0.5,
        norm: nn::NormKind::Layer,
    };
    let block = Block::new(cfg, &mut Rng::new(13), &SharedRng::new(0));
    block.to_dtype(DType::F64).unwrap();
    widen(&block, 14);
    check("block", &block, &input(&[1, 3, 4], 15));
}

/// The block with each other norm the GPT can choose; batch norm in training mode, where its
/// statistics (and so its gradients) mix the batch and the positions.
#[test]
fn transformer_block_with_each_norm() {
    for norm in [nn::NormKind::Batch, nn::NormKind::Rms, nn::NormKind::None] {
        let cfg = BlockConfig {
            dim: 4,
            n_head: 2,
            bias: true,
            dropout: 0.0,
            proj_std: 0.5,
            norm,
        };
        let block = Block::new(cfg, &mut Rng::new(13), &SharedRng::new(0));
        block.to_dtype(DType::F64).unwrap();
        widen(&block, 14);
        check(
            &format!("block, {norm:?} norm"),
            &block,
            &input(&[2, 3, 4], 15),
        );
    }
}

#[test]
fn lora_adapted_linear() {
    let mut layer = Linear::new(5, 4, true, 0.5, &mut Rng::new(16));
    let cfg = LoraConfig {
        rank: 2,
        alpha: 4.0,
        dropout: 0.0,
        targets: vec!["".into()],
    };
    nn::lora::apply(&mut layer, &cfg, &mut Rng::new(17), &SharedRng::new(0));
    layer.to_dtype(DType::F64).unwrap();
    widen(&layer, 18);
    check("lora linear", &layer, &input(&[3, 5], 19));
}

#[test]
fn batch_norm_in_training_and_eval() {
    let mut bn = BatchNorm1d::new(3);
    bn.to_dtype(DType::F64).unwrap();
    widen(&bn, 20);
    // Training: gradients flow through the batch mean and variance.
    check("batch norm (N, C)", &bn, &input(&[5, 3], 21));
    check("batch norm (N, C, L)", &bn, &input(&[2, 3, 4], 22));
    // Eval: the running statistics are constants.
    bn.eval();
    check("batch norm eval", &bn, &input(&[2, 3, 4], 23));
}
