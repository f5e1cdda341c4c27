//! The bigram model: a `V x V` table whose row for the current token holds the logits of the
//! next one. The smallest model that learns anything, and a baseline for the others.

use autograd::Var;
use nn::{Embedding, Module};
use tensor::{Rng, Tensor};

/// Next-token logits from the current token alone.
pub struct Bigram {
    /// The `(V, V)` table: row `i` holds the next-token logits after token `i`.
    pub table: Embedding,
}

impl Bigram {
    /// A table of `vocab_size x vocab_size` logits drawn from `N(0, 0.02^2)`
    /// ([`nn::init::GPT2_STD`]).
    pub fn new(vocab_size: usize, rng: &mut Rng) -> Bigram {
        Bigram {
            table: Embedding::new(vocab_size, vocab_size, nn::init::GPT2_STD, rng),
        }
    }

    /// Logits `(B, T, V)` for `ids (B, T)`, which may live on any device (they are copied to
    /// the model's).
    pub fn logits(&self, ids: &Tensor) -> Var {
        self.table
            .lookup(&ids.to_device(self.table.weight.device()))
    }
}

impl Module for Bigram {
    fn forward(&self, x: &Var) -> Var {
        self.logits(&x.value())
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        self.table
            .visit_params(&nn::module::join(prefix, "table"), f);
    }
}
