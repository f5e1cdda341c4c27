//! The plain GEMM that every fast path is tested against.

use crate::cpu::matmul::Mat;
use crate::dtype::Float;

/// `C = alpha A B + beta C`, the triple loop, summing over `p` in order.
///
/// `A (m,k)`, `B (k,n)` are strided views; `C (m,n)` is row-major with row stride `rsc`. With
/// `beta == 0` the old contents of `C` are not read (NaN there does not leak into the result).
#[allow(clippy::too_many_arguments)]
pub fn gemm_reference<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: Mat<T>,
    b: Mat<T>,
    beta: T,
    c: &mut [T],
    rsc: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::ZERO;
            for p in 0..k {
                acc += a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs];
            }
            let old = &mut c[i * rsc + j];
            *old = if beta == T::ZERO {
                alpha * acc
            } else {
                alpha * acc + beta * *old
            };
        }
    }
}
