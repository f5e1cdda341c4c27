//! `llm reward`: train a reward model on preference pairs, score a reply with it, or measure it
//! on pairs.

use llm::model::config::Config;
use llm::model::heads::Pool;
use llm::run::lock::RunLock;
use llm::run::{self, load};
use llm::stages::pairs::PairData;
use llm::stages::reward::{self, RewardInfo, RewardModel, RewardTraining, Settings, REWARD_FILE};
use llm::stages::sft::SftInfo;
use llm::train::objective::Objective;
use llm::train::{driver, epoch_schedule, Trainer};
use llm::{Error, Result};
use nn::SharedRng;
use std::path::PathBuf;
use tensor::Device;

/// Train a reward model on preference pairs, score a reply with it, or measure it on pairs
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    Train(TrainArgs),
    Score(ScoreArgs),
    Eval(EvalArgs),
}

impl Args {
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Train(a) => a.run(),
            Command::Score(a) => a.run(),
            Command::Eval(a) => a.run(),
        }
    }
}

/// Train a reward model: a one-output head on the last token, Bradley-Terry loss
///
/// Data: preference pairs in any shape `llm dpo` reads (instruction records with chosen and
/// rejected, {"prompt", "chosen", "rejected"}, HH-RLHF transcripts), each reply put after its
/// prompt in the fine-tuning run's template and closed by its end token; split 85% / 10% / 5%
/// (training, test, validation) by --split-seed, as `llm sft` and `llm dpo` split the same
/// file. The loss per pair is -log sigmoid(r_chosen - r_rejected - margin) + center-coef
/// (r_chosen + r_rejected)^2. Every parameter trains. Logged: loss, accuracy and margin of
/// each step's batch, and on the validation pairs at each evaluation; the test pairs' accuracy
/// is printed at the end.
#[derive(clap::Args)]
struct TrainArgs {
    /// The model to start from (a run directory; a fine-tuned one lends its template).
    #[arg(long, value_name = "DIR")]
    init_from: PathBuf,
    /// Preference pairs.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// The run directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Start over in an --out that already holds a run.
    #[arg(long)]
    overwrite: bool,
    /// How much the chosen reply's reward must exceed the rejected one's.
    #[arg(
        long,
        value_name = "M",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    margin: f64,
    /// The weight of the centering term (r_chosen + r_rejected)^2 (at least 0).
    #[arg(long, value_name = "C", default_value_t = 0.01, value_parser = super::non_negative_f64)]
    center_coef: f64,
    /// Passes over the training pairs, 1 to 10,000.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = super::positive_at_most::<10_000>)]
    epochs: usize,
    /// Optimizer steps [default: --epochs passes over the training pairs].
    #[arg(long, value_name = "N", value_parser = super::positive_at_most::<10_000_000>)]
    max_iters: Option<usize>,
    /// Pairs per step, 1 to 4,096.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = super::positive_at_most::<4096>)]
    batch_size: usize,
    /// Peak learning rate (warmup then cosine decay to a tenth).
    #[arg(long, value_name = "LR", default_value_t = 1e-4, value_parser = super::positive_f64)]
    lr: f64,
    /// Seed of the head's initial weights and the batches (and of the split, unless
    /// --split-seed).
    #[arg(long, value_name = "S", default_value_t = 1337)]
    seed: u64,
    /// Seed of the split [default: --seed].
    #[arg(long, value_name = "S")]
    split_seed: Option<u64>,
    /// Evaluate on the validation pairs every N steps [default: once per epoch].
    #[arg(long, value_name = "N", value_parser = super::positive_at_most::<10_000_000>)]
    eval_interval: Option<usize>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl TrainArgs {
    fn run(self) -> Result<()> {
        let device = Device::parse(&self.device)?;
        let (base, tok) = load::base_config(&self.init_from)?;
        let info = SftInfo::read(&self.init_from)?;
        let split_seed = self.split_seed.unwrap_or(self.seed);
        let data = PairData::read(&self.data, split_seed, &base, tok.as_ref(), info.as_ref())?;
        let per_epoch = data.train.len().div_ceil(self.batch_size);
        let steps = self.max_iters.unwrap_or(per_epoch * self.epochs);
        let mut cfg = Config {
            n_classes: 1,
            pool: Pool::Last,
            lora_rank: 0,
            lora_alpha: 0.0,
            dropout: 0.0,
            ..epoch_schedule(&base, self.lr, self.batch_size, steps, per_epoch, self.seed)
        };
        cfg.eval_interval = self.eval_interval.unwrap_or(cfg.eval_interval);
        cfg.validate_resolved().map_err(|e| Error::Config(e.0))?;
        let settings = Settings {
            margin: self.margin,
            center: self.center_coef,
            batch_size: self.batch_size,
            pad: data.end_id,
        };
        let test = data.test;
        let mut objective = RewardTraining::new(data.train, data.val, settings);
        objective.check(&cfg)?;
        let model = load::init_from(&self.init_from, &cfg)?;
        let mut trainer =
            Trainer::with_model(cfg.clone(), model, SharedRng::new(cfg.seed + 2), device)?;
        llm::data::create_out_dir(&self.out)?;
        let _lock = RunLock::acquire(&self.out)?;
        super::train::claim_run_dir(&self.out, self.overwrite)?;
        run::write_run_files(&self.out, &cfg, tok.as_ref())?;
        if let Some(info) = &info {
            info.write(&self.out)?;
        }
        let record = RewardInfo {
            data: self.data.display().to_string(),
            split_seed,
            margin: self.margin,
            center_coef: self.center_coef,
        };
        let json = serde_json::to_string_pretty(&record).expect("the record serializes");
        run::write_atomically(&self.out.join(REWARD_FILE), json.as_bytes())?;
        eprintln!(
            "training a reward model from {} on {} pairs ({} validation, {} test) for {} steps \
             on {}; run directory {}",
            self.init_from.display(),
            data.split.train.len(),
            data.split.val.len(),
            data.split.test.len(),
            cfg.max_iters,
            device.describe(),
            self.out.display()
        );
        driver::drive(&mut trainer, &mut objective, &self.out, false, "pairs")?;
        let scores = reward::score_pairs(&trainer.model, &test, &settings, device)?;
        eprintln!(
            "test accuracy {:.4} on {} pairs (mean margin {:.4})",
            scores.accuracy, scores.n, scores.mean_margin
        );
        Ok(())
    }
}

/// Score one reply to a prompt with a reward model
///
/// The prompt goes into the model's template and the reply is followed by its end token, as in
/// training; the reward is printed.
#[derive(clap::Args)]
struct ScoreArgs {
    /// A run directory written by `llm reward train`.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// The prompt (the user's message).
    #[arg(long, value_name = "TEXT")]
    prompt: String,
    /// The reply to score.
    #[arg(long, value_name = "TEXT")]
    response: String,
}

impl ScoreArgs {
    fn run(self) -> Result<()> {
        let r = RewardModel::load(&self.model, Device::Cpu)?;
        let score = r.score(&[(self.prompt.as_str(), self.response.as_str())], 1)?;
        super::print(&format!("{:.6}\n", score[0]))
    }
}

/// Measure a reward model on preference pairs: accuracy and mean margin
///
/// Accuracy is the share of pairs whose chosen reply gets the higher reward (chance: 0.5), the
/// margin the mean of r_chosen - r_rejected. --split picks the pairs of one split, made as the
/// model's training made its own (85% / 10% / 5% by its split seed).
#[derive(clap::Args)]
struct EvalArgs {
    /// A run directory written by `llm reward train`.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Preference pairs.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// all, train, val or test.
    #[arg(long, default_value = "all", value_parser = ["all", "train", "val", "test"])]
    split: String,
    /// Print {"accuracy", "mean_margin", "n"} as one JSON object.
    #[arg(long)]
    json: bool,
    /// Pairs scored together, 1 to 4,096.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = super::positive_at_most::<4096>)]
    batch_size: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl EvalArgs {
    fn run(self) -> Result<()> {
        let device = Device::parse(&self.device)?;
        let r = RewardModel::load(&self.model, device)?;
        let seed = r.record.split_seed;
        let data = PairData::read(&self.data, seed, &r.cfg, r.tok.as_ref(), r.info.as_ref())?;
        let pairs = match self.split.as_str() {
            "train" => data.train,
            "val" => data.val,
            "test" => data.test,
            _ => [data.train, data.val, data.test].concat(),
        };
        let settings = Settings {
            margin: r.record.margin,
            center: r.record.center_coef,
            batch_size: self.batch_size,
            pad: data.end_id,
        };
        let s = reward::score_pairs(&r.model, &pairs, &settings, device)?;
        if self.json {
            let json =
                serde_json::json!({"accuracy": s.accuracy, "mean_margin": s.mean_margin, "n": s.n});
            return super::print(&format!("{json}\n"));
        }
        super::print(&format!(
            "accuracy {:.4} on {} pairs (chance 0.5); mean margin {:.4}\n",
            s.accuracy, s.n, s.mean_margin
        ))
    }
}
