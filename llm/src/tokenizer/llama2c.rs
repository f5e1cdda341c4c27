//! llama2.c's tokenizer: a sentencepiece BPE vocabulary (Llama 2's 32,000 pieces, or a small one
//! trained for the TinyStories models) in llama2.c's `tokenizer.bin` format, encoded and decoded
//! as llama2.c's `run.c` does.
//!
//! **The file.** Little endian throughout: an `i32` max_token_length (the longest piece, in
//! bytes), then for each token in id order an `f32` score, an `i32` byte length and the piece's
//! bytes. The number of tokens is not in the file: the caller gives it (512 for `tok512.bin`,
//! 32,000 for `tokenizer.bin`), or [`Llama2cTokenizer::from_file_to_end`] takes every token up to
//! the end of the file (each token says its own length, so that reading is unambiguous). Ids 0, 1
//! and 2 are `<unk>`, BOS and EOS (their pieces read "<unk>", "\n<s>\n" and "\n</s>\n"); ids
//! 3..=258 are the byte pieces "<0x00>".."<0xFF>"; the other pieces (characters and merges)
//! follow, and a higher score means a merge that sentencepiece learned earlier.
//!
//! **Encoding** (run.c's `encode`):
//! 1. if the text is not empty, a dummy-prefix token, the piece " " (sentencepiece's "add dummy
//!    prefix": the first word of a text is spelled like a word after a space);
//! 2. one token per character: the piece that is its UTF-8 bytes, or else one byte piece per
//!    byte, id = byte + 3 (the "byte fallback");
//! 3. merging: while some adjacent pair of tokens concatenates (as piece strings) to a piece, the
//!    pair whose piece has the highest score becomes that piece, the leftmost pair on a tie; a
//!    score must be above -1e10, run.c's starting best, to count.
//!
//! run.c rescans every pair after each merge, which is quadratic in the length of the text. Here
//! the candidate pairs wait in a heap ordered by score and then position, so the same merges
//! happen in the same order in O(n log n); the plain rescan is kept in the tests as the reference
//! and the two are held equal on random text.
//!
//! **Decoding** (run.c's `decode(prev_token, token)`): a piece that comes right after BOS loses
//! its leading space, and then a piece of the form "<0xHH>" (two hex digits) is the raw byte HH;
//! any other piece is its bytes. (run.c reads byte pieces with `sscanf`, which would also take
//! malformed ones such as "<0x4"; no piece of the shipped vocabularies is of that kind.)
//!
//! **Through the [`Tokenizer`] trait**, so that this tokenizer composes with the others:
//! - encoding adds no BOS or EOS: callers add BOS where a model wants it, as they add GPT-2's
//!   `<|endoftext|>`. Under [`Special::Allow`] the strings `<unk>`, `<s>` and `</s>` in the text
//!   are ids 0, 1 and 2 (under [`Special::AsText`] they are ordinary text, as run.c treats all
//!   text). The dummy prefix goes at the start of the text and after each `<s>`, so
//!   `encode("<s>Once upon a time")` is run.c's encoding of "Once upon a time" with BOS.
//! - decoding drops one leading space from the token that starts the sequence and from a token
//!   that follows BOS: exactly the dummy prefixes that encoding adds, so
//!   `decode(encode(s)) == s`. In run.c's terms, the start of a sequence is treated as following
//!   BOS. Ids 0, 1 and 2 decode to `<unk>`, `<s>` and `</s>`, the strings that encode to them.
//!   (The round trip also needs that no merge makes a special or a byte piece, whose text is not
//!   its piece; a test checks that of both shipped vocabularies.)
//! - since a token's text depends on the token before it, one token decoded alone is not always
//!   its text inside a sequence: streaming output decodes each new token with
//!   [`Tokenizer::decode_next`], which gives the sequence's bytes piece by piece.
//!
//! [`Llama2cTokenizer::encode_llama`] and [`Llama2cTokenizer::decode_llama`] are run.c's own
//! functions, BOS and EOS and the file's special pieces included.
//!
//! **Saved form**: the pieces (as JSON strings, or as arrays of byte values for a piece that is
//! not UTF-8) and scores in id order, and max_token_length:
//!
//! ```json
//! {"version": 1, "kind": "llama2c", "max_token_length": 7,
//!  "pieces": ["<unk>", "\n<s>\n", "\n</s>\n", "<0x00>", ...], "scores": [0.0, 0.0, ...]}
//! ```

use super::special::{Segment, SpecialTokens};
use super::{check_ids, saved_object, Special, Tokenizer, FORMAT_VERSION};
use crate::{Error, Result};
use rustc_hash::FxHashMap;
use serde_json::{json, Value};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::path::Path;
use std::sync::Arc;

/// The ids before the merged pieces: `<unk>`, BOS, EOS and the 256 byte pieces.
const FIRST_MERGED: usize = 259;

/// The id of the byte piece of byte 0; byte `b` is id `b + BYTE_OFFSET`.
const BYTE_OFFSET: u32 = 3;

/// run.c's starting best score: a pair merges only if its piece scores above it.
const NO_SCORE: f32 = -1e10;

/// The special tokens' strings, by id.
const SPECIAL_NAMES: [&str; 3] = ["<unk>", "<s>", "</s>"];

/// Every byte value, so that a byte piece decodes to a one-byte slice.
const ALL_BYTES: [u8; 256] = {
    let mut all = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        all[b] = b as u8;
        b += 1;
    }
    all
};

/// llama2.c's tokenizer. Cloning is cheap: the vocabulary is shared.
#[derive(Clone, Debug)]
pub struct Llama2cTokenizer {
    vocab: Arc<Vocab>,
    specials: SpecialTokens,
}

/// The pieces, their scores and the piece-to-id table.
#[derive(Debug)]
struct Vocab {
    max_token_length: u32,
    /// `pieces[id]`, as in the file.
    pieces: Vec<Vec<u8>>,
    /// `scores[id]`; all finite.
    scores: Vec<f32>,
    /// The inverse of `pieces` (pieces are distinct).
    ids: FxHashMap<Vec<u8>, u32>,
    /// The id of the piece " ", the dummy prefix.
    space: u32,
}

impl Llama2cTokenizer {
    /// The id of `<unk>` (never produced by encoding: byte fallback covers every character).
    pub const UNK: u32 = 0;
    /// The id of BOS, `<s>`, which starts every text in llama2.c's training data.
    pub const BOS: u32 = 1;
    /// The id of EOS, `</s>`.
    pub const EOS: u32 = 2;

    /// Reads `path`, which must hold exactly `vocab_size` tokens: a file that ends early, or has
    /// bytes after the last token, is an error naming the file, as is any check of
    /// [`Llama2cTokenizer::from_pieces`] that fails.
    pub fn from_file(path: &Path, vocab_size: usize) -> Result<Llama2cTokenizer> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        Llama2cTokenizer::from_bytes(&bytes, Some(vocab_size)).map_err(|e| e.in_file(path))
    }

    /// Reads every token of `path`: tokens are read until the file ends, which must be at the
    /// end of a token. A file cut between two tokens reads as a smaller vocabulary (nothing in
    /// the file can tell), so prefer [`Llama2cTokenizer::from_file`] when the size is known.
    pub fn from_file_to_end(path: &Path) -> Result<Llama2cTokenizer> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        Llama2cTokenizer::from_bytes(&bytes, None).map_err(|e| e.in_file(path))
    }

    /// Reads the contents of a `tokenizer.bin`: `vocab_size` tokens, or with `None` every token
    /// up to the end.
    pub fn from_bytes(bytes: &[u8], vocab_size: Option<usize>) -> Result<Llama2cTokenizer> {
        let (max_token_length, pieces, scores) = parse(bytes, vocab_size)?;
        Llama2cTokenizer::from_pieces(pieces, scores, max_token_length)
    }

    /// A tokenizer from its pieces and scores in id order. Checked: one score per piece, every
    /// score finite, no piece longer than `max_token_length`, pieces distinct, at least 259
    /// tokens with ids 3..=258 the byte pieces "<0x00>".."<0xFF>" (byte fallback needs them),
    /// and a piece " " (the dummy prefix).
    pub fn from_pieces(
        pieces: Vec<Vec<u8>>,
        scores: Vec<f32>,
        max_token_length: u32,
    ) -> Result<Llama2cTokenizer> {
        let vocab = Vocab::new(pieces, scores, max_token_length)?;
        let names = SPECIAL_NAMES.iter().zip(0..);
        let specials = SpecialTokens::new(names.map(|(n, id)| (n.to_string(), id)).collect())?;
        Ok(Llama2cTokenizer {
            vocab: Arc::new(vocab),
            specials,
        })
    }

    /// Reads the saved form (see the module documentation).
    pub fn from_json(value: &Value) -> Result<Llama2cTokenizer> {
        let object = saved_object(value, &["max_token_length", "pieces", "scores"])?;
        let invalid = |what: &str| Error::Invalid(format!("a llama2c tokenizer needs {what}"));
        let max_token_length = object
            .get("max_token_length")
            .and_then(Value::as_u64)
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(|| invalid("a \"max_token_length\" that is a 32-bit count"))?;
        let pieces = object
            .get("pieces")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("a \"pieces\" array"))?
            .iter()
            .enumerate()
            .map(|(id, p)| {
                let what = format!("piece {id} to be a string or an array of byte values");
                piece_from_json(p).ok_or_else(|| invalid(&what))
            })
            .collect::<Result<Vec<_>>>()?;
        let scores = object
            .get("scores")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("a \"scores\" array"))?
            .iter()
            .enumerate()
            .map(|(id, s)| {
                let not_a_number = || invalid(&format!("a number as the score of token {id}"));
                s.as_f64().map(|s| s as f32).ok_or_else(not_a_number)
            })
            .collect::<Result<Vec<_>>>()?;
        Llama2cTokenizer::from_pieces(pieces, scores, max_token_length)
    }

    /// run.c's `encode(text, bos, eos)`: BOS if `bos`, the dummy prefix " " if `text` is not
    /// empty, the characters with byte fallback, the merges (see the module documentation), and
    /// EOS if `eos`. Every character is ordinary text: `<s>` in `text` is three characters.
    pub fn encode_llama(&self, text: &str, bos: bool, eos: bool) -> Vec<u32> {
        let mut ids = Vec::with_capacity(text.len() + 3);
        if bos {
            ids.push(Llama2cTokenizer::BOS);
        }
        self.vocab.encode_text(text, true, &mut ids);
        if eos {
            ids.push(Llama2cTokenizer::EOS);
        }
        ids
    }

    /// run.c's `decode(prev_token, token)`: the piece of `id` (the file's, for the special ids
    /// too: BOS is "\n<s>\n"), without its leading space when `prev` is BOS, and a byte piece
    /// as its raw byte. An error if `id` is out of range.
    pub fn decode_llama(&self, prev: u32, id: u32) -> Result<&[u8]> {
        check_ids(&[id], self.vocab_size())?;
        let piece = &self.vocab.pieces[id as usize];
        Ok(piece_text(piece, prev == Llama2cTokenizer::BOS))
    }

    /// The piece of `id` as the file has it, or `None` out of range.
    pub fn piece(&self, id: u32) -> Option<&[u8]> {
        self.vocab.pieces.get(id as usize).map(Vec::as_slice)
    }

    /// The score of `id`, or `None` out of range.
    pub fn score(&self, id: u32) -> Option<f32> {
        self.vocab.scores.get(id as usize).copied()
    }

    /// The id whose piece is `piece`, if any.
    pub fn id_of(&self, piece: &[u8]) -> Option<u32> {
        self.vocab.ids.get(piece).copied()
    }

    /// The header's max_token_length: no piece is longer, in bytes.
    pub fn max_token_length(&self) -> u32 {
        self.vocab.max_token_length
    }

    /// The bytes of `id` right after `prev` (`None`: `id` starts the sequence) as the trait
    /// decodes: special ids as their strings, and the leading space dropped at the start and
    /// after BOS. `id` must be in range.
    fn text_after(&self, prev: Option<u32>, id: u32) -> &[u8] {
        if let Some(name) = SPECIAL_NAMES.get(id as usize) {
            return name.as_bytes();
        }
        let after_start = prev.is_none_or(|p| p == Llama2cTokenizer::BOS);
        piece_text(&self.vocab.pieces[id as usize], after_start)
    }

    /// run.c's merge loop as run.c writes it: rescan every adjacent pair, merge the best, repeat.
    /// The reference that [`Vocab::merge`] is tested against.
    #[cfg(test)]
    fn merge_plain(&self, symbols: &mut Vec<u32>) {
        let vocab = &self.vocab;
        let mut joined = Vec::new();
        loop {
            let (mut best_score, mut best) = (NO_SCORE, None);
            for i in 0..symbols.len().saturating_sub(1) {
                joined.clear();
                joined.extend_from_slice(&vocab.pieces[symbols[i] as usize]);
                joined.extend_from_slice(&vocab.pieces[symbols[i + 1] as usize]);
                if let Some(&id) = vocab.ids.get(&joined) {
                    if vocab.scores[id as usize] > best_score {
                        (best_score, best) = (vocab.scores[id as usize], Some((i, id)));
                    }
                }
            }
            let Some((i, id)) = best else { return };
            symbols[i] = id;
            symbols.remove(i + 1);
        }
    }
}

/// The text of `piece`: without its leading space if `strip_space`, and a byte piece as its byte.
fn piece_text(piece: &[u8], strip_space: bool) -> &[u8] {
    let piece = match piece {
        [b' ', rest @ ..] if strip_space => rest,
        _ => piece,
    };
    match byte_piece(piece) {
        Some(b) => &ALL_BYTES[b as usize..=b as usize],
        None => piece,
    }
}

/// The byte that a piece "<0xHH>" stands for (hex digits in either case).
fn byte_piece(piece: &[u8]) -> Option<u8> {
    let hex = |d: u8| (d as char).to_digit(16).map(|v| v as u8);
    match piece {
        [b'<', b'0', b'x', high, low, b'>'] => Some(hex(*high)? * 16 + hex(*low)?),
        _ => None,
    }
}

/// The byte piece of `b`, "<0xHH>" with upper-case digits, as the files spell it.
fn byte_piece_name(b: u8) -> String {
    format!("<0x{b:02X}>")
}

/// A saved piece: a string, or an array of byte values.
fn piece_from_json(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Array(bytes) => bytes
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect(),
        _ => None,
    }
}

/// A piece in the saved form: its text when it is UTF-8, else its byte values.
fn piece_to_json(piece: &[u8]) -> Value {
    match std::str::from_utf8(piece) {
        Ok(text) => json!(text),
        Err(_) => json!(piece),
    }
}

/// Reads a `tokenizer.bin`: max_token_length, pieces and scores. With `vocab_size`, exactly
/// that many tokens; without, tokens until the bytes end.
fn parse(bytes: &[u8], vocab_size: Option<usize>) -> Result<(u32, Vec<Vec<u8>>, Vec<f32>)> {
    let invalid = |message: String| Error::Invalid(message);
    let mut file = Reader { bytes, at: 0 };
    let max_token_length = file.word().ok_or_else(|| {
        invalid(format!(
            "the file is {} bytes, too short for the 4-byte max_token_length that starts it",
            bytes.len()
        ))
    })?;
    let max_token_length = i32::from_le_bytes(max_token_length);
    let max_len = u32::try_from(max_token_length).map_err(|_| {
        invalid(format!(
            "the header's max_token_length is {max_token_length}, below 0"
        ))
    })?;
    // Each token takes at least 8 bytes, which bounds what a corrupt count can reserve.
    let capacity = vocab_size.unwrap_or(0).min(bytes.len() / 8);
    let (mut pieces, mut scores) = (Vec::with_capacity(capacity), Vec::with_capacity(capacity));
    loop {
        let (id, start) = (pieces.len(), file.at);
        let ended = start == bytes.len();
        match vocab_size {
            Some(n) if id == n => break,
            Some(n) if ended => {
                return Err(invalid(format!(
                    "the file holds {id} tokens, fewer than the {n} expected"
                )))
            }
            None if ended => break,
            _ => {}
        }
        let cut = || match vocab_size {
            Some(n) => invalid(format!(
                "the file ends inside token {id} (which starts at byte {start}), too short \
                 for a vocabulary of {n}"
            )),
            None => invalid(format!(
                "the file ends inside token {id}, which starts at byte {start}"
            )),
        };
        let score = f32::from_le_bytes(file.word().ok_or_else(cut)?);
        let len = i32::from_le_bytes(file.word().ok_or_else(cut)?);
        let len = u32::try_from(len)
            .ok()
            .filter(|&l| l <= max_len)
            .ok_or_else(|| {
                invalid(format!(
                "token {id} (at byte {start}) has a length of {len} bytes, outside 0..={max_len} \
                 (the header's max_token_length)"
            ))
            })?;
        pieces.push(file.take(len as usize).ok_or_else(cut)?.to_vec());
        scores.push(score);
    }
    if file.at < bytes.len() {
        return Err(invalid(format!(
            "{} bytes follow the last of the {} tokens expected: the file holds more",
            bytes.len() - file.at,
            pieces.len()
        )));
    }
    Ok((max_len, pieces, scores))
}

/// Reads a byte slice front to back.
struct Reader<'a> {
    bytes: &'a [u8],
    /// The offset of the next byte to read.
    at: usize,
}

impl<'a> Reader<'a> {
    /// The next `n` bytes, or `None` (reading nothing) if fewer are left.
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    /// The next 4 bytes.
    fn word(&mut self) -> Option<[u8; 4]> {
        self.take(4)?.try_into().ok()
    }
}

impl Vocab {
    /// The checked vocabulary (see [`Llama2cTokenizer::from_pieces`]).
    fn new(pieces: Vec<Vec<u8>>, scores: Vec<f32>, max_token_length: u32) -> Result<Vocab> {
        let invalid = |message: String| Err(Error::Invalid(message));
        if pieces.len() != scores.len() {
            return invalid(format!(
                "{} pieces but {} scores: each token needs one of each",
                pieces.len(),
                scores.len()
            ));
        }
        if pieces.len() < FIRST_MERGED || u32::try_from(pieces.len()).is_err() {
            return invalid(format!(
                "a llama2.c vocabulary needs from {FIRST_MERGED} tokens (<unk>, <s>, </s> and \
                 the 256 byte pieces) to 2^32, and this one has {}",
                pieces.len()
            ));
        }
        for b in 0..=255u8 {
            let (id, want) = (u32::from(b) + BYTE_OFFSET, byte_piece_name(b));
            let piece = &pieces[id as usize];
            if piece != want.as_bytes() {
                return invalid(format!(
                    "token {id} is {:?}, but byte fallback needs it to be {want:?}",
                    String::from_utf8_lossy(piece)
                ));
            }
        }
        if let Some(id) = scores.iter().position(|s| !s.is_finite()) {
            return invalid(format!(
                "the score of token {id} is {}, not a finite number",
                scores[id]
            ));
        }
        if let Some(id) = pieces
            .iter()
            .position(|p| p.len() > max_token_length as usize)
        {
            return invalid(format!(
                "token {id} is {} bytes, longer than the max_token_length of {max_token_length}",
                pieces[id].len()
            ));
        }
        let mut ids = FxHashMap::default();
        ids.reserve(pieces.len());
        for (id, piece) in pieces.iter().enumerate() {
            if let Some(first) = ids.insert(piece.clone(), id as u32) {
                return invalid(format!(
                    "tokens {first} and {id} are both {:?}: pieces must be distinct",
                    String::from_utf8_lossy(piece)
                ));
            }
        }
        let Some(&space) = ids.get(&b" "[..]) else {
            return invalid(
                "no token is the piece \" \", which encoding puts before the text".to_string(),
            );
        };
        Ok(Vocab {
            max_token_length,
            pieces,
            scores,
            ids,
            space,
        })
    }

    /// Appends the ids of `text`, ordinary text with no special tokens: the dummy prefix first
    /// if `prefix` (and `text` is not empty), then the characters, merged.
    fn encode_text(&self, text: &str, prefix: bool, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let mut symbols = Vec::with_capacity(text.len() + 1);
        if prefix {
            symbols.push(self.space);
        }
        self.characters(text, &mut symbols);
        self.merge(&mut symbols);
        out.extend(symbols);
    }

    /// Appends one id per character of `text`, or one byte piece per byte for a character that
    /// is not a piece.
    fn characters(&self, text: &str, out: &mut Vec<u32>) {
        let mut utf8 = [0u8; 4];
        for c in text.chars() {
            let bytes = c.encode_utf8(&mut utf8).as_bytes();
            match self.ids.get(bytes) {
                Some(&id) => out.push(id),
                None => out.extend(bytes.iter().map(|&b| u32::from(b) + BYTE_OFFSET)),
            }
        }
    }

    /// The merge of the symbols at `left` and `right`, with ids `a` and `b`, if their pieces
    /// concatenate to a piece that scores above [`NO_SCORE`]. `joined` is scratch space.
    fn pair(
        &self,
        (left, a): (usize, u32),
        (right, b): (usize, u32),
        joined: &mut Vec<u8>,
    ) -> Option<Pair> {
        joined.clear();
        joined.extend_from_slice(&self.pieces[a as usize]);
        joined.extend_from_slice(&self.pieces[b as usize]);
        let &merged = self.ids.get(joined.as_slice())?;
        // `+ 0.0` turns -0.0 into 0.0, which C's `>` does not tell apart.
        let score = self.scores[merged as usize] + 0.0;
        (score > NO_SCORE).then_some(Pair {
            score,
            left,
            right,
            ids: (a, b),
            merged,
        })
    }

    /// run.c's merge loop, in O(n log n): the symbols form a linked list, and every adjacent
    /// pair that can merge waits in a heap, best score first and leftmost first on a tie. The
    /// pair on top is exactly the one run.c's rescan would pick, as long as it is still a pair
    /// of the list (a merge makes the pairs around it stale; they are skipped when popped, and
    /// the merged symbol's new pairs pushed).
    fn merge(&self, symbols: &mut Vec<u32>) {
        const NONE: usize = usize::MAX;
        let n = symbols.len();
        if n < 2 {
            return;
        }
        // `next[i]`: the symbol after `i`; NONE at the end and for a symbol merged away.
        let mut next: Vec<usize> = (1..=n).map(|i| if i == n { NONE } else { i }).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.checked_sub(1).unwrap_or(NONE)).collect();
        let mut joined = Vec::with_capacity(2 * self.max_token_length as usize);
        let mut heap: BinaryHeap<Pair> = (0..n - 1)
            .filter_map(|i| self.pair((i, symbols[i]), (i + 1, symbols[i + 1]), &mut joined))
            .collect();
        while let Some(pair) = heap.pop() {
            let (l, r) = (pair.left, pair.right);
            if next[l] != r || (symbols[l], symbols[r]) != pair.ids {
                continue; // stale: one of the two has merged since
            }
            symbols[l] = pair.merged;
            let after = next[r];
            next[l] = after;
            next[r] = NONE;
            if after != NONE {
                prev[after] = l;
                heap.extend(self.pair((l, pair.merged), (after, symbols[after]), &mut joined));
            }
            if prev[l] != NONE {
                let before = prev[l];
                heap.extend(self.pair((before, symbols[before]), (l, pair.merged), &mut joined));
            }
        }
        // Symbol 0 is never merged away (only the right one of a pair is).
        let mut merged = Vec::with_capacity(n);
        let mut i = 0;
        while i != NONE {
            merged.push(symbols[i]);
            i = next[i];
        }
        *symbols = merged;
    }
}

/// Two adjacent symbols that can merge, ordered for a max-heap: higher score first, then the
/// lower position (symbols keep their initial order, so that is the leftmost pair).
#[derive(Clone, Copy, Debug)]
struct Pair {
    /// The merged piece's score, finite and with -0.0 as 0.0.
    score: f32,
    left: usize,
    right: usize,
    /// The ids of `left` and `right` when the pair was found.
    ids: (u32, u32),
    merged: u32,
}

impl Ord for Pair {
    fn cmp(&self, other: &Pair) -> Ordering {
        let by_score = self.score.total_cmp(&other.score);
        by_score.then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Pair) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Pair) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pair {}

impl Tokenizer for Llama2cTokenizer {
    fn kind(&self) -> &'static str {
        "llama2c"
    }

    /// No BOS or EOS is added; under [`Special::Allow`] `<unk>`, `<s>` and `</s>` in the text
    /// are ids 0, 1 and 2. The dummy prefix goes before ordinary text at the start of `text`
    /// and after each `<s>`; merges never cross a special token.
    fn encode_with(&self, text: &str, special: Special) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len() / 2 + 1);
        let mut starts = true;
        self.specials.for_each_segment(text, special, |segment| {
            match segment {
                Segment::Text(t, _) => self.vocab.encode_text(t, starts, &mut ids),
                Segment::Special(id) => ids.push(id),
            }
            starts = segment == Segment::Special(Llama2cTokenizer::BOS);
            Ok(())
        })?;
        Ok(ids)
    }

    /// run.c's decoding, with the start of the sequence treated as following BOS (so the dummy
    /// prefix that [`Tokenizer::encode`] put there is dropped) and ids 0, 1 and 2 as `<unk>`,
    /// `<s>` and `</s>`.
    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        check_ids(ids, self.vocab_size())?;
        let mut out = Vec::with_capacity(ids.len() * 4);
        let mut prev = None;
        for &id in ids {
            out.extend_from_slice(self.text_after(prev, id));
            prev = Some(id);
        }
        Ok(out)
    }

    /// The bytes `id` adds to [`Tokenizer::decode_bytes`] after `prev`: its leading space
    /// is dropped only at the start (`None`) or after BOS.
    fn decode_next(&self, prev: Option<u32>, id: u32) -> Result<Vec<u8>> {
        check_ids(&[id], self.vocab_size())?;
        Ok(self.text_after(prev, id).to_vec())
    }

    fn vocab_size(&self) -> usize {
        self.vocab.pieces.len()
    }

    fn special_tokens(&self) -> &[(String, u32)] {
        self.specials.list()
    }

    /// BOS. In llama2.c's training data every text starts with BOS and none ends with EOS, so
    /// BOS is what separates texts, the part `<|endoftext|>` plays for GPT-2; run.c starts
    /// generating from BOS and stops when the model writes BOS. This crate uses the end-of-text
    /// token for just those two things (the prompt of an unprompted sample, and the token that
    /// stops generation and ends a fine-tuned reply). A model trained that way never writes EOS,
    /// so with EOS here generation would not stop, and an unprompted sample would start from a
    /// token the model has not seen.
    fn eot_token(&self) -> Option<u32> {
        Some(Llama2cTokenizer::BOS)
    }

    /// BOS: llama2.c's training data puts it before every story, and `run.c` before a prompt.
    fn text_start(&self) -> Option<u32> {
        Some(Llama2cTokenizer::BOS)
    }

    /// False: a text encoded in two parts gets a second dummy prefix, and the merges run over
    /// the whole text, so a vocabulary may hold pieces that span a space.
    fn cuts_at_spaces(&self) -> bool {
        false
    }

    fn to_json(&self) -> Value {
        let pieces: Vec<Value> = self.vocab.pieces.iter().map(|p| piece_to_json(p)).collect();
        json!({
            "version": FORMAT_VERSION,
            "kind": "llama2c",
            "max_token_length": self.vocab.max_token_length,
            "pieces": pieces,
            "scores": self.vocab.scores,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// A vocabulary shipped under `data/llama2c`.
    fn shipped(file: &str, vocab_size: usize) -> Llama2cTokenizer {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/llama2c");
        Llama2cTokenizer::from_file(&path.join(file), vocab_size).unwrap()
    }

    /// `tok512.bin`, the 512-token vocabulary of the TinyStories model stories260K.
    fn tok512() -> &'static Llama2cTokenizer {
        static TOK: OnceLock<Llama2cTokenizer> = OnceLock::new();
        TOK.get_or_init(|| shipped("tok512.bin", 512))
    }

    /// `tokenizer.bin`, Llama 2's 32,000 pieces.
    fn llama2() -> &'static Llama2cTokenizer {
        static TOK: OnceLock<Llama2cTokenizer> = OnceLock::new();
        TOK.get_or_init(|| shipped("tokenizer.bin", 32_000))
    }

    /// A small vocabulary: the 259 fixed tokens, then `extra` pieces with their scores.
    fn small(extra: &[(&str, f32)]) -> Llama2cTokenizer {
        let mut pieces: Vec<Vec<u8>> = vec![b"<unk>".to_vec(), b"\n<s>\n".to_vec()];
        pieces.push(b"\n</s>\n".to_vec());
        pieces.extend((0..=255u8).map(|b| byte_piece_name(b).into_bytes()));
        let mut scores = vec![0.0; pieces.len()];
        for (piece, score) in extra {
            pieces.push(piece.as_bytes().to_vec());
            scores.push(*score);
        }
        Llama2cTokenizer::from_pieces(pieces, scores, 16).unwrap()
    }

    /// `pieces` of the ids, as text.
    fn spelled(tok: &Llama2cTokenizer, ids: &[u32]) -> Vec<String> {
        let piece = |&id: &u32| String::from_utf8_lossy(tok.piece(id).unwrap()).into_owned();
        ids.iter().map(piece).collect()
    }

    #[test]
    fn the_best_scoring_pair_merges_first_and_the_leftmost_on_a_tie() {
        // " ", "a", "b" as characters; "ab" scores above " a", and "ba" ties with "ab".
        let tok = small(&[
            (" ", -9.0),
            ("a", -9.0),
            ("b", -9.0),
            ("ab", -1.0),
            (" a", -2.0),
        ]);
        assert_eq!(
            spelled(&tok, &tok.encode_llama("ab", false, false)),
            [" ", "ab"]
        );
        let tok = small(&[
            (" ", -9.0),
            ("a", -9.0),
            ("b", -9.0),
            ("ab", -1.0),
            ("ba", -1.0),
        ]);
        assert_eq!(
            spelled(&tok, &tok.encode_llama("aba", false, false)),
            [" ", "ab", "a"]
        );
        assert_eq!(
            spelled(&tok, &tok.encode_llama("bab", false, false)),
            [" ", "ba", "b"]
        );
        // -0.0 ties with 0.0, as under C's `>`: the leftmost pair wins.
        let tok = small(&[
            (" ", -9.0),
            ("a", -9.0),
            ("b", -9.0),
            ("ab", -0.0),
            ("ba", 0.0),
        ]);
        assert_eq!(
            spelled(&tok, &tok.encode_llama("aba", false, false)),
            [" ", "ab", "a"]
        );
        // A piece at or below run.c's starting best of -1e10 never merges; -1e9 does.
        let tok = small(&[(" ", 0.0), ("a", 0.0), ("aa", -1e10), (" a", -1e9)]);
        assert_eq!(
            spelled(&tok, &tok.encode_llama("aa", false, false)),
            [" a", "a"]
        );
    }

    #[test]
    fn characters_fall_back_to_bytes_and_specials_are_framing() {
        let tok = small(&[(" ", -1.0), ("h", -1.0), ("i", -1.0), ("hi", -2.0)]);
        assert_eq!(tok.encode_llama("", true, true), [1, 2]);
        // 'é' is not a piece: its bytes 0xC3 0xA9 are ids 0xC3 + 3 and 0xA9 + 3.
        let ids = tok.encode_llama("hié", true, false);
        assert_eq!(
            ids,
            [
                1,
                tok.id_of(b" ").unwrap(),
                tok.id_of(b"hi").unwrap(),
                198,
                172
            ]
        );
        assert_eq!(tok.decode(&ids[1..]).unwrap(), "hié");
        assert_eq!(tok.decode(&ids).unwrap(), "<s>hié");
        assert_eq!(tok.decode_llama(1, 198).unwrap(), [0xC3]);
        assert_eq!(tok.decode_llama(7, 1).unwrap(), b"\n<s>\n");
    }

    #[test]
    fn bos_in_the_text_frames_like_encode_with_bos() {
        let tok = tok512();
        let run_c = tok.encode_llama("Once upon a time", true, false);
        assert_eq!(tok.encode("<s>Once upon a time").unwrap(), run_c);
        assert_eq!(tok.encode("Once upon a time").unwrap(), run_c[1..]);
        let eos = tok.encode("Once</s>").unwrap();
        assert_eq!(eos[eos.len() - 1], Llama2cTokenizer::EOS);
        let literal = tok.encode_with("<s>", Special::AsText).unwrap();
        assert_eq!(literal, tok.encode_llama("<s>", false, false));
        assert!(literal.len() > 1);
        assert!(tok.encode_with("a</s>", Special::Reject).is_err());
        for text in ["<s> hi", "<s><s>x", "</s> y", " <unk>\n<s>\n", "a <s>  b"] {
            assert_eq!(tok.decode(&tok.encode(text).unwrap()).unwrap(), text);
        }
    }

    #[test]
    fn byte_pieces_are_read_in_either_case_and_only_whole() {
        assert_eq!(byte_piece(b"<0x0A>"), Some(10));
        assert_eq!(byte_piece(b"<0xfF>"), Some(255));
        for not in [&b"<0x4>"[..], b"<0x4G>", b"<0x41> ", b" <0x41>", b"0x41"] {
            assert_eq!(byte_piece(not), None, "{:?}", String::from_utf8_lossy(not));
        }
        assert_eq!(piece_text(b" <0x41>", true), b"A");
        assert_eq!(piece_text(b" <0x41>", false), b" <0x41>");
    }

    #[test]
    fn the_saved_form_keeps_pieces_that_are_not_utf8() {
        let mut pieces: Vec<Vec<u8>> = (0..3).map(|i| vec![b'x'; i + 1]).collect();
        pieces.extend((0..=255u8).map(|b| byte_piece_name(b).into_bytes()));
        pieces.extend([b" ".to_vec(), vec![0xFF, b' '], b"\"\\\n".to_vec()]);
        let scores = (0..pieces.len()).map(|i| -(i as f32) / 3.0).collect();
        let tok = Llama2cTokenizer::from_pieces(pieces.clone(), scores, 6).unwrap();
        let saved = tok.to_json();
        assert_eq!(saved["pieces"][260], json!([255, 32]));
        let back = Llama2cTokenizer::from_json(&saved).unwrap();
        for id in 0..pieces.len() as u32 {
            assert_eq!(back.piece(id), tok.piece(id));
            assert_eq!(
                back.score(id).unwrap().to_bits(),
                tok.score(id).unwrap().to_bits()
            );
        }
        assert_eq!(back.to_json(), saved);
        let mut bad = saved.clone();
        bad["pieces"][5] = json!([256]);
        let err = Llama2cTokenizer::from_json(&bad).unwrap_err().to_string();
        assert!(err.contains("piece 5"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The heap merges exactly as run.c's rescan does, with both shipped vocabularies, on
        /// texts made of common words and characters (so that many merges apply) and on any
        /// text.
        #[test]
        fn heap_merging_equals_the_rescan(
            words in proptest::collection::vec("(the|a|[ a-z]{1,4}|[,.!\n]|é|🤖|  )", 0..40),
            any_text in any::<String>(),
        ) {
            for (tok, text) in [
                (tok512(), words.concat()),
                (llama2(), words.concat()),
                (tok512(), any_text.clone()),
                (llama2(), any_text),
            ] {
                let mut plain = vec![tok.vocab.space];
                tok.vocab.characters(&text, &mut plain);
                tok.merge_plain(&mut plain);
                let fast = tok.encode_llama(&text, false, false);
                if text.is_empty() {
                    prop_assert!(fast.is_empty());
                } else {
                    prop_assert_eq!(fast, plain);
                }
            }
        }
    }
}
