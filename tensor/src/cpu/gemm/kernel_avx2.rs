//! The AVX2 + FMA micro-kernel: a `6 x 16` tile of C in 12 of the 16 `ymm` registers.
//!
//! Register layout, for each step `p` of the depth loop:
//!
//! ```text
//!                b0 = B[p][0..8]   b1 = B[p][8..16]     two loads from the packed B panel
//!   A[0][p] ->   c[0][0]           c[0][1]
//!     ..           ..                ..                 c[i][h] += broadcast(A[i][p]) * bh
//!   A[5][p] ->   c[5][0]           c[5][1]              (12 FMAs, 6 broadcasts)
//! ```
//!
//! Twelve accumulators, two B registers and one broadcast fill 15 of 16 registers; twelve
//! independent FMAs cover the FMA latency (4 to 5 cycles) at two FMAs a cycle. Partial tiles at
//! the right edge are stored through `vmaskmov`; rows past the edge are not stored at all.

use super::kernel::{Kernel, Tile, KC};
use super::pack::{pack_with, MatRef};
use super::pack_avx2::transpose;
use std::arch::x86_64::*;

const MR: usize = 6;
const NR: usize = 16;

/// The AVX2 + FMA kernel: `6 x 16` tiles; available when the CPU has AVX2 and FMA.
pub const KERNEL: Kernel = Kernel {
    name: "avx2 6x16",
    mr: MR,
    nr: NR,
    mc: 144,
    kc: KC,
    nc: 3072,
    micro,
    pack_a,
    pack_b,
    available: || is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
};

/// The lane mask (all bits set per selected lane) of the first `n` of 8 lanes.
#[target_feature(enable = "avx2")]
fn lanes(n: usize) -> __m256i {
    let n = n.min(8) as i32;
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(n),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// See [`super::kernel::MicroKernel`].
#[target_feature(enable = "avx2,fma")]
unsafe fn micro(a: &[f32], b: &[f32], tile: &Tile) {
    let mut c = [[_mm256_setzero_ps(); 2]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        // SAFETY: `bp` holds NR = 16 floats, two unaligned 8-lane loads.
        let (b0, b1) = unsafe {
            (
                _mm256_loadu_ps(bp.as_ptr()),
                _mm256_loadu_ps(bp[8..].as_ptr()),
            )
        };
        for (ci, &ai) in c.iter_mut().zip(ap) {
            let ai = _mm256_set1_ps(ai);
            ci[0] = _mm256_fmadd_ps(ai, b0, ci[0]);
            ci[1] = _mm256_fmadd_ps(ai, b1, ci[1]);
        }
    }
    let (alpha, beta) = (_mm256_set1_ps(tile.alpha), _mm256_set1_ps(tile.beta));
    let full = tile.cols == NR;
    let masks = [lanes(tile.cols), lanes(tile.cols.saturating_sub(8))];
    for (i, ci) in c.iter().enumerate().take(tile.rows) {
        for ((&v, &mask), h) in ci.iter().zip(&masks).zip([0, 8]) {
            if h >= tile.cols {
                continue;
            }
            // SAFETY: columns `h..h + 8` of row `i` are below `tile.cols` when the tile is full,
            // and otherwise only the lanes `mask` selects (columns below `tile.cols`) are read
            // and written; rows below `tile.rows` are ours to read and write.
            unsafe {
                let p = tile.c.offset(i as isize * tile.rsc).add(h);
                let mut r = _mm256_mul_ps(alpha, v);
                if full {
                    if tile.beta != 0.0 {
                        r = _mm256_fmadd_ps(beta, _mm256_loadu_ps(p), r);
                    }
                    _mm256_storeu_ps(p, r);
                } else {
                    if tile.beta != 0.0 {
                        r = _mm256_fmadd_ps(beta, _mm256_maskload_ps(p, mask), r);
                    }
                    _mm256_maskstore_ps(p, mask, r);
                }
            }
        }
    }
}

/// See [`super::kernel::Packer`].
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a(src: MatRef, rows: usize, depth: usize, out: &mut [f32]) {
    // SAFETY: forwarded from this function's contract.
    unsafe { pack_with::<MR>(src, rows, depth, out, transpose::<MR>) }
}

/// See [`super::kernel::Packer`].
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b(src: MatRef, rows: usize, depth: usize, out: &mut [f32]) {
    // SAFETY: forwarded from this function's contract.
    unsafe { pack_with::<NR>(src, rows, depth, out, transpose::<NR>) }
}
