//! The subcommands, one per file, and what they share.

pub mod bpe_train;
pub mod eval;
pub mod prepare;
pub mod sample;
pub mod tokenize;
pub mod train;

use llm::tokenizer::Special;
use llm::{Error, Result};
use std::io::Write;
use std::path::Path;

/// `--special`: what encoding does with special-token strings such as `<|endoftext|>`.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum SpecialArg {
    /// Encode each as its special id.
    #[default]
    Allow,
    /// Stop with an error naming the token and its byte offset.
    Reject,
    /// Encode them as ordinary text.
    Text,
}

impl From<SpecialArg> for Special {
    fn from(arg: SpecialArg) -> Special {
        match arg {
            SpecialArg::Allow => Special::Allow,
            SpecialArg::Reject => Special::Reject,
            SpecialArg::Text => Special::AsText,
        }
    }
}

/// Writes `text` to standard output; a closed pipe (`llm ... | head`) is not an error.
pub fn print(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("write", Path::new("standard output"), e))
        }
        _ => Ok(()),
    }
}
