//! The character tokenizer: the vocabulary is a corpus's distinct characters in increasing code
//! point order, and a character's id is its index there.

use super::{check_ids, saved_object, Special, Tokenizer, FORMAT_VERSION};
use crate::{Error, Result};
use rustc_hash::FxHashMap;
use serde_json::{json, Value};

/// One id per character of a fixed character set.
#[derive(Clone, Debug)]
pub struct CharTokenizer {
    /// `chars[id]` is the character of `id`; sorted, distinct.
    chars: Vec<char>,
    /// The inverse of `chars`.
    ids: FxHashMap<char, u32>,
}

impl CharTokenizer {
    /// The vocabulary of `corpus`: its distinct characters, sorted. An empty corpus is an error.
    pub fn from_corpus(corpus: &str) -> Result<CharTokenizer> {
        if corpus.is_empty() {
            return Err(Error::Invalid(
                "a character vocabulary needs a non-empty corpus".into(),
            ));
        }
        let mut chars: Vec<char> = corpus.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Ok(CharTokenizer::from_sorted(chars))
    }

    fn from_sorted(chars: Vec<char>) -> CharTokenizer {
        let ids = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32))
            .collect();
        CharTokenizer { chars, ids }
    }

    /// The vocabulary: `chars()[id]` is the character of `id`.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// Reads the saved form `{"version": 1, "kind": "char", "chars": "..."}`, whose characters
    /// must be distinct and in increasing order.
    pub fn from_json(value: &Value) -> Result<CharTokenizer> {
        let object = saved_object(value, &["chars"])?;
        let chars: Vec<char> = object
            .get("chars")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Invalid("a char tokenizer needs a \"chars\" string".into()))?
            .chars()
            .collect();
        if chars.is_empty() {
            return Err(Error::Invalid(
                "a char tokenizer's \"chars\" is empty".into(),
            ));
        }
        if let Some(i) = chars.windows(2).position(|w| w[0] >= w[1]) {
            return Err(Error::Invalid(format!(
                "a char tokenizer's \"chars\" must be sorted and distinct, but {:?} comes before {:?}",
                chars[i], chars[i + 1]
            )));
        }
        Ok(CharTokenizer::from_sorted(chars))
    }
}

impl Tokenizer for CharTokenizer {
    fn kind(&self) -> &'static str {
        "char"
    }

    /// Characters map one to one; there are no special tokens, so `special` changes nothing.
    fn encode_with(&self, text: &str, _special: Special) -> Result<Vec<u32>> {
        text.char_indices()
            .map(|(offset, ch)| {
                self.ids
                    .get(&ch)
                    .copied()
                    .ok_or(Error::UnknownChar { ch, offset })
            })
            .collect()
    }

    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        Ok(self.decode(ids)?.into_bytes())
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        check_ids(ids, self.chars.len())?;
        Ok(ids.iter().map(|&id| self.chars[id as usize]).collect())
    }

    fn vocab_size(&self) -> usize {
        self.chars.len()
    }

    fn special_tokens(&self) -> &[(String, u32)] {
        &[]
    }

    fn cuts_at_spaces(&self) -> bool {
        true
    }

    fn to_json(&self) -> Value {
        let chars: String = self.chars.iter().collect();
        json!({"version": FORMAT_VERSION, "kind": "char", "chars": chars})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_vocabulary_and_round_trip() {
        let tok = CharTokenizer::from_corpus("hello world").unwrap();
        assert_eq!(tok.chars(), [' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
        let ids = tok.encode("hello").unwrap();
        assert_eq!(ids, [3, 2, 4, 4, 5]);
        assert_eq!(tok.decode(&ids).unwrap(), "hello");
        assert_eq!(tok.vocab_size(), 8);
        assert_eq!(tok.eot_token(), None);
    }

    #[test]
    fn unknown_character_names_itself_and_its_byte() {
        let tok = CharTokenizer::from_corpus("ab").unwrap();
        let err = tok.encode("abé!").unwrap_err();
        assert_eq!(
            err.to_string(),
            "character 'é' (U+00E9) at byte 2 is not in the vocabulary"
        );
        let err = tok.decode(&[0, 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "token id 2 at position 1 is out of range for a vocabulary of 2"
        );
        assert!(CharTokenizer::from_corpus("").is_err());
    }

    #[test]
    fn saved_form_round_trips_and_is_checked() {
        let tok = CharTokenizer::from_corpus("ba\n").unwrap();
        let saved = tok.to_json();
        assert_eq!(
            saved,
            json!({"version": 1, "kind": "char", "chars": "\nab"})
        );
        assert_eq!(
            CharTokenizer::from_json(&saved).unwrap().chars(),
            tok.chars()
        );
        let unsorted = json!({"version": 1, "kind": "char", "chars": "ba"});
        assert!(CharTokenizer::from_json(&unsorted).is_err());
        let extra = json!({"version": 1, "kind": "char", "chars": "a", "x": 1});
        assert!(CharTokenizer::from_json(&extra).is_err());
    }
}
