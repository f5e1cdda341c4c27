//! Split patterns: the regular expressions that cut text into chunks before byte-pair merging,
//! so that merges never cross a chunk boundary (a word never merges with the space after it,
//! letters never merge with digits, ...).
//!
//! GPT-2's pattern keeps English contractions apart (`'s`, `'ll`, ...), lets a single leading space
//! join a run of letters, digits or punctuation, and leaves the last space of a run of spaces to
//! the next word (`\s+(?!\S)`). GPT-4's (`cl100k_base`) also matches contractions in any case,
//! groups digits at most three at a time and keeps line breaks together.
//!
//! GPT-2's pattern is what the GPT-2 tokenizer runs on every byte, so it also has a hand-written
//! splitter (in the private module `split`) that is tested to cut exactly where the regex does,
//! and is about six times faster. GPT-4's runs on `fancy-regex`.

use crate::{Error, Result};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// GPT-2's split pattern, as published with GPT-2 and used by `r50k_base`.
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// GPT-4's split pattern (`cl100k_base`).
pub const GPT4_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+";

/// How text is cut into chunks before merging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// No pre-split: the whole text is one chunk (the "basic" BPE).
    None,
    /// [`GPT2_PATTERN`].
    Gpt2,
    /// [`GPT4_PATTERN`].
    Gpt4,
}

impl Pattern {
    /// The name used on the command line and in saved files.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::None => "none",
            Pattern::Gpt2 => "gpt2",
            Pattern::Gpt4 => "gpt4",
        }
    }

    /// The regular expression, if there is one.
    pub fn regex_source(self) -> Option<&'static str> {
        match self {
            Pattern::None => None,
            Pattern::Gpt2 => Some(GPT2_PATTERN),
            Pattern::Gpt4 => Some(GPT4_PATTERN),
        }
    }

    /// Calls `f` on each chunk of `text`, in order; the chunks concatenate to `text`.
    pub fn for_each_chunk<'a>(self, text: &'a str, mut f: impl FnMut(&'a str)) -> Result<()> {
        match self {
            Pattern::None if text.is_empty() => Ok(()),
            Pattern::None => {
                f(text);
                Ok(())
            }
            Pattern::Gpt2 => {
                super::split::gpt2_chunks(text, f);
                Ok(())
            }
            Pattern::Gpt4 => regex_chunks(gpt4_regex(), text, f),
        }
    }
}

/// Calls `f` on each match of `regex` in `text`. The split patterns match every non-empty text
/// from its first byte on, so the matches tile the text.
pub(crate) fn regex_chunks<'a>(
    regex: &fancy_regex::Regex,
    text: &'a str,
    mut f: impl FnMut(&'a str),
) -> Result<()> {
    for m in regex.find_iter(text) {
        let m = m.map_err(|e| Error::Invalid(format!("the split pattern failed: {e}")))?;
        f(m.as_str());
    }
    Ok(())
}

/// The compiled GPT-2 pattern (the reference the hand-written splitter is tested against).
#[cfg(test)]
pub(crate) fn gpt2_regex() -> &'static fancy_regex::Regex {
    static RE: OnceLock<fancy_regex::Regex> = OnceLock::new();
    RE.get_or_init(|| fancy_regex::Regex::new(GPT2_PATTERN).expect("GPT-2 pattern compiles"))
}

fn gpt4_regex() -> &'static fancy_regex::Regex {
    static RE: OnceLock<fancy_regex::Regex> = OnceLock::new();
    RE.get_or_init(|| fancy_regex::Regex::new(GPT4_PATTERN).expect("GPT-4 pattern compiles"))
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Pattern {
    type Err = Error;

    fn from_str(s: &str) -> Result<Pattern> {
        match s {
            "none" => Ok(Pattern::None),
            "gpt2" => Ok(Pattern::Gpt2),
            "gpt4" => Ok(Pattern::Gpt4),
            other => Err(Error::Invalid(format!(
                "unknown split pattern {other:?}; expected gpt2, gpt4 or none"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(p: Pattern, text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        p.for_each_chunk(text, |c| out.push(c)).unwrap();
        out
    }

    #[test]
    fn gpt2_and_gpt4_cut_where_their_definitions_say() {
        let text = "I'LL pay 12345 dollars, don't you?\n\n  ok";
        assert_eq!(
            chunks(Pattern::Gpt2, text),
            [
                "I", "'", "LL", " pay", " 12345", " dollars", ",", " don", "'t", " you", "?",
                "\n\n ", " ok"
            ]
        );
        assert_eq!(
            chunks(Pattern::Gpt4, text),
            [
                "I", "'LL", " pay", " ", "123", "45", " dollars", ",", " don", "'t", " you",
                "?\n\n", " ", " ok"
            ]
        );
        assert_eq!(chunks(Pattern::None, text), [text]);
        assert!(chunks(Pattern::None, "").is_empty());
    }

    #[test]
    fn names_round_trip() {
        for p in [Pattern::None, Pattern::Gpt2, Pattern::Gpt4] {
            assert_eq!(p.name().parse::<Pattern>().unwrap(), p);
        }
        assert!("gpt3".parse::<Pattern>().is_err());
    }
}
