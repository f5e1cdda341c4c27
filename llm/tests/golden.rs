//! The golden run: a tiny GPT (under 300K parameters) trained from a fixed seed on Tiny
//! Shakespeare must reproduce the committed loss sequence and greedy sample. Any change to
//! the numerics of the stack that moves a loss by more than 1e-4 (relative) or changes the
//! sample shows up here.
//!
//! After a deliberate numerical change, regenerate the expectations with
//! `LLM_UPDATE_GOLDEN=1 cargo test -p llm --test golden` and review the diff.

use llm::data::TokenDataset;
use llm::generate::{generate, Generation, Sampling};
use llm::model::config::Config;
use llm::stages::pretrain::Pretrain;
use llm::tokenizer::{CharTokenizer, Tokenizer};
use llm::train::Trainer;
use nn::Module;
use tensor::Device;

const STEPS: usize = 200;
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/golden.json");

#[derive(serde::Serialize, serde::Deserialize)]
struct Golden {
    losses: Vec<f64>,
    sample: String,
}

fn run() -> Golden {
    let tok = CharTokenizer::from_corpus(llm::TINY_SHAKESPEARE).unwrap();
    let ids = tok.encode(llm::TINY_SHAKESPEARE).unwrap();
    let cfg = Config {
        vocab_size: tok.vocab_size(),
        block_size: 64,
        n_layer: 2,
        n_head: 2,
        n_embd: 64,
        batch_size: 16,
        learning_rate: 1e-2,
        min_lr: 1e-3,
        warmup_iters: 10,
        lr_decay_iters: STEPS,
        max_iters: STEPS,
        seed: 2024,
        ..Config::char_small()
    };
    let mut data = Pretrain::new(TokenDataset::from_tokens(ids), None, &cfg);
    let mut trainer = Trainer::new(cfg, Device::Cpu).unwrap();
    assert!(trainer.model.num_params() < 300_000);
    let losses = (0..STEPS)
        .map(|_| trainer.train_step(&mut data).unwrap().loss)
        .collect();
    let g = Generation {
        max_new_tokens: 80,
        sampling: Sampling::GREEDY,
        stop_token: None,
        seed: 0,
        vocab_limit: None,
    };
    let out = generate(&trainer.model, &tok.encode("ROMEO:\n").unwrap(), &g, |_| {});
    Golden {
        losses,
        sample: tok.decode(&out).unwrap(),
    }
}

#[test]
fn tiny_model_reproduces_the_committed_run() {
    let got = run();
    if std::env::var_os("LLM_UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        return;
    }
    let want: Golden = serde_json::from_str(&std::fs::read_to_string(GOLDEN).unwrap()).unwrap();
    assert_eq!(got.losses.len(), want.losses.len());
    for (step, (g, w)) in got.losses.iter().zip(&want.losses).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * w,
            "step {}: loss {g}, committed {w}",
            step + 1
        );
    }
    assert_eq!(got.sample, want.sample);
    assert!(
        want.losses[STEPS - 1] < want.losses[0] - 1.5,
        "the committed run should learn something"
    );
}
