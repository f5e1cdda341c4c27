//! Indexing ops and their gradients: the adjoint of picking entries is adding gradients back
//! into the picked places (repeated indices accumulate), and `where` routes each gradient
//! element to the operand it came from.

use super::sum_to_shape;
use crate::op::{Backward, Op};
use crate::var::Var;
use tensor::Tensor;

/// y = x.index_select(dim, ids): `dx = zeros.index_add(dim, ids, dy)`.
struct IndexSelectRule {
    dim: isize,
    ids: Tensor,
    size: usize,
}

impl Backward for IndexSelectRule {
    fn op(&self) -> Op {
        Op::IndexSelect
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        vec![Some(g.index_add(self.dim, &self.ids, self.size))]
    }
}

/// y = table.embedding(ids), table `(V, C)`: each table row gets the sum of the gradients of
/// the positions that looked it up.
struct EmbeddingRule {
    ids: Tensor,
    vocab: usize,
}

impl Backward for EmbeddingRule {
    fn op(&self) -> Op {
        Op::Embedding
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let c = *g
            .shape()
            .last()
            .expect("embedding gradient has a channel dim");
        let rows = g.reshape(&[self.ids.numel(), c]);
        vec![Some(rows.index_add(0, &self.ids.flatten_all(), self.vocab))]
    }
}

/// y = x.gather(dim, idx): `dx = zeros.scatter_add(dim, idx, dy)`.
struct GatherRule {
    dim: isize,
    idx: Tensor,
    input_shape: Vec<usize>,
}

impl Backward for GatherRule {
    fn op(&self) -> Op {
        Op::Gather
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        vec![Some(g.scatter_add(self.dim, &self.idx, &self.input_shape))]
    }
}

/// y = where(mask, a, b): `da = where(mask, dy, 0)`, `db = where(mask, 0, dy)`, each summed
/// back to its operand's shape.
struct WhereRule {
    mask: Tensor,
    a_shape: Vec<usize>,
    b_shape: Vec<usize>,
}

impl Backward for WhereRule {
    fn op(&self) -> Op {
        Op::Where
    }
    fn backward(&self, g: &Tensor) -> Vec<Option<Tensor>> {
        let zero = g.scalar_like(0.0);
        let ga = Tensor::where_cond(&self.mask, g, &zero);
        let gb = Tensor::where_cond(&self.mask, &zero, g);
        vec![
            Some(sum_to_shape(&ga, &self.a_shape)),
            Some(sum_to_shape(&gb, &self.b_shape)),
        ]
    }
}

impl Var {
    /// Entries `ids` (1-D `u32`/`i64`) along `dim`.
    #[track_caller]
    pub fn index_select(&self, dim: isize, ids: &Tensor) -> Var {
        let x = self.value();
        let y = x.index_select(dim, ids);
        let size = x.dim(dim);
        let ids = ids.clone();
        Var::from_op(y, &[self], || IndexSelectRule { dim, ids, size })
    }

    /// Rows of this `(V, C)` table at `ids` (any shape) -> `(*ids, C)`.
    #[track_caller]
    pub fn embedding(&self, ids: &Tensor) -> Var {
        let table = self.value();
        let y = table.embedding(ids);
        let (ids, vocab) = (ids.clone(), table.shape()[0]);
        Var::from_op(y, &[self], || EmbeddingRule { ids, vocab })
    }

    /// `y[p] = x[p with p[dim] = idx[p]]`.
    #[track_caller]
    pub fn gather(&self, dim: isize, idx: &Tensor) -> Var {
        let x = self.value();
        let y = x.gather(dim, idx);
        let (idx, input_shape) = (idx.clone(), x.shape().to_vec());
        Var::from_op(y, &[self], || GatherRule {
            dim,
            idx,
            input_shape,
        })
    }

    /// `mask ? on_true : on_false` with broadcasting (`mask` is a `u8` tensor).
    #[track_caller]
    pub fn where_cond(mask: &Tensor, on_true: &Var, on_false: &Var) -> Var {
        let (a, b) = (on_true.value(), on_false.value());
        let y = Tensor::where_cond(mask, &a, &b);
        let (mask, a_shape, b_shape) = (mask.clone(), a.shape().to_vec(), b.shape().to_vec());
        Var::from_op(y, &[on_true, on_false], || WhereRule {
            mask,
            a_shape,
            b_shape,
        })
    }

    /// `value` where `mask` is 1, else this var's element.
    #[track_caller]
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Var {
        let fill = Var::constant(self.value().scalar_like(value));
        Var::where_cond(mask, &fill, self)
    }
}
