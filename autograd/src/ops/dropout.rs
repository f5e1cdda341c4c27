//! Dropout: `y = x * mask`, where the mask holds `1/(1-p)` with probability `1-p` and 0
//! otherwise (drawn from the caller's seeded generator). The backward multiplies by the same
//! mask, which is all the rule keeps.

use crate::op::{Backward, Op};
use crate::var::Var;
use tensor::{Rng, Tensor};

struct DropoutRule {
    mask: Tensor,
}

impl Backward for DropoutRule {
    fn op(&self) -> Op {
        Op::Dropout
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        vec![Some(g.mul(&self.mask))]
    }
}

impl Var {
    /// Zeroes each element with probability `p` and scales the rest by `1/(1-p)`. With
    /// `p == 0` it returns this var unchanged (and draws nothing from `rng`).
    #[track_caller]
    pub fn dropout(&self, p: f64, rng: &mut Rng) -> Var {
        if p == 0.0 {
            return self.clone();
        }
        let x = self.value();
        let mask = Tensor::dropout_mask(x.shape(), p, x.dtype(), rng).to_device(x.device());
        let y = x.mul(&mask);
        Var::from_op(y, &[self], || DropoutRule { mask })
    }
}
