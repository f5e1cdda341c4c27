//! `llm classify`: fine-tune a pretrained model into a text classifier, score it, and label
//! texts with it.

use llm::data::labelled::{self, labels_of, read_labelled, Labelled};
use llm::model::config::Config;
use llm::model::heads::Pool;
use llm::model::Model;
use llm::run::lock::RunLock;
use llm::run::{self, load};
use llm::stages::classify::{self, Classifier, Classify, LABELS};
use llm::train::objective::Objective;
use llm::train::{driver, epoch_schedule, trainable, Trainer};
use llm::{Error, Result};
use nn::{Module, SharedRng};
use std::path::{Path, PathBuf};
use tensor::Device;

/// Fine-tune a classifier, score it, or label texts with it
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    Train(TrainArgs),
    Eval(EvalArgs),
    Predict(PredictArgs),
}

impl Args {
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Train(a) => a.run(),
            Command::Eval(a) => a.run(),
            Command::Predict(a) => a.run(),
        }
    }
}

/// Which parameters fine-tuning trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Train {
    /// Every parameter.
    All,
    /// The last transformer block, the final layer norm and the head.
    LastBlock,
    /// The classification head alone.
    Head,
    /// LoRA adapters on every linear layer of the blocks, and the head.
    Lora,
}

/// The files a classifier's run directory adds beside its labels: the examples of each split.
const SPLITS: [&str; 3] = ["train", "val", "test"];

fn split_file(dir: &Path, split: &str) -> PathBuf {
    dir.join(format!("{split}.tsv"))
}

/// Fine-tune a pretrained model into a text classifier
///
/// The classification head reads one hidden state per text (the last real token's by
/// default) and is trained with the parameters --train selects. Labelled data: label<TAB>text
/// lines (the SMS Spam Collection), a TSV with a header naming `sentence` (or `text`) and
/// `label` (SST-2), or JSON Lines of {"text", "label"}. Without --val and --test, --data is
/// split 70/10/20 after balancing the classes (seeded), as in the spam chapter of "Build a
/// Large Language Model (From Scratch)"; the splits and labels are written into --out, so
/// `classify eval --split test` scores the same test set later.
#[derive(clap::Args)]
struct TrainArgs {
    /// The pretrained model: a run directory or a Hugging Face GPT-2 directory.
    #[arg(long, value_name = "DIR")]
    init_from: PathBuf,
    /// Labelled training data (split 70/10/20 unless --val and --test are given).
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Labelled validation data; with --test, --data is used whole for training.
    #[arg(long, value_name = "FILE", requires = "test")]
    val: Option<PathBuf>,
    /// Labelled test data; with --val, --data is used whole for training.
    #[arg(long, value_name = "FILE", requires = "val")]
    test: Option<PathBuf>,
    /// The run directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Start over in an --out that already holds a run (its files are deleted first).
    #[arg(long)]
    overwrite: bool,
    /// Which parameters to train.
    #[arg(long, value_enum, default_value = "last-block")]
    train: Train,
    /// Train exactly the parameters whose names match these patterns (`*` matches anything),
    /// instead of --train's choice; repeat for more.
    #[arg(long, value_name = "PATTERN")]
    trainable: Vec<String>,
    /// Rank of the LoRA adapters (with --train lora), 1 to 1,024.
    #[arg(long, value_name = "R", default_value_t = 16, value_parser = super::positive_at_most::<1024>)]
    lora_rank: usize,
    /// LoRA's alpha (the update is scaled by alpha / rank) [default: the rank].
    #[arg(long, value_name = "A")]
    lora_alpha: Option<f64>,
    /// Which hidden state stands for a text: last (its last token), position (the batch's last
    /// position), first, or mean.
    #[arg(long, default_value = "last")]
    pool: Pool,
    /// Passes over the training examples (0 scores the model before any fine-tuning).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = super::at_most::<10_000>)]
    epochs: usize,
    /// Examples per step, 1 to 4,096.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = super::positive_at_most::<4096>)]
    batch_size: usize,
    /// Peak learning rate of AdamW (warmup then cosine decay to a tenth of it) [default: by
    /// --train, the best of a small search on the spam validation split: all 5e-4,
    /// last-block 2e-3, head 1e-2, lora 2e-3].
    #[arg(long, value_name = "LR")]
    lr: Option<f64>,
    /// AdamW's weight decay on matrices.
    #[arg(long, value_name = "WD", default_value_t = 0.1)]
    weight_decay: f64,
    /// Tokens kept of each text (the first ones) [default: the model's context].
    #[arg(long, value_name = "N", value_parser = super::positive_at_most::<{ 1 << 20 }>)]
    max_len: Option<usize>,
    /// Keep every example when splitting, instead of cutting each class to the smallest's size.
    #[arg(long)]
    no_balance: bool,
    /// Seed of the split, the head's initial weights and the batches.
    #[arg(long, value_name = "S", default_value_t = 123)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl TrainArgs {
    fn run(self) -> Result<()> {
        let device = Device::parse(&self.device)?;
        let (base, tok) = load::base_config(&self.init_from)?;
        let split = self.split()?;
        let labels = labels_of(&split.train, &self.data)?;
        let max_len = self.max_len.unwrap_or(base.block_size).min(base.block_size);
        let encode = |set: &[Labelled]| classify::encode(set, &labels, tok.as_ref(), max_len);
        let (train, val, test) = (
            encode(&split.train)?,
            encode(&split.val)?,
            encode(&split.test)?,
        );
        let cfg = self.config(&base, labels.len(), train.len())?;
        let pad = tok.eot_token().unwrap_or(0);
        let mut objective = Classify::new(train, val, labels.len(), &cfg, pad);
        objective.check(&cfg)?;
        let model = load::init_from(&self.init_from, &cfg)?;
        let trained = trainable::train_only(&model, &self.trainable_patterns(&model))?;
        let mut trainer =
            Trainer::with_model(cfg.clone(), model, SharedRng::new(cfg.seed + 2), device)?;
        llm::data::create_out_dir(&self.out)?;
        let _lock = RunLock::acquire(&self.out)?;
        super::train::claim_run_dir(&self.out, self.overwrite)?;
        run::write_run_files(&self.out, &cfg, tok.as_ref())?;
        write_split(&self.out, &labels, &split)?;
        eprintln!(
            "fine-tuning {} ({:.2}M parameters, {:.2}M trained) as a classifier of {} on {} training and {} validation examples for {} steps on {}; run directory {}",
            self.init_from.display(),
            trainer.model.num_params() as f64 / 1e6,
            trained as f64 / 1e6,
            labels.join(" / "),
            split.train.len(),
            split.val.len(),
            cfg.max_iters,
            device.describe(),
            self.out.display()
        );
        driver::drive(&mut trainer, &mut objective, &self.out, false, "ex")?;
        let scores = classify::score(
            &trainer.model,
            &test,
            labels.len(),
            cfg.batch_size,
            pad,
            device,
        )?;
        eprintln!(
            "test accuracy {:.4} on {} examples (loss {:.4})",
            scores.accuracy, scores.n, scores.loss
        );
        Ok(())
    }

    /// The labelled examples of each split: --data, --val and --test as given, or --data
    /// split 70/10/20 (balanced unless --no-balance).
    fn split(&self) -> Result<labelled::Split> {
        let all = read_labelled(&self.data)?;
        match (&self.val, &self.test) {
            (Some(val), Some(test)) => Ok(labelled::Split {
                train: all,
                val: read_labelled(val)?,
                test: read_labelled(test)?,
            }),
            _ => Ok(labelled::split(all, !self.no_balance, self.seed)),
        }
    }

    /// The fine-tuning configuration: the base model's, with a classification head and the
    /// schedule, batch and regularisation of this command.
    fn config(&self, base: &Config, n_classes: usize, n_train: usize) -> Result<Config> {
        let lr = self.lr.unwrap_or(match self.train {
            Train::All => 5e-4,
            Train::LastBlock | Train::Lora => 2e-3,
            Train::Head => 1e-2,
        });
        let per_epoch = n_train.div_ceil(self.batch_size);
        let steps = per_epoch * self.epochs;
        let lora = self.train == Train::Lora;
        let cfg = Config {
            n_classes,
            pool: self.pool,
            lora_rank: if lora { self.lora_rank } else { 0 },
            lora_alpha: if lora {
                self.lora_alpha.unwrap_or(self.lora_rank as f64)
            } else {
                0.0
            },
            dropout: 0.0,
            weight_decay: self.weight_decay,
            ..epoch_schedule(base, lr, self.batch_size, steps, per_epoch, self.seed)
        };
        cfg.validate_resolved().map_err(|e| Error::Config(e.0))?;
        Ok(cfg)
    }

    /// The patterns of the parameters to train.
    fn trainable_patterns(&self, model: &Model) -> Vec<String> {
        if !self.trainable.is_empty() {
            return self.trainable.clone();
        }
        let head = "classifier.*".to_string();
        match self.train {
            Train::All => vec!["*".into()],
            Train::Head => vec![head],
            Train::Lora => vec![head, "*.lora_a".into(), "*.lora_b".into()],
            Train::LastBlock => {
                let mut patterns = vec![head];
                patterns.extend(model.last_block_patterns());
                patterns
            }
        }
    }
}

/// Writes the labels and the examples of each split into the run directory.
fn write_split(out: &Path, labels: &[String], split: &labelled::Split) -> Result<()> {
    let json = serde_json::to_string_pretty(labels).expect("labels serialize");
    run::write_atomically(&out.join(LABELS), json.as_bytes())?;
    for (name, set) in SPLITS.iter().zip([&split.train, &split.val, &split.test]) {
        run::write_atomically(&split_file(out, name), labelled::to_tsv(set).as_bytes())?;
    }
    Ok(())
}

/// Score a classifier: accuracy, loss and confusion matrix
#[derive(clap::Args)]
struct EvalArgs {
    /// A run directory written by `llm classify train`.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Labelled data to score (any shape `classify train` reads).
    #[arg(long, value_name = "FILE", conflicts_with = "split")]
    data: Option<PathBuf>,
    /// A split the run was trained with: train, val or test.
    #[arg(long, value_parser = ["train", "val", "test"])]
    split: Option<String>,
    /// Print {"accuracy": .., "n": .., "loss": .., "confusion": [[..]]} (rows: true labels,
    /// columns: predicted, both in the order of the run's labels).
    #[arg(long)]
    json: bool,
    /// Texts scored together, 1 to 4,096.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = super::positive_at_most::<4096>)]
    batch_size: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl EvalArgs {
    fn run(self) -> Result<()> {
        let device = Device::parse(&self.device)?;
        let path = match (&self.data, &self.split) {
            (Some(p), _) => p.clone(),
            (None, Some(s)) => split_file(&self.model, s),
            (None, None) => {
                return Err(Error::Invalid(
                    "say what to score: --data FILE or --split train|val|test".into(),
                ))
            }
        };
        score_file(&self.model, &path, self.batch_size, device, self.json)
    }
}

/// Scores the classifier in `dir` on the labelled texts of `path`, `batch` at a time, and
/// prints accuracy, loss and confusion matrix (as one JSON object with `json`).
pub fn score_file(dir: &Path, path: &Path, batch: usize, device: Device, json: bool) -> Result<()> {
    let c = Classifier::load(dir, device)?;
    let examples = c.encode(&read_labelled(path)?)?;
    let scores = classify::score(&c.model, &examples, c.labels.len(), batch, c.pad(), device)?;
    if json {
        let json = serde_json::to_string(&scores).expect("scores serialize");
        return super::print(&format!("{json}\n"));
    }
    let mut text = format!(
        "accuracy {:.4} on {} examples of {} (loss {:.4})\nconfusion (rows: true, columns: predicted; {}):\n",
        scores.accuracy,
        scores.n,
        path.display(),
        scores.loss,
        c.labels.join(", ")
    );
    for row in &scores.confusion {
        let cells: Vec<String> = row.iter().map(|n| format!("{n:>6}")).collect();
        text += &format!("{}\n", cells.join(""));
    }
    super::print(&text)
}

/// Label a text with a classifier
#[derive(clap::Args)]
struct PredictArgs {
    /// A run directory written by `llm classify train`.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// The text to label.
    #[arg(long, value_name = "TEXT")]
    text: String,
}

impl PredictArgs {
    fn run(self) -> Result<()> {
        let c = Classifier::load(&self.model, Device::Cpu)?;
        let any = c.labels[0].clone();
        let example = c.encode(&[Labelled {
            label: any,
            text: self.text.clone(),
        }])?;
        let row = &classify::logits(&c.model, &example, 1, c.pad(), Device::Cpu)?[0];
        let best = classify::argmax(row);
        let p = classify::probabilities(row)[best];
        super::print(&format!("{}\t{p:.4}\n", c.labels[best]))
    }
}
