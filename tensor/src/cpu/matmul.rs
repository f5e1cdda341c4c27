//! Batched matrix multiply with broadcast batch dims and arbitrary strides.
//!
//! `C[b] (M,N) = A[b] (M,K) @ B[b] (K,N)`, `C[b][i][j] = sum_k A[b][i][k] B[b][k][j]`, for every
//! batch index `b` of the (already broadcast) batch dims. Operands may have any strides, so a
//! transposed view multiplies without a copy and a broadcast batch dim (stride 0) reuses one
//! matrix. The product itself is a packed, vectorized GEMM: our own for f32 ([`super::gemm`],
//! which also spreads one large product over threads), `matrixmultiply`'s for f64. This file
//! adds the batching and the threading: batches run on separate threads, and when there are
//! fewer batches than threads an f64 product's rows are split too.

use super::gemm;
use super::parallel::{num_threads, par_for_each};
use crate::dtype::Float;
use crate::Layout;
use std::mem::MaybeUninit;

/// Element types with a GEMM: `C = alpha A B + beta C` on strided matrices.
pub trait Gemm: Float {
    /// True when `gemm_raw` itself splits a large product across rayon's threads, so callers
    /// should hand it whole.
    const THREADED: bool = false;

    /// With `beta == 0`, `c` is only written, so it may point to uninitialized memory.
    ///
    /// # Safety
    /// Every index `i * rs + j * cs` of each operand (for `i`, `j` within its `m`, `k`, `n`
    /// extents) must be in bounds of the memory behind its pointer, and `c` must not alias `a`
    /// or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

impl Gemm for f32 {
    const THREADED: bool = true;

    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        if csc != 1 {
            // SAFETY: forwarded from this function's contract.
            return unsafe {
                matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
            };
        }
        let view = |ptr, rs, cs| gemm::MatRef { ptr, rs, cs };
        let (a, b) = (view(a, rsa, csa), view(b, rsb, csb));
        let c = gemm::MatMut { ptr: c, rs: rsc };
        // SAFETY: forwarded from this function's contract (C has unit column stride).
        unsafe {
            gemm::sgemm_raw(gemm::Product {
                m,
                k,
                n,
                alpha,
                a,
                b,
                beta,
                c,
            })
        }
    }
}

impl Gemm for f64 {
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    }
}

/// A strided matrix operand: its slice, row stride and column stride.
#[derive(Clone, Copy)]
pub struct Mat<'a, T> {
    /// The elements; element `(i, j)` is `data[i * rs + j * cs]`.
    pub data: &'a [T],
    /// Row stride, in elements.
    pub rs: usize,
    /// Column stride, in elements.
    pub cs: usize,
}

/// True when every element of a `rows x cols` matrix with these strides lies in `len`.
pub(crate) fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// `C (m x n, row stride rsc, unit column stride) = alpha A (m x k) B (k x n) + beta C`, with
/// bounds checked once per call (the inner loops are the packed GEMM's, see [`Gemm`]).
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Gemm>(
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
    assert!(
        fits(a.data.len(), m, k, a.rs, a.cs),
        "gemm: A ({m}x{k}) out of bounds"
    );
    assert!(
        fits(b.data.len(), k, n, b.rs, b.cs),
        "gemm: B ({k}x{n}) out of bounds"
    );
    assert!(
        fits(c.len(), m, n, rsc, 1),
        "gemm: C ({m}x{n}) out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the asserts above put every addressed element of A, B and C in bounds of their
    // slices; C is a `&mut` borrow, so it cannot alias A or B.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            rsc as isize,
            1,
        )
    }
}

/// `C (m x n, row stride rsc) = A (m x k) B (k x n)` into uninitialized memory, which the
/// product only writes (beta = 0); every element of C is initialized when it returns.
fn gemm_uninit<T: Gemm>(
    (m, k, n): (usize, usize, usize),
    a: Mat<T>,
    b: Mat<T>,
    c: &mut [MaybeUninit<T>],
    rsc: usize,
) {
    assert!(fits(a.data.len(), m, k, a.rs, a.cs));
    assert!(fits(b.data.len(), k, n, b.rs, b.cs));
    assert!(fits(c.len(), m, n, rsc, 1));
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the asserts put every addressed element in bounds; C is a `&mut` borrow, so it
    // cannot alias A or B; with beta = 0 the GEMM writes C without reading it.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            T::ONE,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            T::ZERO,
            c.as_mut_ptr().cast(),
            rsc as isize,
            1,
        )
    }
}

/// The row stride of A seen as one `(nb * m, k)` matrix, when its batch dims continue its rows
/// evenly (batch stride = `m` rows, outer batch dims nesting the inner ones; dims of extent 1
/// ignored); `None` otherwise. With `m == 1` the row stride is free, so the innermost batch
/// stride serves (a `(B, 1, C)` view cut out of `(B, T, C)` folds too).
fn folded_rows(al: &Layout, batch: &[usize], m: usize, rsa: usize) -> Option<usize> {
    let strides = &al.strides()[..batch.len()];
    let mut dims = (0..batch.len()).rev().filter(|&d| batch[d] > 1);
    let rs = match m {
        1 => strides[dims.clone().next()?],
        _ => rsa,
    };
    let mut expected = m * rs;
    for d in dims.by_ref() {
        if strides[d] != expected {
            return None;
        }
        expected *= batch[d];
    }
    (rs > 0).then_some(rs)
}

/// Storage offset of batch `index` (row-major over `batch_shape`) in a layout whose leading
/// dims are the batch dims.
fn batch_offset(layout: &Layout, batch_shape: &[usize], mut index: usize) -> usize {
    let mut off = layout.offset();
    for (d, &size) in batch_shape.iter().enumerate().rev() {
        off += (index % size) * layout.strides()[d];
        index /= size;
    }
    off
}

/// The `(M, K, N)` and batch shape of a product; layouts must already share batch dims.
fn dims(al: &Layout, bl: &Layout) -> (usize, usize, usize, Vec<usize>) {
    let (ra, rb) = (al.rank(), bl.rank());
    let (m, k, n) = (al.shape()[ra - 2], al.shape()[ra - 1], bl.shape()[rb - 1]);
    debug_assert_eq!(bl.shape()[rb - 2], k);
    debug_assert_eq!(al.shape()[..ra - 2], bl.shape()[..rb - 2]);
    (m, k, n, al.shape()[..ra - 2].to_vec())
}

/// Plain reference: the triple loop, accumulating in order over `k`.
pub fn matmul_reference<T: Float>(a: &[T], al: &Layout, b: &[T], bl: &Layout) -> Vec<T> {
    let (m, k, n, batch) = dims(al, bl);
    let nb: usize = batch.iter().product();
    let (ra, rb) = (al.rank(), bl.rank());
    let (rsa, csa) = (al.strides()[ra - 2], al.strides()[ra - 1]);
    let (rsb, csb) = (bl.strides()[rb - 2], bl.strides()[rb - 1]);
    let mut c = Vec::with_capacity(nb * m * n);
    for bi in 0..nb {
        let (oa, ob) = (batch_offset(al, &batch, bi), batch_offset(bl, &batch, bi));
        for i in 0..m {
            for j in 0..n {
                let mut acc = T::ZERO;
                for p in 0..k {
                    acc += a[oa + i * rsa + p * csa] * b[ob + p * rsb + j * csb];
                }
                c.push(acc);
            }
        }
    }
    c
}

/// `C = A @ B` over broadcast batch dims; returns contiguous `(batch..., M, N)`.
pub fn matmul<T: Gemm>(a: &[T], al: &Layout, b: &[T], bl: &Layout) -> Vec<T> {
    let (m, k, n, batch) = dims(al, bl);
    let nb: usize = batch.iter().product();
    let len = nb * m * n;
    if len == 0 || k == 0 {
        return vec![T::ZERO; len];
    }
    // The output is written once by the products, so it is not zero-filled first.
    let mut c = Vec::with_capacity(len);
    let (ra, rb) = (al.rank(), bl.rank());
    let (rsa, csa) = (al.strides()[ra - 2], al.strides()[ra - 1]);
    let (rsb, csb) = (bl.strides()[rb - 2], bl.strides()[rb - 1]);
    // A batch of row blocks against one shared B (a linear layer applied to `(B, T, C)`) is
    // one product of `nb * m` rows: B is read once rather than once per batch, and a batch of
    // single rows (decoding several sequences) gets the packed kernel instead of `nb`
    // one-row products.
    if let (true, Some(rs)) = (T::THREADED && nb > 1, folded_rows(al, &batch, m, rsa)) {
        if (0..batch.len()).all(|d| batch[d] == 1 || bl.strides()[d] == 0) {
            let am = Mat {
                data: &a[al.offset()..],
                rs,
                cs: csa,
            };
            let bm = Mat {
                data: &b[bl.offset()..],
                rs: rsb,
                cs: csb,
            };
            gemm_uninit(
                (nb * m, k, n),
                am,
                bm,
                &mut c.spare_capacity_mut()[..len],
                n,
            );
            // SAFETY: the product wrote all `nb * m * n` elements.
            unsafe { c.set_len(len) };
            return c;
        }
    }
    // Split each product's rows when there are fewer batches than threads and enough work.
    let flops = 2 * m * n * k;
    let splits = if T::THREADED || nb >= num_threads() || flops < (1 << 20) {
        1
    } else {
        num_threads().div_ceil(nb).min(m.div_ceil(16))
    };
    let rows_per_task = m.div_ceil(splits);
    let run = |bi: usize, r0: usize, block: &mut [MaybeUninit<T>]| {
        let rows = block.len() / n;
        let oa = batch_offset(al, &batch, bi) + r0 * rsa;
        let ob = batch_offset(bl, &batch, bi);
        let am = Mat {
            data: &a[oa..],
            rs: rsa,
            cs: csa,
        };
        let bm = Mat {
            data: &b[ob..],
            rs: rsb,
            cs: csb,
        };
        gemm_uninit((rows, k, n), am, bm, block, n);
    };
    let out = &mut c.spare_capacity_mut()[..len];
    let serial = flops * nb < (1 << 18) || num_threads() == 1;
    if serial {
        for (bi, cb) in out.chunks_mut(m * n).enumerate() {
            run(bi, 0, cb);
        }
    } else {
        let tasks = out.chunks_mut(m * n).enumerate().flat_map(|(bi, cb)| {
            cb.chunks_mut(rows_per_task * n)
                .enumerate()
                .map(move |(ri, block)| (bi, ri * rows_per_task, block))
        });
        par_for_each(tasks, |(bi, r0, block)| run(bi, r0, block));
    }
    // SAFETY: the products wrote all `len` elements (every row block of every batch).
    unsafe { c.set_len(len) };
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{assert_close, random_vec};

    /// A's and B's layouts: contiguous, transposed storage, or offset, with optional batch.
    fn operand(shape: &[usize], transposed: bool, offset: usize) -> (Layout, usize) {
        let r = shape.len();
        if transposed {
            let mut stored = shape.to_vec();
            stored.swap(r - 2, r - 1);
            let l = Layout::contiguous(&stored).transpose(r - 2, r - 1).unwrap();
            (l, shape.iter().product())
        } else {
            let strides = Layout::contiguous(shape).strides().to_vec();
            (
                Layout::new(shape.to_vec(), strides, offset),
                shape.iter().product::<usize>() + offset,
            )
        }
    }

    #[test]
    fn matches_reference_on_strided_and_batched_operands() {
        let cases: [(&[usize], usize, usize, usize); 6] = [
            (&[], 1, 1, 1),
            (&[], 7, 13, 5),
            (&[3], 17, 9, 33),
            (&[2, 3], 4, 1, 6),
            (&[], 130, 70, 90),
            (&[5], 64, 64, 64),
        ];
        for (batch, m, k, n) in cases {
            let sa: Vec<usize> = batch.iter().cloned().chain([m, k]).collect();
            let sb: Vec<usize> = batch.iter().cloned().chain([k, n]).collect();
            for ta in [false, true] {
                for tb in [false, true] {
                    let (la, na) = operand(&sa, ta, 2);
                    let (lb, nb) = operand(&sb, tb, 1);
                    let a = random_vec::<f64>(na, 1);
                    let b = random_vec::<f64>(nb, 2);
                    let got = matmul(&a, &la, &b, &lb);
                    let want = matmul_reference(&a, &la, &b, &lb);
                    assert_close(
                        &got,
                        &want,
                        1e-12,
                        1e-12,
                        &format!("{sa:?}@{sb:?} {ta} {tb}"),
                    );
                }
            }
        }
    }

    #[test]
    fn broadcast_batch_reuses_one_matrix() {
        // B has a stride-0 batch dim: every batch multiplies by the same matrix.
        let la = Layout::contiguous(&[4, 33, 17]);
        let lb = Layout::contiguous(&[1, 17, 9])
            .broadcast_to(&[4, 17, 9])
            .unwrap();
        let a = random_vec::<f32>(4 * 33 * 17, 3);
        let b = random_vec::<f32>(17 * 9, 4);
        let got = matmul(&a, &la, &b, &lb);
        assert_close(
            &got,
            &matmul_reference(&a, &la, &b, &lb),
            1e-5,
            1e-5,
            "broadcast batch",
        );
    }

    /// Batches of rows against one shared B fold into a single product when A's batch dims
    /// continue its rows; the folded and the unfolded layouts both match the reference.
    #[test]
    fn batched_rows_against_a_shared_matrix_fold_into_one_product() {
        let shared = |batch: &[usize], k, n| {
            let ones: Vec<usize> = batch.iter().map(|_| 1).chain([k, n]).collect();
            let full: Vec<usize> = batch.iter().cloned().chain([k, n]).collect();
            Layout::contiguous(&ones).broadcast_to(&full).unwrap()
        };
        let (k, n) = (19, 21);
        let b = random_vec::<f32>(k * n, 8);
        // (batch, A's layout over a storage of `len` elements, whether it folds).
        let cases: Vec<(Vec<usize>, Layout, usize, bool)> = vec![
            // Contiguous (5, 7, K).
            (vec![5], Layout::contiguous(&[5, 7, k]), 5 * 7 * k, true),
            // Two batch dims, (2, 3, 4, K), at an offset.
            (
                vec![2, 3],
                Layout::new(
                    vec![2, 3, 4, k],
                    Layout::contiguous(&[2, 3, 4, k]).strides().to_vec(),
                    3,
                ),
                2 * 3 * 4 * k + 3,
                true,
            ),
            // One row per batch cut out of (6, 3, K): position 2 of each.
            (
                vec![6],
                Layout::new(vec![6, 1, k], vec![3 * k, k, 1], 2 * k),
                6 * 3 * k,
                true,
            ),
            // Batches that do not continue the rows: (4, 3, K) stored batch-minor.
            (
                vec![4],
                Layout::new(vec![4, 3, k], vec![k, 4 * k, 1], 0),
                4 * 3 * k,
                false,
            ),
        ];
        for (batch, la, len, folds) in cases {
            let m = la.shape()[la.rank() - 2];
            let rsa = la.strides()[la.rank() - 2];
            assert_eq!(folded_rows(&la, &batch, m, rsa).is_some(), folds, "{la:?}");
            let a = random_vec::<f32>(len, 9);
            let lb = shared(&batch, k, n);
            assert_close(
                &matmul(&a, &la, &b, &lb),
                &matmul_reference(&a, &la, &b, &lb),
                1e-5,
                1e-5,
                &format!("{la:?}"),
            );
        }
    }

    #[test]
    fn large_single_product_splits_rows() {
        let (m, k, n) = (517, 129, 263);
        let la = Layout::contiguous(&[m, k]);
        let lb = Layout::contiguous(&[n, k]).transpose(0, 1).unwrap();
        let a = random_vec::<f32>(m * k, 5);
        let b = random_vec::<f32>(n * k, 6);
        let got = matmul(&a, &la, &b, &lb);
        assert_close(
            &got,
            &matmul_reference(&a, &la, &b, &lb),
            1e-4,
            1e-4,
            "split rows",
        );
    }
}
