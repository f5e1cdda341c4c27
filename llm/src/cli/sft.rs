//! `llm sft`: supervised fine-tuning on prompt/answer pairs, from a pretrained model or from
//! scratch.

use llm::model::config::Config;
use llm::run::lock::RunLock;
use llm::run::{self, load};
use llm::stages::sft::{self, Sft};
use llm::tasks::{self, Problem};
use llm::tokenizer::{CharTokenizer, Tokenizer};
use llm::train::objective::Objective;
use llm::train::{driver, epoch_schedule, Trainer};
use llm::{Error, Result};
use nn::{Module, SharedRng};
use std::path::PathBuf;
use tensor::Device;

/// Train a model on prompt/answer pairs (supervised fine-tuning)
///
/// Data: JSON Lines of {"prompt", "answer"}, as `llm synth` writes them. Each example is the
/// prompt, the answer and the token that closes an answer (the tokenizer's end-of-text token,
/// or a newline for a character vocabulary), placed at the start of the context; the loss is
/// next-token cross-entropy over the answer and its closing token (with --no-mask-prompt, over
/// the prompt too). Every 20th problem (the 20th, 40th, ...) is held out for validation.
///
/// With --init-from the model and tokenizer are a pretrained run's (a fresh optimizer);
/// without it a new model of --preset/--config is trained from scratch over a character
/// vocabulary of the data's characters.
#[derive(clap::Args)]
pub struct Args {
    /// Prompt/answer pairs, JSON Lines.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// The run directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Start over in an --out that already holds a run (its files are deleted first).
    #[arg(long)]
    overwrite: bool,
    /// A pretrained run directory or Hugging Face GPT-2 directory to start from.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["preset", "config"])]
    init_from: Option<PathBuf>,
    /// Without --init-from: the preset of the new model [default: char-small].
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// Without --init-from: a JSON file of settings (nanoGPT's key names) over the preset's.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Put the prompt's tokens in the loss as well (by default only the answer's are).
    #[arg(long)]
    no_mask_prompt: bool,
    /// Passes over the training examples, 1 to 10,000.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = super::positive_at_most::<10_000>)]
    epochs: usize,
    /// Optimizer steps, 1 to 10,000,000 [default: --epochs passes over the training examples].
    #[arg(long, value_name = "N", value_parser = super::positive_at_most::<10_000_000>)]
    max_iters: Option<usize>,
    /// Examples per step, 1 to 4,096.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = super::positive_at_most::<4096>)]
    batch_size: usize,
    /// Peak learning rate (warmup then cosine decay to a tenth of it) [default: the preset's
    /// from scratch, 1e-4 from --init-from].
    #[arg(long, value_name = "LR")]
    lr: Option<f64>,
    /// Seed of the initial weights and the batches.
    #[arg(long, value_name = "S", default_value_t = 1337)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl Args {
    pub fn run(self) -> Result<()> {
        let device = Device::parse(&self.device)?;
        let problems = tasks::read_jsonl(&self.data)?;
        let (base, tok) = match &self.init_from {
            Some(dir) => load::base_config(dir)?,
            None => {
                let corpus: String = problems
                    .iter()
                    .flat_map(|p| [p.prompt.as_str(), p.answer.as_str()])
                    .chain(["\n"])
                    .collect();
                let tok: Box<dyn Tokenizer> = Box::new(CharTokenizer::from_corpus(&corpus)?);
                let cfg =
                    super::train::preset_with_file(self.preset.as_deref(), self.config.as_deref())?;
                (cfg, tok)
            }
        };
        let end = tasks::end_token(tok.as_ref()).ok_or_else(|| {
            Error::Invalid(
                "the tokenizer has no end-of-text token and no one-token newline to close answers"
                    .into(),
            )
        })?;
        let (train, val) = holdout(&problems);
        let held_out = val.len();
        let encode = |set: &[Problem]| sft::encode(set, tok.as_ref(), end, !self.no_mask_prompt);
        let (train, val) = (encode(&train)?, encode(&val)?);
        let cfg = self.config(&base, tok.vocab_size(), train.len())?;
        let mut objective = Sft::new(train, val, &cfg, end);
        objective.check(&cfg)?;
        let mut trainer = match &self.init_from {
            Some(dir) => {
                let model = load::init_from(dir, &cfg)?;
                Trainer::with_model(cfg.clone(), model, SharedRng::new(cfg.seed + 2), device)?
            }
            None => Trainer::new(cfg.clone(), device)?,
        };
        llm::data::create_out_dir(&self.out)?;
        let _lock = RunLock::acquire(&self.out)?;
        super::train::claim_run_dir(&self.out, self.overwrite)?;
        run::write_run_files(&self.out, &cfg, tok.as_ref())?;
        eprintln!(
            "training {} ({:.2}M parameters) on {} prompt/answer pairs ({} held out), {} for {} steps on {}; run directory {}",
            self.init_from
                .as_ref()
                .map_or("a new model".to_string(), |d| d.display().to_string()),
            trainer.model.num_params() as f64 / 1e6,
            problems.len(),
            held_out,
            if self.no_mask_prompt { "prompt and answer in the loss" } else { "answers alone in the loss" },
            cfg.max_iters,
            device.describe(),
            self.out.display()
        );
        driver::drive(&mut trainer, &mut objective, &self.out, false, "tok")?;
        Ok(())
    }

    /// The training configuration: the base's model with this command's schedule and batch.
    fn config(&self, base: &Config, vocab_size: usize, n_train: usize) -> Result<Config> {
        let lr = self.lr.unwrap_or(match self.init_from {
            Some(_) => 1e-4,
            None => base.learning_rate,
        });
        let per_epoch = n_train.div_ceil(self.batch_size);
        let steps = self.max_iters.unwrap_or(per_epoch * self.epochs);
        let vocab_size = match self.init_from {
            Some(_) => base.vocab_size,
            None => vocab_size,
        };
        let cfg = Config {
            vocab_size,
            ..epoch_schedule(base, lr, self.batch_size, steps, per_epoch, self.seed)
        };
        cfg.validate_resolved().map_err(|e| Error::Config(e.0))?;
        Ok(cfg)
    }
}

/// Training and validation problems: every 20th (indices 19, 39, ...) is held out.
fn holdout(problems: &[Problem]) -> (Vec<Problem>, Vec<Problem>) {
    let (val, train): (Vec<_>, Vec<_>) =
        problems.iter().enumerate().partition(|(i, _)| i % 20 == 19);
    let strip = |v: Vec<(usize, &Problem)>| v.into_iter().map(|(_, p)| p.clone()).collect();
    (strip(train), strip(val))
}
