//! `llm bpe-train`: train a byte-level BPE tokenizer on a text file.

use llm::data::read_text;
use llm::tokenizer::{BpeTokenizer, Pattern, Tokenizer};
use llm::{Error, Result};
use std::path::PathBuf;
use std::time::Instant;

/// Train a byte-level BPE tokenizer on a text file and save it as JSON
#[derive(clap::Args)]
pub struct Args {
    /// The training text (UTF-8).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The vocabulary size to reach: 256 bytes, plus the merges, plus the special tokens (at
    /// most 4,194,304).
    #[arg(long, value_name = "N", value_parser = super::at_most::<{ 1 << 22 }>)]
    vocab_size: usize,
    /// The split pattern applied before merging (none: merges may cross spaces).
    #[arg(long, default_value = "gpt2", value_parser = ["gpt2", "gpt4", "none"])]
    pattern: String,
    /// A special token to reserve an id for, such as <|endoftext|> (repeat for more). Its
    /// occurrences in the input are cut out before training.
    #[arg(long = "special", value_name = "TOKEN")]
    specials: Vec<String>,
    /// Where to write the tokenizer JSON.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

impl Args {
    /// Trains, saves, and reports the vocabulary size and the time on standard error.
    pub fn run(self) -> Result<()> {
        let pattern: Pattern = self.pattern.parse()?;
        let text = read_text(&self.input)?;
        if text.is_empty() {
            return Err(Error::Invalid(format!("{} is empty", self.input.display())));
        }
        let start = Instant::now();
        let tok = BpeTokenizer::train(&text, self.vocab_size, pattern, &self.specials)?;
        let seconds = start.elapsed().as_secs_f64();
        tok.save(&self.out)?;
        let early = match tok.vocab_size() < self.vocab_size {
            true => " (no pair was left to merge)",
            false => "",
        };
        eprintln!(
            "trained {} merges in {seconds:.2} s: vocabulary of {}{early}; wrote {}",
            tok.merges().len(),
            tok.vocab_size(),
            self.out.display()
        );
        Ok(())
    }
}
