//! LoRA on a small transformer: parameter counts, a start identical to the base model, training
//! that moves only the adapters, merge and unmerge, and adapters saved and loaded on their own.

mod common;

use autograd::Var;
use common::Scratch;
use nn::lora::{self, LoraConfig};
use nn::module::join;
use nn::state_dict::Error;
use nn::{AdamW, AdamWConfig, Block, BlockConfig, Linear, Module, Optimizer, SharedRng};
use tensor::{DType, Rng, Tensor};

const DIM: usize = 32;

/// `n_layer` transformer blocks in a row, named `blocks.<i>`.
struct Stack {
    blocks: Vec<Block>,
}

impl Stack {
    fn new(n_layer: usize, seed: u64) -> Stack {
        let cfg = BlockConfig {
            dim: DIM,
            n_head: 4,
            bias: true,
            dropout: 0.0,
            proj_std: 0.02,
            norm: nn::NormKind::Layer,
        };
        let mut rng = Rng::new(seed);
        let blocks = (0..n_layer)
            .map(|_| Block::new(cfg, &mut rng, &SharedRng::new(0)))
            .collect();
        Stack { blocks }
    }
}

impl Module for Stack {
    fn forward(&self, x: &Var) -> Var {
        self.blocks.iter().fold(x.clone(), |h, b| b.forward(&h))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        for (i, b) in self.blocks.iter().enumerate() {
            b.visit_params(&join(prefix, &format!("blocks.{i}")), f);
        }
    }

    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        for (i, b) in self.blocks.iter_mut().enumerate() {
            b.visit_linears_mut(&join(prefix, &format!("blocks.{i}")), f);
        }
    }

    fn set_training(&mut self, training: bool) {
        self.blocks
            .iter_mut()
            .for_each(|b| b.set_training(training));
    }
}

fn config() -> LoraConfig {
    LoraConfig {
        rank: 8,
        alpha: 16.0,
        dropout: 0.0,
        targets: vec!["attn.qkv".into(), "attn.proj".into()],
    }
}

fn adapt(model: &mut Stack, seed: u64) -> Vec<String> {
    let names = lora::apply(model, &config(), &mut Rng::new(seed), &SharedRng::new(1));
    lora::mark_only_adapters_trainable(model);
    names
}

fn input(seed: u64) -> Var {
    Var::constant(Tensor::randn(
        &[2, 5, DIM],
        0.0,
        1.0,
        DType::F32,
        &mut Rng::new(seed),
    ))
}

fn out(model: &Stack, x: &Var) -> Vec<f32> {
    model.forward(x).value().to_vec::<f32>()
}

/// A few AdamW steps (with weight decay) towards a random target; returns the losses.
fn train(model: &Stack, steps: usize) -> Vec<f64> {
    let (x, target) = (input(2), input(3));
    let cfg = AdamWConfig {
        weight_decay: 0.1,
        ..AdamWConfig::default()
    };
    let mut opt = AdamW::new(model.named_params(), cfg);
    (0..steps)
        .map(|_| {
            opt.zero_grad();
            let loss = model.forward(&x).sub(&target).square().mean_all();
            loss.backward();
            opt.step(1e-2).unwrap();
            loss.value().item()
        })
        .collect()
}

#[test]
fn rank_8_on_four_layers_trains_the_right_number_of_parameters() {
    let mut model = Stack::new(4, 0);
    let base = model.num_params();
    let names = adapt(&mut model, 1);
    assert_eq!(names.len(), 8);
    assert_eq!(names[0], "blocks.0.attn.qkv");
    assert_eq!(names[7], "blocks.3.attn.proj");
    // Per layer: qkv (in 32, out 96) and proj (32, 32) each add r (in + out).
    let per_layer = 8 * (DIM + 3 * DIM) + 8 * (DIM + DIM);
    assert_eq!(per_layer, 1536);
    assert_eq!(model.num_trainable_params(), 4 * per_layer);
    assert_eq!(model.num_params(), base + 4 * per_layer);
    assert_eq!(lora::adapter_params(&model).len(), 16);
}

#[test]
fn a_fresh_adapter_leaves_the_model_unchanged() {
    let mut model = Stack::new(2, 0);
    let x = input(4);
    let before = out(&model, &x);
    adapt(&mut model, 1);
    assert_eq!(out(&model, &x), before);
}

#[test]
fn training_moves_only_the_adapters() {
    let mut model = Stack::new(2, 0);
    adapt(&mut model, 1);
    let before: Vec<(String, Vec<f32>)> = model
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, p.value().to_vec::<f32>()))
        .collect();
    let losses = train(&model, 5);
    assert!(losses[4] < losses[0], "{losses:?}");
    for ((name, old), (_, p)) in before.iter().zip(model.named_params()) {
        let now = p.value().to_vec::<f32>();
        if lora::is_adapter_param(name) {
            assert_ne!(&now, old, "{name} should train");
        } else {
            assert_eq!(&now, old, "{name} is frozen");
        }
    }
}

#[test]
fn merged_and_unmerged_outputs_agree() {
    let mut model = Stack::new(2, 0);
    adapt(&mut model, 1);
    train(&model, 5);
    let x = input(5);
    let weight = |m: &Stack| m.blocks[0].attn.qkv.weight.value().to_vec::<f32>();
    let (unmerged, w0) = (out(&model, &x), weight(&model));
    lora::merge(&mut model);
    assert_ne!(weight(&model), w0, "merging changes the base weight");
    let merged = out(&model, &x);
    lora::unmerge(&mut model);
    let restored = out(&model, &x);
    for ((a, b), c) in unmerged.iter().zip(&merged).zip(&restored) {
        assert!((a - b).abs() < 1e-5 && (a - c).abs() < 1e-5, "{a} {b} {c}");
    }
    for (a, b) in weight(&model).iter().zip(&w0) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn adapters_save_and_load_on_their_own() {
    let dir = Scratch::new("lora");
    let path = dir.join("adapters.safetensors");
    let mut trained = Stack::new(2, 0);
    adapt(&mut trained, 1);
    train(&trained, 3);
    lora::save_adapters(&trained, &path).unwrap();
    let names = nn::state_dict::load(&path).unwrap().names();
    assert_eq!(names.len(), 8, "2 layers x 2 adapted linears x (A, B)");
    assert!(names.iter().all(|n| lora::is_adapter_param(n)), "{names:?}");

    // The same base with freshly drawn adapters, then the saved ones loaded over them.
    let mut fresh = Stack::new(2, 0);
    adapt(&mut fresh, 99);
    let x = input(6);
    assert_ne!(out(&fresh, &x), out(&trained, &x));
    lora::load_adapters(&mut fresh, &path).unwrap();
    assert_eq!(out(&fresh, &x), out(&trained, &x));

    // A model without adapters reports every adapter in the file as unexpected.
    let err = lora::load_adapters(&mut Stack::new(2, 0), &path).unwrap_err();
    let Error::Mismatch { mismatch, .. } = &err else {
        panic!("expected a mismatch, got {err}");
    };
    assert_eq!(mismatch.unexpected, names);
    // Merged adapters must be unmerged before loading.
    lora::merge(&mut fresh);
    let err = lora::load_adapters(&mut fresh, &path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unmerge first") && err.contains("blocks.0.attn.qkv"),
        "{err}"
    );
}
