//! `llm dpo`: preference optimisation of a fine-tuned model against a frozen reference.

use llm::model::config::Config;
use llm::run::lock::RunLock;
use llm::run::{self, load};
use llm::stages::dpo::{self, Dpo, LossKind, Reduce, Reference, Settings};
use llm::stages::pairs::PairData;
use llm::stages::sft::{self, SftInfo};
use llm::train::objective::Objective;
use llm::train::{driver, epoch_schedule, trainable, Trainer};
use llm::{Error, Result};
use nn::{Module, SharedRng};
use std::path::{Path, PathBuf};
use tensor::Device;

/// Align a fine-tuned model with preference pairs (Direct Preference Optimization)
///
/// Data (JSON array or JSON Lines): {"instruction", "input", "chosen", "rejected"} (as
/// `instruction-data-with-preference.json`), {"prompt", "chosen", "rejected"}, or HH-RLHF
/// transcripts {"chosen", "rejected"} whose shared beginning up to the last "\n\nAssistant:"
/// is the prompt. The fine-tuning run's template (plain for a model that was not fine-tuned
/// with `llm sft`) turns the instruction or prompt into the text before the reply, and its end
/// token follows each reply; only the reply tokens and the end token count in its
/// log-probability.
///
/// The policy starts from --init-from and learns against a frozen reference (the same model
/// unless --reference), with the loss -log sigmoid(beta h) (or ipo, hinge), h the policy's
/// log-ratio margin of chosen over rejected minus the reference's. --precompute-reference
/// computes the reference's log-probabilities of every pair once, saves them in the run
/// directory, and frees the reference model before training. Records are shuffled (seeded) and
/// cut 85% / 10% / 5% into training, test and validation, the split of `llm sft` for the same
/// file and seed; the test records go to `test.jsonl` in the run directory (the prompt in the
/// template, the chosen reply as the answer) for `llm eval --task`. Logged at every step for
/// its batch, and on the held-out pairs at each evaluation: loss, rewards of chosen and
/// rejected (beta times the policy-reference log-ratio), their margin, reward accuracy, and
/// the chosen log-ratio.
#[derive(clap::Args)]
pub struct Args {
    /// The fine-tuned run to start from (its template's end token closes every reply).
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
    /// The reference model [default: --init-from].
    #[arg(long, value_name = "DIR")]
    reference: Option<PathBuf>,
    /// Compute the reference's log-probabilities once, before training, and free the model.
    #[arg(long)]
    precompute_reference: bool,
    /// The strength of the reference (above 0).
    #[arg(long, value_name = "B", default_value_t = 0.1, value_parser = super::positive_f64)]
    beta: f64,
    /// sigmoid (DPO), ipo or hinge.
    #[arg(long, value_name = "NAME", default_value = "sigmoid", value_parser = ["sigmoid", "ipo", "hinge"])]
    loss: String,
    /// sum or mean: a reply's log-probability is the sum or the mean of its tokens'.
    #[arg(long, value_name = "HOW", default_value = "sum", value_parser = ["sum", "mean"])]
    logp: String,
    /// Add this weight times the chosen replies' mean negative log-likelihood per token to
    /// the loss (0: plain DPO; 1: the "DPO + NLL" of iterative reasoning preference
    /// optimization), which keeps the chosen replies from losing probability.
    #[arg(long, value_name = "A", default_value_t = 0.0, value_parser = super::non_negative_f64)]
    nll_weight: f64,
    /// Train LoRA adapters of this rank (1 to 1,024) instead of every weight.
    #[arg(long, value_name = "R", value_parser = super::positive_at_most::<1024>)]
    lora_rank: Option<usize>,
    /// Passes over the training pairs, 1 to 10,000.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = super::positive_at_most::<10_000>)]
    epochs: usize,
    /// Optimizer steps [default: --epochs passes over the training pairs].
    #[arg(long, value_name = "N", value_parser = super::positive_at_most::<10_000_000>)]
    max_iters: Option<usize>,
    /// Pairs per step, 1 to 4,096.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = super::positive_at_most::<4096>)]
    batch_size: usize,
    /// Peak learning rate [default: 5e-5; 1e-3 with LoRA].
    #[arg(long, value_name = "LR")]
    lr: Option<f64>,
    /// Seed of the batches (and of the split, unless --split-seed).
    #[arg(long, value_name = "S", default_value_t = 1337)]
    seed: u64,
    /// Seed of the split [default: --seed].
    #[arg(long, value_name = "S")]
    split_seed: Option<u64>,
    /// Evaluate on the held-out pairs every N steps [default: once per epoch].
    #[arg(long, value_name = "N", value_parser = super::positive_at_most::<10_000_000>)]
    eval_interval: Option<usize>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl Args {
    pub fn run(self) -> Result<()> {
        let device = Device::parse(&self.device)?;
        let (base, tok) = load::base_config(&self.init_from)?;
        let info = SftInfo::read(&self.init_from)?;
        let split_seed = self.split_seed.unwrap_or(self.seed);
        let data = PairData::read(&self.data, split_seed, &base, tok.as_ref(), info.as_ref())?;
        let rank = self.lora_rank.unwrap_or(0);
        let lr = self.lr.unwrap_or(if rank > 0 { 1e-3 } else { 5e-5 });
        let per_epoch = data.train.len().div_ceil(self.batch_size);
        let steps = self.max_iters.unwrap_or(per_epoch * self.epochs);
        let mut cfg = Config {
            lora_rank: rank,
            lora_alpha: if rank > 0 { rank as f64 } else { 0.0 },
            dropout: 0.0,
            ..epoch_schedule(&base, lr, self.batch_size, steps, per_epoch, self.seed)
        };
        cfg.eval_interval = self.eval_interval.unwrap_or(cfg.eval_interval);
        cfg.validate_resolved().map_err(|e| Error::Config(e.0))?;
        let policy = load::init_from(&self.init_from, &cfg)?;
        if rank > 0 {
            trainable::train_only(&policy, &["*.lora_a".to_string(), "*.lora_b".to_string()])?;
        }
        let settings = Settings {
            beta: self.beta,
            kind: LossKind::parse(&self.loss)?,
            reduce: if self.logp == "mean" {
                Reduce::Mean
            } else {
                Reduce::Sum
            },
            batch_size: self.batch_size,
            pad: data.end_id,
            nll_weight: self.nll_weight,
        };
        let reference_dir = self.reference.as_ref().unwrap_or(&self.init_from);
        let reference = self.reference(reference_dir, &data, &settings, device)?;
        let mut objective = Dpo::new(data.train, data.val, reference, settings);
        objective.check(&cfg)?;
        let mut trainer =
            Trainer::with_model(cfg.clone(), policy, SharedRng::new(cfg.seed + 2), device)?;
        llm::data::create_out_dir(&self.out)?;
        let _lock = RunLock::acquire(&self.out)?;
        super::train::claim_run_dir(&self.out, self.overwrite)?;
        run::write_run_files(&self.out, &cfg, tok.as_ref())?;
        if let Some(info) = &info {
            info.write(&self.out)?;
        }
        run::write_atomically(&self.out.join(sft::TEST_FILE), data.test_jsonl.as_bytes())?;
        if let Reference::Precomputed { train, val } = objective.reference() {
            let saved = serde_json::json!({"train": train, "val": val});
            run::write_atomically(&self.out.join(REFERENCE_FILE), saved.to_string().as_bytes())?;
        }
        eprintln!(
            "DPO of {} against {} ({} training pairs, {} held out; beta {}, {} loss, {} \
             log-probabilities{}) for {} steps on {}; run directory {}",
            self.init_from.display(),
            reference_dir.display(),
            objective.pairs().0,
            objective.pairs().1,
            self.beta,
            self.loss,
            self.logp,
            if self.precompute_reference {
                ", reference precomputed"
            } else {
                ""
            },
            cfg.max_iters,
            device.describe(),
            self.out.display()
        );
        driver::drive(&mut trainer, &mut objective, &self.out, false, "tok")?;
        Ok(())
    }

    /// The frozen reference model in `dir`, or with --precompute-reference its
    /// log-probabilities of every pair (the model freed once they are computed).
    fn reference(
        &self,
        dir: &Path,
        data: &PairData,
        settings: &Settings,
        device: Device,
    ) -> Result<Reference> {
        let (model, _, _) = load::load_model(dir)?;
        model.freeze();
        model.to_device(device)?;
        if !self.precompute_reference {
            return Ok(Reference::Live(model));
        }
        eprintln!("computing the reference's log-probabilities of every pair");
        Ok(Reference::Precomputed {
            train: dpo::reference_logps(&model, &data.train, settings, device),
            val: dpo::reference_logps(&model, &data.val, settings, device),
        })
    }
}

/// The reference's log-probabilities of every pair, saved with a run that precomputed them.
pub const REFERENCE_FILE: &str = "reference_logps.json";
