//! Single-precision GEMM of our own: `C = alpha A B + beta C`, packed and cache-blocked, with a
//! micro-kernel per instruction set chosen at run time.
//!
//! `A (m,k)` and `B (k,n)` may have any strides (row-major, transposed views, padded rows);
//! `C (m,n)` is row-major with a row stride. The structure is the one BLIS made standard: five
//! loops around a micro-kernel, each loop sized so that the data it reuses stays in one level of
//! the cache.
//!
//! ```text
//!  for jc in 0..n step NC                    B block  KC x NC                        -> L3
//!   for pc in 0..k step KC                   (pc > 0 accumulates: beta becomes 1)
//!    pack B[pc.., jc..] into NR-wide panels
//!    for ic in 0..m step MC                  A block  MC x KC                        -> L2
//!     pack A[ic.., pc..] into MR-tall panels
//!     for jr in 0..NC step NR                B panel  KC x NR                        -> L1
//!      for ir in 0..MC step MR
//!       micro-kernel: C[ic+ir.., jc+jr..] (MR x NR) = alpha A panel B panel + beta C
//!
//!            KC               NR
//!         +------+         +--+-------+
//!      MR |Apanel|  x   KC |Bp|       |        = the MR x NR tile of C, in registers
//!         +------+         +--+-------+
//!         |      |           B block (KC x NC)
//!      MC |      |
//!         +------+
//!         A block
//! ```
//!
//! Packing (see [`pack`]) copies each block into the exact order the micro-kernel reads it,
//! from any strides, padded with zeros to whole panels, so the kernel is one tight loop and edge
//! tiles only differ in what they store. The micro-kernels ([`kernel_avx512`],
//! [`kernel_avx2`], [`kernel_generic`]) hold an `MR x NR` tile of C in registers; [`kernel`]
//! picks the fastest one the CPU supports, once.
//!
//! Threads: a large product's C is cut into bands (one to four per thread), along the rows or
//! the columns, whichever makes the tasks pack less of A and B twice; each band runs the five
//! loops on its own, so one call needs one parallel region and no barrier:
//!
//! ```text
//!   C split by rows (M >= N)      C split by columns (N > M)
//!   +-----------+                 +-----+-----+
//!   |  task 0   |  each packs     |     |     |  each packs all of A
//!   +-----------+  all of B       | t 0 | t 1 |  and its half of B
//!   |  task 1   |                 |     |     |
//!   +-----------+                 +-----+-----+
//! ```
//!
//! Each element of C is summed over `p` in the same order whatever the split, so the result does
//! not depend on the number of threads. Packing buffers are kept per thread and reused.

mod gemv;
pub mod kernel;
#[cfg(target_arch = "x86_64")]
pub mod kernel_avx2;
#[cfg(target_arch = "x86_64")]
pub mod kernel_avx512;
pub mod kernel_generic;
pub mod pack;
#[cfg(target_arch = "x86_64")]
pub mod pack_avx2;
pub mod prepacked;
mod reference;
#[cfg(test)]
mod tests;

pub use kernel::Kernel;
pub use pack::MatRef;
pub use prepacked::PackedB;
pub use reference::gemm_reference;

use super::matmul::{fits, Mat};
use super::parallel::{num_threads, par_for_each};
use kernel::Tile;
use std::cell::Cell;
use std::ops::Range;
use std::thread::LocalKey;

/// How many threads one product may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// All of rayon's threads when the product is large enough to gain, else one.
    Auto,
    /// The calling thread only.
    One,
}

/// Products below this many flops (`2 m n k`) stay on one thread: waking another costs more.
const PARALLEL_FLOPS: usize = 1 << 21;

/// Flops per task above which a product gets more tasks than threads (up to four per thread),
/// so a thread slowed down by other work on its core can be helped by the others.
const TASK_FLOPS: usize = 1 << 26;

/// A writable row-major matrix: element `(i, j)` lives at `ptr + i * rs + j`.
#[derive(Clone, Copy, Debug)]
pub struct MatMut {
    /// Address of element `(0, 0)`.
    pub ptr: *mut f32,
    /// Row stride, in elements (columns are adjacent).
    pub rs: isize,
}

// SAFETY: a `MatRef` is only read, and the GEMM contract forbids writes to the operands during
// the call, so reading it from several threads at once is sound.
unsafe impl Send for MatRef {}
// SAFETY: as for `Send`.
unsafe impl Sync for MatRef {}
// SAFETY: threads given one `MatMut` write disjoint tiles of it (each task owns its rows and
// columns), so no element is accessed by two threads.
unsafe impl Send for MatMut {}
// SAFETY: as for `Send`.
unsafe impl Sync for MatMut {}

impl MatMut {
    /// The sub-matrix starting at `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` must be an element of the matrix (or one past its last row or column).
    unsafe fn at(self, i: usize, j: usize) -> MatMut {
        MatMut {
            // SAFETY: forwarded from this function's contract.
            ptr: unsafe { self.ptr.offset(i as isize * self.rs).add(j) },
            ..self
        }
    }
}

/// One product `C = alpha A B + beta C` with `A (m,k)`, `B (k,n)`, `C (m,n)`.
#[derive(Clone, Copy, Debug)]
pub struct Product {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of A, rows of B (the summed dim).
    pub k: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Factor on the product `A B`.
    pub alpha: f32,
    /// The left operand `(m, k)`.
    pub a: MatRef,
    /// The right operand `(k, n)`.
    pub b: MatRef,
    /// Factor on the old C (0: C is only written, never read).
    pub beta: f32,
    /// The output `(m, n)`.
    pub c: MatMut,
}

/// `C = alpha A B + beta C` with the fastest kernel for this CPU (see the module docs); a
/// product with one row of A skips the packing ([`gemv`]).
///
/// # Safety
/// Every element of `A`, `B` and `C` (for indices within `m`, `k`, `n`) must be in bounds of
/// the memory behind its pointer; `C` must not overlap `A` or `B`, and nothing else may access
/// `C` or write `A` or `B` during the call.
pub unsafe fn sgemm_raw(p: Product) {
    if gemv::applies(&p) {
        // SAFETY: forwarded from this function's contract.
        return unsafe { gemv::gemv(p, Threads::Auto) };
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { gemm_with(kernel::best(), Threads::Auto, p) }
}

/// [`sgemm_raw`] on slices, with bounds checked once: `C (m x n, row stride rsc)`.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    kernel: &Kernel,
    threads: Threads,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat<f32>,
    b: Mat<f32>,
    beta: f32,
    c: &mut [f32],
    rsc: usize,
) {
    assert!(
        fits(a.data.len(), m, k, a.rs, a.cs),
        "sgemm: A out of bounds"
    );
    assert!(
        fits(b.data.len(), k, n, b.rs, b.cs),
        "sgemm: B out of bounds"
    );
    assert!(fits(c.len(), m, n, rsc, 1), "sgemm: C out of bounds");
    assert!(
        (kernel.available)(),
        "sgemm: this CPU cannot run {}",
        kernel.name
    );
    let view = |x: Mat<f32>| MatRef {
        ptr: x.data.as_ptr(),
        rs: x.rs as isize,
        cs: x.cs as isize,
    };
    let p = Product {
        m,
        k,
        n,
        alpha,
        a: view(a),
        b: view(b),
        beta,
        c: MatMut {
            ptr: c.as_mut_ptr(),
            rs: rsc as isize,
        },
    };
    // SAFETY: the asserts above put every addressed element in bounds of its slice; `c` is a
    // `&mut` borrow, so it overlaps neither operand and nothing else touches it; the kernel
    // runs on this CPU.
    unsafe { gemm_with(kernel, threads, p) }
}

/// The blocked product with a given kernel (see the module docs).
///
/// # Safety
/// As [`sgemm_raw`]; and the CPU must support `kernel`.
pub unsafe fn gemm_with(kernel: &Kernel, threads: Threads, p: Product) {
    if p.m == 0 || p.n == 0 {
        return;
    }
    if p.k == 0 || p.alpha == 0.0 {
        // SAFETY: forwarded from this function's contract.
        return unsafe { scale(p) };
    }
    let flops = 2 * p.m * p.n * p.k;
    let tasks = match threads {
        Threads::Auto if flops >= PARALLEL_FLOPS => {
            let threads = num_threads();
            threads * (flops / (threads * TASK_FLOPS)).clamp(1, 4)
        }
        _ => 1,
    };
    let split = Split::new(kernel, tasks, p.m, p.n);
    if split.tasks() == 1 {
        // SAFETY: forwarded from this function's contract.
        return unsafe { sequential(kernel, p) };
    }
    par_for_each(0..split.tasks(), |t| {
        let (rows, cols) = split.task(t);
        // SAFETY: the task's rows and columns are inside the product, and tasks cover
        // disjoint rectangles of C, so each writes its own elements.
        unsafe {
            let a = p.a.at(rows.start, 0);
            let b = p.b.at(0, cols.start);
            let c = p.c.at(rows.start, cols.start);
            let (m, n) = (rows.len(), cols.len());
            sequential(kernel, Product { m, n, a, b, c, ..p });
        }
    });
}

/// How a product's C is cut into rectangles for threads: `tm` row bands times `tn` column
/// bands, with boundaries on whole micro-tiles.
struct Split {
    tm: usize,
    tn: usize,
    mr: usize,
    nr: usize,
    m: usize,
    n: usize,
}

impl Split {
    /// About `tasks` rectangles, cut along the rows or the columns: splitting the rows makes
    /// every task pack all of B (`k n` each), splitting the columns all of A (`m k` each), so
    /// the cheaper cut is along the longer side.
    fn new(kernel: &Kernel, tasks: usize, m: usize, n: usize) -> Split {
        let (mr, nr) = (kernel.mr, kernel.nr);
        let (tiles_m, tiles_n) = (m.div_ceil(mr), n.div_ceil(nr));
        let (tm, tn) = if m >= n {
            (tasks.min(tiles_m), 1)
        } else {
            (1, tasks.min(tiles_n))
        };
        Split {
            tm,
            tn,
            mr,
            nr,
            m,
            n,
        }
    }

    /// About `tasks` bands of columns (for a right operand packed ahead, which no task should
    /// read twice).
    fn by_columns(kernel: &Kernel, tasks: usize, m: usize, n: usize) -> Split {
        Split {
            tm: 1,
            tn: tasks.min(n.div_ceil(kernel.nr)),
            mr: kernel.mr,
            nr: kernel.nr,
            m,
            n,
        }
    }

    fn tasks(&self) -> usize {
        self.tm * self.tn
    }

    /// Rows and columns of C that task `t` computes.
    fn task(&self, t: usize) -> (Range<usize>, Range<usize>) {
        let band = |i: usize, parts: usize, len: usize, tile: usize| {
            let tiles = len.div_ceil(tile);
            let edge = |i: usize| (i * tiles / parts * tile).min(len);
            edge(i)..edge(i + 1)
        };
        (
            band(t / self.tn, self.tm, self.m, self.mr),
            band(t % self.tn, self.tn, self.n, self.nr),
        )
    }
}

/// The five loops of the module docs, on the calling thread.
///
/// # Safety
/// As [`gemm_with`].
unsafe fn sequential(kernel: &Kernel, p: Product) {
    let (mr, nr) = (kernel.mr, kernel.nr);
    // Depth blocks of equal size, at most KC: no thin last block.
    let kc_max = p.k.div_ceil(p.k.div_ceil(kernel.kc));
    let b_len = kc_max * p.n.min(kernel.nc).next_multiple_of(nr);
    let a_len = kc_max * p.m.min(kernel.mc).next_multiple_of(mr);
    with_buffer(&PACKED_B, b_len, |bpack| {
        with_buffer(&PACKED_A, a_len, |apack| {
            for jc in (0..p.n).step_by(kernel.nc) {
                let nc = kernel.nc.min(p.n - jc);
                for pc in (0..p.k).step_by(kc_max) {
                    let kc = kc_max.min(p.k - pc);
                    let bpack = &mut bpack[..nc.next_multiple_of(nr) * kc];
                    let beta = if pc == 0 { p.beta } else { 1.0 };
                    // SAFETY: `pc < k` and `jc < n`, so B^T's rows `jc..jc + nc` (B's
                    // columns) and columns `pc..pc + kc` are inside B.
                    unsafe { (kernel.pack_b)(p.b.at(pc, jc).t(), nc, kc, bpack) };
                    for ic in (0..p.m).step_by(kernel.mc) {
                        let mc = kernel.mc.min(p.m - ic);
                        let apack = &mut apack[..mc.next_multiple_of(mr) * kc];
                        // SAFETY: rows `ic..ic + mc` and columns `pc..pc + kc` are inside A,
                        // and the `mc x nc` block of C at `(ic, jc)` is inside C.
                        unsafe {
                            (kernel.pack_a)(p.a.at(ic, pc), mc, kc, apack);
                            let c = p.c.at(ic, jc);
                            let scale = (p.alpha, beta);
                            macro_kernel(kernel, kc, apack, mc, bpack, nc, c, scale);
                        }
                    }
                }
            }
        })
    });
}

/// Multiplies a packed A block (`rows x kc`) by a packed B block (`kc x cols`) into `C`, one
/// micro-tile at a time: each B panel is reused against every A panel while it sits in L1.
///
/// # Safety
/// `c` must address `rows x cols` elements that are ours to read and write; the CPU must
/// support `kernel`.
#[allow(clippy::too_many_arguments)]
unsafe fn macro_kernel(
    kernel: &Kernel,
    kc: usize,
    apack: &[f32],
    rows: usize,
    bpack: &[f32],
    cols: usize,
    c: MatMut,
    (alpha, beta): (f32, f32),
) {
    let (mr, nr) = (kernel.mr, kernel.nr);
    for (jp, bp) in bpack.chunks_exact(nr * kc).enumerate() {
        let j0 = jp * nr;
        for (ip, ap) in apack.chunks_exact(mr * kc).enumerate() {
            let i0 = ip * mr;
            let tile = Tile {
                // SAFETY: `(i0, j0)` is inside the `rows x cols` region.
                c: unsafe { c.at(i0, j0).ptr },
                rsc: c.rs,
                rows: mr.min(rows - i0),
                cols: nr.min(cols - j0),
                alpha,
                beta,
            };
            // SAFETY: the tile is inside our region of C; the panels hold `kc` steps each.
            unsafe { (kernel.micro)(ap, bp, &tile) };
        }
    }
}

/// `C = beta C` (zeros when `beta == 0`, whatever C held): the product when `k == 0` or
/// `alpha == 0`, where A and B are not read.
///
/// # Safety
/// `C`'s `m x n` elements must be ours to read and write.
unsafe fn scale(p: Product) {
    for i in 0..p.m {
        // SAFETY: row `i` of C has `n` elements that are ours.
        let row = unsafe { std::slice::from_raw_parts_mut(p.c.at(i, 0).ptr, p.n) };
        for x in row {
            *x = if p.beta == 0.0 { 0.0 } else { p.beta * *x };
        }
    }
}

/// 64 bytes of floats, aligned to a cache line: the unit packing buffers are allocated in.
#[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(C, align(64))]
struct Line([f32; 16]);

thread_local! {
    static PACKED_A: Cell<Vec<Line>> = const { Cell::new(Vec::new()) };
    static PACKED_B: Cell<Vec<Line>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on this thread's packing buffer, grown to `len` floats and aligned to 64 bytes.
///
/// The buffer is taken out of its slot for the call, so a nested product on the same thread
/// (rayon may run another task while this one waits) gets a fresh buffer instead of this one.
fn with_buffer<R>(
    slot: &'static LocalKey<Cell<Vec<Line>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    let mut buf = slot.take();
    let lines = len.div_ceil(16);
    if buf.len() < lines {
        buf = vec![Line([0.0; 16]); lines];
    }
    let out = f(&mut bytemuck::cast_slice_mut(&mut buf)[..len]);
    slot.set(buf);
    out
}
