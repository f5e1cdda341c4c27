//! `llm tokenize`: print the token ids of a text, or with `--decode` the text of token ids.

use super::{print, SpecialArg};
use llm::data::read_text;
use llm::tokenizer;
use llm::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Print the token ids of a text, or the text of token ids
///
/// The input is --text, --file, or standard input when neither is given.
#[derive(clap::Args)]
pub struct Args {
    /// `char` (the characters of the embedded Tiny Shakespeare), `gpt2`, a saved tokenizer JSON
    /// file, or a directory with GPT-2's encoder.json and vocab.bpe.
    #[arg(long, value_name = "char|gpt2|FILE")]
    tokenizer: String,
    /// The text to encode.
    #[arg(long, conflicts_with = "file")]
    text: Option<String>,
    /// A UTF-8 file to encode.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Print a JSON array instead of ids separated by spaces.
    #[arg(long)]
    json: bool,
    /// What to do with special-token strings such as <|endoftext|>.
    #[arg(long, value_enum, default_value_t)]
    special: SpecialArg,
    /// Decode instead: read token ids (numbers separated by spaces or commas, or a JSON array)
    /// and print the text they stand for (bytes that are not UTF-8 print as U+FFFD).
    #[arg(long)]
    decode: bool,
}

impl Args {
    /// Encodes the text and prints the ids on one line (or decodes, with `--decode`).
    pub fn run(self) -> Result<()> {
        let tok = tokenizer::resolve(&self.tokenizer, || Ok(llm::TINY_SHAKESPEARE.to_string()))?;
        let text = match (self.text, &self.file) {
            (Some(text), _) => text,
            (None, Some(path)) => read_text(path)?,
            (None, None) => read_stdin()?,
        };
        if self.decode {
            let bytes = tok.decode_bytes(&parse_ids(&text)?)?;
            return print(&(String::from_utf8_lossy(&bytes).into_owned() + "\n"));
        }
        let ids = tok.encode_with(&text, self.special.into())?;
        let line = match self.json {
            true => serde_json::to_string(&ids).expect("ids serialize"),
            false => ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" "),
        };
        print(&(line + "\n"))
    }
}

fn read_stdin() -> Result<String> {
    let stdin = Path::new("standard input");
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", stdin, e))?;
    String::from_utf8(bytes).map_err(|e| Error::Utf8 {
        what: "standard input".into(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Token ids written as numbers separated by spaces or commas, optionally in brackets.
fn parse_ids(text: &str) -> Result<Vec<u32>> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']'))
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| Error::Invalid(format!("--decode: {s:?} is not a token id")))
        })
        .collect()
}
