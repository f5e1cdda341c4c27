//! The portable micro-kernel: plain Rust that compiles on any target.
//!
//! A `4 x 8` tile of accumulators (32 floats: eight SSE2 registers, or NEON's), updated by
//! rank-1 products `acc[i][j] += a[i] * b[j]`; the compiler vectorizes the loop over `j`. It
//! is the fallback on CPUs without AVX2 and the baseline the other kernels are tested beside.

use super::kernel::{Kernel, Tile, KC};
use super::pack::{pack, MatRef};

const MR: usize = 4;
const NR: usize = 8;

/// The portable kernel: `4 x 8` tiles; available on every CPU.
pub const KERNEL: Kernel = Kernel {
    name: "generic 4x8",
    mr: MR,
    nr: NR,
    mc: 128,
    kc: KC,
    nc: 2048,
    micro,
    pack_a,
    pack_b,
    available: || true,
};

/// See [`super::kernel::MicroKernel`].
unsafe fn micro(a: &[f32], b: &[f32], tile: &Tile) {
    let mut acc = [[0.0f32; NR]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for (row, &ai) in acc.iter_mut().zip(ap) {
            for (c, &bj) in row.iter_mut().zip(bp) {
                *c += ai * bj;
            }
        }
    }
    for (i, row) in acc.iter().enumerate().take(tile.rows) {
        // SAFETY: the caller guarantees that row `i < rows` of the tile holds `cols` valid,
        // exclusively ours elements.
        let c = unsafe {
            std::slice::from_raw_parts_mut(tile.c.offset(i as isize * tile.rsc), tile.cols)
        };
        for (c, &v) in c.iter_mut().zip(row) {
            *c = if tile.beta == 0.0 {
                tile.alpha * v
            } else {
                tile.alpha * v + tile.beta * *c
            };
        }
    }
}

/// See [`super::kernel::Packer`].
unsafe fn pack_a(src: MatRef, rows: usize, depth: usize, out: &mut [f32]) {
    // SAFETY: forwarded from this function's contract.
    unsafe { pack::<MR>(src, rows, depth, out) }
}

/// See [`super::kernel::Packer`].
unsafe fn pack_b(src: MatRef, rows: usize, depth: usize, out: &mut [f32]) {
    // SAFETY: forwarded from this function's contract.
    unsafe { pack::<NR>(src, rows, depth, out) }
}
