//! Training: PyTorch parity, exact resume, stopping on a non-finite loss, and a golden run.

use llm::data::TokenDataset;
use llm::model::config::Config;
use llm::run;
use llm::stages::pretrain::Pretrain;
use llm::train::Trainer;
use llm::Error;
use nn::state_dict;
use nn::Module;
use std::path::Path;
use tensor::{Device, Tensor};

const PARITY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/train-parity.safetensors"
);

/// The configuration tests/fixtures/make_train_parity_fixture.py trains in PyTorch.
fn parity_config() -> Config {
    Config {
        vocab_size: 65,
        block_size: 16,
        n_layer: 2,
        n_head: 4,
        n_embd: 32,
        dropout: 0.0,
        bias: false,
        batch_size: 4,
        learning_rate: 1e-2,
        min_lr: 1e-3,
        warmup_iters: 5,
        lr_decay_iters: 20,
        max_iters: 20,
        weight_decay: 0.1,
        beta1: 0.9,
        beta2: 0.99,
        grad_clip: 1.0,
        ..Config::char_small()
    }
}

#[test]
fn twenty_adamw_steps_match_pytorch() {
    let dict = state_dict::load(PARITY).unwrap();
    let mut trainer = Trainer::new(parity_config(), Device::Cpu).unwrap();
    for (name, var) in trainer.model.named_params() {
        var.set_value(
            dict.get(&name)
                .unwrap_or_else(|| panic!("fixture lacks {name}")),
        );
    }
    let batches = dict.tensor("batches").unwrap().to_dtype(tensor::DType::U32);
    let want = dict.tensor("losses").unwrap().to_vec::<f64>();
    for (step, &expected) in want.iter().enumerate() {
        let batch = batches.select(0, step);
        let (x, y) = (
            batch.narrow(1, 0, 16).contiguous(),
            batch.narrow(1, 1, 16).contiguous(),
        );
        let got = trainer.step_on(&[(x, y)]).unwrap().loss;
        assert!(
            (got - expected).abs() <= 1e-4 * expected,
            "step {step}: loss {got}, PyTorch {expected}"
        );
    }
}

/// A trainer and the pretraining objective it steps on.
struct Run {
    trainer: Trainer,
    data: Pretrain,
}

impl std::ops::Deref for Run {
    type Target = Trainer;
    fn deref(&self) -> &Trainer {
        &self.trainer
    }
}

impl std::ops::DerefMut for Run {
    fn deref_mut(&mut self) -> &mut Trainer {
        &mut self.trainer
    }
}

impl Run {
    fn train_step(&mut self) -> llm::Result<llm::train::StepStats> {
        self.trainer.train_step(&mut self.data)
    }
}

/// A small run over a fixed token stream.
fn small_trainer(max_iters: usize, dropout: f64) -> Run {
    let text: Vec<u32> = (0..5000u32).map(|i| (i * 7 + i / 13) % 20).collect();
    let cfg = Config {
        vocab_size: 20,
        block_size: 16,
        n_layer: 2,
        n_head: 2,
        n_embd: 16,
        dropout,
        batch_size: 4,
        gradient_accumulation_steps: 2,
        warmup_iters: 3,
        lr_decay_iters: max_iters,
        max_iters,
        seed: 7,
        ..Config::char_small()
    };
    let val = TokenDataset::from_tokens(text[4000..].to_vec());
    let data = Pretrain::new(
        TokenDataset::from_tokens(text[..4000].to_vec()),
        Some(val),
        &cfg,
    );
    Run {
        trainer: Trainer::new(cfg, Device::Cpu).unwrap(),
        data,
    }
}

fn losses(run: &mut Run, steps: usize) -> Vec<f64> {
    (0..steps).map(|_| run.train_step().unwrap().loss).collect()
}

#[test]
fn resuming_reproduces_an_uninterrupted_run_bit_for_bit() {
    // With dropout, so the dropout generator's state is part of what must be restored.
    let straight = losses(&mut small_trainer(20, 0.1), 20);
    let dir = tempfile::tempdir().unwrap();
    let mut first = small_trainer(20, 0.1);
    let mut resumed_losses = losses(&mut first, 10);
    first.save(dir.path()).unwrap();
    drop(first);
    let mut second = small_trainer(20, 0.1);
    second.restore(dir.path()).unwrap();
    assert_eq!(second.step, 10);
    resumed_losses.extend(losses(&mut second, 10));
    assert_eq!(straight, resumed_losses);
}

#[test]
fn a_non_finite_loss_stops_with_the_step_named() {
    let mut trainer = small_trainer(10, 0.0);
    trainer.train_step().unwrap();
    // Poison a weight: the next loss is NaN.
    let w = &trainer.model.named_params()[0].1;
    w.set_value(w.value().affine(0.0, f64::NAN));
    let err = trainer.train_step().unwrap_err();
    assert!(matches!(err, Error::NonFiniteLoss { step: 2, .. }), "{err}");
    assert!(err.to_string().contains("step 2"), "{err}");
}

#[test]
fn checkpoints_are_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let mut trainer = small_trainer(4, 0.0);
    losses(&mut trainer, 2);
    trainer.save(dir.path()).unwrap();
    losses(&mut trainer, 2);
    trainer.save(dir.path()).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![run::CHECKPOINT.to_string()],
        "no temporary files left behind"
    );
    let mut restored = small_trainer(4, 0.0);
    restored.restore(dir.path()).unwrap();
    assert_eq!(restored.step, 4);
    // A truncated checkpoint is an error naming the file, not a panic.
    let path = dir.path().join(run::CHECKPOINT);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = small_trainer(4, 0.0)
        .restore(dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
}

#[test]
fn gradient_accumulation_equals_one_big_batch() {
    // Two micro-batches of 2 rows with loss/2 each give the gradient of one batch of 4 rows.
    let rows: Vec<u32> = (0..4 * 17).map(|i| (i * 5 % 20) as u32).collect();
    let batch = Tensor::from_vec(rows, &[4, 17]);
    let (x, y) = (
        batch.narrow(1, 0, 16).contiguous(),
        batch.narrow(1, 1, 16).contiguous(),
    );
    let mut one = small_trainer(5, 0.0);
    let mut two = small_trainer(5, 0.0);
    let a = one.step_on(&[(x.clone(), y.clone())]).unwrap();
    let halves = |t: &Tensor, i: usize| t.narrow(0, 2 * i, 2).contiguous();
    let b = two
        .step_on(&[
            (halves(&x, 0), halves(&y, 0)),
            (halves(&x, 1), halves(&y, 1)),
        ])
        .unwrap();
    assert!(
        (a.loss - b.loss).abs() < 1e-6 && (a.grad_norm - b.grad_norm).abs() < 1e-5 * a.grad_norm
    );
    for ((n, p), (_, q)) in one
        .model
        .named_params()
        .iter()
        .zip(two.model.named_params())
    {
        let (p, q) = (p.value().to_vec::<f32>(), q.value().to_vec::<f32>());
        assert!(
            p.iter().zip(&q).all(|(u, v)| (u - v).abs() < 1e-5),
            "{n} differs after the step"
        );
    }
}

#[allow(dead_code)]
fn run_dir(p: &Path) -> &Path {
    p
}
