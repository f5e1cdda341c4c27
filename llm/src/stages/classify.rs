//! Classification: a class for each text, from the classification head on the pooled hidden
//! state (see [`crate::model::heads`]).
//!
//! A micro-batch is `batch_size` training examples drawn uniformly at random (with
//! replacement, so a resumed run draws exactly what it would have), right-padded; the loss is
//! the mean cross-entropy of their class logits. Evaluation reports loss and accuracy on the
//! validation set and on the first examples of the training set.

use crate::data::batch::Batch;
use crate::data::labelled::Labelled;
use crate::model::config::Config;
use crate::model::Model;
use crate::run::load;
use crate::tokenizer::Tokenizer;
use crate::train::objective::{check_examples, Loss, Metrics, Objective};
use crate::{Error, Result};
use autograd::no_grad;
use nn::Module;
use std::path::Path;
use tensor::{Device, Rng, Tensor};

/// The file of a classifier's run directory that names its classes, in head order.
pub const LABELS: &str = "labels.json";

/// An encoded example: at most `max_len` token ids and the class index.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// The text's first token ids (at least one).
    pub ids: Vec<u32>,
    /// The class, an index into the labels.
    pub class: u32,
}

/// Encodes labelled texts: each text's first `max_len` tokens, its label's index in `labels`.
/// An unknown label, or a text with no token, is an error naming the example.
pub fn encode(
    examples: &[Labelled],
    labels: &[String],
    tok: &dyn Tokenizer,
    max_len: usize,
) -> Result<Vec<Example>> {
    examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let class = labels.iter().position(|l| *l == e.label).ok_or_else(|| {
                Error::Invalid(format!(
                    "example {} has the label {:?}, which is not one of the model's ({})",
                    i + 1,
                    e.label,
                    labels.join(", ")
                ))
            })?;
            let mut ids = tok.encode(&e.text)?;
            if ids.is_empty() {
                return Err(Error::Invalid(format!("example {} has no text", i + 1)));
            }
            ids.truncate(max_len);
            Ok(Example {
                ids,
                class: class as u32,
            })
        })
        .collect()
}

/// Class logits and losses of `examples` under `model`, in batches of `batch`: one row of
/// logits per example, in order.
pub fn logits(
    model: &Model,
    examples: &[Example],
    batch: usize,
    pad: u32,
    device: Device,
) -> Result<Vec<Vec<f32>>> {
    let mut rows = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(batch.max(1)) {
        let ids: Vec<&[u32]> = chunk.iter().map(|e| e.ids.as_slice()).collect();
        let b = Batch::padded(&ids, pad);
        let out = no_grad(|| model.classify(&b.ids.to_device(device), &b.lengths))?;
        let k = out.dim(1);
        let flat = out.value().to_device(Device::Cpu).to_vec::<f32>();
        rows.extend(flat.chunks(k).map(<[f32]>::to_vec));
    }
    Ok(rows)
}

/// Accuracy, mean loss and confusion matrix of `model` on `examples`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Scores {
    /// The fraction of examples whose most likely class is their class.
    pub accuracy: f64,
    /// The number of examples.
    pub n: usize,
    /// Mean cross-entropy of the true classes.
    pub loss: f64,
    /// `confusion[true][predicted]`: counts of examples.
    pub confusion: Vec<Vec<usize>>,
}

/// Scores `model` on `examples` of `n_classes` classes.
pub fn score(
    model: &Model,
    examples: &[Example],
    n_classes: usize,
    batch: usize,
    pad: u32,
    device: Device,
) -> Result<Scores> {
    let rows = logits(model, examples, batch, pad, device)?;
    let mut confusion = vec![vec![0; n_classes]; n_classes];
    let mut loss = 0.0;
    for (row, e) in rows.iter().zip(examples) {
        let predicted = argmax(row);
        confusion[e.class as usize][predicted] += 1;
        loss += log_sum_exp(row) - f64::from(row[e.class as usize]);
    }
    let n = examples.len();
    let correct: usize = (0..n_classes).map(|k| confusion[k][k]).sum();
    Ok(Scores {
        accuracy: correct as f64 / n.max(1) as f64,
        n,
        loss: loss / n.max(1) as f64,
        confusion,
    })
}

/// The index of the first largest value.
pub fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best })
}

/// The softmax of a row of logits: the probability of each class.
pub fn probabilities(row: &[f32]) -> Vec<f64> {
    let lse = log_sum_exp(row);
    row.iter().map(|&v| (f64::from(v) - lse).exp()).collect()
}

/// `ln sum exp(row)`, computed stably.
fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    max + row
        .iter()
        .map(|&v| (f64::from(v) - max).exp())
        .sum::<f64>()
        .ln()
}

/// A trained classifier with its labels and the tokenizer that reads its texts.
pub struct Classifier {
    /// The model, with its classification head.
    pub model: Model,
    /// Its configuration.
    pub cfg: Config,
    /// The class names, in the head's order.
    pub labels: Vec<String>,
    /// The tokenizer it reads texts with.
    pub tok: Box<dyn Tokenizer>,
    /// Where the model lives.
    pub device: Device,
}

impl Classifier {
    /// The classifier of a run directory written by `llm classify train`, on `device`.
    pub fn load(dir: &Path, device: Device) -> Result<Classifier> {
        let (model, cfg, tok) = load::load_model(dir)?;
        if model.classifier.is_none() {
            return Err(Error::Invalid(format!(
                "{} holds no classifier (train one with `llm classify train`)",
                dir.display()
            )));
        }
        let path = dir.join(LABELS);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        let labels: Vec<String> =
            serde_json::from_str(&text).map_err(|e| Error::json(&path, &e))?;
        if labels.len() != cfg.n_classes {
            return Err(Error::Invalid(format!(
                "{} names {} labels for a head of {} classes",
                path.display(),
                labels.len(),
                cfg.n_classes
            )));
        }
        model.to_device(device)?;
        Ok(Classifier {
            model,
            cfg,
            labels,
            tok,
            device,
        })
    }

    /// `examples` encoded for this classifier: each text's first tokens up to its context.
    pub fn encode(&self, examples: &[Labelled]) -> Result<Vec<Example>> {
        encode(
            examples,
            &self.labels,
            self.tok.as_ref(),
            self.cfg.block_size,
        )
    }

    /// The id that fills padding (never read).
    pub fn pad(&self) -> u32 {
        self.tok.eot_token().unwrap_or(0)
    }

    /// The index of the class named `name`; an error lists the classes there are.
    pub fn class(&self, name: &str) -> Result<usize> {
        self.labels.iter().position(|l| l == name).ok_or_else(|| {
            Error::Invalid(format!(
                "the classifier has no class {name:?}; its classes are {}",
                self.labels.join(", ")
            ))
        })
    }

    /// The probability of class `class` for each of `texts` (each cut to the model's context),
    /// `batch` texts at a time. An empty text is an error.
    pub fn probability_of(&self, texts: &[String], class: usize, batch: usize) -> Result<Vec<f64>> {
        let label = &self.labels[class];
        let examples: Vec<Labelled> = texts
            .iter()
            .map(|t| Labelled {
                label: label.clone(),
                text: t.clone(),
            })
            .collect();
        let rows = logits(
            &self.model,
            &self.encode(&examples)?,
            batch,
            self.pad(),
            self.device,
        )?;
        Ok(rows.iter().map(|r| probabilities(r)[class]).collect())
    }
}

/// Training a classifier on encoded examples.
pub struct Classify {
    train: Vec<Example>,
    val: Vec<Example>,
    n_classes: usize,
    batch_size: usize,
    pad: u32,
    /// Training examples scored at each evaluation (the first ones).
    train_eval: usize,
}

impl Classify {
    /// A classifier over `n_classes` classes trained on `train`, evaluated on `val`, with the
    /// batch size of `cfg`; `pad` fills the padded positions (it is never read).
    pub fn new(
        train: Vec<Example>,
        val: Vec<Example>,
        n_classes: usize,
        cfg: &Config,
        pad: u32,
    ) -> Classify {
        Classify {
            train_eval: val
                .len()
                .max(cfg.batch_size * cfg.eval_iters)
                .min(train.len()),
            train,
            val,
            n_classes,
            batch_size: cfg.batch_size,
            pad,
        }
    }
}

impl Objective for Classify {
    fn check(&self, cfg: &Config) -> Result<()> {
        if self.train.is_empty() {
            return Err(Error::Invalid("there are no training examples".into()));
        }
        if cfg.n_classes != self.n_classes {
            return Err(Error::Config(format!(
                "the model has {} classes but the data {}",
                cfg.n_classes, self.n_classes
            )));
        }
        for (which, set) in [("training", &self.train), ("validation", &self.val)] {
            check_examples(which, set.iter().map(|e| e.ids.as_slice()), cfg)?;
        }
        Ok(())
    }

    fn loss(&mut self, model: &Model, rng: &mut Rng, device: Device) -> Result<Loss> {
        let picked: Vec<&Example> = (0..self.batch_size)
            .map(|_| &self.train[rng.below(self.train.len())])
            .collect();
        let ids: Vec<&[u32]> = picked.iter().map(|e| e.ids.as_slice()).collect();
        let batch = Batch::padded(&ids, self.pad);
        let classes: Vec<u32> = picked.iter().map(|e| e.class).collect();
        let classes = Tensor::from_vec(classes, &[picked.len()]).to_device(device);
        let logits = model.classify(&batch.ids.to_device(device), &batch.lengths)?;
        Ok(Loss {
            loss: logits.cross_entropy(&classes, None),
            units: picked.len(),
            metrics: Metrics::new(),
        })
    }

    fn evaluate(&mut self, model: &Model, _rng: &mut Rng, device: Device) -> Result<Metrics> {
        let train = score(
            model,
            &self.train[..self.train_eval],
            self.n_classes,
            self.batch_size,
            self.pad,
            device,
        )?;
        let mut metrics = vec![
            ("train_loss".to_string(), train.loss),
            ("train_accuracy".to_string(), train.accuracy),
        ];
        if !self.val.is_empty() {
            let val = score(
                model,
                &self.val,
                self.n_classes,
                self.batch_size,
                self.pad,
                device,
            )?;
            metrics.push(("val_loss".to_string(), val.loss));
            metrics.push(("val_accuracy".to_string(), val.accuracy));
        }
        Ok(metrics)
    }
}
