//! Judge-free text metrics of a generated text against one reference, for scoring
//! instruction-following output without a second model.
//!
//! Every metric works on the normalised word sequence of [`words`] (SQuAD-style: lowercase,
//! punctuation removed, the articles "a", "an", "the" dropped, split on whitespace). With
//! `p` the prediction's words, `r` the reference's words and `|x|` a length:
//!
//! - Exact match: `p == r` as sequences.
//! - Token F1 (SQuAD): `common = Σ_w min(count_p(w), count_r(w))` over the multisets of words,
//!   `P = common / |p|`, `R = common / |r|`, `F1 = 2PR / (P + R)`; 1 when both are empty,
//!   0 when exactly one is empty or `common = 0`.
//! - ROUGE-L: `L = LCS(p, r)`, the length of the longest common subsequence, `P = L / |p|`,
//!   `R = L / |r|`, `F = 2PR / (P + R)` (the F-measure with beta = 1); 1 when both are empty,
//!   0 when exactly one is empty or `L = 0`.
//! - BLEU-4 (sentence level, one reference, uniform weights 1/4):
//!   `BLEU = BP · exp((1/4) Σ_{n=1..4} ln p_n)`, where `matches_n` is the clipped n-gram count
//!   `Σ_g min(count_p(g), count_r(g))` over the n-grams `g` of `p`, `total_n = max(|p| - n + 1, 0)`
//!   is the number of n-grams of `p`, `p_1 = matches_1 / total_1` (unsmoothed) and
//!   `p_n = (matches_n + 1) / (total_n + 1)` for `n >= 2` (add-one smoothing of Lin & Och 2004,
//!   the same as NLTK's smoothing method 2 or sacrebleu's "add-k" with k = 1). The brevity
//!   penalty is `BP = 1` if `|p| > |r|`, else `exp(1 - |r| / |p|)`. The score is 0 when
//!   `|p| = 0` or `matches_1 = 0`.
//!
//! BLEU here counts the normalised words above, not sacrebleu's tokenisation, so its numbers
//! are not comparable with published BLEU scores; use it to compare runs with each other.

use std::collections::HashMap;

/// The articles dropped by [`words`].
const ARTICLES: [&str; 3] = ["a", "an", "the"];

/// The longest n-gram BLEU counts.
const BLEU_MAX_N: usize = 4;

/// Whether `c` counts as punctuation for [`words`]: ASCII punctuation (the 32 characters of
/// Python's `string.punctuation`, symbols such as `$` and `+` included, as SQuAD removes them)
/// and the punctuation of the Latin-1 Supplement, General Punctuation, CJK Symbols and
/// Punctuation and Halfwidth and Fullwidth Forms blocks. The standard library has no Unicode
/// general-category test, so this covers the common blocks rather than every `P*` character.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            c,
            // Latin-1: ¡ § « ¶ · » ¿
            '\u{A1}' | '\u{A7}' | '\u{AB}' | '\u{B6}' | '\u{B7}' | '\u{BB}' | '\u{BF}'
            // General Punctuation: dashes, quotes, daggers, bullets, ellipsis, ... (not the
            // spaces and format characters U+2000..U+200F, U+2028..U+202F, U+205F..U+206F).
            | '\u{2010}'..='\u{2027}'
            | '\u{2030}'..='\u{205E}'
            // CJK: 、 。 〃, brackets 〈 .. 】 and 〔 .. 〟
            | '\u{3001}'..='\u{3003}'
            | '\u{3008}'..='\u{3011}'
            | '\u{3014}'..='\u{301F}'
            // Fullwidth forms of the ASCII punctuation, and the halfwidth CJK marks.
            | '\u{FF01}'..='\u{FF0F}'
            | '\u{FF1A}'..='\u{FF20}'
            | '\u{FF3B}'..='\u{FF40}'
            | '\u{FF5B}'..='\u{FF65}'
        )
}

/// The normalised words of `text`, the unit every metric here counts.
///
/// SQuAD-style normalisation: the text is lowercased (Unicode lowercase), punctuation (see
/// the module doc; ASCII punctuation and the common Unicode punctuation blocks) is deleted
/// without leaving a space, so "don't" becomes "dont" and "end." becomes "end", the rest is
/// split on Unicode whitespace, and the words "a", "an" and "the" are dropped.
pub fn words(text: &str) -> Vec<String> {
    let cleaned: String = text
        .chars()
        .filter(|&c| !is_punctuation(c))
        .flat_map(char::to_lowercase)
        .collect();
    cleaned
        .split_whitespace()
        .filter(|word| !ARTICLES.contains(word))
        .map(str::to_owned)
        .collect()
}

/// Whether `prediction` and `reference` have the same normalised word sequence
/// (see [`words`]); two texts that normalise to nothing match.
pub fn exact_match(prediction: &str, reference: &str) -> bool {
    words(prediction) == words(reference)
}

/// SQuAD token-level F1 over the multisets of normalised words: with
/// `common = Σ_w min(count_pred(w), count_ref(w))`, `P = common / |pred|`,
/// `R = common / |ref|` and `F1 = 2PR / (P + R)`. Word order is ignored. 1.0 when both
/// texts have no words, 0.0 when exactly one has none or no word is shared.
pub fn token_f1(prediction: &str, reference: &str) -> f64 {
    let pred = words(prediction);
    let refr = words(reference);
    f_measure(clipped_matches(&pred, &refr, 1), pred.len(), refr.len())
}

/// ROUGE-L F-measure with beta = 1: with `L` the length of the longest common subsequence of
/// the normalised word sequences, `P = L / |pred|`, `R = L / |ref|` and `F = 2PR / (P + R)`.
/// Unlike [`token_f1`] word order matters: only words appearing in the same order count.
/// 1.0 when both texts have no words, 0.0 when exactly one has none or `L = 0`.
pub fn rouge_l(prediction: &str, reference: &str) -> f64 {
    let pred = words(prediction);
    let refr = words(reference);
    f_measure(lcs_len(&pred, &refr), pred.len(), refr.len())
}

/// Sentence BLEU-4 of `prediction` against the single `reference`, over normalised words
/// (see [`words`]; not sacrebleu's tokenisation, so not comparable with published BLEU).
///
/// `BLEU = BP · (p_1 · p_2 · p_3 · p_4)^(1/4)` with clipped n-gram precisions: `matches_n`
/// counts each n-gram of the prediction at most as often as it occurs in the reference and
/// `total_n = max(c - n + 1, 0)` is the number of n-grams of the prediction. `p_1 =
/// matches_1 / total_1` is unsmoothed; for `n >= 2`, `p_n = (matches_n + 1) / (total_n + 1)`
/// (add-one smoothing of Lin & Och 2004, NLTK method 2), so a prediction shorter than `n`
/// words has `p_n = 1/1`. `BP = 1` if `c > r`, else `exp(1 - r / c)`, with `c` and `r` the
/// word counts of prediction and reference. The score is 0.0 when the prediction has no
/// words (even if the reference has none) or shares no word with the reference.
pub fn bleu(prediction: &str, reference: &str) -> f64 {
    let pred = words(prediction);
    let refr = words(reference);
    let c = pred.len();
    let r = refr.len();
    if c == 0 {
        return 0.0;
    }
    let mut log_precision_sum = 0.0;
    for n in 1..=BLEU_MAX_N {
        let matches = clipped_matches(&pred, &refr, n) as f64;
        let total = (c + 1).saturating_sub(n) as f64;
        let precision = if n == 1 {
            if matches == 0.0 {
                return 0.0;
            }
            matches / total
        } else {
            (matches + 1.0) / (total + 1.0)
        };
        log_precision_sum += precision.ln();
    }
    let brevity_penalty = if c > r {
        1.0
    } else {
        (1.0 - r as f64 / c as f64).exp()
    };
    brevity_penalty * (log_precision_sum / BLEU_MAX_N as f64).exp()
}

/// Mean scores over a set of (prediction, reference) pairs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TextScores {
    /// Fraction of pairs whose normalised word sequences are equal.
    pub exact_match: f64,
    /// Mean SQuAD token F1.
    pub f1: f64,
    /// Mean ROUGE-L F-measure.
    pub rouge_l: f64,
    /// Mean sentence BLEU-4 (normalised words, add-one smoothing for n >= 2).
    pub bleu: f64,
    /// Number of pairs.
    pub n: usize,
}

/// Scores every `(prediction, reference)` pair with each metric and returns the unweighted
/// means over pairs (each pair counts once, whatever its length); `exact_match` is the
/// fraction of pairs that match. Every field is 0 for an empty slice.
pub fn score_all(pairs: &[(String, String)]) -> TextScores {
    let mut scores = TextScores {
        exact_match: 0.0,
        f1: 0.0,
        rouge_l: 0.0,
        bleu: 0.0,
        n: pairs.len(),
    };
    if pairs.is_empty() {
        return scores;
    }
    for (prediction, reference) in pairs {
        if exact_match(prediction, reference) {
            scores.exact_match += 1.0;
        }
        scores.f1 += token_f1(prediction, reference);
        scores.rouge_l += rouge_l(prediction, reference);
        scores.bleu += bleu(prediction, reference);
    }
    let n = pairs.len() as f64;
    scores.exact_match /= n;
    scores.f1 /= n;
    scores.rouge_l /= n;
    scores.bleu /= n;
    scores
}

/// `2PR / (P + R)` with `P = common / pred_len` and `R = common / ref_len`; 1 when both
/// lengths are 0, 0 when exactly one is or `common` is 0.
fn f_measure(common: usize, pred_len: usize, ref_len: usize) -> f64 {
    if pred_len == 0 && ref_len == 0 {
        return 1.0;
    }
    if pred_len == 0 || ref_len == 0 || common == 0 {
        return 0.0;
    }
    let precision = common as f64 / pred_len as f64;
    let recall = common as f64 / ref_len as f64;
    2.0 * precision * recall / (precision + recall)
}

/// How often each n-gram (window of `n >= 1` consecutive words) occurs in `words`.
fn ngram_counts(words: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    for gram in words.windows(n) {
        *counts.entry(gram).or_insert(0) += 1;
    }
    counts
}

/// `Σ_g min(count_pred(g), count_ref(g))` over the n-grams `g` of `pred`: the n-gram matches
/// with each reference n-gram usable at most as often as it occurs.
fn clipped_matches(pred: &[String], refr: &[String], n: usize) -> usize {
    let ref_counts = ngram_counts(refr, n);
    ngram_counts(pred, n)
        .into_iter()
        .map(|(gram, count)| count.min(ref_counts.get(gram).copied().unwrap_or(0)))
        .sum()
}

/// Length of the longest common subsequence of `a` and `b`, by the O(|a|·|b|) dynamic
/// program `L[i][j] = L[i-1][j-1] + 1` if `a[i] = b[j]`, else `max(L[i-1][j], L[i][j-1])`,
/// keeping two rows.
fn lcs_len(a: &[String], b: &[String]) -> usize {
    let mut previous = vec![0usize; b.len() + 1];
    let mut current = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = if x == y {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: f64 = 1e-12;

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= TOL,
            "got {actual}, expected {expected}"
        );
    }

    #[test]
    fn words_normalise_case_punctuation_and_articles() {
        assert_eq!(words("The Cat!"), vec!["cat"]);
        assert_eq!(
            words("A dog, an Owl — and “the” end… Don't"),
            vec!["dog", "owl", "and", "end", "dont"]
        );
        // Articles are whole words only; "then" and "ant" stay.
        assert_eq!(words("then an ant"), vec!["then", "ant"]);
        assert_eq!(words("  Ünïcode\tTEXT\n"), vec!["ünïcode", "text"]);
        assert!(words("The, a; an.").is_empty());
        assert!(words("").is_empty());
    }

    // Prediction "the cat sat on the mat", reference "the cat is on the mat".
    // Words: pred = [cat, sat, on, mat] (c = 4), ref = [cat, is, on, mat] (r = 4).
    // F1: common = {cat, on, mat} = 3, P = 3/4, R = 3/4, F1 = 3/4.
    // ROUGE-L: LCS = [cat, on, mat] = 3, P = R = 3/4, F = 3/4.
    // BLEU: p1 = 3/4.
    //   bigrams pred {cat sat, sat on, on mat}, ref {cat is, is on, on mat}: 1 match of 3,
    //   p2 = (1+1)/(3+1) = 1/2.
    //   trigrams pred {cat sat on, sat on mat}: 0 of 2, p3 = 1/3.
    //   4-gram pred {cat sat on mat}: 0 of 1, p4 = 1/2.
    //   BP = exp(1 - 4/4) = 1 (c = r).
    //   BLEU = (3/4 · 1/2 · 1/3 · 1/2)^(1/4) = (1/16)^(1/4) = 1/2.
    const CAT_PRED: &str = "the cat sat on the mat";
    const CAT_REF: &str = "the cat is on the mat";

    #[test]
    fn cat_sat_example() {
        assert!(!exact_match(CAT_PRED, CAT_REF));
        assert_close(token_f1(CAT_PRED, CAT_REF), 3.0 / 4.0);
        assert_close(rouge_l(CAT_PRED, CAT_REF), 3.0 / 4.0);
        assert_close(bleu(CAT_PRED, CAT_REF), 1.0 / 2.0);
    }

    // Prediction "cat sat", reference "the cat sat on the mat".
    // Words: pred = [cat, sat] (c = 2), ref = [cat, sat, on, mat] (r = 4).
    // F1: common = 2, P = 2/2 = 1, R = 2/4 = 1/2, F1 = 2·(1·1/2)/(3/2) = 2/3.
    // ROUGE-L: LCS = 2, P = 1, R = 1/2, F = 2/3.
    // BLEU: p1 = 2/2 = 1; p2: bigram {cat sat} matches, (1+1)/(1+1) = 1;
    //   p3, p4: no n-grams in a 2-word prediction, (0+1)/(0+1) = 1.
    //   BP = exp(1 - 4/2) = exp(-1) (c < r). BLEU = exp(-1).
    #[test]
    fn short_prediction_gets_brevity_penalty() {
        let (pred, refr) = ("cat sat", "the cat sat on the mat");
        assert!(!exact_match(pred, refr));
        assert_close(token_f1(pred, refr), 2.0 / 3.0);
        assert_close(rouge_l(pred, refr), 2.0 / 3.0);
        assert_close(bleu(pred, refr), (-1.0f64).exp());
    }

    // Prediction "one two three four five", reference "one three five six".
    // c = 5, r = 4.
    // F1: common = {one, three, five} = 3, P = 3/5, R = 3/4,
    //   F1 = 2·(9/20)/(27/20) = 2/3.
    // ROUGE-L: LCS = [one, three, five] = 3, same P, R, F = 2/3.
    // BLEU: p1 = 3/5.
    //   bigrams pred {one two, two three, three four, four five} vs ref
    //   {one three, three five, five six}: 0 of 4, p2 = 1/5.
    //   trigrams: 0 of 3, p3 = 1/4. 4-grams: 0 of 2, p4 = 1/3.
    //   BP = 1 (c = 5 > r = 4).
    //   BLEU = (3/5 · 1/5 · 1/4 · 1/3)^(1/4) = (1/100)^(1/4) = 1/sqrt(10).
    #[test]
    fn longer_prediction_has_no_brevity_penalty() {
        let (pred, refr) = ("one two three four five", "one three five six");
        assert_close(token_f1(pred, refr), 2.0 / 3.0);
        assert_close(rouge_l(pred, refr), 2.0 / 3.0);
        assert_close(bleu(pred, refr), 1.0 / 10.0f64.sqrt());
    }

    // Prediction "cat cat cat cat", reference "cat sat on mat" (c = r = 4).
    // Clipping: "cat" occurs 4 times in pred but once in ref, so it counts once.
    // F1: common = min(4, 1) = 1, P = 1/4, R = 1/4, F1 = 1/4.
    // ROUGE-L: LCS = [cat] = 1, F = 1/4.
    // BLEU: p1 = 1/4; bigrams 3 × {cat cat}, 0 matches, p2 = 1/4;
    //   trigrams 0 of 2, p3 = 1/3; 4-gram 0 of 1, p4 = 1/2; BP = 1.
    //   BLEU = (1/4 · 1/4 · 1/3 · 1/2)^(1/4) = (1/96)^(1/4).
    #[test]
    fn repeated_words_are_clipped() {
        let (pred, refr) = ("cat cat cat cat", "cat sat on mat");
        assert_close(token_f1(pred, refr), 1.0 / 4.0);
        assert_close(rouge_l(pred, refr), 1.0 / 4.0);
        assert_close(bleu(pred, refr), (1.0f64 / 96.0).powf(0.25));
    }

    // Prediction "mat on sat cat", reference "cat sat on mat": the same bag of 4 words in
    // reverse order. F1: common = 4, P = R = 1, F1 = 1. ROUGE-L: all words distinct and
    // reversed, so LCS = 1, P = R = 1/4, F = 1/4.
    // BLEU: p1 = 4/4 = 1; bigrams {mat on, on sat, sat cat} vs {cat sat, sat on, on mat}:
    //   0 of 3, p2 = 1/4; trigrams 0 of 2, p3 = 1/3; 4-gram 0 of 1, p4 = 1/2; BP = 1.
    //   BLEU = (1 · 1/4 · 1/3 · 1/2)^(1/4) = (1/24)^(1/4).
    #[test]
    fn word_order_matters_for_rouge_l_and_bleu_only() {
        let (pred, refr) = ("mat on sat cat", "cat sat on mat");
        assert!(!exact_match(pred, refr));
        assert_close(token_f1(pred, refr), 1.0);
        assert_close(rouge_l(pred, refr), 1.0 / 4.0);
        assert_close(bleu(pred, refr), (1.0f64 / 24.0).powf(0.25));
    }

    // Identical texts: every n-gram matches, so P = R = 1, LCS = length, p1 = 1,
    // p_n = (m+1)/(m+1) = 1 and BP = exp(1 - 1) = 1.
    #[test]
    fn identical_texts_score_one() {
        for text in [CAT_PRED, "cat", "one two three four five six seven"] {
            assert!(exact_match(text, text));
            assert_close(token_f1(text, text), 1.0);
            assert_close(rouge_l(text, text), 1.0);
            assert_close(bleu(text, text), 1.0);
        }
    }

    // No shared word: common = 0, LCS = 0, matches_1 = 0, so everything is 0.
    #[test]
    fn disjoint_texts_score_zero() {
        let (pred, refr) = ("dogs bark loudly", "the cat sat on the mat");
        assert!(!exact_match(pred, refr));
        assert_eq!(token_f1(pred, refr), 0.0);
        assert_eq!(rouge_l(pred, refr), 0.0);
        assert_eq!(bleu(pred, refr), 0.0);
    }

    // "The Cat!" and "cat" both normalise to [cat]: a match, and 1.0 for every metric.
    #[test]
    fn normalisation_makes_case_punctuation_and_articles_irrelevant() {
        assert!(exact_match("The Cat!", "cat"));
        assert_close(token_f1("The Cat!", "cat"), 1.0);
        assert_close(rouge_l("The Cat!", "cat"), 1.0);
        assert_close(bleu("The Cat!", "cat"), 1.0);
    }

    #[test]
    fn empty_texts() {
        // Both empty (after normalisation): equal sequences, F1 and ROUGE-L 1, BLEU 0 (c = 0).
        assert!(exact_match("", "the, a!"));
        assert_eq!(token_f1("", "the, a!"), 1.0);
        assert_eq!(rouge_l("", "the, a!"), 1.0);
        assert_eq!(bleu("", "the, a!"), 0.0);
        // Exactly one empty: 0 everywhere.
        for (pred, refr) in [("", "cat"), ("cat", "")] {
            assert!(!exact_match(pred, refr));
            assert_eq!(token_f1(pred, refr), 0.0);
            assert_eq!(rouge_l(pred, refr), 0.0);
        }
        assert_eq!(bleu("", "cat"), 0.0);
        // Reference empty, prediction not: p1 = 0/1, so BLEU is 0.
        assert_eq!(bleu("cat", ""), 0.0);
    }

    // Pairs: (CAT_PRED, CAT_REF), ("cat sat", "cat sat"), ("The Cat!", "cat").
    // exact_match = (0 + 1 + 1)/3 = 2/3; F1 = ROUGE-L = (3/4 + 1 + 1)/3 = 11/12;
    // BLEU = (1/2 + 1 + 1)/3 = 5/6.
    #[test]
    fn score_all_averages_over_pairs() {
        let pairs: Vec<(String, String)> = [
            (CAT_PRED, CAT_REF),
            ("cat sat", "cat sat"),
            ("The Cat!", "cat"),
        ]
        .iter()
        .map(|&(p, r)| (p.to_owned(), r.to_owned()))
        .collect();
        let scores = score_all(&pairs);
        assert_eq!(scores.n, 3);
        assert_close(scores.exact_match, 2.0 / 3.0);
        assert_close(scores.f1, 11.0 / 12.0);
        assert_close(scores.rouge_l, 11.0 / 12.0);
        assert_close(scores.bleu, 5.0 / 6.0);
    }

    #[test]
    fn score_all_of_nothing_is_zero() {
        assert_eq!(
            score_all(&[]),
            TextScores {
                exact_match: 0.0,
                f1: 0.0,
                rouge_l: 0.0,
                bleu: 0.0,
                n: 0,
            }
        );
    }

    #[test]
    fn lcs_of_known_sequences() {
        let seq = |s: &str| -> Vec<String> { s.split(' ').map(str::to_owned).collect() };
        // a b c b d a b vs b d c a b a: a classic pair with LCS length 4 (e.g. "b c b a").
        assert_eq!(lcs_len(&seq("a b c b d a b"), &seq("b d c a b a")), 4);
        assert_eq!(lcs_len(&seq("x y z"), &[]), 0);
        assert_eq!(lcs_len(&seq("x y z"), &seq("x y z")), 3);
    }
}
