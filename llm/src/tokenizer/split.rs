//! A hand-written splitter for GPT-2's pattern ([`super::pattern::GPT2_PATTERN`]).
//!
//! The regex is a list of alternatives tried in order at each position:
//!
//! 1. `'s|'t|'re|'ve|'m|'ll|'d` — a contraction;
//! 2. ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+` — an optional space then a run of letters, of
//!    numbers, or of other characters (punctuation, symbols, emoji);
//! 3. `\s+(?!\S)` — a run of whitespace, less its last character when a non-space follows (that
//!    character goes to the next chunk, usually as the leading space of a word);
//! 4. `\s+` — otherwise a single whitespace character (the run had length one).
//!
//! Every character is in exactly one of four classes (letter, number, whitespace, other), so the
//! splitter is a scan over runs of one class. The classes are taken from the regex engine's own
//! Unicode tables, so both agree on every code point; a property test holds the two to the same
//! chunks.

use regex_syntax::hir::{Class, HirKind};
use std::sync::OnceLock;

/// The class of a character, as the GPT-2 pattern sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class4 {
    Letter,
    Number,
    Space,
    Other,
}

/// Character classes: a table for the Basic Multilingual Plane and sorted ranges beyond it.
struct Classes {
    bmp: Vec<Class4>,
    /// `(first, last, class)` for code points above U+FFFF, sorted.
    astral: Vec<(u32, u32, Class4)>,
}

/// The code-point ranges of a one-class regex, from the regex engine's tables.
fn ranges(class: &str) -> Vec<(u32, u32)> {
    let hir = regex_syntax::Parser::new()
        .parse(class)
        .expect("a valid class");
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect(),
        _ => unreachable!("{class} is a Unicode class"),
    }
}

fn classes() -> &'static Classes {
    static CLASSES: OnceLock<Classes> = OnceLock::new();
    CLASSES.get_or_init(|| {
        let mut bmp = vec![Class4::Other; 0x10000];
        let mut astral = Vec::new();
        for (class, re) in [
            (Class4::Letter, r"\p{L}"),
            (Class4::Number, r"\p{N}"),
            (Class4::Space, r"\s"),
        ] {
            for (lo, hi) in ranges(re) {
                for c in lo..=hi.min(0xFFFF) {
                    bmp[c as usize] = class;
                }
                if hi > 0xFFFF {
                    astral.push((lo.max(0x10000), hi, class));
                }
            }
        }
        astral.sort_unstable_by_key(|r| r.0);
        Classes { bmp, astral }
    })
}

impl Classes {
    fn of(&self, c: char) -> Class4 {
        let code = c as u32;
        if code < 0x10000 {
            return self.bmp[code as usize];
        }
        let i = self.astral.partition_point(|r| r.0 <= code);
        match i.checked_sub(1).map(|i| self.astral[i]) {
            Some((_, hi, class)) if code <= hi => class,
            _ => Class4::Other,
        }
    }
}

/// The character at byte `i` of `text` and its length in bytes.
#[inline]
fn char_at(text: &str, i: usize) -> (char, usize) {
    let b = text.as_bytes()[i];
    if b < 0x80 {
        return (char::from(b), 1);
    }
    let c = text[i..].chars().next().expect("i is a char boundary");
    (c, c.len_utf8())
}

/// The end of the run of `class` characters that starts at byte `i`.
#[inline]
fn run_end(classes: &Classes, text: &str, mut i: usize, class: Class4) -> usize {
    while i < text.len() {
        let (c, len) = char_at(text, i);
        if classes.of(c) != class {
            break;
        }
        i += len;
    }
    i
}

/// The length of a contraction (`s`, `t`, `re`, `ve`, `m`, `ll`, `d`) at the start of `rest`.
fn contraction_len(rest: &[u8]) -> Option<usize> {
    match rest {
        [b's' | b't' | b'm' | b'd', ..] => Some(1),
        [b'r', b'e', ..] | [b'v', b'e', ..] | [b'l', b'l', ..] => Some(2),
        _ => None,
    }
}

/// The end of the chunk that starts at byte `start` (< `text.len()`).
fn chunk_end(classes: &Classes, text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    if bytes[start] == b'\'' {
        if let Some(n) = contraction_len(&bytes[start + 1..]) {
            return start + 1 + n;
        }
    }
    let (c, len) = char_at(text, start);
    let class = classes.of(c);
    if c == ' ' && start + 1 < text.len() {
        let next = classes.of(char_at(text, start + 1).0);
        if next != Class4::Space {
            return run_end(classes, text, start + 1, next);
        }
    }
    if class != Class4::Space {
        return run_end(classes, text, start + len, class);
    }
    let end = run_end(classes, text, start + len, Class4::Space);
    if end == text.len() || end == start + len {
        return end;
    }
    // A non-space follows a run of two or more: leave the run's last character to it.
    let last = text[..end]
        .chars()
        .next_back()
        .expect("the run is not empty");
    end - last.len_utf8()
}

/// Calls `f` on each GPT-2 chunk of `text`, in order.
pub(crate) fn gpt2_chunks<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let classes = classes();
    let mut start = 0;
    while start < text.len() {
        let end = chunk_end(classes, text, start);
        f(&text[start..end]);
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::pattern::{gpt2_regex, regex_chunks};
    use proptest::prelude::*;

    fn fast(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        gpt2_chunks(text, |c| out.push(c));
        out
    }

    fn reference(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        regex_chunks(gpt2_regex(), text, |c| out.push(c)).unwrap();
        out
    }

    #[test]
    fn matches_the_regex_on_hard_cases() {
        let cases = [
            "",
            " ",
            "   ",
            "a  b",
            "\t\tx",
            "x \n\ny",
            "a  \nX",
            "'s'sx 'll'LL '",
            "?'s don't I'll",
            "  \u{3000}\u{a0}word",
            "héllo he\u{301}llo 日本語 テスト",
            "👨‍👩‍👧 family\u{200d}",
            "\0nul\u{0}",
            "x²³ ½ Ⅻ 𝟘𝟙 𐍈",
            "end   ",
            "tabs\t\t",
        ];
        for text in cases {
            assert_eq!(fast(text), reference(text), "text {text:?}");
        }
    }

    #[test]
    fn classes_cover_astral_planes() {
        let c = classes();
        assert_eq!(c.of('𝟘'), Class4::Number);
        assert_eq!(c.of('𐍈'), Class4::Letter);
        assert_eq!(c.of('😀'), Class4::Other);
        assert_eq!(c.of('\u{3000}'), Class4::Space);
        assert_eq!(c.of('\u{10FFFF}'), Class4::Other);
    }

    /// Strings drawn mostly from the characters where the pattern's alternatives meet.
    fn tricky() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            " ", "  ", "\t", "\n", "\r\n", "\u{a0}", "\u{3000}", "'", "'s", "'ll", "'re", "a", "Z",
            "é", "e\u{301}", "日", "1", "²", "٣", "!", "?!", "😀", "\u{200d}", "\0", "x",
        ]);
        prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn matches_the_regex_on_tricky_strings(text in tricky()) {
            prop_assert_eq!(fast(&text), reference(&text));
        }

        #[test]
        fn matches_the_regex_on_any_string(text in any::<String>()) {
            prop_assert_eq!(fast(&text), reference(&text));
        }
    }
}
