//! A right operand packed once and multiplied many times: `C = A B` where `B` was packed
//! ahead into the micro-kernel's panels.
//!
//! Decoding multiplies every weight by a few new rows (one per sequence) at each step. The
//! packed GEMM then spends as long packing the weight (a transposed copy of all of it, read
//! from memory) as multiplying: on the six-layer, width-384 model with 64 rows, one thread,
//! AVX-512, a step's products took 18.5 ms packing B each time and 13.3 ms with B packed
//! beforehand. Packed here, each weight is read straight from its panels at every step.
//!
//! The whole of B is packed, depth block by depth block (blocks of equal size, at most `KC`,
//! as in [`super::sequential`]); each depth block holds `ceil(n / NR)` panels side by side, so
//! any run of whole panels (a thread's columns) is one slice. The sums run in the same order
//! as the packed GEMM's, so both give bit-identical products.

use super::kernel::Kernel;
use super::pack::MatRef;
use super::{macro_kernel, with_buffer, MatMut, Split, PACKED_A, PARALLEL_FLOPS, TASK_FLOPS};
use crate::cpu::parallel::{num_threads, par_for_each};

/// `B (k, n)` in the panels of one kernel.
pub struct PackedB {
    kernel: Kernel,
    k: usize,
    n: usize,
    /// Depth of every block but perhaps the last.
    kc: usize,
    /// One buffer per depth block: `ceil(n / NR)` panels of `depth x NR`.
    blocks: Vec<Vec<f32>>,
}

impl PackedB {
    /// Packs `B (k, n)`, `k >= 1`, for `kernel`.
    ///
    /// # Safety
    /// Every element `(p, j)`, `p < k`, `j < n`, of `b` must be readable; the CPU must support
    /// `kernel`.
    pub unsafe fn new(kernel: &Kernel, b: MatRef, k: usize, n: usize) -> PackedB {
        assert!(k > 0, "a packed operand needs at least one row");
        let kc = k.div_ceil(k.div_ceil(kernel.kc));
        let blocks = (0..k)
            .step_by(kc)
            .map(|pc| {
                let depth = kc.min(k - pc);
                let mut block = vec![0.0; n.next_multiple_of(kernel.nr) * depth];
                // SAFETY: B's rows `pc..pc + depth` and columns `0..n` are readable (the
                // contract); the CPU runs the kernel's packer.
                unsafe { (kernel.pack_b)(b.at(pc, 0).t(), n, depth, &mut block) };
                block
            })
            .collect();
        PackedB {
            kernel: *kernel,
            k,
            n,
            kc,
            blocks,
        }
    }

    /// Rows of B.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of B.
    pub fn n(&self) -> usize {
        self.n
    }

    /// `C = A B` with `A (m, k)`; on threads when the product is large enough, each taking
    /// whole panels of columns (and packing all of A, which is small next to B).
    ///
    /// # Safety
    /// Every element of `A (m, k)` and `C (m, n)` must be in bounds of the memory behind its
    /// pointer; `C` must not overlap `A` or the packed panels, and nothing else may access `C`
    /// or write `A` during the call.
    pub unsafe fn multiply(&self, a: MatRef, m: usize, c: MatMut) {
        if m == 0 || self.n == 0 {
            return;
        }
        let flops = 2 * m * self.n * self.k;
        let tasks = if flops >= PARALLEL_FLOPS {
            let threads = num_threads();
            threads * (flops / (threads * TASK_FLOPS)).clamp(1, 4)
        } else {
            1
        };
        let split = Split::by_columns(&self.kernel, tasks, m, self.n);
        par_for_each(0..split.tasks(), |t| {
            let (_, cols) = split.task(t);
            // SAFETY: the task's columns start on a panel and lie inside C; tasks write
            // disjoint columns of C.
            unsafe { self.columns(a, m, cols.start, cols.end, c) };
        });
    }

    /// Columns `j0..j1` of `C = A B`, `j0` on a panel boundary.
    ///
    /// # Safety
    /// As [`PackedB::multiply`], and nothing else may access these columns of C.
    unsafe fn columns(&self, a: MatRef, m: usize, j0: usize, j1: usize, c: MatMut) {
        let kernel = &self.kernel;
        let (mr, nr) = (kernel.mr, kernel.nr);
        let panels = j0 / nr..j1.div_ceil(nr);
        with_buffer(
            &PACKED_A,
            m.min(kernel.mc).next_multiple_of(mr) * self.kc,
            |apack| {
                for (block, pc) in self.blocks.iter().zip((0..self.k).step_by(self.kc)) {
                    let depth = self.kc.min(self.k - pc);
                    let bpack = &block[panels.start * nr * depth..panels.end * nr * depth];
                    let beta = if pc == 0 { 0.0 } else { 1.0 };
                    for ic in (0..m).step_by(kernel.mc) {
                        let mc = kernel.mc.min(m - ic);
                        let apack = &mut apack[..mc.next_multiple_of(mr) * depth];
                        // SAFETY: rows `ic..ic + mc`, columns `pc..pc + depth` are inside A; the
                        // `mc x (j1 - j0)` block of C at `(ic, j0)` is inside C and ours.
                        unsafe {
                            (kernel.pack_a)(a.at(ic, pc), mc, depth, apack);
                            let c = c.at(ic, j0);
                            macro_kernel(kernel, depth, apack, mc, bpack, j1 - j0, c, (1.0, beta));
                        }
                    }
                }
            },
        );
    }
}
