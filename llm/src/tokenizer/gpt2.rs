//! GPT-2's own BPE, read from OpenAI's `encoder.json` (token string to id) and `vocab.bpe`
//! (the 50,000 merges in order), both written in the byte-to-unicode alphabet of
//! [`super::bytes`]. The two files ship inside the binary, so `Gpt2Tokenizer::new()` needs
//! nothing on disk.
//!
//! Ids are those of tiktoken's `r50k_base`: the 256 bytes take ids 0..256 in the byte-to-unicode
//! order, merge `k` of `vocab.bpe` makes id `256 + k` (loading checks that `encoder.json` agrees),
//! and `<|endoftext|>` is 50256. Encoding cuts the text with GPT-2's split pattern and then
//! follows tiktoken's rule for each chunk: a chunk that is itself a token is that token;
//! otherwise, starting from its bytes, the adjacent pair whose concatenation is the token of
//! lowest id is merged (leftmost first), until no adjacent pair concatenates to a token.

use super::bpe::{decode_byte_level, encode_bytes_level, parse_merge};
use super::bytes::{byte_to_char, unicode_to_bytes};
use super::merge::{Merger, Ranks};
use super::pattern::Pattern;
use super::special::{Special, SpecialTokens};
use super::{saved_object, Tokenizer, ENDOFTEXT, FORMAT_VERSION};
use crate::{Error, Result};
use rustc_hash::FxHashMap;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// OpenAI's GPT-2 `encoder.json`.
const ENCODER_JSON: &str = include_str!("../../assets/gpt2/encoder.json");
/// OpenAI's GPT-2 `vocab.bpe`.
const VOCAB_BPE: &str = include_str!("../../assets/gpt2/vocab.bpe");

/// GPT-2's tokenizer (`r50k_base`). Cloning is cheap: the tables are shared.
#[derive(Clone, Debug)]
pub struct Gpt2Tokenizer {
    merger: Arc<Merger>,
    specials: SpecialTokens,
}

impl Default for Gpt2Tokenizer {
    fn default() -> Self {
        Gpt2Tokenizer::new()
    }
}

impl Gpt2Tokenizer {
    /// The tokenizer from the embedded files (built once per process, then shared).
    pub fn new() -> Gpt2Tokenizer {
        static EMBEDDED: OnceLock<Gpt2Tokenizer> = OnceLock::new();
        EMBEDDED
            .get_or_init(|| {
                Gpt2Tokenizer::parse(
                    ENCODER_JSON,
                    VOCAB_BPE,
                    Path::new("encoder.json"),
                    Path::new("vocab.bpe"),
                )
                .expect("the embedded GPT-2 files are valid")
            })
            .clone()
    }

    /// Reads `encoder.json` and `vocab.bpe` from disk (Hugging Face names them `vocab.json`
    /// and `merges.txt`).
    pub fn from_files(encoder: &Path, merges: &Path) -> Result<Gpt2Tokenizer> {
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| Error::io("read", p, e));
        Gpt2Tokenizer::parse(&read(encoder)?, &read(merges)?, encoder, merges)
    }

    /// Reads `encoder.json` + `vocab.bpe`, or else `vocab.json` + `merges.txt`, from `dir`.
    pub fn from_dir(dir: &Path) -> Result<Gpt2Tokenizer> {
        for (encoder, merges) in [("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt")] {
            let (encoder, merges) = (dir.join(encoder), dir.join(merges));
            if encoder.is_file() && merges.is_file() {
                return Gpt2Tokenizer::from_files(&encoder, &merges);
            }
        }
        Err(Error::Invalid(format!(
            "{} has neither encoder.json + vocab.bpe nor vocab.json + merges.txt",
            dir.display()
        )))
    }

    /// Reads the saved form, `{"version": 1, "kind": "gpt2"}`.
    pub fn from_json(value: &Value) -> Result<Gpt2Tokenizer> {
        saved_object(value, &[])?;
        Ok(Gpt2Tokenizer::new())
    }

    fn parse(
        encoder_text: &str,
        merges_text: &str,
        encoder_path: &Path,
        merges_path: &Path,
    ) -> Result<Gpt2Tokenizer> {
        let (tokens, special) = read_encoder(encoder_text, encoder_path)?;
        let ids: FxHashMap<Vec<u8>, u32> = tokens
            .iter()
            .enumerate()
            .map(|(id, bytes)| (bytes.clone(), id as u32))
            .collect();
        if let Some(b) = (0..=255u8).find(|&b| !ids.contains_key(&[b][..])) {
            let message = format!("the byte token {:?} is missing", byte_to_char(b));
            return Err(Error::parse(encoder_path, 1, message));
        }
        check_merges(merges_text, merges_path, &ids, tokens.len())?;
        let byte_ids = std::array::from_fn(|b| ids[&[b as u8][..]]);
        let merger = Merger {
            byte_ids,
            ranks: concatenation_ranks(&tokens, &ids),
            tokens,
            token_ids: Some(ids),
        };
        Ok(Gpt2Tokenizer {
            merger: Arc::new(merger),
            specials: SpecialTokens::new(vec![(ENDOFTEXT.to_string(), special)])?,
        })
    }
}

/// Reads `encoder.json`: the bytes of each ordinary token by id, and the id of `<|endoftext|>`,
/// which must be the last id.
fn read_encoder(text: &str, path: &Path) -> Result<(Vec<Vec<u8>>, u32)> {
    let map: serde_json::Map<String, Value> =
        serde_json::from_str(text).map_err(|e| Error::json(path, &e))?;
    let at = |key: &str, message: String| {
        let needle = serde_json::to_string(key).expect("strings serialize");
        let line = text
            .find(&needle)
            .map_or(1, |i| text[..i].matches('\n').count() + 1);
        Error::parse(path, line, message)
    };
    let n = map.len();
    let special = u32::try_from(n - 1).map_err(|_| Error::parse(path, 1, "too many tokens"))?;
    let mut tokens: Vec<Option<Vec<u8>>> = vec![None; n];
    for (key, value) in &map {
        let id = match value.as_u64() {
            Some(id) if (id as usize) < n => id as usize,
            _ => {
                return Err(at(
                    key,
                    format!("the id of {key:?} is {value}, not below {n}"),
                ))
            }
        };
        if key == ENDOFTEXT {
            if id != special as usize {
                return Err(at(
                    key,
                    format!("{ENDOFTEXT} must have the last id, {special}"),
                ));
            }
            continue;
        }
        let bytes = unicode_to_bytes(key).map_err(|c| {
            at(
                key,
                format!("the token {key:?} has {c:?}, which is not a byte-to-unicode character"),
            )
        })?;
        if tokens[id].replace(bytes).is_some() {
            return Err(at(key, format!("the id {id} is given twice")));
        }
    }
    if !map.contains_key(ENDOFTEXT) {
        return Err(Error::parse(
            path,
            1,
            format!("there is no {ENDOFTEXT} token"),
        ));
    }
    let mut ordinary = Vec::with_capacity(n - 1);
    for (id, token) in tokens.into_iter().take(n - 1).enumerate() {
        ordinary.push(token.ok_or_else(|| Error::parse(path, 1, format!("no token has id {id}")))?);
    }
    Ok((ordinary, special))
}

/// Checks that merge `k` of `vocab.bpe` joins two tokens into the token with id `256 + k`, and
/// that the merges make every ordinary token that is not a byte.
fn check_merges(
    text: &str,
    path: &Path,
    ids: &FxHashMap<Vec<u8>, u32>,
    ordinary: usize,
) -> Result<()> {
    let mut k = 0;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("#version") || line.is_empty() {
            continue;
        }
        let fail = |message: String| Error::parse(path, i + 1, message);
        let (a, b) = parse_merge(line).map_err(|why| fail(format!("the merge {line:?} {why}")))?;
        for part in [&a, &b] {
            if !ids.contains_key(part) {
                return Err(fail(format!(
                    "the merge {line:?} uses a token not in the vocabulary"
                )));
            }
        }
        let want = 256 + k as u32;
        match ids.get(&[a, b].concat()) {
            Some(&id) if id == want => {}
            Some(&id) => {
                return Err(fail(format!(
                    "the merge {line:?} makes token {id}, but as merge {k} it should make {want}"
                )))
            }
            None => {
                return Err(fail(format!(
                    "the merge {line:?} makes a token that is not in the vocabulary"
                )))
            }
        }
        k += 1;
    }
    if 256 + k != ordinary {
        return Err(Error::parse(
            path,
            text.lines().count(),
            format!(
                "{k} merges for a vocabulary of {ordinary} ordinary tokens, which needs {}",
                ordinary - 256
            ),
        ));
    }
    Ok(())
}

/// tiktoken's merge table: every way of cutting a token into two tokens, mapped to that token.
fn concatenation_ranks(tokens: &[Vec<u8>], ids: &FxHashMap<Vec<u8>, u32>) -> Ranks {
    let mut ranks = Ranks::default();
    for (id, bytes) in tokens.iter().enumerate() {
        for cut in 1..bytes.len() {
            if let (Some(&a), Some(&b)) = (ids.get(&bytes[..cut]), ids.get(&bytes[cut..])) {
                ranks.insert((a, b), id as u32);
            }
        }
    }
    ranks
}

impl Tokenizer for Gpt2Tokenizer {
    fn kind(&self) -> &'static str {
        "gpt2"
    }

    fn encode_with(&self, text: &str, special: Special) -> Result<Vec<u32>> {
        encode_bytes_level(&self.merger, Pattern::Gpt2, &self.specials, text, special)
    }

    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        decode_byte_level(&self.merger, &self.specials, ids)
    }

    fn vocab_size(&self) -> usize {
        self.merger.tokens.len() + 1
    }

    fn special_tokens(&self) -> &[(String, u32)] {
        self.specials.list()
    }

    fn cuts_at_spaces(&self) -> bool {
        true
    }

    fn to_json(&self) -> Value {
        json!({"version": FORMAT_VERSION, "kind": "gpt2"})
    }
}
