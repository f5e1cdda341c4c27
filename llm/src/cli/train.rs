//! `llm train`: train a model, checkpointing as it goes, and print a sample at the end.

use llm::data::{Meta, Split, TokenDataset};
use llm::generate::{generate, Generation, Sampling};
use llm::model::config::Config;
use llm::tokenizer::{self, Special, Tokenizer};
use llm::train::checkpoint;
use llm::train::log::{History, TrainLog};
use llm::train::plot::{loss_curve_svg, Series};
use llm::train::{LossEstimate, Trainer};
use llm::{Error, Result, TINY_SHAKESPEARE};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tensor::Device;

/// Train a language model
///
/// With no arguments, trains the default small character-level GPT (preset char-small) on Tiny
/// Shakespeare, which is built into the binary, and prints a sample at the end. Progress goes to
/// standard error; a log line per step goes to OUT/log.jsonl and the loss curve to
/// OUT/loss.svg. Ctrl-C finishes the current step, writes a checkpoint and exits.
#[derive(clap::Args)]
pub struct Args {
    /// A named configuration: char-small, bigram, shakespeare-char or gpt2.
    #[arg(long, value_name = "NAME", default_value = "char-small")]
    preset: String,
    /// A JSON file of settings with nanoGPT's key names, overriding the preset's.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Training data: a directory written by `llm prepare`, or a text file (split 90/10 into
    /// training and validation text). Default: Tiny Shakespeare, character-level.
    #[arg(long, value_name = "DIR|FILE")]
    data: Option<PathBuf>,
    /// The tokenizer for a text file given with --data: char, gpt2 or a tokenizer file.
    #[arg(long, value_name = "char|gpt2|PATH", default_value = "char")]
    tokenizer: String,
    /// The run directory for checkpoints, the log and the loss curve [default: runs/PRESET].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Stop after this many steps (overrides the configuration's max_iters).
    #[arg(long, value_name = "N")]
    max_iters: Option<usize>,
    /// Micro-batches per step (overrides gradient_accumulation_steps).
    #[arg(long, value_name = "N")]
    grad_accum: Option<usize>,
    /// Seed of the initial weights, batches and dropout (overrides the configuration's).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Continue the run in --out from its checkpoint, exactly where it stopped.
    #[arg(long)]
    resume: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Characters of text to sample at the end (0 for none).
    #[arg(long, value_name = "N", default_value_t = 300)]
    sample_chars: usize,
}

/// Tokenizer and training/validation sets.
struct Data {
    tokenizer: Box<dyn Tokenizer>,
    train: TokenDataset,
    val: Option<TokenDataset>,
}

/// Encodes a text and splits it 90/10 into training and validation tokens (as nanoGPT's
/// data preparation does).
fn split_text(text: &str, tokenizer: Box<dyn Tokenizer>) -> Result<Data> {
    let ids = tokenizer::encode_parallel(tokenizer.as_ref(), text, Special::Allow)?;
    let cut = ids.len() * 9 / 10;
    Ok(Data {
        tokenizer,
        val: Some(TokenDataset::from_tokens(ids[cut..].to_vec())),
        train: TokenDataset::from_tokens(ids[..cut].to_vec()),
    })
}

impl Args {
    fn load_data(&self) -> Result<Data> {
        let Some(path) = &self.data else {
            let tok = tokenizer::resolve("char", || Ok(TINY_SHAKESPEARE.to_string()))?;
            return split_text(TINY_SHAKESPEARE, tok);
        };
        if path.is_dir() {
            let meta = Meta::read(path)?;
            let val = TokenDataset::open_split(path, Split::Val)
                .ok()
                .filter(|v| !v.is_empty());
            return Ok(Data {
                tokenizer: meta.tokenizer()?,
                train: TokenDataset::open_split(path, Split::Train)?,
                val,
            });
        }
        let text = llm::data::read_text(path)?;
        let tok = tokenizer::resolve(&self.tokenizer, || Ok(text.clone()))?;
        split_text(&text, tok)
    }

    fn config(&self, out: &Path, vocab_size: usize) -> Result<Config> {
        let mut cfg = if self.resume {
            checkpoint::read_config(out)?
        } else {
            let preset = Config::preset(&self.preset).map_err(|e| Error::Config(e.0))?;
            match &self.config {
                None => preset,
                Some(path) => {
                    let text =
                        std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
                    let json: serde_json::Value =
                        serde_json::from_str(&text).map_err(|e| Error::json(path, &e))?;
                    preset
                        .with_overrides(&json, &path.display().to_string())
                        .map_err(|e| Error::Config(e.0))?
                }
            }
        };
        if let Some(n) = self.max_iters {
            cfg.max_iters = n;
        }
        if let Some(n) = self.grad_accum {
            cfg.gradient_accumulation_steps = n;
        }
        if let Some(s) = self.seed.filter(|_| !self.resume) {
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
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs").join(&self.preset));
        let data = self.load_data()?;
        let cfg = self.config(&out, data.tokenizer.vocab_size())?;
        let mut trainer = Trainer::new(cfg.clone(), data.train, data.val, device)?;
        if self.resume {
            checkpoint::restore(&out, &mut trainer)?;
            eprintln!("resuming {} at step {}", out.display(), trainer.step);
        } else {
            checkpoint::write_run_files(&out, &cfg, data.tokenizer.as_ref())?;
        }
        let (mut log, mut history) = TrainLog::open(&out, self.resume.then_some(trainer.step))?;
        let n_params = nn::Module::num_params(&trainer.model);
        eprintln!(
            "training {:?} ({:.2}M parameters) for {} steps of {} tokens on {}; run directory {}",
            cfg.model,
            n_params as f64 / 1e6,
            cfg.max_iters,
            cfg.tokens_per_step(),
            device.describe(),
            out.display()
        );
        let interrupted = interrupt_flag();
        let progress = progress_bar(cfg.max_iters, trainer.step);
        let started = std::time::Instant::now();
        let first_step = trainer.step;
        while trainer.step < cfg.max_iters && !interrupted.load(Ordering::Relaxed) {
            if cfg.eval_interval > 0 && trainer.step % cfg.eval_interval == 0 {
                evaluate(&mut trainer, &mut log, &mut history, &progress)?;
            }
            let s = trainer.train_step().inspect_err(|_| progress.abandon())?;
            log.step(&s)?;
            history.train.push((s.step, s.loss));
            progress.set_position(s.step as u64);
            progress.set_message(format!(
                "loss {:.4} | lr {:.2e} | {:.0} tok/s",
                s.loss, s.lr, s.tok_per_s
            ));
            if cfg.checkpoint_interval > 0 && s.step % cfg.checkpoint_interval == 0 {
                save(&out, &trainer, &history)?;
            }
        }
        let was_interrupted = interrupted.load(Ordering::Relaxed) && trainer.step < cfg.max_iters;
        if !was_interrupted {
            evaluate(&mut trainer, &mut log, &mut history, &progress)?;
        }
        save(&out, &trainer, &history)?;
        progress.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        let tokens = (trainer.step - first_step) * cfg.tokens_per_step();
        let last_val = history
            .val
            .last()
            .map_or("n/a".to_string(), |v| format!("{:.4}", v.1));
        eprintln!(
            "{} at step {} after {seconds:.1} s ({:.0} tokens/s); validation loss {last_val}; checkpoint in {}",
            if was_interrupted { "interrupted" } else { "finished" },
            trainer.step,
            tokens as f64 / seconds.max(1e-9),
            out.display()
        );
        if was_interrupted {
            eprintln!("continue with: llm train --out {} --resume", out.display());
        } else if self.sample_chars > 0 {
            print_sample(&trainer, data.tokenizer.as_ref(), self.sample_chars)?;
        }
        Ok(())
    }
}

/// Evaluates, logs and reports the losses.
fn evaluate(
    trainer: &mut Trainer,
    log: &mut TrainLog,
    history: &mut History,
    progress: &indicatif::ProgressBar,
) -> Result<()> {
    let e: LossEstimate = trainer.estimate_loss()?;
    log.eval(trainer.step, &e)?;
    if let Some(v) = e.val {
        history.val.push((trainer.step, v));
    }
    let val = e
        .val
        .map_or(String::new(), |v| format!(", val loss {v:.4}"));
    say(
        progress,
        &format!("step {}: train loss {:.4}{val}", trainer.step, e.train),
    );
    Ok(())
}

/// Writes the checkpoint and the loss curve.
fn save(out: &Path, trainer: &Trainer, history: &History) -> Result<()> {
    checkpoint::save(out, trainer)?;
    let svg = loss_curve_svg(
        &format!("{} ({} steps)", out.display(), trainer.step),
        &[
            Series {
                name: "train",
                color: "#1f77b4",
                points: &history.train,
            },
            Series {
                name: "validation",
                color: "#d62728",
                points: &history.val,
            },
        ],
    );
    checkpoint::write_atomically(&out.join("loss.svg"), svg.as_bytes())
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
    };
    eprintln!("sample:");
    let ids = generate(&trainer.model, &prompt, &g, |_| {});
    let mut text = String::from_utf8_lossy(&tokenizer.decode_bytes(&ids)?).into_owned();
    if let Some((cut, _)) = text.char_indices().nth(chars) {
        text.truncate(cut);
    }
    super::print(&format!("{text}\n"))
}

/// Prints a line above the progress bar (or plainly when there is no bar).
fn say(progress: &indicatif::ProgressBar, line: &str) {
    if progress.is_hidden() {
        eprintln!("{line}");
    } else {
        progress.println(line);
    }
}

fn progress_bar(total: usize, at: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30.cyan/blue} {pos}/{len} | {msg} | {elapsed_precise} < {eta_precise}",
        )
        .expect("a valid progress template"),
    );
    bar.set_position(at as u64);
    bar
}

/// A flag set by Ctrl-C; a second Ctrl-C exits at once.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    // Another handler may already be installed (e.g. in tests running several commands); the
    // run then simply cannot be interrupted gracefully.
    let _ = ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing this step and writing a checkpoint (Ctrl-C again to quit at once)");
    });
    flag
}
