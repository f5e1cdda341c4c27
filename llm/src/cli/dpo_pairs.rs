//! `llm dpo-pairs`: preference pairs from a model's own answers on verifiable problems.

use llm::data::template::{Role, Template, Turn};
use llm::eval::pairs::sample_pairs;
use llm::eval::task::TaskOptions;
use llm::stages::sft::SftInfo;
use llm::tasks::{self, Task};
use llm::{Error, Result};
use std::path::PathBuf;
use tensor::Device;

/// Build preference pairs from a model's own answers to verifiable problems
///
/// The model answers each prompt of --task (JSON Lines of {"prompt", "answer"}, as `llm synth`
/// writes them) --samples times at --temperature, from the full distribution; the verifier
/// scores each answer. For a prompt with both a right and a wrong answer, one line
/// {"prompt", "chosen", "rejected"} goes to --out: the first right answer drawn and the first
/// wrong one. A run fine-tuned with `llm sft` sees each prompt in its template and answers up
/// to its end token; the prompt is written as it is in --task, for `llm dpo` to put in the same
/// template. Reported: how many prompts gave a pair, and how many were always or never right.
#[derive(clap::Args)]
pub struct Args {
    /// The model that answers (a run directory).
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Verifiable problems, JSON Lines of {"prompt", "answer"}.
    #[arg(long, value_name = "FILE")]
    task: PathBuf,
    /// Where to write the pairs (JSON Lines).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// How answers are checked: exact (the answer string) or countdown (an expression over the
    /// given numbers that reaches the target).
    #[arg(long, default_value = "exact", value_parser = ["exact", "countdown"])]
    verifier: String,
    /// Answers drawn per prompt, 2 to 1,024.
    #[arg(long, value_name = "K", default_value_t = 8, value_parser = super::at_least_two)]
    samples: usize,
    /// Temperature of the draws (above 0).
    #[arg(long, value_name = "T", default_value_t = 1.0, value_parser = super::positive_f64)]
    temperature: f64,
    /// Most tokens generated per answer, 1 to 4,096.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = super::positive_at_most::<4096>)]
    max_new_tokens: usize,
    /// Answers generated together, 1 to 65,536.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = super::positive_at_most::<65_536>)]
    batch_size: usize,
    /// Seed of the draws.
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl Args {
    pub fn run(self) -> Result<()> {
        let device = Device::parse(&self.device)?;
        let (model, _, tok) = llm::run::load::load_model(&self.model)?;
        nn::Module::to_device(&model, device)?;
        let problems = tasks::read_jsonl(&self.task)?;
        let info = SftInfo::read(&self.model)?;
        let mut asked = problems.clone();
        if let Some(info) = &info {
            let template = Template::parse(&info.template)?;
            for p in &mut asked {
                p.prompt = template.prompt(&[Turn::new(Role::User, p.prompt.as_str())])?;
            }
        }
        let verifier = match self.verifier.as_str() {
            "countdown" => Task::Countdown,
            _ => Task::Arithmetic,
        };
        let options = TaskOptions {
            max_new_tokens: self.max_new_tokens,
            samples: self.samples,
            temperature: self.temperature,
            batch: self.batch_size,
            seed: self.seed,
            reply_end: match &info {
                Some(info) => Some((info.end_id(tok.as_ref())?, info.end.clone())),
                None => None,
            },
        };
        eprintln!(
            "drawing {} answers to each of {} prompts at temperature {}",
            self.samples,
            problems.len(),
            self.temperature
        );
        let (pairs, counts) = sample_pairs(&model, tok.as_ref(), &asked, &verifier, &options)?;
        let lines: String = pairs
            .iter()
            .map(|p| {
                let record = serde_json::json!({
                    "prompt": problems[p.index].prompt,
                    "chosen": p.chosen,
                    "rejected": p.rejected,
                });
                format!("{record}\n")
            })
            .collect();
        llm::run::write_atomically(&self.out, lines.as_bytes())?;
        eprintln!(
            "{} pairs from {} prompts ({} always right, {} never right) written to {}",
            counts.pairs,
            counts.prompts,
            counts.all_right,
            counts.all_wrong,
            self.out.display()
        );
        if counts.pairs == 0 {
            return Err(Error::Invalid(
                "no prompt had both a right and a wrong answer: no pairs to write".into(),
            ));
        }
        Ok(())
    }
}
