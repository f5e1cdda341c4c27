//! Differentiable ops on [`crate::Var`]. Each file holds a family's forward (a method on
//! `Var`) and backward rules side by side; each rule's comment quotes the forward it
//! differentiates.

pub mod attention;
pub mod cross_entropy;
pub mod dropout;
pub mod elementwise;
pub mod index;
pub mod layer_norm;
pub mod matmul;
pub mod reduce;
pub mod rms_norm;
pub mod rope;
pub mod view;

use tensor::Tensor;

/// Sums a broadcast gradient back to `shape`: over the leading dims broadcasting added, and
/// over the dims where `shape` has size 1 (the reverse of numpy broadcasting).
pub fn sum_to_shape(g: &Tensor, shape: &[usize]) -> Tensor {
    if g.shape() == shape {
        return g.clone();
    }
    let lead = g.rank() - shape.len();
    let mut dims: Vec<isize> = (0..lead as isize).collect();
    for (i, &s) in shape.iter().enumerate() {
        if s == 1 && g.shape()[lead + i] != 1 {
            dims.push((lead + i) as isize);
        }
    }
    let summed = if dims.is_empty() {
        g.clone()
    } else {
        g.sum(&dims, true)
    };
    summed.reshape(shape)
}
