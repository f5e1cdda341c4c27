//! `llm eval`: a model's score on a text (loss, perplexity), on verifiable problems (accuracy,
//! pass@k, text metrics) or on labelled texts (a classifier's accuracy).

use llm::data::template::{Role, Template, Turn};
use llm::eval::evaluate;
use llm::eval::task::{evaluate_task, TaskOptions};
use llm::stages::sft::SftInfo;
use llm::tasks::{self, Task};
use llm::Result;
use std::path::{Path, PathBuf};
use tensor::Device;

/// Evaluate a model: on a text, on verifiable problems, or as a classifier
///
/// --text FILE: the mean next-token negative log-likelihood (nats per token), the perplexity
/// exp(total NLL / total tokens) and the number of predicted tokens, over the text tokenized
/// with the model's tokenizer and read in windows of the model's context.
///
/// --task FILE.jsonl: problems {"prompt", "answer"} (as `llm synth` writes them, or the
/// test.jsonl of an `llm sft` run). The model answers each prompt greedily (the text up to a
/// newline or the end-of-text token; for a fine-tuned run, up to its end token); reported:
/// accuracy (answers the verifier scores 1) with its Wilson 95% interval, the mean score
/// (partial credit), pass@k over --samples draws at --temperature, exact match, token F1,
/// ROUGE-L and BLEU against the reference answers, the reference answers' teacher-forced loss,
/// and accuracy per operation and digits for arithmetic prompts. With --template, each prompt
/// is first put in that template as a user's message.
///
/// --labelled FILE: a classifier trained by `llm classify train` on labelled texts: accuracy,
/// loss and confusion matrix, as `llm classify eval --data FILE`.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory written by `llm train` or `llm classify train`, or a Hugging Face GPT-2
    /// directory.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// A text file to evaluate on (UTF-8), encoded as training encodes it (with a llama2.c
    /// tokenizer, each story between <|endoftext|> separators after BOS).
    #[arg(long, value_name = "FILE", required_unless_present_any = ["task", "labelled"], conflicts_with_all = ["task", "labelled"])]
    text: Option<PathBuf>,
    /// Verifiable problems, JSON Lines of {"prompt", "answer"}.
    #[arg(long, value_name = "FILE", conflicts_with = "labelled")]
    task: Option<PathBuf>,
    /// Labelled texts for a classifier (any shape `llm classify train` reads).
    #[arg(long, value_name = "FILE")]
    labelled: Option<PathBuf>,
    /// How --task answers are checked: exact (the answer string) or countdown (an expression
    /// over the given numbers that reaches the target; partial credit for a near miss).
    #[arg(long, default_value = "exact", value_parser = ["exact", "countdown"])]
    verifier: String,
    /// With --task: put each prompt in this template (plain, alpaca or chat) as a user's
    /// message [default: the prompts as they are].
    #[arg(long, value_name = "NAME", requires = "task")]
    template: Option<String>,
    /// With --task: write each problem's greedy answer to this file, JSON Lines of
    /// {"prompt", "reference", "answer"}.
    #[arg(long, value_name = "FILE", requires = "task")]
    answers: Option<PathBuf>,
    /// Draws per problem for pass@k (0: greedy only), 0 to 1,024.
    #[arg(long, value_name = "K", default_value_t = 0, value_parser = super::at_most::<1024>)]
    samples: usize,
    /// Temperature of the --samples draws (above 0).
    #[arg(long, value_name = "T", default_value_t = 1.0, value_parser = super::positive_f64)]
    temperature: f64,
    /// Most tokens generated per answer, 1 to 4,096.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = super::positive_at_most::<4096>)]
    max_new_tokens: usize,
    /// Seed of the --samples draws.
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
    /// Windows (--text), answers being generated (--task) or texts (--labelled) evaluated
    /// together, 1 to 65,536 [default: 8 windows, 64 answers, 16 texts].
    #[arg(long, value_name = "N", value_parser = super::positive_at_most::<65_536>)]
    batch_size: Option<usize>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl Args {
    pub fn run(self) -> Result<()> {
        let device = Device::parse(&self.device)?;
        if let Some(file) = &self.labelled {
            let batch = self.batch_size.unwrap_or(16);
            return super::classify::score_file(&self.model, file, batch, device, self.json);
        }
        if let Some(file) = &self.task {
            return self.task(file, device);
        }
        let file = self
            .text
            .as_deref()
            .expect("clap requires one of the three");
        self.text(file, device)
    }

    fn text(&self, file: &Path, device: Device) -> Result<()> {
        let (model, cfg, tokenizer) = llm::run::load::load_model(&self.model)?;
        nn::Module::to_device(&model, device)?;
        let text = llm::data::read_text(file)?;
        let tokens = llm::tokenizer::encode_documents(
            tokenizer.as_ref(),
            &text,
            llm::tokenizer::Special::Allow,
        )
        .map_err(|e| e.in_file(file))?;
        if tokens.len() < 2 {
            return Err(llm::Error::Invalid(format!(
                "{} has fewer than two tokens to evaluate",
                file.display()
            )));
        }
        let r = evaluate(
            &model,
            &tokens,
            cfg.block_size,
            self.batch_size.unwrap_or(8),
        );
        if self.json {
            super::print(&format!(
                "{}\n",
                serde_json::to_string(&r).expect("results serialize")
            ))
        } else {
            super::print(&format!(
                "loss {:.4} | perplexity {:.3} | {} tokens\n",
                r.loss, r.perplexity, r.tokens
            ))
        }
    }

    fn task(&self, file: &Path, device: Device) -> Result<()> {
        let (model, _, tokenizer) = llm::run::load::load_model(&self.model)?;
        nn::Module::to_device(&model, device)?;
        let mut problems = tasks::read_jsonl(file)?;
        if let Some(name) = &self.template {
            let template = Template::parse(name)?;
            for p in &mut problems {
                p.prompt = template.prompt(&[Turn::new(Role::User, p.prompt.as_str())])?;
            }
        }
        let verifier = match self.verifier.as_str() {
            "countdown" => Task::Countdown,
            _ => Task::Arithmetic,
        };
        let name = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let options = TaskOptions {
            max_new_tokens: self.max_new_tokens,
            samples: self.samples,
            temperature: self.temperature,
            batch: self.batch_size.unwrap_or(64),
            seed: self.seed,
            reply_end: match SftInfo::read(&self.model)? {
                Some(info) => Some((info.end_id(tokenizer.as_ref())?, info.end)),
                None => None,
            },
        };
        let r = evaluate_task(
            &model,
            tokenizer.as_ref(),
            &problems,
            &verifier,
            &name,
            &options,
        )?;
        if let Some(path) = &self.answers {
            write_answers(path, &problems, &r.answers)?;
        }
        if self.json {
            let json = serde_json::to_string(&r).expect("results serialize");
            return super::print(&format!("{json}\n"));
        }
        let mut out = format!(
            "{}: accuracy {:.4} (95% interval {:.4} to {:.4}) on {} problems; mean score {:.4}\n",
            r.task, r.accuracy, r.ci95[0], r.ci95[1], r.n, r.mean_score
        );
        for (k, v) in &r.pass_at_k {
            out += &format!("pass@{k} {v:.4}\n");
        }
        out += &format!(
            "against the answers: exact match {:.4}, token F1 {:.4}, ROUGE-L {:.4}, BLEU {:.4}\n",
            r.text.exact_match, r.text.f1, r.text.rouge_l, r.text.bleu
        );
        if let Some(loss) = r.answer_loss {
            out += &format!("answer loss {loss:.4} (the reference answers, teacher-forced)\n");
        }
        for (group, a) in &r.groups {
            out += &format!(
                "{group:<14} accuracy {:.4} ({:.4} to {:.4}) on {}\n",
                a.accuracy, a.ci95[0], a.ci95[1], a.n
            );
        }
        super::print(&out)
    }
}

/// Writes one JSON line {"prompt", "reference", "answer"} per problem.
fn write_answers(path: &Path, problems: &[tasks::Problem], answers: &[String]) -> Result<()> {
    let lines: String = problems
        .iter()
        .zip(answers)
        .map(|(p, a)| {
            let line = serde_json::json!({"prompt": p.prompt, "reference": p.answer, "answer": a});
            format!("{line}\n")
        })
        .collect();
    llm::run::write_atomically(path, lines.as_bytes())
}
