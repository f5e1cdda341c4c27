//! The language-model pipeline: tokenizers and token data, models, training, generation and
//! evaluation, and the `llm` command line built on them.
//!
//! ```
//! use llm::tokenizer::{Gpt2Tokenizer, Tokenizer};
//! let gpt2 = Gpt2Tokenizer::new();
//! let ids = gpt2.encode("Hello world<|endoftext|>").unwrap();
//! assert_eq!(ids, [15496, 995, 50256]);
//! assert_eq!(gpt2.decode(&ids).unwrap(), "Hello world<|endoftext|>");
//! ```

#![warn(missing_docs)]

pub mod alloc;
pub mod data;
pub mod error;
pub mod eval;
pub mod generate;
pub mod model;
pub mod run;
pub mod stages;
pub mod tasks;
#[cfg(test)]
mod testing;
pub mod tokenizer;
pub mod train;

pub use error::{Error, Result};

/// Tiny Shakespeare (1,115,394 characters of Shakespeare's plays, the char-rnn corpus): the
/// default training text, embedded so that a first run needs no files.
pub const TINY_SHAKESPEARE: &str = include_str!("../assets/tinyshakespeare.txt");
