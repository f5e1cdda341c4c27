//! Packing: copying a block of an operand into the order the micro-kernel reads it.
//!
//! A block of `A (mc, kc)` becomes `ceil(mc / MR)` panels of `MR` rows; a panel stores, for
//! each `p` in `0..kc`, the `MR` values `A[i][p]` of its rows side by side:
//!
//! ```text
//!   A block (rows i, depth p)          packed: panel 0, then panel 1, ...
//!   a00 a01 a02 ..                     a00 a10 a20 .. a(MR-1)0 | a01 a11 a21 .. | a02 ..
//!   a10 a11 a12 ..                     \______ p = 0 ________/   \__ p = 1 __/
//!   a20 a21 a22 ..
//! ```
//!
//! A block of `B (kc, nc)` is the same thing for `B^T`: `ceil(nc / NR)` panels of `NR` columns,
//! each storing, for each `p`, the `NR` values `B[p][j]` of its columns side by side. So one
//! routine, [`pack`], packs both: A as it is, B through a transposed view.
//!
//! Sources may have any strides (row-major, transposed views, padded rows), which is why GEMM
//! needs no `contiguous()` copy first. The last panel is padded with zeros up to the full
//! width, so the micro-kernel always runs full-size and never reads past the buffer.

/// A read-only strided matrix: element `(i, j)` lives at `ptr + i * rs + j * cs`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef {
    /// Address of element `(0, 0)`.
    pub ptr: *const f32,
    /// Row stride, in elements.
    pub rs: isize,
    /// Column stride, in elements.
    pub cs: isize,
}

impl MatRef {
    /// The same matrix with rows and columns swapped (no data moves).
    pub fn t(self) -> MatRef {
        MatRef {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// The sub-matrix starting at `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` must be an element of the matrix (or one past its last row or column), so the
    /// offset stays inside the allocation behind `ptr`.
    pub unsafe fn at(self, i: usize, j: usize) -> MatRef {
        MatRef {
            // SAFETY: forwarded from this function's contract.
            ptr: unsafe {
                self.ptr
                    .offset(i as isize * self.rs)
                    .offset(j as isize * self.cs)
            },
            ..self
        }
    }
}

/// Packs rows `0..rows` and columns `0..depth` of `src` into panels of `W` rows (see the
/// module docs): `out[panel * W * depth + p * W + i] = src[panel * W + i][p]`, zero past `rows`.
///
/// # Safety
/// Every element `(i, p)` with `i < rows`, `p < depth` of `src` must be readable.
#[inline(always)]
pub unsafe fn pack<const W: usize>(src: MatRef, rows: usize, depth: usize, out: &mut [f32]) {
    // SAFETY: forwarded from this function's contract.
    unsafe { pack_with::<W>(src, rows, depth, out, transpose::<W>) }
}

/// Packs a panel from `h <= W` rows that are each contiguous over `p` (`src.cs == 1`):
/// `panel[p * W + i] = src[i][p]` for `i < h`, `p < depth`.
///
/// # Safety
/// Rows `0..h` of `src` must each have `depth` readable contiguous elements.
pub type Transpose = unsafe fn(src: MatRef, h: usize, depth: usize, panel: &mut [f32]);

/// [`pack`], with `transpose` doing the panels whose source rows are contiguous: there the
/// packing is a transpose, which vector shuffles do much faster than scalar moves.
///
/// # Safety
/// As [`pack`]; and `transpose` must be safe to call on this CPU.
#[inline(always)]
pub unsafe fn pack_with<const W: usize>(
    src: MatRef,
    rows: usize,
    depth: usize,
    out: &mut [f32],
    transpose: Transpose,
) {
    let panels = rows.div_ceil(W);
    assert!(out.len() >= panels * W * depth, "pack: buffer too small");
    for (panel, out) in out.chunks_exact_mut(W * depth).take(panels).enumerate() {
        let r0 = panel * W;
        let h = W.min(rows - r0);
        // SAFETY: rows `r0..r0 + h` are in `0..rows`, as the contract requires.
        let s = unsafe { src.at(r0, 0) };
        if s.cs == 1 {
            // SAFETY: each of the `h` rows has `depth` contiguous readable elements.
            unsafe { transpose(s, h, depth, out) };
        } else if s.rs == 1 {
            // Each source column is contiguous over `i`: one copy per `p` (of a constant
            // length for whole panels, which compiles to a few vector moves).
            for (p, dst) in out.chunks_exact_mut(W).enumerate() {
                // SAFETY: column `p` has `h` contiguous readable elements from row `r0`.
                let col = unsafe { std::slice::from_raw_parts(s.ptr.offset(p as isize * s.cs), h) };
                if h == W {
                    dst.copy_from_slice(&col[..W]);
                } else {
                    dst[..h].copy_from_slice(col);
                }
            }
        } else {
            for (p, dst) in out.chunks_exact_mut(W).enumerate() {
                for (i, d) in dst[..h].iter_mut().enumerate() {
                    // SAFETY: `(r0 + i, p)` is an element of the source.
                    *d = unsafe { *s.at(i, p).ptr };
                }
            }
        }
        if h < W {
            for dst in out.chunks_exact_mut(W) {
                dst[h..].fill(0.0);
            }
        }
    }
}

/// The plain [`Transpose`]: one element at a time.
unsafe fn transpose<const W: usize>(src: MatRef, h: usize, depth: usize, panel: &mut [f32]) {
    for i in 0..h {
        // SAFETY: row `i` has `depth` contiguous readable elements (the caller's contract).
        let row = unsafe { std::slice::from_raw_parts(src.ptr.offset(i as isize * src.rs), depth) };
        for (p, &v) in row.iter().enumerate() {
            panel[p * W + i] = v;
        }
    }
}
