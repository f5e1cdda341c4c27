//! Training-step throughput of the project's GPT against the same model in PyTorch eager, on
//! the same device, in one command.
//!
//! ```text
//! cargo bench --features cuda --bench train_step -- --device cuda   # GPT-2 124M, batch 8, context 1024
//! cargo bench --bench train_step -- --shape nanogpt-cpu             # nanoGPT's CPU configuration
//! cargo bench --bench train_step -- --tiny                          # a 2-layer GPT, seconds on a CPU
//! cargo bench --bench train_step -- --shape spam-classifier --lora 8 # a LoRA fine-tuning step
//! cargo bench --bench train_step -- --shape sft                     # an instruction fine-tuning step
//! cargo bench --bench train_step -- --shape dpo                     # a DPO step
//! cargo bench --bench train_step -- --shape ppo                     # a PPO update
//! ```
//!
//! Shapes (`--shape`), all without gradient accumulation and without dropout (PyTorch's
//! attention drops attention weights where ours drops the attention output, so dropout would
//! time different work):
//!
//! - `gpt2` (the default): the `gpt2` preset of `llm train` at batch 8, context 1024;
//! - `gpt2-b4t64`: the same model at batch 4, context 64;
//! - `shakespeare-char`: nanoGPT's character model (6 layers, 6 heads, width 384, context 256,
//!   batch 64, vocabulary 65);
//! - `nanogpt-cpu`: nanoGPT's CPU configuration (4 layers, 4 heads, width 128, context 64,
//!   batch 12, vocabulary 65);
//! - `tiny` (also `--tiny`): 2 layers, 4 heads, width 64, context 64, a 512-token vocabulary,
//!   batch 4;
//! - `spam-classifier`: a fine-tuning step of `llm classify train` on the `stories-small` base
//!   (4 layers, 4 heads, width 128, a 2,048-token vocabulary) with a 2-class head on the last
//!   real token, batch 8 right-padded to the longest of [`LENGTHS`] (messages of the SMS spam
//!   set run 10 to 80 tokens), learning rate 5e-4; with `--lora R`, LoRA adapters of rank `R`
//!   (alpha `R`) on the blocks' linear layers and only the adapters and the head trained (the
//!   reference uses the `peft` package). Tokens per second count the padded positions.
//! - `sft`: a step of `llm sft` on the same base: batch 8 right-padded to the longest of
//!   [`SFT_BATCH`] (Alpaca-template examples of the instruction data run about 40 to 128 tokens
//!   on this vocabulary), the language-model loss over the tokens after each prompt only,
//!   learning rate 1e-4; `--lora R` as for the classifier, without a head.
//! - `dpo`: a step of `llm dpo` on the same base: 8 pairs of [`DPO_BATCH`] (a prompt and two
//!   replies each), the 16 sequences right-padded together; the policy's forward and backward
//!   on them and a frozen reference's forward (no gradients), the sigmoid DPO loss at beta 0.1
//!   over summed reply log-probabilities, learning rate 5e-5. The reference side computes
//!   every position's logits, as a PyTorch DPO step usually does.
//! - `ppo`: one update of `llm ppo` on the same base, given a rollout of 32 replies of
//!   [`PPO_REPLIES`] tokens after an 8-token prompt (random ids and rewards) that fills one
//!   minibatch: the log-probabilities of the reply tokens under the policy and the frozen
//!   reference and the separate value model's values (no gradients), the per-token KL penalty
//!   (0.05), GAE (gamma 1, lambda 0.95) and whitening; the policy's forward and backward on
//!   the clipped loss (0.2) with the entropy of its next-token distributions, its AdamW step at
//!   learning rate 3e-5; the value model's forward, backward on the clipped value loss and its
//!   own AdamW step (1e-4, no decay). Both sides compute logits at the reply positions only.
//!   The first losses differ (the rewards are drawn by each side's generator).
//!
//! One step is [`Trainer::step_on`] (for the classifier, [`Trainer::train_step`]): forward, backward, clipping to a global norm of 1, AdamW
//! (decay 0.1 on matrices) at the warmup + cosine learning rate, with the preset's betas.
//! Batches of random tokens are placed on the device beforehand; a step is timed until the
//! device has finished it. Float32 throughout.
//!
//! The reference is `benches/train_step.py` (nanoGPT's GPT-2 and its training step in PyTorch
//! eager, TF32 off), run by `$PYTHON` (default `python3`) with this configuration, so both sides
//! train the same shape with the same hyperparameters; the two models must have the same
//! number of parameters. Without PyTorch only our side is printed.
//!
//! Flags: `--device cpu|cuda` (default `cpu`; `cuda` is the first GPU, pick another with
//! `CUDA_VISIBLE_DEVICES`), `--shape NAME`, `--steps N` timed steps (default 10) after
//! `--warmup N` (default 2), `--lora R` (with `spam-classifier` or `sft`), `--reference FILE` (the PyTorch script; default the one in this
//! checkout), `--no-reference`, `--profile N` (with `--device cuda`: after timing, run N more
//! steps with every kernel timed and print the time per kernel and step, from our side and from
//! PyTorch's profiler, to stderr). Both sides report the median step. The last lines printed are
//! the ratio and the row for `benches/RESULTS.md`, which names the device as its driver does.

/// The `llm` binary's allocator, so the timed work runs as `llm train` and `llm sample` run it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use llm::data::batch::Batch;
use llm::data::TokenDataset;
use llm::model::config::Config;
use llm::model::Model;
use llm::stages::dpo::{self, LossKind, Reduce, Settings};
use llm::stages::pairs::PairSeqs;
use llm::stages::ppo::{self, AdaptiveKl, Critic, Ppo};
use llm::stages::rollout::{Drawn, TaskSetup};
use llm::stages::scorer::Scorer;
use llm::stages::sft::Sequence;
use llm::train::objective::{Loss, Metrics, Objective};
use llm::train::{trainable, StepStats, Trainer};
use nn::{Module, SharedRng};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use tensor::{Device, Rng, Tensor};

const USAGE: &str = "usage: train_step [--device cpu|cuda] \
                     [--shape gpt2|gpt2-b4t64|shakespeare-char|nanogpt-cpu|tiny|spam-classifier|sft|dpo|ppo | --tiny] \
                     [--lora R] [--steps N] [--warmup N] [--reference FILE | --no-reference] [--profile N]";

/// What to measure, from the command line.
struct Options {
    device: Device,
    /// One of the shapes of [`config`].
    shape: String,
    steps: usize,
    warmup: usize,
    /// The PyTorch script, or `None` to time our side only.
    reference: Option<PathBuf>,
    /// Steps to profile after the timed ones (0: none).
    profile: usize,
    /// LoRA rank of the classifier shape (0: every parameter trains).
    lora: usize,
}

impl Options {
    /// Parses the flags above (and ignores the `--bench` that `cargo bench` adds).
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut o = Options {
            device: Device::Cpu,
            shape: "gpt2".into(),
            steps: 10,
            warmup: 2,
            reference: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/train_step.py")),
            profile: 0,
            lora: 0,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            let count = |v: String, least: usize| {
                v.parse::<usize>()
                    .ok()
                    .filter(|&n| n >= least)
                    .ok_or(format!(
                        "{flag} takes a whole number of at least {least}, not `{v}`"
                    ))
            };
            match flag.as_str() {
                "--bench" => {}
                "--tiny" => o.shape = "tiny".into(),
                "--shape" => {
                    o.shape = value()?;
                    config(&o.shape, 0)?;
                }
                "--no-reference" => o.reference = None,
                "--reference" => o.reference = Some(PathBuf::from(value()?)),
                "--steps" => o.steps = count(value()?, 1)?,
                "--warmup" => o.warmup = count(value()?, 0)?,
                "--profile" => o.profile = count(value()?, 1)?,
                "--lora" => o.lora = count(value()?, 1)?,
                "--device" => {
                    o.device = match value()?.as_str() {
                        "cpu" => Device::Cpu,
                        "cuda" => Device::Cuda(0),
                        other => {
                            return Err(format!("unknown device `{other}`: expected cpu or cuda"))
                        }
                    }
                }
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        if o.lora > 0 && !["spam-classifier", "sft"].contains(&o.shape.as_str()) {
            return Err("--lora goes with --shape spam-classifier or sft".into());
        }
        if o.profile > 0 && (o.device == Device::Cpu || cfg!(not(feature = "cuda"))) {
            return Err(
                "--profile times GPU kernels: it needs --device cuda in a build with the cuda feature"
                    .into(),
            );
        }
        Ok(o)
    }

    /// The device name PyTorch understands.
    fn torch_device(&self) -> &'static str {
        match self.device {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
        }
    }
}

/// The sequence lengths of the classifier's batch.
const LENGTHS: [usize; 8] = [18, 52, 27, 71, 35, 12, 44, 60];

/// The fine-tuning batch: each sequence's prompt length and whole length.
const SFT_BATCH: [(usize, usize); 8] = [
    (52, 71),
    (60, 98),
    (45, 64),
    (70, 127),
    (48, 80),
    (66, 90),
    (55, 75),
    (62, 110),
];

/// The preference batch: each pair's prompt length and the whole lengths with the chosen and
/// with the rejected reply.
const DPO_BATCH: [(usize, usize, usize); 8] = [
    (52, 71, 75),
    (60, 98, 94),
    (45, 64, 70),
    (70, 127, 120),
    (48, 80, 84),
    (66, 90, 88),
    (55, 75, 81),
    (62, 110, 104),
];

/// The rollout of the PPO update: each reply's length (the rollout repeats them 4 times), after
/// a prompt of [`PPO_PROMPT`] tokens.
const PPO_REPLIES: [usize; 8] = [24, 24, 17, 24, 9, 24, 21, 24];
const PPO_PROMPT: usize = 8;

/// The longest sequence of a padded batch of `shape`, or `None` for a language-model shape.
fn padded_length(shape: &str) -> Option<usize> {
    match shape {
        "spam-classifier" => LENGTHS.iter().max().copied(),
        "sft" => SFT_BATCH.iter().map(|b| b.1).max(),
        "dpo" => DPO_BATCH.iter().map(|b| b.1.max(b.2)).max(),
        "ppo" => PPO_REPLIES.iter().max().map(|r| PPO_PROMPT + r),
        _ => None,
    }
}

/// The measured configuration of a shape named in the module docs (`lora`: the LoRA rank of
/// the classifier shape).
fn config(shape: &str, lora: usize) -> Result<Config, String> {
    let preset = |name| Config::preset(name).expect("a built-in preset");
    let one_batch = |cfg: Config| Config {
        gradient_accumulation_steps: 1,
        dropout: 0.0,
        ..cfg
    };
    let gpt2 = one_batch(Config {
        batch_size: 8,
        ..preset("gpt2")
    });
    let char_model = one_batch(Config {
        vocab_size: 65,
        ..preset("shakespeare-char")
    });
    Ok(match shape {
        "gpt2" => gpt2,
        "gpt2-b4t64" => Config {
            batch_size: 4,
            block_size: 64,
            ..gpt2
        },
        "shakespeare-char" => char_model,
        "nanogpt-cpu" => Config {
            n_layer: 4,
            n_head: 4,
            n_embd: 128,
            block_size: 64,
            batch_size: 12,
            ..char_model
        },
        "spam-classifier" => Config {
            vocab_size: 2048,
            n_classes: 2,
            lora_rank: lora,
            lora_alpha: lora as f64,
            batch_size: LENGTHS.len(),
            learning_rate: 5e-4,
            min_lr: 5e-5,
            warmup_iters: 10,
            lr_decay_iters: 100,
            weight_decay: 0.1,
            ..one_batch(preset("stories-small"))
        },
        "sft" => Config {
            vocab_size: 2048,
            lora_rank: lora,
            lora_alpha: lora as f64,
            batch_size: SFT_BATCH.len(),
            learning_rate: 1e-4,
            min_lr: 1e-5,
            warmup_iters: 10,
            lr_decay_iters: 100,
            weight_decay: 0.1,
            ..one_batch(preset("stories-small"))
        },
        "dpo" => Config {
            batch_size: 2 * DPO_BATCH.len(),
            learning_rate: 5e-5,
            min_lr: 5e-6,
            ..config("sft", 0)?
        },
        "ppo" => Config {
            batch_size: 4 * PPO_REPLIES.len(),
            learning_rate: 3e-5,
            min_lr: 3e-6,
            ..config("sft", 0)?
        },
        "tiny" => Config {
            vocab_size: 512,
            block_size: 64,
            n_layer: 2,
            n_head: 4,
            n_embd: 64,
            batch_size: 4,
            ..gpt2
        },
        other => return Err(format!("unknown shape `{other}`")),
    })
}

/// A short description of the model and batch, for the results row.
fn label(cfg: &Config, shape: &str) -> String {
    let model = if cfg.vocab_size == 50257 && (cfg.n_layer, cfg.n_embd) == (12, 768) {
        "GPT-2 124M".to_string()
    } else {
        format!(
            "GPT, {} layers, width {}, vocabulary {}",
            cfg.n_layer, cfg.n_embd, cfg.vocab_size
        )
    };
    let Some(longest) = padded_length(shape) else {
        return format!("{model}, B={}, T={}, f32", cfg.batch_size, cfg.block_size);
    };
    let trained = match cfg.lora_rank {
        0 => "all parameters trained".to_string(),
        r => format!("LoRA rank {r}"),
    };
    let task = match (cfg.n_classes, shape) {
        (0, "dpo") => format!("DPO on {} pairs with a live reference", DPO_BATCH.len()),
        (0, "ppo") => format!(
            "a PPO update on {} replies with a value model",
            cfg.batch_size
        ),
        (0, _) => "instruction fine-tuning (loss on the replies)".to_string(),
        (k, _) => format!("{k}-class classifier"),
    };
    format!(
        "{model}, {task}, {trained}, B={}, T={longest} padded, f32",
        cfg.batch_size
    )
}

/// A classification objective that gives the same right-padded batch at every step, of the
/// lengths [`LENGTHS`], random token ids and random classes.
struct FixedBatch {
    ids: Tensor,
    lengths: Vec<usize>,
    classes: Tensor,
}

impl FixedBatch {
    fn new(cfg: &Config, rng: &mut Rng, device: Device) -> llm::Result<FixedBatch> {
        let seqs: Vec<Vec<u32>> = LENGTHS
            .iter()
            .map(|&n| (0..n).map(|_| rng.below(cfg.vocab_size) as u32).collect())
            .collect();
        let seqs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        let batch = Batch::padded(&seqs, 0);
        let classes: Vec<u32> = LENGTHS
            .iter()
            .map(|_| rng.below(cfg.n_classes) as u32)
            .collect();
        Ok(FixedBatch {
            ids: batch.ids.try_to_device(device)?,
            lengths: batch.lengths,
            classes: Tensor::from_vec(classes, &[LENGTHS.len()]).try_to_device(device)?,
        })
    }
}

impl Objective for FixedBatch {
    fn check(&self, _cfg: &Config) -> llm::Result<()> {
        Ok(())
    }

    fn loss(&mut self, model: &Model, _rng: &mut Rng, _device: Device) -> llm::Result<Loss> {
        let logits = model.classify(&self.ids, &self.lengths)?;
        Ok(Loss {
            loss: logits.cross_entropy(&self.classes, None),
            units: self.ids.numel(),
            metrics: Metrics::new(),
        })
    }

    fn evaluate(&mut self, _: &Model, _: &mut Rng, _: Device) -> llm::Result<Metrics> {
        Ok(vec![])
    }
}

/// A fine-tuning objective that gives the same right-padded batch at every step, shaped as
/// [`SFT_BATCH`]: random token ids, the tokens after each prompt the targets.
struct FixedSft {
    ids: Tensor,
    targets: Tensor,
}

impl FixedSft {
    fn new(cfg: &Config, rng: &mut Rng, device: Device) -> llm::Result<FixedSft> {
        let seqs: Vec<(Vec<u32>, Vec<bool>)> = SFT_BATCH
            .iter()
            .map(|&(prompt, n)| {
                let ids = (0..n).map(|_| rng.below(cfg.vocab_size) as u32).collect();
                (ids, (0..n).map(|i| i >= prompt).collect())
            })
            .collect();
        let examples: Vec<(&[u32], &[bool])> = seqs
            .iter()
            .map(|(ids, scored)| (ids.as_slice(), scored.as_slice()))
            .collect();
        let batch = Batch::language(&examples, 0);
        Ok(FixedSft {
            ids: batch.ids.try_to_device(device)?,
            targets: batch
                .targets
                .expect("a language batch")
                .try_to_device(device)?,
        })
    }
}

impl Objective for FixedSft {
    fn check(&self, _cfg: &Config) -> llm::Result<()> {
        Ok(())
    }

    fn loss(&mut self, model: &Model, _rng: &mut Rng, _device: Device) -> llm::Result<Loss> {
        Ok(Loss {
            loss: model.masked_lm_loss(&self.ids, &self.targets),
            units: self.ids.numel(),
            metrics: Metrics::new(),
        })
    }

    fn evaluate(&mut self, _: &Model, _: &mut Rng, _: Device) -> llm::Result<Metrics> {
        Ok(vec![])
    }
}

/// A DPO objective that gives the same pairs at every step, shaped as [`DPO_BATCH`]: random
/// token ids, the replies scored, against a frozen copy of the initial policy (the trainer
/// builds its model from the same seed), so the first loss is ln 2 on both sides.
struct FixedDpo {
    pairs: Vec<PairSeqs>,
    reference: Model,
    settings: Settings,
}

impl FixedDpo {
    fn new(cfg: &Config, rng: &mut Rng, device: Device) -> llm::Result<FixedDpo> {
        let mut seq = |prompt: usize, n: usize| Sequence {
            ids: (0..n).map(|_| rng.below(cfg.vocab_size) as u32).collect(),
            scored: (0..n).map(|i| i >= prompt).collect(),
        };
        let pairs = DPO_BATCH
            .iter()
            .map(|&(prompt, chosen, rejected)| PairSeqs {
                chosen: seq(prompt, chosen),
                rejected: seq(prompt, rejected),
            })
            .collect();
        let reference = Model::new(cfg, &mut Rng::new(cfg.seed), &SharedRng::new(0));
        reference.freeze();
        reference.to_device(device)?;
        let settings = Settings {
            beta: 0.1,
            kind: LossKind::Sigmoid,
            reduce: Reduce::Sum,
            batch_size: DPO_BATCH.len(),
            pad: 0,
            nll_weight: 0.0,
        };
        Ok(FixedDpo {
            pairs,
            reference,
            settings,
        })
    }
}

impl Objective for FixedDpo {
    fn check(&self, _cfg: &Config) -> llm::Result<()> {
        Ok(())
    }

    fn loss(&mut self, model: &Model, _rng: &mut Rng, device: Device) -> llm::Result<Loss> {
        let s = &self.settings;
        let (chosen, rejected) = dpo::pair_logps(model, &self.pairs, s, device);
        let reference = dpo::reference_logps(&self.reference, &self.pairs, s, device);
        let (rc, rr): (Vec<f64>, Vec<f64>) = reference.into_iter().unzip();
        let n = rc.len();
        let (rc, rr) = (Tensor::from_vec(rc, &[n]), Tensor::from_vec(rr, &[n]));
        Ok(Loss {
            loss: dpo::preference_loss(&chosen, &rejected, &rc, &rr, s.beta, s.kind),
            units: padded_length("dpo").expect("a padded shape") * 2 * n,
            metrics: Metrics::new(),
        })
    }

    fn evaluate(&mut self, _: &Model, _: &mut Rng, _: Device) -> llm::Result<Metrics> {
        Ok(vec![])
    }
}

/// A PPO objective that trains on the same rollout at every step: [`PPO_REPLIES`] random
/// replies with random rewards, against a frozen copy of the initial policy and a value model
/// made from another (the trainer builds its model from the same seed).
struct FixedPpo {
    ppo: Ppo,
    drawn: Drawn,
}

impl FixedPpo {
    fn new(cfg: &Config, rng: &mut Rng, device: Device) -> llm::Result<FixedPpo> {
        let replies = (0..cfg.batch_size)
            .map(|i| {
                let n = PPO_PROMPT + PPO_REPLIES[i % PPO_REPLIES.len()];
                Sequence {
                    ids: (0..n).map(|_| rng.below(cfg.vocab_size) as u32).collect(),
                    scored: (0..n).map(|t| t >= PPO_PROMPT).collect(),
                }
            })
            .collect();
        let rewards = (0..cfg.batch_size).map(|_| rng.uniform()).collect();
        let start = || {
            let m = Model::new(cfg, &mut Rng::new(cfg.seed), &SharedRng::new(0));
            m.to_device(device).map(|()| m)
        };
        let reference = start()?;
        reference.freeze();
        let critic = Critic::new(start()?, 1e-4, device)?;
        let task = TaskSetup {
            prompts: vec![],
            val: vec![],
            template: llm::data::template::Template::Plain,
            tok: Box::new(llm::tokenizer::CharTokenizer::from_corpus("ab")?),
            scorer: Scorer::Task(llm::tasks::Task::Arithmetic),
        };
        let kl = AdaptiveKl {
            beta: 0.05,
            target: None,
            horizon: 10_000.0,
        };
        let settings = ppo::Settings {
            group: 1,
            prompts: cfg.batch_size,
            minibatch: cfg.batch_size,
            epochs: 1,
            clip: 0.2,
            value_clip: 0.2,
            gamma: 1.0,
            lambda: 0.95,
            entropy_coef: 0.0,
            max_new_tokens: *PPO_REPLIES.iter().max().expect("replies"),
            end: (0, String::new()),
        };
        Ok(FixedPpo {
            ppo: Ppo::new(task, reference, critic, kl, settings),
            drawn: Drawn { replies, rewards },
        })
    }
}

impl Objective for FixedPpo {
    fn check(&self, _cfg: &Config) -> llm::Result<()> {
        Ok(())
    }

    fn loss(&mut self, model: &Model, rng: &mut Rng, device: Device) -> llm::Result<Loss> {
        self.ppo
            .set_rollout(model, self.drawn.clone(), rng, device)?;
        self.ppo.loss(model, rng, device)
    }

    fn evaluate(&mut self, _: &Model, _: &mut Rng, _: Device) -> llm::Result<Metrics> {
        Ok(vec![])
    }
}

/// The trainer of `cfg`: a fresh GPT, or for the classifier shape with LoRA the model whose
/// adapters and head alone train (as `llm classify train --train lora` sets it up).
fn trainer(cfg: &Config, device: Device) -> llm::Result<Trainer> {
    if cfg.lora_rank == 0 {
        return Trainer::new(cfg.clone(), device);
    }
    let drop_rng = SharedRng::new(cfg.seed.wrapping_add(2));
    let model = Model::new(cfg, &mut Rng::new(cfg.seed), &drop_rng);
    let mut patterns = vec!["*.lora_a".to_string(), "*.lora_b".to_string()];
    if cfg.n_classes > 0 {
        patterns.push("classifier.*".into());
    }
    trainable::train_only(&model, &patterns)?;
    Trainer::with_model(cfg.clone(), model, drop_rng, device)
}

/// One side's figures.
struct Figures {
    ms_per_step: f64,
    tokens_per_s: f64,
    first_loss: f64,
    params: usize,
}

/// The median of `times`.
fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// One training step of `trainer`.
type Step = Box<dyn FnMut(&mut Trainer) -> llm::Result<StepStats>>;

/// The step of `shape` (configured as `cfg`): on language-model batches drawn beforehand (`n`
/// of them), or on the classifier's or the fine-tuning shape's one batch.
fn step(shape: &str, cfg: &Config, n: usize, device: Device) -> llm::Result<Step> {
    let mut rng = Rng::new(7);
    if cfg.n_classes > 0 {
        let mut objective = FixedBatch::new(cfg, &mut rng, device)?;
        return Ok(Box::new(move |t| t.train_step(&mut objective)));
    }
    if shape == "sft" {
        let mut objective = FixedSft::new(cfg, &mut rng, device)?;
        return Ok(Box::new(move |t| t.train_step(&mut objective)));
    }
    if shape == "dpo" {
        let mut objective = FixedDpo::new(cfg, &mut rng, device)?;
        return Ok(Box::new(move |t| t.train_step(&mut objective)));
    }
    if shape == "ppo" {
        let mut objective = FixedPpo::new(cfg, &mut rng, device)?;
        return Ok(Box::new(move |t| t.train_step(&mut objective)));
    }
    let tokens: Vec<u32> = (0..1 << 20)
        .map(|_| rng.below(cfg.vocab_size) as u32)
        .collect();
    let data = TokenDataset::from_tokens(tokens);
    let batches = (0..n)
        .map(|_| {
            let (x, y) = data.sample_batch(cfg.batch_size, cfg.block_size, &mut rng)?;
            Ok((x.try_to_device(device)?, y.try_to_device(device)?))
        })
        .collect::<llm::Result<Vec<(Tensor, Tensor)>>>()?;
    let mut batches = batches.into_iter();
    Ok(Box::new(move |t| {
        t.step_on(&[batches.next().expect("a batch per step")])
    }))
}

/// Times `o.steps` training steps of our GPT after `o.warmup` untimed ones.
fn ours(cfg: &Config, o: &Options) -> llm::Result<Figures> {
    let mut trainer = trainer(cfg, o.device)?;
    let params: usize = trainer
        .model
        .params()
        .iter()
        .filter(|p| p.requires_grad())
        .map(|p| p.value().numel())
        .sum();
    let context = padded_length(&o.shape).unwrap_or(cfg.block_size);
    eprintln!(
        "llm-stack: {:.2}M trained parameters, batch {}, context {context}, on {}",
        params as f64 / 1e6,
        cfg.batch_size,
        o.device
    );
    let mut step = step(&o.shape, cfg, o.warmup + o.steps + o.profile, o.device)?;
    let last = trainer.model.params().pop().expect("a GPT has parameters");
    let (mut times, mut first_loss) = (vec![], None);
    for i in 0..o.warmup + o.steps {
        let start = Instant::now();
        let s = step(&mut trainer)?;
        // Kernels run in order on the device's one stream, so reading back the parameter that
        // AdamW updates last waits for the whole step.
        last.value().sum_all().item();
        let ms = start.elapsed().as_secs_f64() * 1e3;
        first_loss.get_or_insert(s.loss);
        eprintln!("step {:3} | loss {:.4} | {ms:8.1} ms", i + 1, s.loss);
        if i >= o.warmup {
            times.push(ms);
        }
    }
    #[cfg(feature = "cuda")]
    if o.profile > 0 {
        profile(&mut trainer, o.profile, &mut step)?;
    }
    let ms_per_step = median(times);
    let tokens = cfg.batch_size * context;
    Ok(Figures {
        ms_per_step,
        tokens_per_s: tokens as f64 / ms_per_step * 1e3,
        first_loss: first_loss.expect("at least one step"),
        params,
    })
}

/// Runs `steps` steps with every GPU kernel timed, and prints the time per kernel and
/// step, most first (see `cuda_kernels::profile`), then where the wall time of a step went:
/// the host's time in each part of the step, how much of it the host spent waiting for the
/// GPU, and the kernels' own time. Wall time far above kernel time with little waiting means
/// the GPU idles while the host works.
#[cfg(feature = "cuda")]
fn profile(trainer: &mut Trainer, steps: usize, step: &mut Step) -> llm::Result<()> {
    let last = trainer.model.params().pop().expect("a GPT has parameters");
    tensor::cuda::set_profiling(0, true)?;
    let (mut wall, mut phases) = (0.0, [0.0; 4]);
    for _ in 0..steps {
        let start = Instant::now();
        let p = step(trainer)?.phases;
        last.value().sum_all().item();
        wall += start.elapsed().as_secs_f64() * 1e3;
        for (sum, ms) in phases
            .iter_mut()
            .zip([p.forward, p.backward, p.clip, p.update])
        {
            *sum += ms;
        }
    }
    let waited = tensor::cuda::host_wait_ms(0)?;
    let times = tensor::cuda::kernel_times(0)?;
    tensor::cuda::set_profiling(0, false)?;
    let kernels: f64 = times.iter().map(|t| t.ms).sum();
    let per = |ms: f64| ms / steps as f64;
    eprintln!("llm-stack profile, per step (the mean of {steps}):");
    eprint!("{}", tensor::cuda::kernel_time_table(&times, steps));
    eprintln!(
        "wall {:.1} ms = forward {:.1} + backward {:.1} + clip {:.1} + update {:.1} + the rest {:.1}; \
         the host waited for the GPU {:.1} ms; kernels ran {:.1} ms",
        per(wall),
        per(phases[0]),
        per(phases[1]),
        per(phases[2]),
        per(phases[3]),
        per(wall - phases.iter().sum::<f64>()),
        per(waited),
        per(kernels),
    );
    Ok(())
}

/// Runs the PyTorch script on `cfg`: its figures and `PyTorch <version>`, or `None` (with a
/// note) when it cannot run.
fn reference(cfg: &Config, o: &Options, script: &Path) -> Option<(Figures, String)> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(&python);
    cmd.arg(script)
        .args(["--device", o.torch_device()])
        .args(["--steps", &o.steps.to_string()])
        .args(["--warmup", &o.warmup.to_string()])
        .args(["--profile", &o.profile.to_string()])
        .args([
            "--config",
            &serde_json::to_string(cfg).expect("a config serializes"),
        ]);
    if o.device == Device::Cpu {
        cmd.args(["--threads", &rayon::current_num_threads().to_string()]);
    }
    let list = |v: Vec<usize>| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    if cfg.n_classes > 0 {
        cmd.args(["--lengths", &list(LENGTHS.to_vec())]);
    }
    if o.shape == "sft" {
        cmd.args(["--lengths", &list(SFT_BATCH.iter().map(|b| b.1).collect())]);
        cmd.args(["--prompts", &list(SFT_BATCH.iter().map(|b| b.0).collect())]);
    }
    if o.shape == "dpo" {
        let chosen = DPO_BATCH.iter().map(|b| b.1);
        cmd.args([
            "--lengths",
            &list(chosen.chain(DPO_BATCH.iter().map(|b| b.2)).collect()),
        ]);
        cmd.args([
            "--prompts",
            &list(DPO_BATCH.iter().chain(&DPO_BATCH).map(|b| b.0).collect()),
        ]);
        cmd.arg("--dpo");
    }
    if o.shape == "ppo" {
        let lengths = (0..cfg.batch_size).map(|i| PPO_PROMPT + PPO_REPLIES[i % PPO_REPLIES.len()]);
        cmd.args(["--lengths", &list(lengths.collect())]);
        cmd.args(["--prompts", &list(vec![PPO_PROMPT; cfg.batch_size])]);
        cmd.arg("--ppo");
    }
    eprintln!(
        "running the PyTorch reference: {python} {}",
        script.display()
    );
    let out = match cmd.stderr(std::process::Stdio::inherit()).output() {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            eprintln!(
                "reference skipped: {python} {} failed ({})",
                script.display(),
                out.status
            );
            return None;
        }
        Err(e) => {
            eprintln!("reference skipped: cannot run {python}: {e}");
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = match stdout.lines().last().map(serde_json::from_str) {
        Some(Ok(v)) => v,
        _ => {
            eprintln!("reference skipped: its last line is not a JSON object: {stdout}");
            return None;
        }
    };
    let num = |k: &str| json[k].as_f64().unwrap_or(f64::NAN);
    let figures = Figures {
        ms_per_step: num("ms_per_step"),
        tokens_per_s: num("tokens_per_s"),
        first_loss: num("first_loss"),
        params: json["params"].as_u64().unwrap_or(0) as usize,
    };
    Some((
        figures,
        format!("PyTorch {}", json["torch"].as_str().unwrap_or("?")),
    ))
}

/// The device's name as its driver reports it, or the CPU's model name.
fn device_name(device: Device) -> String {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(_) => tensor::cuda::probe().map_or_else(|e| e, |info| info.name),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => "a GPU".into(),
        Device::Cpu => std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, name)| name.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.into()),
    }
}

fn main() {
    llm::alloc::keep_freed_pages();
    let o = Options::parse(std::env::args().skip(1)).unwrap_or_else(|e| {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2)
    });
    let cfg = config(&o.shape, o.lora).expect("checked when parsed");
    let ours = ours(&cfg, &o).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let theirs = o
        .reference
        .as_deref()
        .and_then(|script| reference(&cfg, &o, script));
    let name = device_name(o.device);
    let threads = match o.device {
        Device::Cpu => format!(", {} threads", rayon::current_num_threads()),
        Device::Cuda(_) => String::new(),
    };
    println!(
        "{}: one training step (forward, backward, AdamW), on {name}{threads}",
        label(&cfg, &o.shape)
    );
    println!(
        "{:<24} {:>10} {:>12} {:>11}",
        "", "ms/step", "tokens/s", "first loss"
    );
    let row = |who: &str, f: &Figures| {
        println!(
            "{who:<24} {:>10.2} {:>12.1} {:>11.4}",
            f.ms_per_step, f.tokens_per_s, f.first_loss
        )
    };
    row("llm-stack", &ours);
    let Some((theirs, torch)) = theirs else {
        return;
    };
    row(&torch, &theirs);
    if theirs.params != ours.params {
        eprintln!(
            "error: the PyTorch model has {} parameters and ours {}, so they are not the same model",
            theirs.params, ours.params
        );
        std::process::exit(1);
    }
    let ratio = ours.tokens_per_s / theirs.tokens_per_s;
    println!("ratio, llm-stack / PyTorch eager tokens/s: {ratio:.2}");
    println!(
        "| {name} | {} | {:.0} | {:.0} | {ratio:.2} | {torch} |",
        label(&cfg, &o.shape),
        ours.tokens_per_s,
        theirs.tokens_per_s
    );
}
