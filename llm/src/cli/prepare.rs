//! `llm prepare`: encode text files into `train.bin`, `val.bin` and `meta.json`.

use super::SpecialArg;
use llm::data::{prepare, PrepareOptions};
use llm::Result;
use std::path::PathBuf;

/// Encode text files into train.bin, val.bin and meta.json
///
/// The .bin files hold token ids as little-endian u16 when the vocabulary fits, as nanoGPT's
/// files do, else as u32. Inputs are streamed, so they may be larger than memory.
#[derive(clap::Args)]
pub struct Args {
    /// Input text files (UTF-8), read in order as one text.
    #[arg(long = "input", value_name = "FILE", required = true, num_args = 1..)]
    inputs: Vec<PathBuf>,
    /// `char` (the characters of the inputs), `gpt2`, a saved tokenizer JSON file, or a
    /// directory with GPT-2's encoder.json and vocab.bpe.
    #[arg(long, value_name = "char|gpt2|PATH")]
    tokenizer: String,
    /// The output directory (created if needed).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The fraction of the text, taken from its end, that goes to val.bin, in [0, 1).
    #[arg(
        long,
        value_name = "F",
        default_value_t = 0.1,
        allow_negative_numbers = true
    )]
    val_fraction: f64,
    /// What to do with special-token strings such as <|endoftext|>.
    #[arg(long, value_enum, default_value_t)]
    special: SpecialArg,
}

impl Args {
    /// Prepares the directory and reports the token counts on standard error.
    pub fn run(self) -> Result<()> {
        let meta = prepare(&PrepareOptions {
            inputs: self.inputs,
            tokenizer: self.tokenizer,
            out: self.out.clone(),
            val_fraction: self.val_fraction,
            special: self.special.into(),
        })?;
        eprintln!(
            "wrote {} training and {} validation tokens ({}, vocabulary {}) to {}",
            meta.train_tokens,
            meta.val_tokens,
            meta.dtype.name(),
            meta.vocab_size,
            self.out.display()
        );
        Ok(())
    }
}
