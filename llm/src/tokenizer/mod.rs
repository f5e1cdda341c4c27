//! Tokenizers: text to token ids and back, behind one trait.
//!
//! - [`CharTokenizer`]: one id per character of a corpus's sorted character set.
//! - [`BpeTokenizer`]: byte-level byte-pair encoding that you train, either on the whole text
//!   (the "basic" BPE) or on chunks cut by GPT-2's or GPT-4's split pattern.
//! - [`Gpt2Tokenizer`]: GPT-2's own BPE from `encoder.json` + `vocab.bpe` (embedded in the
//!   binary), giving the ids of tiktoken's `r50k_base`.
//! - [`Llama2cTokenizer`]: llama2.c's `tokenizer.bin` (Llama 2's sentencepiece vocabulary, or the
//!   small ones of the TinyStories models), encoding and decoding as llama2.c's `run.c` does.
//!
//! - [`added::WithAdded`]: any of these with special tokens added after its vocabulary.
//!
//! Every tokenizer saves to and loads from a versioned JSON file, `{"version": 1, "kind": ...}`;
//! [`load`] reads any of them and [`resolve`] turns a command-line `--tokenizer` value into one.

pub mod added;
pub mod bpe;
pub mod bytes;
pub mod char;
pub mod gpt2;
pub mod llama2c;
mod merge;
pub mod parallel;
pub mod pattern;
mod special;
mod split;
mod train;

pub use self::bpe::BpeTokenizer;
pub use self::char::CharTokenizer;
pub use self::gpt2::Gpt2Tokenizer;
pub use self::llama2c::Llama2cTokenizer;
pub use self::parallel::{encode_documents, encode_parallel};
pub use self::pattern::Pattern;
pub use self::special::Special;

use crate::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// The end-of-text special token of GPT-2 and of the BPE tokenizers trained here.
pub const ENDOFTEXT: &str = "<|endoftext|>";

/// The version of the saved-tokenizer format this crate writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// Text to token ids and back.
pub trait Tokenizer: Send + Sync {
    /// The saved kind: `"char"`, `"bpe"`, `"gpt2"`, `"llama2c"` or `"added"`.
    fn kind(&self) -> &'static str;

    /// The ids of `text`, with special-token strings handled as `special` says.
    fn encode_with(&self, text: &str, special: Special) -> Result<Vec<u32>>;

    /// The ids of `text`; special-token strings become their special ids.
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_with(text, Special::Allow)
    }

    /// The bytes that `ids` stand for. A byte-level token can hold part of a UTF-8 character,
    /// so a prefix of an encoding need not decode to valid UTF-8: streaming output uses this.
    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>>;

    /// The bytes that `id` adds after `prev` (`None`: `id` starts the sequence), so that
    /// decoding one token at a time, as streaming output does, gives the bytes of
    /// [`Tokenizer::decode_bytes`] on the whole sequence. The default decodes `id` alone, which
    /// is right for every tokenizer whose tokens do not depend on the token before; llama2.c's
    /// does (a token after BOS, or at the start, drops its leading space).
    fn decode_next(&self, prev: Option<u32>, id: u32) -> Result<Vec<u8>> {
        let _ = prev;
        self.decode_bytes(&[id])
    }

    /// The text that `ids` stand for; an error if an id is out of range or the bytes are not
    /// UTF-8. `decode(encode(s)) == s` for every tokenizer and every `s` it can encode.
    fn decode(&self, ids: &[u32]) -> Result<String> {
        String::from_utf8(self.decode_bytes(ids)?).map_err(|e| Error::Utf8 {
            what: "the decoded text".into(),
            offset: e.utf8_error().valid_up_to(),
        })
    }

    /// The number of ids: every id is below it.
    fn vocab_size(&self) -> usize;

    /// The special tokens and their ids, in increasing id order.
    fn special_tokens(&self) -> &[(String, u32)];

    /// The id of `<|endoftext|>`, if this tokenizer has it.
    fn eot_token(&self) -> Option<u32> {
        let mut special = self.special_tokens().iter();
        special.find(|t| t.0 == ENDOFTEXT).map(|t| t.1)
    }

    /// The token every training text begins with, which a prompt should begin with too:
    /// llama2.c's BOS. `None` (the default) for tokenizers whose texts begin with their first
    /// word.
    fn text_start(&self) -> Option<u32> {
        None
    }

    /// Whether a text may be cut before any space that follows a non-whitespace character, and
    /// the two sides encoded apart, with the same ids as the whole: true for the character
    /// tokenizer and for BPE with a split pattern. [`encode_parallel`] relies on it.
    fn cuts_at_spaces(&self) -> bool;

    /// The saved form: `{"version": 1, "kind": ..., ...}`.
    fn to_json(&self) -> Value;

    /// Writes [`Tokenizer::to_json`] to `path`, pretty-printed.
    fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.to_json()).expect("JSON values serialize");
        std::fs::write(path, text + "\n").map_err(|e| Error::io("write", path, e))
    }
}

/// Reads a tokenizer saved by [`Tokenizer::save`].
pub fn load(path: &Path) -> Result<Box<dyn Tokenizer>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| Error::json(path, &e))?;
    from_json(&value).map_err(|e| e.in_file(path))
}

/// A tokenizer from its saved form.
pub fn from_json(value: &Value) -> Result<Box<dyn Tokenizer>> {
    let version = value.get("version").and_then(Value::as_u64);
    if version != Some(FORMAT_VERSION) {
        return Err(Error::Invalid(format!(
            "a saved tokenizer needs \"version\": {FORMAT_VERSION}, found {}",
            value.get("version").map_or("none".into(), Value::to_string)
        )));
    }
    match value.get("kind").and_then(Value::as_str) {
        Some("char") => Ok(Box::new(CharTokenizer::from_json(value)?)),
        Some("bpe") => Ok(Box::new(BpeTokenizer::from_json(value)?)),
        Some("gpt2") => Ok(Box::new(Gpt2Tokenizer::from_json(value)?)),
        Some("llama2c") => Ok(Box::new(Llama2cTokenizer::from_json(value)?)),
        Some("added") => Ok(Box::new(added::WithAdded::from_json(value)?)),
        other => Err(Error::Invalid(format!(
            "unknown tokenizer kind {}; expected \"char\", \"bpe\", \"gpt2\", \"llama2c\" or \"added\"",
            other.map_or("(none)".into(), |k| format!("{k:?}"))
        ))),
    }
}

/// The tokenizer a command line names: `char` (a character vocabulary built from
/// `char_corpus()`, which is called only for this case), `gpt2`, `llama2c:FILE` (a llama2.c
/// `tokenizer.bin`, every token to the end of the file), a saved tokenizer JSON file, or a
/// directory holding GPT-2-format `encoder.json` + `vocab.bpe` (or `vocab.json` + `merges.txt`).
pub fn resolve(
    spec: &str,
    char_corpus: impl FnOnce() -> Result<String>,
) -> Result<Box<dyn Tokenizer>> {
    if let Some(file) = spec.strip_prefix("llama2c:") {
        return Ok(Box::new(Llama2cTokenizer::from_file_to_end(Path::new(
            file,
        ))?));
    }
    match spec {
        "char" => Ok(Box::new(CharTokenizer::from_corpus(&char_corpus()?)?)),
        "gpt2" => Ok(Box::new(Gpt2Tokenizer::new())),
        path => {
            let path = Path::new(path);
            if path.is_dir() {
                Ok(Box::new(Gpt2Tokenizer::from_dir(path)?))
            } else if path.is_file() {
                load(path)
            } else {
                Err(Error::Invalid(format!(
                    "--tokenizer {spec:?} is not char, gpt2, llama2c:FILE, a tokenizer file or a \
                     directory"
                )))
            }
        }
    }
}

/// The fields of a saved tokenizer's JSON object, checked to be exactly `allowed` plus
/// `version` and `kind`.
pub(crate) fn saved_object<'a>(
    value: &'a Value,
    allowed: &[&str],
) -> Result<&'a serde_json::Map<String, Value>> {
    let object = value
        .as_object()
        .ok_or_else(|| Error::Invalid("a saved tokenizer must be a JSON object".into()))?;
    let unknown = object
        .keys()
        .find(|k| !["version", "kind"].contains(&k.as_str()) && !allowed.contains(&k.as_str()));
    match unknown {
        Some(key) => Err(Error::Invalid(format!(
            "unknown key {key:?} in a saved tokenizer"
        ))),
        None => Ok(object),
    }
}

/// Checks that every id is below `vocab_size`.
pub(crate) fn check_ids(ids: &[u32], vocab_size: usize) -> Result<()> {
    match ids.iter().position(|&id| id as usize >= vocab_size) {
        Some(position) => Err(Error::TokenOutOfRange {
            id: ids[position],
            position,
            vocab_size,
        }),
        None => Ok(()),
    }
}
