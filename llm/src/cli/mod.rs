//! The subcommands, one per file, and what they share.

pub mod bpe_train;
pub mod chat;
pub mod classify;
pub mod dpo;
pub mod dpo_pairs;
pub mod eval;
pub mod llama2c;
pub mod ppo;
pub mod prepare;
pub mod reward;
pub mod rl;
pub mod sample;
pub mod sft;
pub mod synth;
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

/// A value parser for a size flag of at most `MAX`, so that no number a user types can ask
/// for an allocation that cannot exist; `--help` states each flag's bound.
pub fn at_most<const MAX: usize>(arg: &str) -> std::result::Result<usize, String> {
    let n: usize = arg
        .parse()
        .map_err(|_| format!("`{arg}` is not a whole number"))?;
    match n <= MAX {
        true => Ok(n),
        false => Err(format!("{n} is more than the limit of {MAX}")),
    }
}

/// [`at_most`], and at least 1.
pub fn positive_at_most<const MAX: usize>(arg: &str) -> std::result::Result<usize, String> {
    match at_most::<MAX>(arg)? {
        0 => Err("it must be at least 1".into()),
        n => Ok(n),
    }
}

/// A value parser for a finite number above zero.
pub fn positive_f64(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("expected a number above 0, not `{s}`")),
    }
}

/// A value parser for a finite number of at least 0.
pub fn non_negative_f64(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("expected a number of at least 0, not `{s}`")),
    }
}

/// A value parser for a count of draws, 2 to 1,024 (a group needs two to compare).
pub fn at_least_two(arg: &str) -> std::result::Result<usize, String> {
    match positive_at_most::<1024>(arg)? {
        1 => Err("at least 2 draws are needed to compare answers".into()),
        k => Ok(k),
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
