//! Autoregressive generation: sampling one token from logits (temperature, top-k, top-p,
//! greedy), and the decoding loop with a key/value cache.
//!
//! The loop feeds the prompt once, then one token per step, reusing each layer's cached keys
//! and values. A prompt longer than the model's context is cropped from the left. Once the
//! sequence fills the context, each step re-reads the last `context` tokens from scratch
//! (learned absolute positions cannot slide inside a cache), which is exactly what
//! uncached decoding does, so both give the same tokens.

use crate::model::{DecodeState, Model};
use autograd::no_grad;
use rayon::prelude::*;
use tensor::{with_packed_weights, Rng, Tensor};

/// How to pick a token from logits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Divides the logits; 0 means greedy (always the most likely token).
    pub temperature: f64,
    /// Keep only the `k` most likely tokens.
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches `p`.
    pub top_p: Option<f64>,
}

impl Sampling {
    /// Always the most likely token.
    pub const GREEDY: Sampling = Sampling {
        temperature: 0.0,
        top_k: None,
        top_p: None,
    };
}

/// Index of the first largest value.
fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Picks the next token from one row of logits: the most likely at temperature 0; otherwise a
/// draw from the softmax of `logits / temperature`, cut to the top-k and top-p candidates.
///
/// A draw takes `u`, uniform in `[0, total mass)`, and walks the candidates by decreasing
/// logit (ties by id) until `u` falls inside one. Without top-k and top-p the walk needs no
/// sort ([`draw_by_selection`]) and lands on the token [`sample_sorted`] lands on, so a seed
/// draws the same tokens either way (up to rounding in the sums of probability mass).
pub fn sample(logits: &[f32], s: &Sampling, rng: &mut Rng) -> u32 {
    if s.temperature <= 0.0 {
        return argmax(logits) as u32;
    }
    if s.top_k.is_none() && s.top_p.is_none() {
        return draw_by_selection(logits, s.temperature, rng.uniform());
    }
    sample_sorted(logits, s, rng)
}

/// The draw of [`sample`] with every token a candidate, `unit` uniform in `[0, 1)`. Rather
/// than sort, it halves the candidates: put the tokens that rank in the first half of the walk
/// before the middle (a selection, linear time), and if `u` falls inside their mass keep
/// them, else subtract it and keep the rest; one token is left after `log2(V)` rounds, in
/// about `3V` steps in all.
fn draw_by_selection(logits: &[f32], temperature: f64, unit: f64) -> u32 {
    let scaled: Vec<f64> = logits.iter().map(|&l| l as f64 / temperature).collect();
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weight: Vec<f64> = scaled.iter().map(|&x| (x - max).exp()).collect();
    let mut u = unit * weight.iter().sum::<f64>();
    let walk_order = |a: &u32, b: &u32| {
        let (a, b) = (*a as usize, *b as usize);
        scaled[b].total_cmp(&scaled[a]).then(a.cmp(&b))
    };
    let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
    let mut part = &mut ids[..];
    while part.len() > 1 {
        let mid = part.len() / 2;
        part.select_nth_unstable_by(mid, walk_order);
        let ahead: f64 = part[..mid].iter().map(|&i| weight[i as usize]).sum();
        if u < ahead {
            part = &mut part[..mid];
        } else {
            u -= ahead;
            part = &mut part[mid..];
        }
    }
    part[0]
}

/// The draw of [`sample`] by sorting every candidate first: the plain reference of
/// [`draw_by_selection`], and the path of top-k and top-p.
pub fn sample_sorted(logits: &[f32], s: &Sampling, rng: &mut Rng) -> u32 {
    let scaled: Vec<f64> = logits.iter().map(|&l| l as f64 / s.temperature).collect();
    // Candidates by decreasing logit (ties by id, so the order is deterministic).
    let mut order: Vec<usize> = (0..scaled.len()).collect();
    order.sort_by(|&a, &b| scaled[b].total_cmp(&scaled[a]).then(a.cmp(&b)));
    if let Some(k) = s.top_k {
        order.truncate(k.max(1));
    }
    let max = scaled[order[0]];
    let mut probs: Vec<f64> = order.iter().map(|&i| (scaled[i] - max).exp()).collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if let Some(p) = s.top_p {
        let mut mass = 0.0;
        let keep = probs.iter().position(|&q| {
            mass += q;
            mass >= p
        });
        let keep = keep.map_or(probs.len(), |i| i + 1);
        probs.truncate(keep);
        order.truncate(keep);
    }
    let total: f64 = probs.iter().sum();
    let mut u = rng.uniform() * total;
    for (&i, &p) in order.iter().zip(&probs) {
        if u < p {
            return i as u32;
        }
        u -= p;
    }
    order[order.len() - 1] as u32
}

/// Settings of one generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// Most tokens to generate (fewer when the stop token comes first).
    pub max_new_tokens: usize,
    /// How each next token is drawn from the logits.
    pub sampling: Sampling,
    /// Stop after emitting this token (e.g. `<|endoftext|>`).
    pub stop_token: Option<u32>,
    /// Seed of the sampling generator: the same seed, model and prompt give the same tokens.
    pub seed: u64,
    /// When set, only ids below it are drawn: the tokenizer's vocabulary, for a model whose
    /// output is padded past it (ids the tokenizer could not decode are never produced).
    pub vocab_limit: Option<usize>,
}

impl Generation {
    /// The part of a row of logits that may be drawn from (see [`Generation::vocab_limit`]).
    fn drawable<'a>(&self, logits: &'a [f32]) -> &'a [f32] {
        &logits[..self
            .vocab_limit
            .map_or(logits.len(), |n| n.min(logits.len()))]
    }
}

/// The last `context` tokens as a `(1, T)` batch.
fn window(tokens: &[u32], context: usize) -> Tensor {
    let start = tokens.len().saturating_sub(context);
    let w = &tokens[start..];
    Tensor::from_slice(w, &[1, w.len()])
}

/// Generates after `prompt` (at least one token), calling `on_token` for each new token as
/// it is produced; returns the new tokens.
pub fn generate(
    model: &Model,
    prompt: &[u32],
    g: &Generation,
    mut on_token: impl FnMut(u32),
) -> Vec<u32> {
    assert!(
        !prompt.is_empty(),
        "generation needs a prompt of at least one token"
    );
    no_grad(|| {
        let mut rng = Rng::new(g.seed);
        let context = model.context();
        let mut tokens = prompt.to_vec();
        let mut state = model.start_decoding();
        state.reserve((tokens.len() + g.max_new_tokens).min(context));
        let mut logits = model.logits_next(&window(&tokens, context), &mut state);
        let mut out = Vec::new();
        for _ in 0..g.max_new_tokens {
            let row = logits.value().to_vec::<f32>();
            let next = sample(g.drawable(&row), &g.sampling, &mut rng);
            tokens.push(next);
            out.push(next);
            on_token(next);
            if Some(next) == g.stop_token {
                break;
            }
            logits = if state.len() < context {
                model.logits_next(&Tensor::from_slice(&[next], &[1, 1]), &mut state)
            } else {
                state = model.start_decoding();
                model.logits_next(&window(&tokens, context), &mut state)
            };
        }
        out
    })
}

/// Generates after each of `prompts` (each at least one token) at once, and returns the new
/// tokens of each. Sequence `i` draws with the seed `g.seed + i` and gets exactly the tokens
/// [`generate`] gives its prompt alone with that seed.
///
/// No sequence is padded: each keeps its own key/value caches, of its own length. Prompts are
/// fed one at a time (every prompt position of a sequence goes through the model together);
/// then each step feeds the newest token of every unfinished sequence as one batch, so the
/// projections and the MLP run one `(B, C)` product per layer (with each weight packed once
/// for the whole loop, see [`with_packed_weights`]) while each sequence attends to its own
/// cache. A sequence leaves the batch at its stop token; one whose cache
/// fills the context re-reads its last `context` tokens alone, as [`generate`] does.
pub fn generate_batch(model: &Model, prompts: &[Vec<u32>], g: &Generation) -> Vec<Vec<u32>> {
    assert!(
        prompts.iter().all(|p| !p.is_empty()),
        "generation needs prompts of at least one token"
    );
    no_grad(|| with_packed_weights(|| decode_batch(model, prompts, g)))
}

/// The loop of [`generate_batch`].
fn decode_batch(model: &Model, prompts: &[Vec<u32>], g: &Generation) -> Vec<Vec<u32>> {
    let context = model.context();
    let mut seqs: Vec<Sequence> = prompts
        .iter()
        .enumerate()
        .map(|(i, prompt)| {
            let mut state = model.start_decoding();
            state.reserve((prompt.len() + g.max_new_tokens).min(context));
            let logits = model.logits_next(&window(prompt, context), &mut state);
            Sequence {
                tokens: prompt.clone(),
                new: vec![],
                rng: Rng::new(g.seed.wrapping_add(i as u64)),
                state,
                logits: logits.value().to_vec::<f32>(),
                done: false,
            }
        })
        .collect();
    for step in 0..g.max_new_tokens {
        // Each sequence draws with its own generator, so drawing them in parallel changes
        // nothing but the time.
        seqs.par_iter_mut().filter(|s| !s.done).for_each(|s| {
            let next = sample(g.drawable(&s.logits), &g.sampling, &mut s.rng);
            s.tokens.push(next);
            s.new.push(next);
            s.done = Some(next) == g.stop_token;
        });
        if step + 1 == g.max_new_tokens {
            break;
        }
        let (mut batch, full): (Vec<&mut Sequence>, Vec<&mut Sequence>) = seqs
            .iter_mut()
            .filter(|s| !s.done)
            .partition(|s| s.state.len() < context);
        for s in full {
            s.state = model.start_decoding();
            s.logits = model
                .logits_next(&window(&s.tokens, context), &mut s.state)
                .value()
                .to_vec::<f32>();
        }
        if batch.is_empty() {
            continue;
        }
        let ids: Vec<u32> = batch.iter().map(|s| s.new[s.new.len() - 1]).collect();
        let ids = Tensor::from_vec(ids, &[batch.len(), 1]);
        let mut states: Vec<&mut DecodeState> = batch.iter_mut().map(|s| &mut s.state).collect();
        let rows = model
            .logits_next_ragged(&ids, &mut states)
            .value()
            .to_vec::<f32>();
        let width = rows.len() / batch.len();
        for (s, row) in batch.iter_mut().zip(rows.chunks(width)) {
            s.logits = row.to_vec();
        }
    }
    seqs.into_iter().map(|s| s.new).collect()
}

/// One sequence of [`generate_batch`].
struct Sequence {
    /// Prompt and generated tokens.
    tokens: Vec<u32>,
    /// The generated tokens.
    new: Vec<u32>,
    rng: Rng,
    state: DecodeState,
    /// Logits of the next token.
    logits: Vec<f32>,
    /// True after the stop token.
    done: bool,
}

/// Generation without a cache: every step runs the model on the last `context` tokens. The
/// plain reference the cached loop is tested against.
pub fn generate_uncached(model: &Model, prompt: &[u32], g: &Generation) -> Vec<u32> {
    no_grad(|| {
        let mut rng = Rng::new(g.seed);
        let mut tokens = prompt.to_vec();
        let mut out = vec![];
        for _ in 0..g.max_new_tokens {
            let logits = model.logits(&window(&tokens, model.context()));
            let t = logits.dim(1);
            let last = logits.value().narrow(1, t - 1, 1).to_vec::<f32>();
            let next = sample(g.drawable(&last), &g.sampling, &mut rng);
            tokens.push(next);
            out.push(next);
            if Some(next) == g.stop_token {
                break;
            }
        }
        out
    })
}

/// Turns token bytes into text as they arrive: a character whose bytes are split across tokens
/// is held back until it is whole; bytes that can never form a character become U+FFFD.
#[derive(Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds bytes and returns the text that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(
                        std::str::from_utf8(&self.pending[..valid]).expect("checked valid"),
                    );
                    match e.error_len() {
                        // Incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Whatever is still held back, as lossy text.
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_stream_holds_split_characters_back() {
        let bytes = "añ€😀".as_bytes();
        let mut s = Utf8Stream::default();
        let mut out = String::new();
        for b in bytes {
            out.push_str(&s.push(&[*b]));
        }
        assert_eq!(out, "añ€😀");
        assert_eq!(s.push(&[0xff, b'x']), "\u{fffd}x");
        assert_eq!(s.push(&[0xe2, 0x82]), "");
        assert_eq!(s.finish(), "\u{fffd}");
    }

    #[test]
    fn a_vocabulary_limit_keeps_draws_below_it() {
        let g = Generation {
            max_new_tokens: 1,
            sampling: Sampling::GREEDY,
            stop_token: None,
            seed: 0,
            vocab_limit: Some(3),
        };
        let logits = [0.5, 1.0, 0.2, 9.0, 8.0];
        assert_eq!(g.drawable(&logits), &logits[..3]);
        assert_eq!(
            sample(g.drawable(&logits), &g.sampling, &mut Rng::new(0)),
            1
        );
        let unlimited = Generation {
            vocab_limit: None,
            ..g
        };
        assert_eq!(unlimited.drawable(&logits).len(), 5);
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut rng = Rng::new(0);
        assert_eq!(
            sample(&[0.1, 2.0, 2.0, -1.0], &Sampling::GREEDY, &mut rng),
            1
        );
    }

    #[test]
    fn top_k_and_top_p_restrict_the_candidates() {
        let logits = [3.0f32, 2.9, 0.0, -1.0, 2.8];
        let mut rng = Rng::new(1);
        let k2 = Sampling {
            temperature: 1.0,
            top_k: Some(2),
            top_p: None,
        };
        let seen: std::collections::BTreeSet<u32> =
            (0..500).map(|_| sample(&logits, &k2, &mut rng)).collect();
        assert_eq!(seen, [0, 1].into_iter().collect());
        let p = Sampling {
            temperature: 1.0,
            top_k: None,
            top_p: Some(0.5),
        };
        let seen: std::collections::BTreeSet<u32> =
            (0..500).map(|_| sample(&logits, &p, &mut rng)).collect();
        assert_eq!(
            seen,
            [0, 1].into_iter().collect(),
            "0.5 of the mass needs the top two tokens"
        );
    }

    #[test]
    fn the_draw_by_selection_picks_what_the_sorted_draw_picks() {
        let plain = Sampling {
            temperature: 0.7,
            top_k: None,
            top_p: None,
        };
        let mut logits_rng = Rng::new(5);
        for n in [1, 2, 7, 65, 2048] {
            for peak in [0.1, 3.0, 30.0] {
                let mut logits: Vec<f32> = (0..n)
                    .map(|_| (logits_rng.normal() * peak) as f32)
                    .collect();
                if n > 3 {
                    logits[3] = logits[1]; // a tie, broken by id
                }
                for seed in 0..50 {
                    let selected = sample(&logits, &plain, &mut Rng::new(seed));
                    let sorted = sample_sorted(&logits, &plain, &mut Rng::new(seed));
                    assert_eq!(selected, sorted, "n {n}, peak {peak}, seed {seed}");
                }
            }
        }
    }

    #[test]
    fn temperature_sampling_follows_the_softmax() {
        let logits = [0.0f32, (3.0f32).ln()]; // probabilities 1/4 and 3/4
        let s = Sampling {
            temperature: 1.0,
            top_k: None,
            top_p: None,
        };
        let mut rng = Rng::new(2);
        let ones = (0..20_000)
            .filter(|_| sample(&logits, &s, &mut rng) == 1)
            .count() as f64
            / 20_000.0;
        assert!((ones - 0.75).abs() < 0.015, "{ones}");
    }
}
