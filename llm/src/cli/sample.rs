//! `llm sample`: generate text from a trained model, streamed to standard output.

use llm::generate::{generate, Generation, Sampling, Utf8Stream};
use llm::{Error, Result};
use std::io::Write;
use std::path::PathBuf;
use tensor::Device;

/// Generate text from a model
///
/// Writes the prompt and its continuation to standard output, token by token as they are
/// produced, and nothing else (diagnostics go to standard error). Stops at <|endoftext|> when
/// the tokenizer has it. A prompt longer than the model's context is cropped from the left.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory written by `llm train`, or a Hugging Face GPT-2 directory.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// The text to continue [default: a newline, or <|endoftext|> when the tokenizer has it].
    #[arg(long, value_name = "TEXT")]
    prompt: Option<String>,
    /// How many tokens to generate (at most 10,000,000).
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = super::at_most::<10_000_000>)]
    max_new_tokens: usize,
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
    /// Seed of the sampling.
    #[arg(long, value_name = "S", default_value_t = 1337)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl Args {
    pub fn run(self) -> Result<()> {
        if self.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
            return Err(Error::Invalid("--top-p must be in (0, 1]".into()));
        }
        if self.temperature < 0.0 || !self.temperature.is_finite() {
            return Err(Error::Invalid(
                "--temperature must be a finite number >= 0".into(),
            ));
        }
        let device = Device::parse(&self.device)?;
        let (model, _, tokenizer) = llm::run::load::load_model(&self.model)?;
        nn::Module::to_device(&model, device)?;
        let prompt_text = match &self.prompt {
            Some(p) => p.clone(),
            None if tokenizer.eot_token().is_some() => String::new(),
            None => "\n".into(),
        };
        let mut prompt = tokenizer.encode(&prompt_text)?;
        if prompt.is_empty() {
            prompt = vec![tokenizer
                .eot_token()
                .ok_or_else(|| Error::Invalid("the prompt is empty".into()))?];
        }
        if prompt.len() > model.context() {
            eprintln!(
                "the prompt's {} tokens are cropped to the model's context of {}",
                prompt.len(),
                model.context()
            );
        }
        super::print(&prompt_text)?;
        let g = Generation {
            max_new_tokens: self.max_new_tokens,
            sampling: Sampling {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
            },
            stop_token: tokenizer.eot_token(),
            seed: self.seed,
            vocab_limit: Some(tokenizer.vocab_size()),
        };
        let mut stream = Utf8Stream::default();
        let mut failure = None;
        generate(&model, &prompt, &g, |id| {
            if Some(id) == g.stop_token || failure.is_some() {
                return;
            }
            match tokenizer.decode_bytes(&[id]) {
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
        super::print(&format!("{}\n", stream.finish()))
    }
}
