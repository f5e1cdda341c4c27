//! Encoding a long text on all cores: cut it where a cut cannot change the ids, encode the
//! pieces in parallel, and concatenate.
//!
//! **Where to cut.** Before a space (U+0020) whose preceding character is not whitespace. With
//! GPT-2's and GPT-4's split patterns no chunk runs across such a point: the chunk that holds the
//! preceding character is a run of letters, of digits or of other symbols, or a contraction, and
//! none of these takes a space after it; and the chunk that starts at the space does not look
//! behind it. So both sides split into the same chunks as the whole, and since merges stay
//! inside chunks, they encode to the same ids. For the character tokenizer any cut is safe. A
//! cut point inside a special token is skipped.

use super::special::Special;
use super::Tokenizer;
use crate::Result;
use rayon::prelude::*;

/// Whether a cut at byte `i` of `text` is safe for the split patterns, ignoring special tokens.
fn is_space_cut(text: &str, i: usize) -> bool {
    text.as_bytes().get(i) == Some(&b' ')
        && text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| !c.is_whitespace())
}

/// Whether an occurrence of one of `specials` covers the bytes on both sides of `i`.
pub(crate) fn inside_special(text: &str, i: usize, specials: &[(String, u32)]) -> bool {
    specials.iter().any(|(token, _)| {
        let lo = i.saturating_sub(token.len() - 1);
        let lo = (lo..=i).find(|&j| text.is_char_boundary(j)).unwrap_or(i);
        let hi = (i + token.len()).min(text.len());
        let hi = (hi..=text.len())
            .find(|&j| text.is_char_boundary(j))
            .unwrap_or(text.len());
        text[lo..hi]
            .match_indices(token.as_str())
            .any(|(at, _)| lo + at < i && i < lo + at + token.len())
    })
}

/// The last safe cut in `text[..=near]` after byte 0, if any.
pub(crate) fn cut_before(text: &str, near: usize, specials: &[(String, u32)]) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = near.min(text.len().saturating_sub(1));
    while i > 0 {
        if bytes[i] == b' ' && is_space_cut(text, i) && !inside_special(text, i, specials) {
            return Some(i);
        }
        i -= 1;
    }
    None
}

/// The first safe cut at or after byte `near`, if any.
fn cut_after(text: &str, near: usize, specials: &[(String, u32)]) -> Option<usize> {
    let bytes = text.as_bytes();
    (near.max(1)..text.len())
        .find(|&i| bytes[i] == b' ' && is_space_cut(text, i) && !inside_special(text, i, specials))
}

/// Cuts `text` at safe points into pieces of about `target` bytes (a piece is longer when no
/// safe point comes sooner). The pieces concatenate to `text`; an empty text gives no pieces.
pub(crate) fn cut_into_pieces<'a>(
    text: &'a str,
    target: usize,
    specials: &[(String, u32)],
) -> Vec<&'a str> {
    let mut pieces = Vec::with_capacity(text.len() / target.max(1) + 1);
    let mut start = 0;
    while start < text.len() {
        let rest = &text[start..];
        let end = match rest.len() <= target {
            true => rest.len(),
            false => cut_before(rest, target, specials)
                .or_else(|| cut_after(rest, target, specials))
                .unwrap_or(rest.len()),
        };
        pieces.push(&rest[..end]);
        start += end;
    }
    pieces
}

/// The ids of `text`, encoded in parallel pieces when the tokenizer allows cutting at spaces
/// ([`Tokenizer::cuts_at_spaces`]); always equal to `tokenizer.encode_with(text, special)`.
pub fn encode_parallel(
    tokenizer: &dyn Tokenizer,
    text: &str,
    special: Special,
) -> Result<Vec<u32>> {
    let threads = rayon::current_num_threads();
    if !tokenizer.cuts_at_spaces() || threads == 1 || text.len() < 1 << 16 {
        return tokenizer.encode_with(text, special);
    }
    let target = (text.len() / (4 * threads)).clamp(1 << 14, 1 << 22);
    let pieces = cut_into_pieces(text, target, tokenizer.special_tokens());
    let starts = pieces.iter().scan(0, |at, p| {
        let start = *at;
        *at += p.len();
        Some(start)
    });
    let starts: Vec<usize> = starts.collect();
    let encoded: Vec<Vec<u32>> = pieces
        .par_iter()
        .zip(starts)
        .map(|(piece, start)| {
            tokenizer
                .encode_with(piece, special)
                .map_err(|e| e.shifted(start))
        })
        .collect::<Result<_>>()?;
    Ok(encoded.concat())
}

/// The ids of a training text. With a tokenizer whose texts begin with a token
/// ([`Tokenizer::text_start`], llama2.c's BOS), each document (the text between
/// `<|endoftext|>` separators, trimmed, empty ones left out) becomes that token followed by
/// the document's ids, as llama2.c's preparation writes TinyStories; documents are encoded in
/// parallel. With any other tokenizer, [`encode_parallel`] of the whole text.
pub fn encode_documents(
    tokenizer: &dyn Tokenizer,
    text: &str,
    special: Special,
) -> Result<Vec<u32>> {
    let Some(start) = tokenizer.text_start() else {
        return encode_parallel(tokenizer, text, special);
    };
    let documents: Vec<&str> = text
        .split(super::ENDOFTEXT)
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let encoded = documents
        .par_iter()
        .map(|d| tokenizer.encode_with(d, special))
        .collect::<Result<Vec<_>>>()?;
    let mut ids = Vec::with_capacity(text.len() / 2);
    for doc in encoded {
        ids.push(start);
        ids.extend(doc);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_only_before_a_space_after_a_non_space() {
        let text = "ab  cd ef\n gh";
        let cuts: Vec<usize> = (0..text.len()).filter(|&i| is_space_cut(text, i)).collect();
        assert_eq!(cuts, [2, 6]);
        let specials = [("<| x |>".to_string(), 9)];
        let text = "a <| x |> b";
        assert_eq!(cut_before(text, text.len(), &specials), Some(9));
        assert_eq!(cut_before(text, 8, &specials), Some(1));
        assert_eq!(cut_before("abc", 2, &[]), None);
    }

    #[test]
    fn pieces_concatenate_to_the_text() {
        let text = "one two three four five six seven eight nine ten";
        for target in [1, 3, 8, 100] {
            let pieces = cut_into_pieces(text, target, &[]);
            assert_eq!(pieces.concat(), text);
            assert!(pieces.iter().skip(1).all(|p| p.starts_with(' ')));
        }
        assert!(cut_into_pieces("", 4, &[]).is_empty());
        assert_eq!(cut_into_pieces("nospaces", 2, &[]), ["nospaces"]);
    }
}
