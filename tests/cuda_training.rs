//! Training on the GPU gives the CPU's numbers: the project's GPT (`llm::model::Model`, 2
//! layers, 4 heads, width 64, context 32, a 65-token vocabulary, biases, no dropout) trained by
//! `llm::train::Trainer` for 10 steps on `Device::Cuda(0)` and on `Device::Cpu`. Both trainers
//! are built from one configuration and seed, so their initial weights are the same (the test
//! checks it, bit for bit), and every step takes the same two micro-batches of Tiny
//! Shakespeare characters through `Trainer::step_on`, which exercises gradient accumulation,
//! clipping to a global norm, AdamW with weight decay and the warmup + cosine schedule as
//! `llm train` runs them. The loss falls from about 4.2 to about 3.2 over the 10 steps.
//!
//! At every step the losses must agree within 1e-4 relative, and so must the global gradient
//! norms before clipping, which gather every parameter's gradient of that step.
//!
//! Needs an NVIDIA GPU (`--features cuda`): without one it prints why it was skipped.
#![cfg(feature = "cuda")]

use llm::data::TokenDataset;
use llm::model::config::Config;
use llm::tokenizer::{CharTokenizer, Tokenizer};
use llm::train::{StepStats, Trainer};
use nn::Module;
use tensor::{Device, Rng, Tensor};

const STEPS: usize = 10;
const MICRO_BATCHES: usize = 2;

/// The small GPT and its training settings.
fn config() -> Config {
    Config {
        vocab_size: 65,
        block_size: 32,
        n_layer: 2,
        n_head: 4,
        n_embd: 64,
        dropout: 0.0,
        bias: true,
        batch_size: 4,
        gradient_accumulation_steps: MICRO_BATCHES,
        learning_rate: 1e-2,
        min_lr: 1e-3,
        warmup_iters: 2,
        lr_decay_iters: STEPS,
        max_iters: STEPS,
        weight_decay: 0.1,
        beta1: 0.9,
        beta2: 0.95,
        grad_clip: 1.0,
        seed: 1337,
        ..Config::char_small()
    }
}

/// Tiny Shakespeare in characters (65 of them), so the model has something to learn and its
/// loss falls.
fn dataset() -> TokenDataset {
    let text = llm::TINY_SHAKESPEARE;
    let tokenizer = CharTokenizer::from_corpus(text).unwrap();
    assert_eq!(tokenizer.vocab_size(), 65);
    TokenDataset::from_tokens(tokenizer.encode(text).unwrap())
}

/// `STEPS` steps of `MICRO_BATCHES` micro-batches `(inputs, targets)`, each `(B, T)`.
fn batches(cfg: &Config) -> Vec<Vec<(Tensor, Tensor)>> {
    let data = dataset();
    let mut rng = Rng::new(11);
    (0..STEPS)
        .map(|_| {
            (0..MICRO_BATCHES)
                .map(|_| {
                    data.sample_batch(cfg.batch_size, cfg.block_size, &mut rng)
                        .unwrap()
                })
                .collect()
        })
        .collect()
}

/// A trainer for [`config`] on `device`, its parameters copied to the host by name.
fn trainer(device: Device) -> (Trainer, Vec<(String, Vec<f32>)>) {
    let trainer = Trainer::new(config(), device).unwrap();
    let weights = trainer
        .model
        .named_params()
        .into_iter()
        .map(|(name, p)| (name, p.value().to_vec::<f32>()))
        .collect();
    (trainer, weights)
}

/// Whether `got` is within `rel` of `want`, relative to `want`.
fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs()
}

#[test]
fn a_gpt_trains_to_the_same_losses_on_gpu_and_cpu() {
    let info = match tensor::cuda::probe() {
        Ok(info) => info,
        Err(reason) => {
            eprintln!("skipped (needs a GPU): {reason}");
            return;
        }
    };
    eprintln!("on {info}");
    let (mut cpu, cpu_weights) = trainer(Device::Cpu);
    let (mut gpu, gpu_weights) = trainer(Device::Cuda(0));
    assert!(gpu
        .model
        .params()
        .iter()
        .all(|p| p.device() == Device::Cuda(0)));
    assert_eq!(cpu_weights.len(), gpu_weights.len());
    for ((name, c), (_, g)) in cpu_weights.iter().zip(&gpu_weights) {
        assert!(c == g, "initial `{name}` differs between the devices");
    }
    for (i, step) in batches(&cpu.cfg).iter().enumerate() {
        let c: StepStats = cpu.step_on(step).unwrap();
        let g: StepStats = gpu.step_on(step).unwrap();
        eprintln!(
            "step {:2} | loss cpu {:.7} gpu {:.7} | grad norm cpu {:.7} gpu {:.7}",
            i + 1,
            c.loss,
            g.loss,
            c.grad_norm,
            g.grad_norm
        );
        assert!(
            close(g.loss, c.loss, 1e-4),
            "step {}: loss {} on the GPU, {} on the CPU",
            i + 1,
            g.loss,
            c.loss
        );
        assert!(
            close(g.grad_norm, c.grad_norm, 1e-4),
            "step {}: gradient norm {} on the GPU, {} on the CPU",
            i + 1,
            g.grad_norm,
            c.grad_norm
        );
        assert_eq!(g.lr, c.lr);
    }
}
