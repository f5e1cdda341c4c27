//! Embedding table: `ids (...) -> (..., C)`, row `id` of a `(V, C)` table per position.

use crate::init;
use crate::module::{join, Module};
use autograd::Var;
use tensor::{Rng, Tensor};

/// A `(num, dim)` lookup table.
pub struct Embedding {
    /// The table, `(num, dim)`: row `i` is the vector of id `i`.
    pub weight: Var,
}

impl Embedding {
    /// Rows from `N(0, std)`.
    pub fn new(num: usize, dim: usize, std: f64, rng: &mut Rng) -> Embedding {
        Embedding {
            weight: init::normal(&[num, dim], std, rng),
        }
    }

    /// Looks up `ids` (a `u32`/`i64` tensor of any shape).
    pub fn lookup(&self, ids: &Tensor) -> Var {
        self.weight.embedding(ids)
    }
}

impl Module for Embedding {
    /// `x` holds the ids.
    fn forward(&self, x: &Var) -> Var {
        self.lookup(&x.value())
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        f(&join(prefix, "weight"), &self.weight);
    }
}
