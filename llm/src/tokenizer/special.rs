//! Special tokens such as `<|endoftext|>`: strings that encode to one reserved id each, never
//! to the ids of their characters, and only when the caller allows it.

use crate::{Error, Result};

/// What encoding does with special-token strings found in the text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Special {
    /// Each occurrence becomes its special id.
    #[default]
    Allow,
    /// An occurrence is an error naming the token and its byte offset.
    Reject,
    /// Occurrences are ordinary text and encode like any other characters.
    AsText,
}

/// A piece of text between special tokens, or a special token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    /// Ordinary text and its byte offset in the whole text.
    Text(&'a str, usize),
    /// A special token's id.
    Special(u32),
}

/// A tokenizer's special tokens and a matcher that finds them.
#[derive(Clone, Debug, Default)]
pub(crate) struct SpecialTokens {
    /// `(token, id)` in increasing id order.
    tokens: Vec<(String, u32)>,
    /// Matches any token, longest first where two start at the same byte.
    matcher: Option<regex::Regex>,
}

impl SpecialTokens {
    /// Special tokens with their ids. Tokens must be non-empty and distinct.
    pub(crate) fn new(mut tokens: Vec<(String, u32)>) -> Result<SpecialTokens> {
        tokens.sort_by_key(|t| t.1);
        let mut by_length: Vec<&str> = tokens.iter().map(|t| t.0.as_str()).collect();
        if by_length.iter().any(|t| t.is_empty()) {
            return Err(Error::Invalid("a special token cannot be empty".into()));
        }
        by_length.sort_by_key(|t| std::cmp::Reverse(t.len()));
        if let Some(w) = by_length.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::Invalid(format!(
                "the special token {:?} is given twice",
                w[0]
            )));
        }
        let matcher =
            match by_length.is_empty() {
                true => None,
                false => {
                    let alternatives: Vec<String> =
                        by_length.iter().map(|t| regex::escape(t)).collect();
                    Some(regex::Regex::new(&alternatives.join("|")).map_err(|e| {
                        Error::Invalid(format!("cannot match the special tokens: {e}"))
                    })?)
                }
            };
        Ok(SpecialTokens { tokens, matcher })
    }

    /// `(token, id)` in increasing id order.
    pub(crate) fn list(&self) -> &[(String, u32)] {
        &self.tokens
    }

    /// The token string of `id`, if `id` is special.
    pub(crate) fn token(&self, id: u32) -> Option<&str> {
        self.tokens.iter().find(|t| t.1 == id).map(|t| t.0.as_str())
    }

    /// Calls `f` on the text between special tokens and on the special tokens, in order, as
    /// `mode` says.
    pub(crate) fn for_each_segment<'a>(
        &self,
        text: &'a str,
        mode: Special,
        mut f: impl FnMut(Segment<'a>) -> Result<()>,
    ) -> Result<()> {
        let matcher = match (&self.matcher, mode) {
            (Some(m), Special::Allow | Special::Reject) => m,
            _ => return text_segment(text, 0, &mut f),
        };
        let mut start = 0;
        for m in matcher.find_iter(text) {
            if mode == Special::Reject {
                return Err(Error::SpecialTokenRejected {
                    token: m.as_str().to_string(),
                    offset: m.start(),
                });
            }
            text_segment(&text[start..m.start()], start, &mut f)?;
            let id = self.tokens.iter().find(|t| t.0 == m.as_str()).map(|t| t.1);
            f(Segment::Special(
                id.expect("the matcher finds listed tokens"),
            ))?;
            start = m.end();
        }
        text_segment(&text[start..], start, &mut f)
    }
}

fn text_segment<'a>(
    text: &'a str,
    offset: usize,
    f: &mut impl FnMut(Segment<'a>) -> Result<()>,
) -> Result<()> {
    match text.is_empty() {
        true => Ok(()),
        false => f(Segment::Text(text, offset)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(s: &SpecialTokens, text: &str, mode: Special) -> Result<Vec<String>> {
        let mut out = Vec::new();
        s.for_each_segment(text, mode, |seg| {
            out.push(match seg {
                Segment::Text(t, at) => format!("{at}:{t}"),
                Segment::Special(id) => format!("#{id}"),
            });
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn allow_reject_and_as_text() {
        let s =
            SpecialTokens::new(vec![("<|end|>".into(), 7), ("<|endoftext|>".into(), 9)]).unwrap();
        let text = "a<|endoftext|><|end|>b<|end";
        assert_eq!(
            segments(&s, text, Special::Allow).unwrap(),
            ["0:a", "#9", "#7", "21:b<|end"]
        );
        assert_eq!(
            segments(&s, text, Special::AsText).unwrap(),
            [format!("0:{text}")]
        );
        let err = segments(&s, text, Special::Reject).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the text contains the special token \"<|endoftext|>\" at byte 1, and special tokens are rejected"
        );
        assert!(segments(&s, "", Special::Allow).unwrap().is_empty());
        assert_eq!(s.token(7), Some("<|end|>"));
        assert_eq!(s.token(8), None);
    }

    #[test]
    fn empty_and_duplicate_tokens_are_errors() {
        assert!(SpecialTokens::new(vec![(String::new(), 1)]).is_err());
        assert!(SpecialTokens::new(vec![("x".into(), 1), ("x".into(), 2)]).is_err());
    }
}
