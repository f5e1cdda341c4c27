//! A tokenizer with special tokens added after its vocabulary: the chat template's role
//! markers, say, for a base model whose tokenizer never had them.
//!
//! The added tokens take the ids `base.vocab_size()`, `base.vocab_size() + 1`, ... in the
//! order given; every other id, and all text between added tokens, is the base tokenizer's.
//! Saved as `{"version": 1, "kind": "added", "base": {...the base's saved form...},
//! "tokens": ["<|user|>", ...]}`.

use super::special::{Segment, SpecialTokens};
use super::{from_json, saved_object, Special, Tokenizer, FORMAT_VERSION};
use crate::{Error, Result};
use serde_json::{json, Value};

/// A base tokenizer plus special tokens with ids after the base's.
pub struct WithAdded {
    base: Box<dyn Tokenizer>,
    added: SpecialTokens,
    /// The base's special tokens and the added ones, in increasing id order.
    all_special: Vec<(String, u32)>,
}

impl WithAdded {
    /// `base` with `tokens` added. A token may not already be one of the base's special tokens,
    /// nor be given twice.
    pub fn new(base: Box<dyn Tokenizer>, tokens: &[String]) -> Result<WithAdded> {
        if let Some(t) = tokens
            .iter()
            .find(|t| base.special_tokens().iter().any(|s| &s.0 == *t))
        {
            return Err(Error::Invalid(format!(
                "{t:?} is already a special token of the tokenizer"
            )));
        }
        let first = base.vocab_size() as u32;
        let with_ids: Vec<(String, u32)> = tokens
            .iter()
            .zip(first..)
            .map(|(t, id)| (t.clone(), id))
            .collect();
        let added = SpecialTokens::new(with_ids.clone())?;
        let mut all_special = base.special_tokens().to_vec();
        all_special.extend(with_ids);
        Ok(WithAdded {
            base,
            added,
            all_special,
        })
    }

    /// Reads the saved form (see the module docs).
    pub fn from_json(value: &Value) -> Result<WithAdded> {
        let object = saved_object(value, &["base", "tokens"])?;
        let base = from_json(object.get("base").ok_or_else(|| {
            Error::Invalid("an \"added\" tokenizer needs its \"base\" tokenizer".into())
        })?)?;
        let tokens: Option<Vec<String>> = object
            .get("tokens")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|t| t.as_str().map(String::from)).collect());
        let tokens = tokens.ok_or_else(|| {
            Error::Invalid("an \"added\" tokenizer needs a \"tokens\" list of strings".into())
        })?;
        WithAdded::new(base, &tokens)
    }

    /// The number of ids of the base tokenizer (the first added id).
    pub fn base_vocab_size(&self) -> usize {
        self.base.vocab_size()
    }
}

impl Tokenizer for WithAdded {
    fn kind(&self) -> &'static str {
        "added"
    }

    fn encode_with(&self, text: &str, special: Special) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        self.added.for_each_segment(text, special, |segment| {
            match segment {
                Segment::Text(piece, _) => ids.extend(self.base.encode_with(piece, special)?),
                Segment::Special(id) => ids.push(id),
            }
            Ok(())
        })?;
        Ok(ids)
    }

    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        // Runs of base ids go to the base together (a character may span several tokens).
        for run in
            ids.chunk_by(|a, b| self.added.token(*a).is_none() && self.added.token(*b).is_none())
        {
            match self.added.token(run[0]) {
                Some(token) => out.extend_from_slice(token.as_bytes()),
                None => out.extend(self.base.decode_bytes(run)?),
            }
        }
        Ok(out)
    }

    /// An added token is its string; a base token after an added one decodes as the start of
    /// a run, as in [`Tokenizer::decode_bytes`], which hands each run of base ids to the base.
    fn decode_next(&self, prev: Option<u32>, id: u32) -> Result<Vec<u8>> {
        match self.added.token(id) {
            Some(token) => Ok(token.as_bytes().to_vec()),
            None => {
                let prev = prev.filter(|&p| self.added.token(p).is_none());
                self.base.decode_next(prev, id)
            }
        }
    }

    fn text_start(&self) -> Option<u32> {
        self.base.text_start()
    }

    fn vocab_size(&self) -> usize {
        self.base.vocab_size() + self.added.list().len()
    }

    fn special_tokens(&self) -> &[(String, u32)] {
        &self.all_special
    }

    fn cuts_at_spaces(&self) -> bool {
        // Cutting at a space never splits an added token unless the token holds one.
        self.base.cuts_at_spaces() && self.added.list().iter().all(|t| !t.0.contains(' '))
    }

    fn to_json(&self) -> Value {
        let tokens: Vec<&str> = self.added.list().iter().map(|t| t.0.as_str()).collect();
        json!({
            "version": FORMAT_VERSION,
            "kind": "added",
            "base": self.base.to_json(),
            "tokens": tokens,
        })
    }
}

/// `tok` with whichever of `tokens` it lacks as special tokens added after its vocabulary
/// (unchanged when it has them all). Returns the tokenizer and how many tokens were added.
pub fn with_tokens(
    tok: Box<dyn Tokenizer>,
    tokens: &[&str],
) -> Result<(Box<dyn Tokenizer>, usize)> {
    let missing: Vec<String> = tokens
        .iter()
        .filter(|t| !tok.special_tokens().iter().any(|s| s.0 == **t))
        .map(|t| t.to_string())
        .collect();
    if missing.is_empty() {
        return Ok((tok, 0));
    }
    Ok((Box::new(WithAdded::new(tok, &missing)?), missing.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::{CharTokenizer, Gpt2Tokenizer, ENDOFTEXT};

    fn chars() -> Box<dyn Tokenizer> {
        Box::new(CharTokenizer::from_corpus("abc \n").unwrap())
    }

    #[test]
    fn added_tokens_follow_the_vocabulary_and_round_trip() {
        let (tok, added) = with_tokens(chars(), &["<|user|>", "<|end|>"]).unwrap();
        assert_eq!((added, tok.vocab_size()), (2, 7));
        let ids = tok.encode("<|user|>ab c<|end|>\n").unwrap();
        assert_eq!(ids, [5, 2, 3, 1, 4, 6, 0]);
        assert_eq!(tok.decode(&ids).unwrap(), "<|user|>ab c<|end|>\n");
        assert!(tok.encode_with("a<|end|>", Special::Reject).is_err());
        assert!(
            tok.encode_with("a<|end|>", Special::AsText).is_err(),
            "as text, the marker's characters are not in the character vocabulary"
        );
        let saved = tokenizer_round_trip(tok.as_ref());
        assert_eq!(saved.encode("<|end|>a").unwrap(), [6, 2]);
        assert_eq!(saved.special_tokens(), tok.special_tokens());
    }

    fn tokenizer_round_trip(tok: &dyn Tokenizer) -> Box<dyn Tokenizer> {
        crate::tokenizer::from_json(&tok.to_json()).unwrap()
    }

    #[test]
    fn tokens_the_base_has_are_not_added_again() {
        let (tok, added) = with_tokens(Box::new(Gpt2Tokenizer::new()), &[ENDOFTEXT]).unwrap();
        assert_eq!((added, tok.kind(), tok.vocab_size()), (0, "gpt2", 50257));
        let (tok, added) =
            with_tokens(Box::new(Gpt2Tokenizer::new()), &[ENDOFTEXT, "<|end|>"]).unwrap();
        assert_eq!((added, tok.vocab_size()), (1, 50258));
        assert_eq!(tok.eot_token(), Some(50256));
        assert_eq!(tok.encode("hi<|end|>").unwrap(), [5303, 50257]);
        assert!(WithAdded::new(Box::new(Gpt2Tokenizer::new()), &[ENDOFTEXT.into()]).is_err());
    }
}
