//! One row times a matrix: `c = alpha a B + beta c` with `a (1,k)`, `B (k,n)`, `c (1,n)`, the
//! products of decoding one token at a time.
//!
//! The packed GEMM copies B into panels so that each element, once in cache, serves `m` rows
//! of A. With one row each element of B is used once, so the copy only doubles the memory
//! traffic of a product that memory already limits. This reads B where it lies:
//!
//! - columns of B contiguous (`B[p][j]` at `p + j cs`; a linear layer's weight `W (n,k)` read
//!   as `W^T`): `c[j] = alpha dot(a, B[.][j]) + beta c[j]`, one dot product per output;
//! - rows of B contiguous (`B[p][j]` at `p rs + j`): `c = alpha sum_p a[p] B[p][.] + beta c`,
//!   one scaled row added per step of `p`.
//!
//! Other layouts go to the packed GEMM. Large products split the columns of `c` between
//! threads. The sums run in another order than the packed kernels', so the two agree to
//! rounding, not bit for bit.

use super::{num_threads, Product, Threads, PARALLEL_FLOPS};
use crate::cpu::parallel::par_for_each;
use crate::cpu::{lanes, simd};
use multiversion::multiversion;
use std::ops::Range;

/// Columns of `c` per task at least, so a task's share of B is worth a thread's wake-up.
const MIN_COLUMNS: usize = 64;

/// Whether [`gemv`] computes this product: one row of A, and B contiguous along one of its
/// dims.
pub fn applies(p: &Product) -> bool {
    p.m == 1 && p.k > 0 && p.alpha != 0.0 && (p.b.rs == 1 || p.b.cs == 1)
}

/// The product of a one-row A (see the module docs).
///
/// # Safety
/// As [`super::sgemm_raw`], and [`applies`] must hold.
pub unsafe fn gemv(p: Product, threads: Threads) {
    debug_assert!(applies(&p));
    // SAFETY: the contract puts A's `k` elements in bounds.
    let a: Vec<f32> = (0..p.k)
        .map(|i| unsafe { *p.a.ptr.offset(i as isize * p.a.cs) })
        .collect();
    let tasks = match threads {
        Threads::Auto if 2 * p.k * p.n >= PARALLEL_FLOPS => {
            num_threads().min(p.n.div_ceil(MIN_COLUMNS))
        }
        _ => 1,
    };
    let width = p.n.div_ceil(tasks);
    let columns = (0..p.n).step_by(width).map(|j0| j0..(j0 + width).min(p.n));
    // SAFETY: forwarded from this function's contract; tasks get disjoint column ranges.
    par_for_each(columns, |cols| unsafe { columns_of(&p, &a, cols) });
}

/// Rows of A shorter than this take four columns of B per pass ([`dots`]); longer ones one.
/// A short dot product spends as much on reducing its partial sums as on its multiplies, which
/// four at a time share; a long one is limited by reading B, which is fastest in one stream
/// (measured: with four interleaved columns for every row length, a stories15M-shaped Llama,
/// rows of 288 and 768, decoded 1.6x slower).
const SHORT_ROW: usize = 256;

/// `sums[i] = a . column(cols.start + i)`, each sum with the bits of [`simd::dot`]: for short
/// rows four columns per pass over `a`. One function per instruction set, so the dot products
/// inline.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
fn dots<'b>(a: &[f32], cols: Range<usize>, column: &dyn Fn(usize) -> &'b [f32], sums: &mut [f32]) {
    let mut j = cols.start;
    let group = if a.len() < SHORT_ROW { 4 } else { 1 };
    for quad in sums.chunks_mut(group) {
        if let [s0, s1, s2, s3] = quad {
            [*s0, *s1, *s2, *s3] =
                lanes::dot4(a, [column(j), column(j + 1), column(j + 2), column(j + 3)]);
        } else {
            for (i, s) in quad.iter_mut().enumerate() {
                *s = lanes::dot(a, column(j + i));
            }
        }
        j += quad.len();
    }
}

/// Columns `cols` of the product, `a` being A's row.
///
/// # Safety
/// As [`gemv`]; and nothing else may access these columns of C during the call.
unsafe fn columns_of(p: &Product, a: &[f32], cols: Range<usize>) {
    let mut sums = vec![0.0f32; cols.len()];
    if p.b.rs == 1 {
        // SAFETY: column `j < n` of B has `k` contiguous elements in bounds.
        let column = |j: usize| unsafe {
            std::slice::from_raw_parts(p.b.ptr.offset(j as isize * p.b.cs), p.k)
        };
        dots(a, cols.clone(), &column, &mut sums);
    } else {
        for (i, &ai) in a.iter().enumerate() {
            // SAFETY: row `i < k` of B has `n` contiguous elements in bounds, of which
            // this task reads its columns.
            let row = unsafe {
                std::slice::from_raw_parts(
                    p.b.ptr.offset(i as isize * p.b.rs).add(cols.start),
                    cols.len(),
                )
            };
            simd::axpy(ai, row, &mut sums);
        }
    }
    for (j, s) in cols.zip(sums) {
        // SAFETY: `c`'s first row has `n` elements (the contract) and this task owns column
        // `j`. Through a pointer, not a slice: with beta zero, C may be uninitialized, and it
        // is written without being read.
        unsafe {
            let cj = p.c.ptr.add(j);
            let old = if p.beta == 0.0 {
                0.0
            } else {
                p.beta * cj.read()
            };
            cj.write(p.alpha * s + old);
        }
    }
}
