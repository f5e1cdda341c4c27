//! Rotary position embeddings as one fused op (see `tensor/src/cpu/rope.rs` for the layout).
//! Each pair of features is multiplied by a rotation matrix `R(a)`; the gradient of the input
//! is `R(a)^T dy = R(-a) dy`, the same kernel turning the other way. The tables are constants.

use crate::op::{Backward, Op};
use crate::var::Var;
use tensor::Tensor;

struct RopeRule {
    cos: Tensor,
    sin: Tensor,
    start: usize,
}

impl Backward for RopeRule {
    fn op(&self) -> Op {
        Op::Rope
    }
    fn backward(&self, dy: &Tensor) -> Vec<Option<Tensor>> {
        let dx = dy
            .try_rope(&self.cos, &self.sin, self.start, true)
            .unwrap_or_else(|e| panic!("{e}"));
        vec![Some(dx)]
    }
}

impl Var {
    /// `self (..., T, HS)` at positions `start..start + T`, each feature pair `(2j, 2j + 1)`
    /// rotated by its angle from the tables `cos, sin (P, HS / 2)`.
    #[track_caller]
    pub fn rope(&self, cos: &Tensor, sin: &Tensor, start: usize) -> Var {
        let y = self
            .value()
            .try_rope(cos, sin, start, false)
            .unwrap_or_else(|e| panic!("{e}"));
        let (cos, sin) = (cos.clone(), sin.clone());
        Var::from_op(y, &[self], || RopeRule { cos, sin, start })
    }
}
