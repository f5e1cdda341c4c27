//! The AVX-512 micro-kernel: an `8 x 32` tile of C in 16 of the 32 `zmm` registers.
//!
//! Register layout, for each step `p` of the depth loop:
//!
//! ```text
//!                 b0 = B[p][0..16]   b1 = B[p][16..32]     two loads from the packed B panel
//!   A[0][p]  ->   c[0][0]            c[0][1]
//!   A[1][p]  ->   c[1][0]            c[1][1]               c[i][h] += broadcast(A[i][p]) * bh
//!     ..            ..                 ..                  (16 FMAs, 8 broadcasts)
//!   A[7][p]  ->   c[7][0]            c[7][1]
//! ```
//!
//! 16 independent accumulators cover the FMA latency (4 cycles) times its throughput (one 512-bit
//! FMA a cycle on AMD Zen 4, two on Intel server cores). Taller tiles (12 or 14 rows) measured
//! no faster on Zen 4, and 8 rows divide the usual sizes (128, 768, 4096) into whole tiles and
//! halves between threads. Partial tiles at the right edge are stored through lane masks; rows
//! past the edge are not stored at all.

use super::kernel::{Kernel, Tile, KC};
use super::pack::{pack_with, MatRef};
use super::pack_avx2::transpose;
use std::arch::x86_64::*;

const MR: usize = 8;
const NR: usize = 32;

/// The AVX-512 kernel: `8 x 32` tiles; available when the CPU has AVX-512F.
pub const KERNEL: Kernel = Kernel {
    name: "avx512 8x32",
    mr: MR,
    nr: NR,
    mc: 192,
    kc: KC,
    nc: 3072,
    micro,
    pack_a,
    pack_b,
    available: || is_x86_feature_detected!("avx512f"),
};

/// The lane mask of the first `n` of 16 lanes.
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        (1u16 << n) - 1
    }
}

/// See [`super::kernel::MicroKernel`].
#[target_feature(enable = "avx512f")]
unsafe fn micro(a: &[f32], b: &[f32], tile: &Tile) {
    let mut c = [[_mm512_setzero_ps(); 2]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        // SAFETY: `bp` holds NR = 32 floats, two unaligned 16-lane loads.
        let (b0, b1) = unsafe {
            (
                _mm512_loadu_ps(bp.as_ptr()),
                _mm512_loadu_ps(bp[16..].as_ptr()),
            )
        };
        for (ci, &ai) in c.iter_mut().zip(ap) {
            let ai = _mm512_set1_ps(ai);
            ci[0] = _mm512_fmadd_ps(ai, b0, ci[0]);
            ci[1] = _mm512_fmadd_ps(ai, b1, ci[1]);
        }
    }
    let (alpha, beta) = (_mm512_set1_ps(tile.alpha), _mm512_set1_ps(tile.beta));
    let masks = [lanes(tile.cols), lanes(tile.cols.saturating_sub(16))];
    // A loop of constant length with a guard (rather than `take(rows)`), so that it unrolls
    // and the accumulators stay in registers.
    for (i, ci) in c.iter().enumerate() {
        if i >= tile.rows {
            break;
        }
        for ((&v, &mask), h) in ci.iter().zip(&masks).zip([0, 16]) {
            if mask == 0 {
                continue;
            }
            // SAFETY: lanes `h..h + 16` of row `i` that `mask` selects are columns below
            // `tile.cols` of a row below `tile.rows`, which the caller lets us read and write;
            // masked-off lanes are not accessed (AVX-512 suppresses their faults).
            unsafe {
                let p = tile.c.offset(i as isize * tile.rsc).add(h);
                let mut r = _mm512_mul_ps(alpha, v);
                if tile.beta != 0.0 {
                    r = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(mask, p), r);
                }
                _mm512_mask_storeu_ps(p, mask, r);
            }
        }
    }
}

/// See [`super::kernel::Packer`].
#[target_feature(enable = "avx512f")]
unsafe fn pack_a(src: MatRef, rows: usize, depth: usize, out: &mut [f32]) {
    // SAFETY: forwarded from this function's contract.
    unsafe { pack_with::<MR>(src, rows, depth, out, transpose::<MR>) }
}

/// See [`super::kernel::Packer`].
#[target_feature(enable = "avx512f")]
unsafe fn pack_b(src: MatRef, rows: usize, depth: usize, out: &mut [f32]) {
    // SAFETY: forwarded from this function's contract.
    unsafe { pack_with::<NR>(src, rows, depth, out, transpose::<NR>) }
}
