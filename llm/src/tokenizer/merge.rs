//! Applying byte-pair merges to one chunk of text.
//!
//! A merge table maps an adjacent pair of ids `(a, b)` to the id `c` of the token that joins
//! them. Ids are ranks: a lower id was learned earlier and is applied first. Encoding a chunk
//! starts from its bytes and repeats: find the adjacent pair with the lowest merged id (the
//! leftmost such pair on a tie), replace it by that id; stop when no adjacent pair is in the
//! table.
//!
//! [`merge_plain`] does exactly that, rescanning the sequence after each merge: O(n^2) for n
//! bytes, and the fastest for the short chunks that make up ordinary text. [`merge_heap`] keeps
//! the candidate pairs in a priority queue over a linked list: O(n log n), for long chunks (a run
//! of spaces, a text in a script without spaces, or the basic BPE with no pre-split). Tests hold
//! the two to the same output.

use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Chunks at least this many bytes long use [`merge_heap`].
const HEAP_FROM: usize = 64;

/// A merge table: `(a, b) -> merged id`.
pub(crate) type Ranks = FxHashMap<(u32, u32), u32>;

/// Byte-pair merges over byte-level tokens: the id of each byte, the merge table, and the bytes
/// of every token for decoding.
#[derive(Clone, Debug)]
pub(crate) struct Merger {
    /// `byte_ids[b]` is the token of the single byte `b`.
    pub(crate) byte_ids: [u32; 256],
    /// Pair to merged id.
    pub(crate) ranks: Ranks,
    /// `tokens[id]` is the bytes of token `id`.
    pub(crate) tokens: Vec<Vec<u8>>,
    /// Token ids by their bytes, for a table whose rule is that a chunk which is itself a token
    /// encodes to that token (tiktoken's rule, which GPT-2 follows); `None` to always merge.
    pub(crate) token_ids: Option<FxHashMap<Vec<u8>, u32>>,
}

impl Merger {
    /// The id of `chunk` when the table has the whole-chunk rule and `chunk` is a token.
    #[inline]
    pub(crate) fn whole_token(&self, chunk: &[u8]) -> Option<u32> {
        self.token_ids.as_ref()?.get(chunk).copied()
    }

    /// Appends the ids of `chunk` to `out`.
    pub(crate) fn encode_chunk(&self, chunk: &[u8], out: &mut Vec<u32>) {
        let start = out.len();
        out.extend(chunk.iter().map(|&b| self.byte_ids[b as usize]));
        let ids = &mut out[start..];
        let n = match ids.len() < HEAP_FROM {
            true => merge_plain(&self.ranks, ids),
            false => merge_heap(&self.ranks, ids),
        };
        out.truncate(start + n);
    }
}

/// Merges `ids` in place by rescanning for the best pair after each merge; returns the new length.
pub(crate) fn merge_plain(ranks: &Ranks, ids: &mut [u32]) -> usize {
    let mut n = ids.len();
    loop {
        let mut best: Option<(u32, usize)> = None;
        for i in 0..n.saturating_sub(1) {
            match (ranks.get(&(ids[i], ids[i + 1])), best) {
                (Some(&rank), Some((r, _))) if rank < r => best = Some((rank, i)),
                (Some(&rank), None) => best = Some((rank, i)),
                _ => {}
            }
        }
        let Some((rank, i)) = best else { return n };
        ids[i] = rank;
        ids.copy_within(i + 2..n, i + 1);
        n -= 1;
    }
}

/// Marks a position whose token was merged into its left neighbour.
const GONE: u32 = u32::MAX;

/// Merges `ids` in place with a priority queue of `(rank, position)`; returns the new length.
///
/// Positions form a doubly linked list. A queue entry can go stale when a neighbour merges; it
/// is skipped when popped if the pair now at its position no longer has its rank. The queue
/// orders by rank, then position, so it picks the same pair as [`merge_plain`].
pub(crate) fn merge_heap(ranks: &Ranks, ids: &mut [u32]) -> usize {
    let n = ids.len();
    let rank_at = |ids: &[u32], i: usize, j: usize| ranks.get(&(ids[i], ids[j])).copied();
    let mut next: Vec<usize> = (1..=n).collect();
    let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
    let mut queue: BinaryHeap<Reverse<(u32, usize)>> = (0..n.saturating_sub(1))
        .filter_map(|i| rank_at(ids, i, i + 1).map(|r| Reverse((r, i))))
        .collect();
    while let Some(Reverse((rank, i))) = queue.pop() {
        let j = next[i];
        if ids[i] == GONE || j >= n || rank_at(ids, i, j) != Some(rank) {
            continue;
        }
        ids[i] = rank;
        ids[j] = GONE;
        next[i] = next[j];
        if next[i] < n {
            prev[next[i]] = i;
        }
        if prev[i] < n {
            if let Some(r) = rank_at(ids, prev[i], i) {
                queue.push(Reverse((r, prev[i])));
            }
        }
        if next[i] < n {
            if let Some(r) = rank_at(ids, i, next[i]) {
                queue.push(Reverse((r, i)));
            }
        }
    }
    let mut kept = 0;
    for i in 0..n {
        if ids[i] != GONE {
            ids[kept] = ids[i];
            kept += 1;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Merges over the alphabet {0, 1, 2}: 10 = (0,0), 11 = (10,1), 12 = (1,2), 13 = (11,12),
    /// 14 = (2,2), 15 = (0,10): overlapping and competing pairs.
    fn table() -> Ranks {
        [
            ((0, 0), 10),
            ((10, 1), 11),
            ((1, 2), 12),
            ((11, 12), 13),
            ((2, 2), 14),
            ((0, 10), 15),
        ]
        .into_iter()
        .collect()
    }

    fn run(f: fn(&Ranks, &mut [u32]) -> usize, input: &[u32]) -> Vec<u32> {
        let mut ids = input.to_vec();
        let n = f(&table(), &mut ids);
        ids.truncate(n);
        ids
    }

    #[test]
    fn lowest_rank_first_and_leftmost_on_ties() {
        // 0 0 0 -> (0,0) leftmost -> [10, 0]; (10, 0) is not a merge.
        assert_eq!(run(merge_plain, &[0, 0, 0]), [10, 0]);
        // 0 0 1 2 -> 10 1 2 -> 11 2 (rank 11 before 12) -> stays.
        assert_eq!(run(merge_plain, &[0, 0, 1, 2]), [11, 2]);
        // 0 0 1 1 2 -> 11 1 2 -> 11 12 -> 13.
        assert_eq!(run(merge_plain, &[0, 0, 1, 1, 2]), [13]);
        assert_eq!(run(merge_plain, &[2, 2, 2, 2]), [14, 14]);
        assert_eq!(run(merge_plain, &[]), Vec::<u32>::new());
        assert_eq!(run(merge_plain, &[5]), [5]);
    }

    proptest! {
        #[test]
        fn heap_equals_plain(input in prop::collection::vec(0u32..3, 0..200)) {
            prop_assert_eq!(run(merge_heap, &input), run(merge_plain, &input));
        }
    }
}
