//! The micro-kernel contract, and the choice of micro-kernel for the running CPU.

use super::pack::MatRef;
use std::sync::OnceLock;

/// Where a micro-kernel writes its `MR x NR` product, and how.
///
/// The kernel computes `AB[i][j] = sum_p a[p * MR + i] * b[p * NR + j]` from packed panels and
/// stores `C[i][j] = alpha AB[i][j] + beta C[i][j]` for `i < rows`, `j < cols`, where `C[i][j]`
/// is `c + i * rsc + j`. With `beta == 0` the old `C` is not read.
pub struct Tile {
    /// Address of `C[0][0]`.
    pub c: *mut f32,
    /// Row stride of C, in elements (columns are adjacent).
    pub rsc: isize,
    /// Rows of the tile to store, at most `MR`.
    pub rows: usize,
    /// Columns of the tile to store, at most `NR`.
    pub cols: usize,
    /// Factor on the new product.
    pub alpha: f32,
    /// Factor on the old C (0: C is overwritten without being read).
    pub beta: f32,
}

/// A micro-kernel: `kernel(a, b, tile)` with `a` an `MR x kc` packed A panel (`kc * MR`
/// values) and `b` a `kc x NR` packed B panel (`kc * NR` values).
///
/// # Safety
/// `tile.rows <= MR`, `tile.cols <= NR`, and the `rows x cols` elements of `C` that `tile`
/// addresses must be valid for reads and writes, with no other access to them during the call.
/// The CPU must support the kernel's instruction set (guaranteed by [`Kernel::available`]).
pub type MicroKernel = unsafe fn(a: &[f32], b: &[f32], tile: &Tile);

/// Packs a block of an operand into panels of the kernel's width (see [`super::pack`]).
///
/// # Safety
/// As [`super::pack::pack`]; and the CPU must support the kernel's instruction set.
pub type Packer = unsafe fn(src: MatRef, rows: usize, depth: usize, out: &mut [f32]);

/// The depth of a packed block, the same for every kernel: C accumulates over K in blocks of
/// equal size, and each block's partial sum is one fused multiply-add chain, so the AVX-512
/// and AVX2 kernels give bit-identical products.
/// 768 lets a B panel (96 KB at AVX-512's width) stream from L2, which recent cores feed fast
/// enough; against 384 it halves the passes over C and measured 6 to 8% faster on products
/// with K of 512 or more on a Zen 4 core.
pub const KC: usize = 768;

/// One instruction set's micro-kernel with its tile shape, packers and cache blocking.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    /// Instruction set and tile shape, as shown in messages and benchmark output (for
    /// example `"avx2 6x16"`).
    pub name: &'static str,
    /// Rows of C per micro-tile (height of an A panel).
    pub mr: usize,
    /// Columns of C per micro-tile (width of a B panel).
    pub nr: usize,
    /// Rows of A packed at once (a multiple of `mr`): the A block stays in L2.
    pub mc: usize,
    /// Greatest depth of a packed block (K is cut into equal blocks of at most this): a
    /// `kc x nr` B panel stays in L1 or, on cores with a fast L2, in L2. Every kernel uses
    /// [`KC`].
    pub kc: usize,
    /// Columns of B packed at once (a multiple of `nr`): the B block stays in L3.
    pub nc: usize,
    /// The micro-kernel.
    pub micro: MicroKernel,
    /// Packs a block of A into `mr`-row panels.
    pub pack_a: Packer,
    /// Packs a block of B into `nr`-column panels.
    pub pack_b: Packer,
    /// Whether the running CPU can execute this kernel.
    pub available: fn() -> bool,
}

/// Every kernel compiled into this binary, fastest first; the plain one is always last.
pub fn all() -> Vec<Kernel> {
    let mut v = vec![];
    #[cfg(target_arch = "x86_64")]
    v.extend([super::kernel_avx512::KERNEL, super::kernel_avx2::KERNEL]);
    v.push(super::kernel_generic::KERNEL);
    v
}

/// The fastest kernel this CPU runs, detected once.
pub fn best() -> &'static Kernel {
    static BEST: OnceLock<Kernel> = OnceLock::new();
    BEST.get_or_init(|| {
        all()
            .into_iter()
            .find(|k| (k.available)())
            .expect("the plain kernel runs everywhere")
    })
}
