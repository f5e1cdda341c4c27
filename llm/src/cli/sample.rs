//! `llm sample`: generate text from a trained model, streamed to standard output.

use llm::data::template::{Role, Template, Turn};
use llm::generate::{generate, Generation, Sampling, Utf8Stream};
use llm::model::Model;
use llm::stages::sft::SftInfo;
use llm::tasks;
use llm::tokenizer::Tokenizer;
use llm::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tensor::Device;

/// Generate text from a model
///
/// Writes the prompt and its continuation to standard output, token by token as they are
/// produced, and nothing else (diagnostics go to standard error). Stops at <|endoftext|> when
/// the tokenizer has it. A prompt longer than the model's context is cropped from the left.
///
/// With --instruct, the text is an instruction: it is put in the template of the fine-tuning
/// run (`llm sft`) the model comes from, and only the reply is written, up to the run's end
/// token.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory written by `llm train`, or a Hugging Face GPT-2 directory.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// The text to continue [default: a newline, or <|endoftext|> when the tokenizer has it].
    #[arg(long, value_name = "TEXT", conflicts_with = "instruct")]
    prompt: Option<String>,
    /// An instruction to answer, in the model's fine-tuning template.
    #[arg(long, value_name = "TEXT")]
    instruct: Option<String>,
    /// With --instruct: plain, alpaca or chat [default: the fine-tuning run's template].
    #[arg(long, value_name = "NAME", requires = "instruct")]
    template: Option<String>,
    /// How many tokens to generate (at most 10,000,000).
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = super::at_most::<10_000_000>)]
    max_new_tokens: usize,
    #[command(flatten)]
    draw: DrawFlags,
}

/// How tokens are drawn and where the model runs: the flags `sample` and `chat` share.
#[derive(clap::Args)]
pub(super) struct DrawFlags {
    /// Sampling temperature, >= 0; 0 means greedy (always the most likely token).
    #[arg(
        long,
        value_name = "T",
        default_value_t = 0.8,
        allow_negative_numbers = true
    )]
    temperature: f64,
    /// Sample only from the K most likely tokens (K >= 1; use --temperature 0 for greedy).
    #[arg(long, value_name = "K", value_parser = super::positive_at_most::<{ 1 << 31 }>)]
    top_k: Option<usize>,
    /// Sample only from the most likely tokens whose probabilities add up to P, in (0, 1].
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    top_p: Option<f64>,
    /// Seed of the sampling (in `chat`, reply `i` draws with seed + i).
    #[arg(long, value_name = "S", default_value_t = 1337)]
    pub seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl DrawFlags {
    /// The sampling settings, checked.
    pub fn sampling(&self) -> Result<Sampling> {
        if self.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
            return Err(Error::Invalid("--top-p must be in (0, 1]".into()));
        }
        if self.temperature < 0.0 || !self.temperature.is_finite() {
            return Err(Error::Invalid(
                "--temperature must be a finite number >= 0".into(),
            ));
        }
        Ok(Sampling {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
        })
    }

    /// The device.
    pub fn device(&self) -> Result<Device> {
        Ok(Device::parse(&self.device)?)
    }
}

impl Args {
    pub fn run(self) -> Result<()> {
        let sampling = self.draw.sampling()?;
        let device = self.draw.device()?;
        let (model, _, tokenizer) = llm::run::load::load_model(&self.model)?;
        nn::Module::to_device(&model, device)?;
        let g = Generation {
            max_new_tokens: self.max_new_tokens,
            sampling,
            stop_token: tokenizer.eot_token(),
            seed: self.draw.seed,
            vocab_limit: Some(tokenizer.vocab_size()),
        };
        if let Some(instruction) = &self.instruct {
            let style = Style::of(&self.model, self.template.as_deref(), tokenizer.as_ref())?;
            let turns = [Turn::new(Role::User, instruction.as_str())];
            let prompt = tokenizer.encode(&style.template.prompt(&turns)?)?;
            let g = Generation {
                stop_token: style.end,
                ..g
            };
            let streamed = stream(&model, tokenizer.as_ref(), &prompt, &g)?;
            super::print("\n")?;
            streamed.report();
            return Ok(());
        }
        let prompt_text = match &self.prompt {
            Some(p) => p.clone(),
            None if tokenizer.eot_token().is_some() => String::new(),
            None => "\n".into(),
        };
        let mut prompt: Vec<u32> = tokenizer.text_start().into_iter().collect();
        prompt.extend(tokenizer.encode(&prompt_text)?);
        if prompt.is_empty() {
            prompt = vec![tokenizer
                .eot_token()
                .ok_or_else(|| Error::Invalid("the prompt is empty".into()))?];
        }
        super::print(&prompt_text)?;
        let streamed = stream(&model, tokenizer.as_ref(), &prompt, &g)?;
        super::print("\n")?;
        streamed.report();
        Ok(())
    }
}

/// How a model is prompted for replies: the template, and the token that ends a reply.
pub(super) struct Style {
    pub template: Template,
    pub end: Option<u32>,
}

impl Style {
    /// The fine-tuning run's template and end token (`template` overrides the template); for a
    /// model that was not fine-tuned, `plain` and the task end token (end-of-text, or a
    /// newline).
    pub fn of(dir: &Path, template: Option<&str>, tok: &dyn Tokenizer) -> Result<Style> {
        let info = SftInfo::read(dir)?;
        let template = match (template, &info) {
            (Some(name), _) => Template::parse(name)?,
            (None, Some(info)) => info.template()?,
            (None, None) => Template::Plain,
        };
        let end = match &info {
            Some(info) => Some(info.end_id(tok)?),
            None => tasks::end_token(tok),
        };
        Ok(Style { template, end })
    }
}

/// What [`stream`] generated.
pub(super) struct Streamed {
    /// The new tokens, without the stop token.
    pub tokens: Vec<u32>,
    /// Tokens generated, the stop token included.
    count: usize,
    /// Tokens per second after the first (`None` for fewer than two).
    rate: Option<f64>,
}

impl Streamed {
    /// Reports the count and rate on standard error.
    fn report(&self) {
        if let Some(rate) = self.rate {
            eprintln!("{} tokens, {rate:.1} tokens/s after the first", self.count);
        }
    }
}

/// Generates after `prompt`, writing each new token to standard output as it comes (the stop
/// token itself is not written). A prompt
/// longer than the model's context is cropped from the left, with a note on standard error.
pub(super) fn stream(
    model: &Model,
    tok: &dyn Tokenizer,
    prompt: &[u32],
    g: &Generation,
) -> Result<Streamed> {
    if prompt.len() > model.context() {
        eprintln!(
            "the prompt's {} tokens are cropped to the model's context of {}",
            prompt.len(),
            model.context()
        );
    }
    let mut stream = Utf8Stream::default();
    let mut failure = None;
    let mut prev = prompt.last().copied();
    let mut first: Option<Instant> = None;
    let mut new = generate(model, prompt, g, |id| {
        first.get_or_insert_with(Instant::now);
        if Some(id) == g.stop_token || failure.is_some() {
            return;
        }
        let bytes = tok.decode_next(prev, id);
        prev = Some(id);
        match bytes {
            Ok(bytes) => {
                let _ = super::print(&stream.push(&bytes));
                let _ = std::io::stdout().flush();
            }
            Err(e) => failure = Some(e),
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    super::print(&stream.finish())?;
    // As llama2.c's run.c counts: the tokens after the first, over the time since it.
    let rate = first
        .filter(|_| new.len() > 1)
        .map(|start| (new.len() - 1) as f64 / start.elapsed().as_secs_f64());
    let count = new.len();
    if new.last().is_some_and(|&id| Some(id) == g.stop_token) {
        new.pop();
    }
    Ok(Streamed {
        tokens: new,
        count,
        rate,
    })
}
