//! Learning byte-pair merges from chunk counts.
//!
//! The input is each distinct chunk of the corpus (a word with its leading space, a run of
//! digits, ...) with the number of times it occurs, so a chunk that occurs a thousand times is
//! stored and updated once. Every step merges the most frequent adjacent pair of tokens into a
//! new token. Pair counts are kept up to date incrementally: after a merge only the chunks that
//! contain the merged pair are visited (an index maps each pair to them), and the counts of the
//! pairs they gain and lose are adjusted. A max-heap of `(count, pair)` finds the next pair;
//! entries whose count has since changed are skipped when they surface.
//!
//! **Tie rule.** Among pairs of equal count, the pair whose first token's bytes are
//! lexicographically greatest wins, then the one whose second token's bytes are greatest
//! (comparing raw bytes, a proper prefix being smaller), then the one with the greater ids.
//! This is the rule of the reference trainer whose output the tests reproduce exactly; it
//! depends only on the tokens, never on hash-map order.

use rustc_hash::FxHashMap;
use std::collections::BinaryHeap;
use std::rc::Rc;

/// A candidate merge. The derived order is the tie rule: count, then the first token's bytes,
/// then the second's, then the ids.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    count: u64,
    left: Rc<[u8]>,
    right: Rc<[u8]>,
    pair: (u32, u32),
}

/// The training state: distinct chunks as token sequences, pair counts and the pair index.
struct Trainer {
    words: Vec<Vec<u32>>,
    freq: Vec<u64>,
    /// `vocab[id]` is the bytes of token `id`.
    vocab: Vec<Rc<[u8]>>,
    counts: FxHashMap<(u32, u32), u64>,
    /// The words in which each pair occurs or once occurred (possibly listed twice).
    index: FxHashMap<(u32, u32), Vec<usize>>,
    heap: BinaryHeap<Candidate>,
}

/// Learns up to `num_merges` merges from `(chunk, count)` pairs. Merge `k` creates token
/// `256 + k`; bytes are tokens `0..256`. Training stops early when no adjacent pair is left.
pub(crate) fn train_merges(chunks: &[(&[u8], u64)], num_merges: usize) -> Vec<(u32, u32)> {
    let mut trainer = Trainer::new(chunks);
    let mut merges = Vec::with_capacity(num_merges);
    while merges.len() < num_merges {
        let Some(pair) = trainer.best_pair() else {
            break;
        };
        trainer.merge(pair, 256 + merges.len() as u32);
        merges.push(pair);
    }
    merges
}

impl Trainer {
    fn new(chunks: &[(&[u8], u64)]) -> Trainer {
        let mut trainer = Trainer {
            words: chunks
                .iter()
                .map(|(bytes, _)| bytes.iter().map(|&b| u32::from(b)).collect())
                .collect(),
            freq: chunks.iter().map(|c| c.1).collect(),
            vocab: (0..=255u8).map(|b| Rc::from(&[b][..])).collect(),
            counts: FxHashMap::default(),
            index: FxHashMap::default(),
            heap: BinaryHeap::new(),
        };
        for (w, word) in trainer.words.iter().enumerate() {
            for p in word.windows(2) {
                *trainer.counts.entry((p[0], p[1])).or_default() += trainer.freq[w];
                trainer.index.entry((p[0], p[1])).or_default().push(w);
            }
        }
        let counts: Vec<_> = trainer.counts.iter().map(|(&p, &c)| (p, c)).collect();
        for (pair, count) in counts {
            trainer.push(pair, count);
        }
        trainer
    }

    fn push(&mut self, pair: (u32, u32), count: u64) {
        self.heap.push(Candidate {
            count,
            left: self.vocab[pair.0 as usize].clone(),
            right: self.vocab[pair.1 as usize].clone(),
            pair,
        });
    }

    /// The most frequent pair by the tie rule, skipping stale heap entries.
    fn best_pair(&mut self) -> Option<(u32, u32)> {
        while let Some(c) = self.heap.pop() {
            if self.counts.get(&c.pair) == Some(&c.count) {
                return Some(c.pair);
            }
        }
        None
    }

    /// Replaces `pair` by token `new` in every word that holds it and updates the counts.
    fn merge(&mut self, pair: (u32, u32), new: u32) {
        let joined = [
            &self.vocab[pair.0 as usize][..],
            &self.vocab[pair.1 as usize][..],
        ]
        .concat();
        self.vocab.push(joined.into());
        let mut words = self.index.remove(&pair).unwrap_or_default();
        words.sort_unstable();
        words.dedup();
        let mut delta: FxHashMap<(u32, u32), i64> = FxHashMap::default();
        for w in words {
            let word = &mut self.words[w];
            for p in merge_word(word, pair, new, self.freq[w] as i64, &mut delta) {
                self.index.entry(p).or_default().push(w);
            }
        }
        let mut changed: Vec<_> = delta.into_iter().filter(|d| d.1 != 0).collect();
        changed.sort_unstable();
        for (p, d) in changed {
            let count = self.counts.get(&p).copied().unwrap_or(0) as i64 + d;
            if count > 0 {
                self.counts.insert(p, count as u64);
                self.push(p, count as u64);
            } else {
                self.counts.remove(&p);
            }
        }
    }
}

/// Replaces each occurrence of `pair` in `word` by `new`, left to right, and records in `delta`
/// the change of every pair count (`freq` per occurrence). Returns the pairs that now hold
/// `new`, which are new to this word.
///
/// Only the pairs next to an occurrence change, so only those are visited: a long word (the
/// basic BPE sees the whole text as one) costs its length in copying, not in hash-map updates.
fn merge_word(
    word: &mut Vec<u32>,
    pair: (u32, u32),
    new: u32,
    freq: i64,
    delta: &mut FxHashMap<(u32, u32), i64>,
) -> Vec<(u32, u32)> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 1 < word.len() {
        if (word[i], word[i + 1]) == pair {
            starts.push(i);
            i += 2;
        } else {
            i += 1;
        }
    }
    if starts.is_empty() {
        return Vec::new();
    }
    // Pairs that overlap an occurrence disappear; each is counted once.
    let mut next_pair = 0;
    for &s in &starts {
        for j in s.saturating_sub(1).max(next_pair)..=(s + 1).min(word.len() - 2) {
            *delta.entry((word[j], word[j + 1])).or_default() -= freq;
            next_pair = j + 1;
        }
    }
    let mut merged = Vec::with_capacity(word.len() - starts.len());
    let mut placed = Vec::with_capacity(starts.len());
    let mut occurrences = starts.iter().peekable();
    let mut i = 0;
    while i < word.len() {
        if occurrences.next_if_eq(&&i).is_some() {
            placed.push(merged.len());
            merged.push(new);
            i += 2;
        } else {
            merged.push(word[i]);
            i += 1;
        }
    }
    // Pairs that hold a new token appear; each is counted once.
    let mut gained = Vec::new();
    let mut next_pair = 0;
    for &k in &placed {
        for j in k.saturating_sub(1).max(next_pair)..=k {
            if j + 1 < merged.len() {
                let p = (merged[j], merged[j + 1]);
                *delta.entry(p).or_default() += freq;
                gained.push(p);
                next_pair = j + 1;
            }
        }
    }
    *word = merged;
    gained
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain trainer: recount every pair of every word before each merge.
    fn train_plain(chunks: &[(&[u8], u64)], num_merges: usize) -> Vec<(u32, u32)> {
        let mut words: Vec<Vec<u32>> = chunks
            .iter()
            .map(|c| c.0.iter().map(|&b| u32::from(b)).collect())
            .collect();
        let mut vocab: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        let mut merges = Vec::new();
        while merges.len() < num_merges {
            let mut counts: FxHashMap<(u32, u32), u64> = FxHashMap::default();
            for (word, (_, f)) in words.iter().zip(chunks) {
                for p in word.windows(2) {
                    *counts.entry((p[0], p[1])).or_default() += f;
                }
            }
            let key = |(p, c): (&(u32, u32), &u64)| {
                (
                    *c,
                    vocab[p.0 as usize].clone(),
                    vocab[p.1 as usize].clone(),
                    *p,
                )
            };
            let Some((_, _, _, pair)) = counts.iter().map(key).max() else {
                break;
            };
            let new = 256 + merges.len() as u32;
            vocab.push(
                [
                    vocab[pair.0 as usize].clone(),
                    vocab[pair.1 as usize].clone(),
                ]
                .concat(),
            );
            for word in &mut words {
                let mut merged = Vec::new();
                let mut i = 0;
                while i < word.len() {
                    let hit = i + 1 < word.len() && (word[i], word[i + 1]) == pair;
                    merged.push(if hit { new } else { word[i] });
                    i += if hit { 2 } else { 1 };
                }
                *word = merged;
            }
            merges.push(pair);
        }
        merges
    }

    #[test]
    fn incremental_equals_plain_recount() {
        let text = "the cat sat on the mat; the rat ate the hat that sat flat, aaaa abab aaa";
        let mut counts: FxHashMap<&str, u64> = FxHashMap::default();
        for w in text.split_inclusive(' ') {
            *counts.entry(w).or_default() += 1;
        }
        let mut chunks: Vec<(&[u8], u64)> =
            counts.iter().map(|(w, &c)| (w.as_bytes(), c)).collect();
        chunks.sort();
        assert_eq!(train_merges(&chunks, 40), train_plain(&chunks, 40));
        // The basic BPE's single long word, with runs that overlap themselves.
        let long = "abababaaaabbbabab aaa cacab".repeat(3);
        let one = [(long.as_bytes(), 1)];
        assert_eq!(train_merges(&one, 30), train_plain(&one, 30));
    }

    proptest::proptest! {
        #[test]
        fn incremental_equals_plain_on_random_words(
            words in proptest::collection::vec(("[abc]{1,12}", 1u64..5), 1..12),
        ) {
            let chunks: Vec<(&[u8], u64)> = words.iter().map(|(w, n)| (w.as_bytes(), *n)).collect();
            proptest::prop_assert_eq!(train_merges(&chunks, 20), train_plain(&chunks, 20));
        }
    }

    #[test]
    fn stops_when_no_pair_is_left() {
        assert_eq!(train_merges(&[(b"ab", 3)], 10), [(97, 98)]);
        assert!(train_merges(&[(b"a", 3)], 10).is_empty());
    }
}
