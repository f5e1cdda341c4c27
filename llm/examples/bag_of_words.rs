//! A baseline for the classifiers of `llm classify`: logistic regression on bags of words,
//! written with this project's tensors, autograd and AdamW.
//!
//! It reads a classifier's run directory (its `train.tsv`, `val.tsv`, `test.tsv`, `labels.json`
//! and `tokenizer.json`), so it sees the very split the fine-tuned model saw. A text becomes the
//! vector of its token counts divided by its length; a linear layer maps it to class logits.
//!
//! ```text
//! cargo run --release -p llm --example bag_of_words -- RUN_DIR [EPOCHS] [SEED]
//! ```

use autograd::Var;
use llm::data::labelled::read_labelled;
use llm::tokenizer::Tokenizer;
use nn::optim::{AdamW, AdamWConfig, Optimizer};
use nn::{Linear, Module};
use std::path::Path;
use tensor::{DType, Rng, Tensor};

/// Texts of a split as rows of normalized token counts, and their classes.
fn features(dir: &Path, split: &str, labels: &[String], tok: &dyn Tokenizer) -> (Tensor, Tensor) {
    let examples = read_labelled(&dir.join(format!("{split}.tsv"))).expect("a split file");
    let v = tok.vocab_size();
    let mut rows = vec![0f32; examples.len() * v];
    let mut classes = vec![];
    for (i, e) in examples.iter().enumerate() {
        let ids = tok.encode(&e.text).expect("encodable text");
        for &id in &ids {
            rows[i * v + id as usize] += 1.0 / ids.len().max(1) as f32;
        }
        classes.push(
            labels
                .iter()
                .position(|l| *l == e.label)
                .expect("a known label") as u32,
        );
    }
    (
        Tensor::from_vec(rows, &[examples.len(), v]),
        Tensor::from_vec(classes, &[examples.len()]),
    )
}

fn accuracy(model: &Linear, x: &Tensor, y: &Tensor) -> f64 {
    let logits = model.forward(&Var::constant(x.clone())).value();
    let predicted = logits.argmax(1, false).to_vec::<u32>();
    let truth = y.to_vec::<u32>();
    let right = predicted.iter().zip(&truth).filter(|(p, t)| p == t).count();
    right as f64 / truth.len() as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(
        args.first()
            .expect("usage: bag_of_words RUN_DIR [EPOCHS] [SEED]"),
    );
    let epochs: usize = args.get(1).map_or(200, |e| e.parse().expect("EPOCHS"));
    let seed: u64 = args.get(2).map_or(123, |s| s.parse().expect("SEED"));
    let tok = llm::run::read_tokenizer(dir).expect("the run's tokenizer");
    let labels: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("labels.json")).expect("labels.json"),
    )
    .expect("a list of labels");
    let (x, y) = features(dir, "train", &labels, tok.as_ref());
    let (vx, vy) = features(dir, "val", &labels, tok.as_ref());
    let (tx, ty) = features(dir, "test", &labels, tok.as_ref());
    let model = Linear::new(
        tok.vocab_size(),
        labels.len(),
        true,
        0.01,
        &mut Rng::new(seed),
    );
    let mut opt = AdamW::new(
        model.named_params(),
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        },
    );
    let input = Var::constant(x.to_dtype(DType::F32));
    let started = std::time::Instant::now();
    for _ in 0..epochs {
        // Full-batch gradient steps: the training set is a thousand rows.
        let loss = model.forward(&input).cross_entropy(&y, None);
        loss.backward();
        opt.step(0.05).expect("an AdamW step");
        opt.zero_grad();
    }
    println!(
        "bag of words, {} epochs, seed {seed}: train {:.4}, val {:.4}, test {:.4} ({} test examples, {:.1} s)",
        epochs,
        accuracy(&model, &x, &y),
        accuracy(&model, &vx, &vy),
        accuracy(&model, &tx, &ty),
        ty.numel(),
        started.elapsed().as_secs_f64()
    );
}
