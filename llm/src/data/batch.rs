//! Batches of examples of different lengths, for fine-tuning.
//!
//! Examples are right-padded to the longest one: example `b` holds its tokens at positions
//! `0..lengths[b]` and the pad id after them. Attention is causal, so no real token sees a pad
//! (see [`crate::model::heads`]); the pads only need to stay out of pooling, which reads
//! `lengths`, and out of the loss, where their targets are [`IGNORE`].
//!
//! For a language-model objective each example also says which of its tokens are scored: the
//! target at position `t` is token `t + 1` when that token is scored, else [`IGNORE`]. Masking a
//! prompt out of the loss means marking its tokens unscored.

use autograd::Var;
use tensor::Tensor;

/// The target of a position left out of the loss (the value PyTorch's loss ignores by default).
pub const IGNORE: i64 = -100;

/// Right-padded examples.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `(B, T)` token ids (`u32`), `T` the longest example's length.
    pub ids: Tensor,
    /// Real tokens of each example, each at least 1.
    pub lengths: Vec<usize>,
    /// `(B, T)` next-token targets (`i64`), [`IGNORE`] where nothing is scored; only for
    /// language-model batches.
    pub targets: Option<Tensor>,
}

impl Batch {
    /// The examples right-padded with `pad`, without targets (for classification).
    ///
    /// # Panics
    /// If there is no example or an example is empty.
    pub fn padded(examples: &[&[u32]], pad: u32) -> Batch {
        assert!(!examples.is_empty(), "a batch needs at least one example");
        assert!(
            examples.iter().all(|e| !e.is_empty()),
            "every example needs at least one token"
        );
        let width = examples.iter().map(|e| e.len()).max().unwrap_or(0);
        let ids: Vec<u32> = examples
            .iter()
            .flat_map(|e| e.iter().copied().chain(std::iter::repeat(pad)).take(width))
            .collect();
        Batch {
            ids: Tensor::from_vec(ids, &[examples.len(), width]),
            lengths: examples.iter().map(|e| e.len()).collect(),
            targets: None,
        }
    }

    /// The examples right-padded with `pad`, with next-token targets: position `t` of an
    /// example targets its token `t + 1` where `scored[t + 1]`, and [`IGNORE`] elsewhere
    /// (padding, the last token, unscored tokens). Each `scored` has its example's length.
    pub fn language(examples: &[(&[u32], &[bool])], pad: u32) -> Batch {
        let tokens: Vec<&[u32]> = examples.iter().map(|e| e.0).collect();
        let mut batch = Batch::padded(&tokens, pad);
        let width = batch.ids.dim(1);
        let mut targets = vec![IGNORE; examples.len() * width];
        for (b, (ids, scored)) in examples.iter().enumerate() {
            assert_eq!(ids.len(), scored.len(), "one scored flag per token");
            for t in 0..ids.len() - 1 {
                if scored[t + 1] {
                    targets[b * width + t] = i64::from(ids[t + 1]);
                }
            }
        }
        batch.targets = Some(Tensor::from_vec(targets, &[examples.len(), width]));
        batch
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// True when the batch holds no example (never, for a batch built here).
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }
}

/// Mean cross-entropy of `logits (..., V)` over the targets that are not [`IGNORE`]; with every
/// target ignored, 0 with a zero gradient (where the plain mean would divide 0 by 0).
pub fn masked_cross_entropy(logits: &Var, targets: &Tensor) -> Var {
    let targets = targets.to_device(logits.device());
    let scored = targets
        .to_device(tensor::Device::Cpu)
        .to_vec::<i64>()
        .iter()
        .any(|&t| t != IGNORE);
    if !scored {
        return logits.sum_all().mul_scalar(0.0);
    }
    logits.cross_entropy(&targets, Some(IGNORE))
}
