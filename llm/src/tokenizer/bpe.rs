//! Byte-level BPE that you train: the basic one (no pre-split: merges may cross spaces) and the
//! regex one (the text is first cut by GPT-2's or GPT-4's split pattern).
//!
//! Ids: bytes are `0..256`, merge `k` makes token `256 + k`, and special tokens follow the
//! merges. So with `n` merges and `s` special tokens the vocabulary size is `256 + n + s`.
//!
//! Saved form, readable as GPT-2's `vocab.bpe` is (tokens in the byte-to-unicode alphabet of
//! [`super::bytes`], so a space byte reads `Ġ`):
//!
//! ```json
//! {"version": 1, "kind": "bpe", "pattern": "gpt2",
//!  "merges": ["Ġ t", "h e", "Ġt he"], "special_tokens": ["<|endoftext|>"]}
//! ```

use super::bytes::{bytes_to_unicode, unicode_to_bytes};
use super::merge::Merger;
use super::parallel::cut_into_pieces;
use super::pattern::Pattern;
use super::special::{Segment, Special, SpecialTokens};
use super::train::train_merges;
use super::{check_ids, saved_object, Tokenizer, FORMAT_VERSION};
use crate::{Error, Result};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde_json::{json, Value};

/// A trained byte-level BPE tokenizer.
#[derive(Clone, Debug)]
pub struct BpeTokenizer {
    pattern: Pattern,
    /// `merges[k]` is the pair that token `256 + k` joins.
    merges: Vec<(u32, u32)>,
    merger: Merger,
    specials: SpecialTokens,
}

impl BpeTokenizer {
    /// Trains on `text` until the vocabulary (bytes, merges and `specials`) has `vocab_size`
    /// ids, or no adjacent pair is left to merge. Special-token strings in `text` are cut out
    /// before counting, so no merge spans them.
    ///
    /// Each step merges the most frequent adjacent pair. Ties go to the pair whose first token's
    /// bytes are lexicographically greatest, then whose second token's bytes are, then to the
    /// greater ids: a rule of the tokens alone, never of hash-map order.
    pub fn train(
        text: &str,
        vocab_size: usize,
        pattern: Pattern,
        specials: &[String],
    ) -> Result<BpeTokenizer> {
        let floor = 256 + specials.len();
        if vocab_size < floor {
            return Err(Error::Invalid(format!(
                "a vocabulary size of {vocab_size} is too small: the 256 bytes and {} special \
                 token(s) need {floor}",
                specials.len()
            )));
        }
        let special_list = SpecialTokens::new(
            specials
                .iter()
                .enumerate()
                .map(|(i, s)| (s.clone(), i as u32))
                .collect(),
        )?;
        let counts = count_chunks(text, pattern, &special_list)?;
        let mut chunks: Vec<(&[u8], u64)> =
            counts.iter().map(|(c, &n)| (c.as_bytes(), n)).collect();
        chunks.sort_unstable();
        let merges = train_merges(&chunks, vocab_size - floor);
        BpeTokenizer::from_merges(merges, pattern, specials)
    }

    /// A tokenizer from its merges (merge `k` makes token `256 + k` and may only use tokens
    /// below it) and special tokens (which take the ids after the merges).
    pub fn from_merges(
        merges: Vec<(u32, u32)>,
        pattern: Pattern,
        specials: &[String],
    ) -> Result<BpeTokenizer> {
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        let mut ranks = FxHashMap::default();
        for (k, &(a, b)) in merges.iter().enumerate() {
            let id = 256 + k as u32;
            if a >= id || b >= id {
                return Err(Error::Invalid(format!(
                    "merge {k} ({a}, {b}) uses a token that does not exist before it"
                )));
            }
            tokens.push([&tokens[a as usize][..], &tokens[b as usize][..]].concat());
            if let Some(first) = ranks.insert((a, b), id) {
                return Err(Error::Invalid(format!(
                    "merge {k} ({a}, {b}) repeats merge {}",
                    first - 256
                )));
            }
        }
        let first_special = tokens.len() as u32;
        let specials = SpecialTokens::new(
            specials
                .iter()
                .enumerate()
                .map(|(i, s)| (s.clone(), first_special + i as u32))
                .collect(),
        )?;
        let byte_ids = std::array::from_fn(|b| b as u32);
        Ok(BpeTokenizer {
            pattern,
            merges,
            merger: Merger {
                byte_ids,
                ranks,
                tokens,
                token_ids: None,
            },
            specials,
        })
    }

    /// The merges in order: `merges()[k]` is the pair that token `256 + k` joins.
    pub fn merges(&self) -> &[(u32, u32)] {
        &self.merges
    }

    /// The split pattern.
    pub fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// The bytes of token `id` (`None` for a special token or an id out of range).
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.merger.tokens.get(id as usize).map(Vec::as_slice)
    }

    /// Reads the saved form (see the module documentation).
    pub fn from_json(value: &Value) -> Result<BpeTokenizer> {
        let object = saved_object(value, &["pattern", "merges", "special_tokens"])?;
        let pattern: Pattern = object
            .get("pattern")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Invalid("a bpe tokenizer needs a \"pattern\" string".into()))?
            .parse()?;
        let merges = strings(object.get("merges"), "merges")?;
        let specials = strings(object.get("special_tokens"), "special_tokens")?;
        let mut ids: FxHashMap<Vec<u8>, u32> =
            (0..=255u8).map(|b| (vec![b], u32::from(b))).collect();
        let mut pairs = Vec::with_capacity(merges.len());
        for (k, merge) in merges.iter().enumerate() {
            let (a, b) = parse_merge(merge)
                .map_err(|why| Error::Invalid(format!("merge {k} ({merge:?}) {why}")))?;
            let id_of = |bytes: &[u8]| {
                ids.get(bytes).copied().ok_or_else(|| {
                    Error::Invalid(format!(
                        "merge {k} ({merge:?}) uses {:?}, which no earlier merge makes",
                        bytes_to_unicode(bytes)
                    ))
                })
            };
            pairs.push((id_of(&a)?, id_of(&b)?));
            ids.entry([a, b].concat()).or_insert(256 + k as u32);
        }
        BpeTokenizer::from_merges(pairs, pattern, &specials)
    }
}

/// Reads a JSON array of strings (a missing one is empty).
fn strings(value: Option<&Value>, name: &str) -> Result<Vec<String>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let not_strings = || Error::Invalid(format!("\"{name}\" must be an array of strings"));
    value
        .as_array()
        .ok_or_else(not_strings)?
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(not_strings))
        .collect()
}

/// Splits a saved merge `"a b"` into the bytes of its two tokens.
pub(crate) fn parse_merge(merge: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut parts = merge.split(' ');
    let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("is not two tokens separated by one space".into());
    };
    let decode = |s: &str| match unicode_to_bytes(s) {
        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
        Ok(_) => Err("has an empty token".to_string()),
        Err(c) => Err(format!(
            "has {c:?}, which is not a byte-to-unicode character"
        )),
    };
    Ok((decode(a)?, decode(b)?))
}

/// The distinct chunks of `text` between special tokens, with their counts.
fn count_chunks<'a>(
    text: &'a str,
    pattern: Pattern,
    specials: &SpecialTokens,
) -> Result<FxHashMap<&'a str, u64>> {
    let pieces = cut_into_pieces(text, 1 << 20, specials.list());
    let maps: Vec<FxHashMap<&str, u64>> = pieces
        .par_iter()
        .map(|&piece| {
            let mut counts = FxHashMap::default();
            specials.for_each_segment(piece, Special::Allow, |segment| {
                if let Segment::Text(t, _) = segment {
                    pattern.for_each_chunk(t, |c| *counts.entry(c).or_default() += 1)?;
                }
                Ok(())
            })?;
            Ok(counts)
        })
        .collect::<Result<_>>()?;
    let mut total = FxHashMap::default();
    for map in maps {
        for (chunk, n) in map {
            *total.entry(chunk).or_default() += n;
        }
    }
    Ok(total)
}

/// Encodes `text` with byte-level merges: special tokens as `mode` says, the rest cut by
/// `pattern` and each chunk merged. A chunk seen before in this text reuses its ids.
pub(crate) fn encode_bytes_level(
    merger: &Merger,
    pattern: Pattern,
    specials: &SpecialTokens,
    text: &str,
    mode: Special,
) -> Result<Vec<u32>> {
    let mut out = Vec::with_capacity(text.len() / 3);
    let mut seen: FxHashMap<&str, (usize, usize)> = FxHashMap::default();
    specials.for_each_segment(text, mode, |segment| match segment {
        Segment::Special(id) => {
            out.push(id);
            Ok(())
        }
        Segment::Text(t, _) => pattern.for_each_chunk(t, |chunk| {
            if let Some(id) = merger.whole_token(chunk.as_bytes()) {
                return out.push(id);
            }
            if let Some(&(start, len)) = seen.get(chunk) {
                return out.extend_from_within(start..start + len);
            }
            let start = out.len();
            merger.encode_chunk(chunk.as_bytes(), &mut out);
            seen.insert(chunk, (start, out.len() - start));
        }),
    })?;
    Ok(out)
}

/// The bytes of `ids` for byte-level merges plus special tokens.
pub(crate) fn decode_byte_level(
    merger: &Merger,
    specials: &SpecialTokens,
    ids: &[u32],
) -> Result<Vec<u8>> {
    check_ids(ids, merger.tokens.len() + specials.list().len())?;
    let mut out = Vec::with_capacity(ids.len() * 4);
    for &id in ids {
        match merger.tokens.get(id as usize) {
            Some(bytes) => out.extend_from_slice(bytes),
            None => out.extend_from_slice(specials.token(id).expect("checked above").as_bytes()),
        }
    }
    Ok(out)
}

impl Tokenizer for BpeTokenizer {
    fn kind(&self) -> &'static str {
        "bpe"
    }

    fn encode_with(&self, text: &str, special: Special) -> Result<Vec<u32>> {
        encode_bytes_level(&self.merger, self.pattern, &self.specials, text, special)
    }

    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        decode_byte_level(&self.merger, &self.specials, ids)
    }

    fn vocab_size(&self) -> usize {
        self.merger.tokens.len() + self.specials.list().len()
    }

    fn special_tokens(&self) -> &[(String, u32)] {
        self.specials.list()
    }

    fn cuts_at_spaces(&self) -> bool {
        self.pattern != Pattern::None
    }

    fn to_json(&self) -> Value {
        let merges: Vec<String> = self
            .merges
            .iter()
            .map(|&(a, b)| {
                let token = |id: u32| bytes_to_unicode(&self.merger.tokens[id as usize]);
                format!("{} {}", token(a), token(b))
            })
            .collect();
        let specials: Vec<&str> = self.specials.list().iter().map(|t| t.0.as_str()).collect();
        json!({
            "version": FORMAT_VERSION,
            "kind": "bpe",
            "pattern": self.pattern.name(),
            "merges": merges,
            "special_tokens": specials,
        })
    }
}
