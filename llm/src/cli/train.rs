//! `llm train`: train a model, checkpointing as it goes, and print a sample at the end.

use llm::data::{Meta, Split, TokenDataset};
use llm::generate::{generate, Generation, Sampling};
use llm::model::config::{self, Config};
use llm::run;
use llm::run::lock::RunLock;
use llm::run::source::{self, DataSource};
use llm::stages::pretrain::Pretrain;
use llm::tokenizer::{self, Special, Tokenizer};
use llm::train::objective::Objective;
use llm::train::{driver, Trainer};
use llm::{Error, Result, TINY_SHAKESPEARE};
use nn::Module;
use std::path::{Path, PathBuf};
use tensor::Device;

/// Train a language model
///
/// With no arguments, trains the default small character-level GPT (preset char-small) on Tiny
/// Shakespeare, which is built into the binary, and prints a sample at the end. Progress goes to
/// standard error; a log line per step goes to OUT/log.jsonl and the loss curve to
/// OUT/loss.svg. Ctrl-C finishes the current step, writes a checkpoint and exits. A run
/// directory is never reused by accident: a new run refuses one that holds a run (unless
/// --overwrite), and only one `llm train` at a time may use it.
#[derive(clap::Args)]
pub struct Args {
    /// A named configuration: char-small, bigram, shakespeare-char, stories-small or gpt2
    /// [default: char-small].
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// A JSON file of settings with nanoGPT's key names, overriding the preset's.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Training data: a directory written by `llm prepare`, or a text file (split 90/10 into
    /// training and validation text). Default: Tiny Shakespeare, character-level. A resumed run
    /// uses the data it was started with.
    #[arg(long, value_name = "DIR|FILE")]
    data: Option<PathBuf>,
    /// The tokenizer for a text file given with --data: char, gpt2, bpe:N (a byte-level BPE of N
    /// ids trained on the text), llama2c:FILE (a llama2.c tokenizer.bin) or a tokenizer file
    /// [default: char].
    #[arg(long, value_name = "char|gpt2|bpe:N|llama2c:FILE|PATH")]
    tokenizer: Option<String>,
    /// The run directory for checkpoints, the log and the loss curve [default: runs/PRESET].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Stop after this many steps (overrides the configuration's max_iters; with --resume,
    /// extends the run).
    #[arg(long, value_name = "N")]
    max_iters: Option<usize>,
    /// Micro-batches per step, 1 to 1,048,576 (overrides gradient_accumulation_steps).
    #[arg(long, value_name = "N", value_parser = super::positive_at_most::<{ 1 << 20 }>)]
    grad_accum: Option<usize>,
    /// Seed of the initial weights, batches and dropout (overrides the configuration's).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Continue the run in --out from its checkpoint, exactly where it stopped, on the data and
    /// with the configuration it was started with (--preset, --config and --seed are refused).
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Start a new run in an --out that already holds one: its configuration, tokenizer, data
    /// record, checkpoint, log and loss curve are deleted first.
    #[arg(long)]
    overwrite: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Characters of text to sample at the end (0 for none; at most 1,000,000).
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = super::at_most::<1_000_000>)]
    sample_chars: usize,
}

/// The preset of a run that names none.
const DEFAULT_PRESET: &str = "char-small";
/// The tokenizer of a text file when none is named.
const DEFAULT_TOKENIZER: &str = "char";

/// Tokenizer, training/validation sets, and where they came from.
struct Data {
    tokenizer: Box<dyn Tokenizer>,
    train: TokenDataset,
    val: Option<TokenDataset>,
    source: DataSource,
}

/// Encodes a text ([`tokenizer::encode_documents`]: each story after BOS for a llama2.c
/// tokenizer) and splits it 90/10 into training and validation tokens (as nanoGPT's data
/// preparation does).
fn split_text(
    text: &str,
    tokenizer: Box<dyn Tokenizer>,
    path: Option<PathBuf>,
    spec: &str,
) -> Result<Data> {
    let ids = tokenizer::encode_documents(tokenizer.as_ref(), text, Special::Allow)?;
    let cut = ids.len() * 9 / 10;
    Ok(Data {
        tokenizer,
        val: Some(TokenDataset::from_tokens(ids[cut..].to_vec())),
        train: TokenDataset::from_tokens(ids[..cut].to_vec()),
        source: DataSource {
            path,
            tokenizer: spec.to_string(),
            train_tokens: cut,
            fingerprint: source::fingerprint(text.as_bytes()),
        },
    })
}

/// Reads the training data: the built-in text (`path` None), a prepared directory or a text
/// file encoded by the tokenizer `spec`.
fn load_data(path: Option<&Path>, spec: &str) -> Result<Data> {
    let Some(path) = path else {
        let tok = tokenizer::resolve(DEFAULT_TOKENIZER, || Ok(TINY_SHAKESPEARE.to_string()))?;
        return split_text(TINY_SHAKESPEARE, tok, None, DEFAULT_TOKENIZER);
    };
    let absolute = std::path::absolute(path).map_err(|e| Error::io("resolve", path, e))?;
    if path.is_dir() {
        let meta = Meta::read(path)?;
        let meta_path = path.join("meta.json");
        let meta_bytes = std::fs::read(&meta_path).map_err(|e| Error::io("read", &meta_path, e))?;
        let train = TokenDataset::open_split(path, Split::Train)?;
        // No val.bin, or an empty one (`--val-fraction 0`), means no validation split; a
        // val.bin that cannot be read is an error, not a silent run without validation.
        let val_path = path.join(Split::Val.file_name());
        let val = match std::fs::metadata(&val_path) {
            Ok(m) if m.len() > 0 => Some(TokenDataset::open_split(path, Split::Val)?),
            _ => None,
        };
        return Ok(Data {
            tokenizer: meta.tokenizer()?,
            source: DataSource {
                path: Some(absolute),
                tokenizer: spec.to_string(),
                train_tokens: train.len(),
                fingerprint: source::fingerprint(&meta_bytes),
            },
            train,
            val,
        });
    }
    let text = llm::data::read_text(path)?;
    let tok = match spec.strip_prefix("bpe:") {
        Some(size) => bpe_on(&text, size)?,
        None => tokenizer::resolve(spec, || Ok(text.clone()))?,
    };
    split_text(&text, tok, Some(absolute), spec)
}

/// A byte-level BPE of `size` ids (GPT-2's split pattern, `<|endoftext|>` special) trained on
/// `text`: `--tokenizer bpe:N`. Deterministic, so a resumed run trains the same one.
fn bpe_on(text: &str, size: &str) -> Result<Box<dyn Tokenizer>> {
    let size: usize = size
        .parse()
        .ok()
        .filter(|n| (257..=1 << 22).contains(n))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "--tokenizer bpe:{size}: the size must be a whole number from 257 to 4194304"
            ))
        })?;
    let specials = [llm::tokenizer::ENDOFTEXT.to_string()];
    let tok =
        llm::tokenizer::BpeTokenizer::train(text, size, llm::tokenizer::Pattern::Gpt2, &specials)?;
    Ok(Box::new(tok))
}

impl Args {
    /// The data to train on: for a resumed run, the data it recorded (refusing a different
    /// --data or --tokenizer); else --data and --tokenizer.
    fn data(&self, out: &Path) -> Result<Data> {
        let spec = self.tokenizer.as_deref().unwrap_or(DEFAULT_TOKENIZER);
        if !self.resume {
            return load_data(self.data.as_deref(), spec);
        }
        let Some(recorded) = DataSource::read(out)? else {
            eprintln!(
                "warning: {} has no record of its training data (it predates {}); resuming on {}",
                out.display(),
                source::DATA,
                self.data
                    .as_ref()
                    .map_or("the built-in Tiny Shakespeare".into(), |p| p
                        .display()
                        .to_string())
            );
            return load_data(self.data.as_deref(), spec);
        };
        let data = load_data(recorded.path.as_deref(), &recorded.tokenizer)?;
        if let Some(given) = &self.data {
            let given = std::path::absolute(given).map_err(|e| Error::io("resolve", given, e))?;
            if recorded.path.as_ref() != Some(&given) {
                return Err(Error::Invalid(format!(
                    "--data {} is not the data of the run in {} ({}); omit --data to resume on the run's data",
                    given.display(),
                    out.display(),
                    recorded.describe()
                )));
            }
        }
        if let Some(given) = self
            .tokenizer
            .as_ref()
            .filter(|t| **t != recorded.tokenizer)
        {
            return Err(Error::Invalid(format!(
                "--tokenizer {given} is not the tokenizer of the run in {} ({}); omit --tokenizer to resume with the run's",
                out.display(),
                recorded.tokenizer
            )));
        }
        recorded.check_unchanged(&data.source, out)?;
        Ok(data)
    }

    /// Refuses the flags that a resumed run cannot honour: it keeps its configuration and seed.
    fn check_resume_flags(&self) -> Result<()> {
        let refused = [
            (self.preset.is_some(), "--preset"),
            (self.config.is_some(), "--config"),
            (self.seed.is_some(), "--seed"),
        ];
        match refused.iter().find(|(given, _)| *given) {
            Some((_, flag)) => Err(Error::Invalid(format!(
                "{flag} cannot be used with --resume: a resumed run keeps the configuration and seed it was started with"
            ))),
            None => Ok(()),
        }
    }

    fn config(&self, out: &Path, vocab_size: usize) -> Result<Config> {
        let mut cfg = if self.resume {
            run::read_config(out)?
        } else {
            preset_with_file(self.preset.as_deref(), self.config.as_deref())?
        };
        if let Some(n) = self.max_iters {
            cfg.max_iters = n;
        }
        if let Some(n) = self.grad_accum {
            cfg.gradient_accumulation_steps = n;
        }
        if let Some(s) = self.seed {
            cfg.seed = s;
        }
        if cfg.vocab_size == 0 {
            cfg.vocab_size = vocab_size;
        } else if cfg.vocab_size < vocab_size {
            return Err(Error::Config(format!(
                "vocab_size {} is smaller than the tokenizer's vocabulary of {vocab_size}",
                cfg.vocab_size
            )));
        }
        cfg.validate().map_err(|e| Error::Config(e.0))?;
        Ok(cfg)
    }

    /// Trains, checkpoints and samples.
    pub fn run(self) -> Result<()> {
        let device = Device::parse(&self.device)?;
        let out = self.out.clone().unwrap_or_else(|| {
            PathBuf::from("runs").join(self.preset.as_deref().unwrap_or(DEFAULT_PRESET))
        });
        if self.resume {
            self.check_resume_flags()?;
            if !out.join(run::CHECKPOINT).is_file() {
                return Err(Error::Invalid(format!(
                    "{} holds no checkpoint to resume from",
                    out.display()
                )));
            }
        }
        let mut data = self.data(&out)?;
        let cfg = self.config(&out, data.tokenizer.vocab_size())?;
        check_splits(&mut data, &cfg)?;
        let mut objective = Pretrain::new(data.train, data.val, &cfg);
        objective.check(&cfg)?;
        // The trainer first: a device that cannot be used fails before anything is written.
        let mut trainer = Trainer::new(cfg.clone(), device)?;
        llm::data::create_out_dir(&out)?;
        let _lock = RunLock::acquire(&out)?;
        if self.resume {
            trainer.restore(&out)?;
            eprintln!("resuming {} at step {}", out.display(), trainer.step);
        } else {
            claim_run_dir(&out, self.overwrite)?;
            run::write_run_files(&out, &cfg, data.tokenizer.as_ref())?;
            data.source.write(&out)?;
        }
        eprintln!(
            "training {:?} ({:.2}M parameters) for {} steps of {} tokens on {}; data {}; run directory {}",
            cfg.model,
            nn::Module::num_params(&trainer.model) as f64 / 1e6,
            cfg.max_iters,
            cfg.tokens_per_step(),
            device.describe(),
            data.source.describe(),
            out.display()
        );
        let outcome = driver::drive(&mut trainer, &mut objective, &out, self.resume, "tok")?;
        if outcome.interrupted {
            eprintln!("continue with: {}", self.resume_command(&out));
        } else if self.sample_chars > 0 {
            // The last step left the model in training mode: sample with dropout off.
            trainer.model.eval();
            print_sample(&trainer, data.tokenizer.as_ref(), self.sample_chars)?;
        }
        Ok(())
    }

    /// The command that continues this run: the run directory records everything else.
    fn resume_command(&self, out: &Path) -> String {
        let device = match self.device.as_str() {
            "cpu" => String::new(),
            d => format!(" --device {d}"),
        };
        format!("llm train --out {} --resume{device}", out.display())
    }
}

/// The preset `name` (default char-small) with the settings of the JSON file `file` (nanoGPT's
/// key names) over it.
pub fn preset_with_file(name: Option<&str>, file: Option<&Path>) -> Result<Config> {
    let preset = Config::preset(name.unwrap_or(DEFAULT_PRESET)).map_err(|e| Error::Config(e.0))?;
    let Some(path) = file else {
        return Ok(preset);
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let json = config::parse_object(&text).map_err(|e| Error::json(path, &e))?;
    if let Some(why) = config::other_family(&json) {
        return Err(Error::Config(format!("{}: {why}", path.display())));
    }
    preset
        .with_overrides(
            &serde_json::Value::Object(json),
            &path.display().to_string(),
        )
        .map_err(|e| Error::Config(e.0))
}

/// Makes `out` ready for a new run: refuses a directory that holds a run, or, with
/// `overwrite`, deletes that run's files (nothing else in the directory).
pub fn claim_run_dir(out: &Path, overwrite: bool) -> Result<()> {
    if !run::holds_run(out) {
        return Ok(());
    }
    if !overwrite {
        return Err(Error::Invalid(format!(
            "{} already holds a run; continue it with --resume, or start over with --overwrite (which deletes its checkpoint and log)",
            out.display()
        )));
    }
    for f in run::RUN_FILES {
        let path = out.join(f);
        if path.exists() {
            std::fs::remove_file(&path).map_err(|e| Error::io("delete", &path, e))?;
        }
    }
    Ok(())
}

/// Checks, before anything is written, that the training split holds one window of
/// `block_size + 1` tokens; drops a validation split that does not, with a warning.
fn check_splits(data: &mut Data, cfg: &Config) -> Result<()> {
    let window = cfg.block_size + 1;
    if data.train.len() < window {
        return Err(Error::Invalid(format!(
            "the training split of {} has {} tokens, fewer than one window of block_size + 1 = {window}",
            data.source.describe(),
            data.train.len()
        )));
    }
    if let Some(val) = data.val.as_ref().filter(|v| v.len() < window) {
        eprintln!(
            "warning: the validation split of {} has {} tokens, fewer than one window of block_size + 1 = {window}; evaluating on the training split only",
            data.source.describe(),
            val.len()
        );
        data.val = None;
    }
    Ok(())
}

/// Prints about `chars` characters sampled from the trained model to standard output.
fn print_sample(trainer: &Trainer, tokenizer: &dyn Tokenizer, chars: usize) -> Result<()> {
    let prompt = tokenizer
        .eot_token()
        .map_or_else(|| tokenizer.encode("\n"), |eot| Ok(vec![eot]))?;
    let g = Generation {
        max_new_tokens: chars,
        sampling: Sampling {
            temperature: 0.8,
            top_k: Some(200),
            top_p: None,
        },
        stop_token: None,
        seed: trainer.cfg.seed,
        vocab_limit: Some(tokenizer.vocab_size()),
    };
    eprintln!("sample:");
    let ids = generate(&trainer.model, &prompt, &g, |_| {});
    let mut text = String::from_utf8_lossy(&tokenizer.decode_bytes(&ids)?).into_owned();
    if let Some((cut, _)) = text.char_indices().nth(chars) {
        text.truncate(cut);
    }
    super::print(&format!("{text}\n"))
}
