//! The data pipeline: text files to token files ([`prepare()`]), token files to training batches
//! ([`TokenDataset`]), and readers for fine-tuning data ([`instruct`]).
//!
//! A prepared directory holds `train.bin` and `val.bin`, flat arrays of little-endian token ids
//! (`u16` when the vocabulary has at most 65,536 ids, as nanoGPT's files, else `u32`), and
//! `meta.json`:
//!
//! ```json
//! {"version": 1, "tokenizer": {"version": 1, "kind": "gpt2"}, "vocab_size": 50257,
//!  "dtype": "u16", "train_tokens": 301966, "val_tokens": 36059}
//! ```

pub mod batch;
pub mod dataset;
pub mod instruct;
pub mod labelled;
pub mod prepare;
pub mod template;

pub use dataset::{EvalBatches, Split, TokenDataset};
pub use instruct::{read_instructions, read_preferences, Instruction, Preference};
pub use labelled::{read_labelled, Labelled};
pub use prepare::{prepare, PrepareOptions};

use crate::tokenizer::{self, Tokenizer};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file name of a prepared directory's metadata.
pub const META_FILE: &str = "meta.json";

/// How token ids are stored: little-endian `u16` or `u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenDtype {
    /// Two bytes per id: vocabularies of at most 65,536 ids.
    U16,
    /// Four bytes per id.
    U32,
}

impl TokenDtype {
    /// The narrowest dtype that holds every id below `vocab_size`.
    pub fn for_vocab(vocab_size: usize) -> TokenDtype {
        match vocab_size <= 1 << 16 {
            true => TokenDtype::U16,
            false => TokenDtype::U32,
        }
    }

    /// Bytes per id.
    pub fn width(self) -> usize {
        match self {
            TokenDtype::U16 => 2,
            TokenDtype::U32 => 4,
        }
    }

    /// `"u16"` or `"u32"`.
    pub fn name(self) -> &'static str {
        match self {
            TokenDtype::U16 => "u16",
            TokenDtype::U32 => "u32",
        }
    }
}

/// The contents of `meta.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Format version, 1.
    pub version: u32,
    /// The tokenizer, in its saved form ([`Tokenizer::to_json`]).
    pub tokenizer: serde_json::Value,
    /// The tokenizer's vocabulary size.
    pub vocab_size: usize,
    /// How `train.bin` and `val.bin` store ids.
    pub dtype: TokenDtype,
    /// Ids in `train.bin`.
    pub train_tokens: u64,
    /// Ids in `val.bin`.
    pub val_tokens: u64,
}

impl Meta {
    /// Reads `dir/meta.json`.
    pub fn read(dir: &Path) -> Result<Meta> {
        let path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        let meta: Meta = serde_json::from_str(&text).map_err(|e| Error::json(&path, &e))?;
        if meta.version != 1 {
            let message = format!("version {} is not supported (expected 1)", meta.version);
            return Err(Error::parse(&path, 1, message));
        }
        Ok(meta)
    }

    /// The tokenizer the ids were made with.
    pub fn tokenizer(&self) -> Result<Box<dyn Tokenizer>> {
        tokenizer::from_json(&self.tokenizer)
    }
}

/// Creates an output directory given with `--out` (and its parents), with a clear error when
/// a file is in the way.
pub fn create_out_dir(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::Invalid(format!(
            "--out {} is a file, not a directory",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io("create", out, e))
}

/// The contents of a UTF-8 text file; invalid UTF-8 is an error naming the file and the byte.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    String::from_utf8(bytes).map_err(|e| Error::Utf8 {
        what: path.display().to_string(),
        offset: e.utf8_error().valid_up_to(),
    })
}
