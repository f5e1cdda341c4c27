//! A CPU stand-in for the GPU (the `emulator` feature), so that everything between a tensor
//! op and a kernel's last line can be tested on a machine without one.
//!
//! The kernel sources under `kernels/` are compiled by the host's C++ compiler against
//! `emulator/cuda_emulator.h` (build.rs) and run by `emulator/runtime.cpp`: each CUDA thread
//! is a fiber, blocks run one after another, barriers and warp shuffles wait for the threads
//! they concern. [`Gpu`] has the methods of the real one; its memory is host memory, so a
//! "device address" is a host address. What the emulator checks beyond the results:
//! - launches that a GPU would refuse: unknown kernels, a kernel launched from the wrong
//!   family, grid and block sizes past the hardware's limits, too much shared memory;
//! - barriers and shuffles that not every thread reaches (the kernel would hang);
//! - writes past either end of a buffer (guard bytes around every buffer, checked after each
//!   launch);
//! - reads of memory no one wrote: new buffers and shared memory start as NaN bytes.
//!
//! It does not show races between threads that do not synchronize, or out-of-bounds reads.
//! There is no cuBLAS, so every GEMM runs the tiled kernel.

use crate::cublas::Cublas;
use crate::profile::{KernelTime, Totals};
use crate::{lock, DeviceInfo, Family, KernelArg, LaunchConfig, Result};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

extern "C" {
    /// runtime.cpp: runs kernel `name` over the grid, or writes why not into `error`.
    fn emu_launch(
        name: *const c_char,
        grid: *const u32,
        block: *const u32,
        shared_bytes: u32,
        params: *mut *mut c_void,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
}

/// Bytes of guard before and after every buffer.
const GUARD: usize = 256;
/// What the guard bytes hold; a kernel that writes past a buffer changes some of them.
const GUARD_BYTE: u8 = 0xa5;
/// What new buffers hold: every float read from them is NaN.
const UNWRITTEN_BYTE: u8 = 0xff;

/// The emulated device.
#[derive(Debug)]
pub struct Gpu {
    info: DeviceInfo,
    profile: Mutex<Option<Totals>>,
}

/// The one emulated device, as [`Gpu::get`] gives it.
pub fn probe() -> Result<DeviceInfo> {
    Gpu::get(0).map(|g| g.info().clone())
}

/// Buffers alive now: start address of the guarded allocation -> its size in bytes.
fn live() -> MutexGuard<'static, HashMap<usize, usize>> {
    static LIVE: OnceLock<Mutex<HashMap<usize, usize>>> = OnceLock::new();
    lock(LIVE.get_or_init(Default::default))
}

impl Gpu {
    /// The emulated device 0; any other ordinal is an error, as on a machine with one GPU.
    pub fn get(ordinal: usize) -> Result<Arc<Gpu>> {
        static GPU: OnceLock<Arc<Gpu>> = OnceLock::new();
        if ordinal != 0 {
            return Err(format!(
                "CUDA is unavailable: there is no CUDA device {ordinal} (the emulator has 1)."
            ));
        }
        Ok(GPU
            .get_or_init(|| {
                Arc::new(Gpu {
                    info: DeviceInfo {
                        ordinal: 0,
                        name: "CPU emulator of the CUDA kernels".to_string(),
                        compute_capability: (0, 0),
                        memory_bytes: 0,
                        driver_cuda: (0, 0),
                        nvrtc: "none (kernels built by the host C++ compiler)".to_string(),
                        arch: 0,
                        cublas: Err("the emulator has no cuBLAS".to_string()),
                    },
                    profile: Mutex::new(None),
                })
            })
            .clone())
    }

    /// What the device is.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Always `None`: the emulator has no cuBLAS.
    pub fn blas(&self) -> Option<MutexGuard<'_, Cublas>> {
        None
    }

    /// Nothing to bind: there is no context.
    pub fn bind(&self) -> Result<()> {
        Ok(())
    }

    /// Runs kernel `name` of `family` now, then checks every live buffer's guard bytes.
    ///
    /// # Safety
    /// As the real `Gpu::launch`: `args` match the kernel's parameters, and the memory they
    /// address is live and large enough for the kernel's accesses.
    pub unsafe fn launch(
        &self,
        family: Family,
        name: &str,
        cfg: LaunchConfig,
        args: &[&dyn KernelArg],
    ) -> Result<()> {
        if !family.kernels().contains(&name) {
            return Err(format!("{}.cu has no kernel {name}", family.name()));
        }
        // SAFETY: forwarded from this function's contract.
        self.timed(name, || unsafe { run(name, cfg, args) })
    }

    /// Starts (clearing what was timed before) or stops timing every kernel by the wall clock.
    pub fn set_profiling(&self, on: bool) {
        *lock(&self.profile) = on.then(Totals::default);
    }

    /// Time per kernel since profiling was started, most first; empty when profiling is off.
    pub fn kernel_times(&self) -> Result<Vec<KernelTime>> {
        Ok(lock(&self.profile).as_ref().map_or(vec![], Totals::rows))
    }

    /// Runs `work`, the one kernel `name`, timing it while profiling.
    pub(crate) fn timed(&self, name: &str, work: impl FnOnce() -> Result<()>) -> Result<()> {
        if lock(&self.profile).is_none() {
            return work();
        }
        let start = std::time::Instant::now();
        work()?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if let Some(totals) = lock(&self.profile).as_mut() {
            totals.add(name, ms);
        }
        Ok(())
    }

    /// `bytes` of memory holding NaN bytes (contents unspecified, as on the GPU).
    pub fn alloc(&self, bytes: usize) -> Result<DeviceBuffer> {
        Ok(DeviceBuffer::new(bytes, UNWRITTEN_BYTE))
    }

    /// `bytes` of zeroed memory.
    pub fn alloc_zeroed(&self, bytes: usize) -> Result<DeviceBuffer> {
        Ok(DeviceBuffer::new(bytes, 0))
    }

    /// A copy of host bytes.
    pub fn upload(&self, host: &[u8]) -> Result<DeviceBuffer> {
        let buf = DeviceBuffer::new(host.len(), UNWRITTEN_BYTE);
        // SAFETY: the buffer holds `host.len()` bytes at `ptr` and does not overlap `host`.
        unsafe { std::ptr::copy_nonoverlapping(host.as_ptr(), buf.ptr() as *mut u8, host.len()) };
        Ok(buf)
    }

    /// Copies the first `host.len()` bytes of `buf` into `host`.
    pub fn download(&self, buf: &DeviceBuffer, host: &mut [u8]) -> Result<()> {
        assert!(
            host.len() <= buf.bytes(),
            "download past the end of a device buffer"
        );
        // SAFETY: `buf` holds at least `host.len()` bytes at `ptr`, and does not overlap `host`.
        unsafe {
            std::ptr::copy_nonoverlapping(buf.ptr() as *const u8, host.as_mut_ptr(), host.len())
        };
        Ok(())
    }

    /// Copies `bytes` bytes between addresses of buffers.
    ///
    /// # Safety
    /// Both ranges must lie in live buffers and must not overlap.
    pub unsafe fn copy(&self, dst: u64, src: u64, bytes: usize) -> Result<()> {
        // SAFETY: this function's contract.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, bytes) };
        Ok(())
    }

    /// Nothing is queued: every launch has run when it returns.
    pub fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    /// Always 0: the emulator does not cache freed memory.
    pub fn cached_bytes(&self) -> usize {
        0
    }
}

/// Runs kernel `name` now, then checks every live buffer's guard bytes.
///
/// # Safety
/// As [`Gpu::launch`].
unsafe fn run(name: &str, cfg: LaunchConfig, args: &[&dyn KernelArg]) -> Result<()> {
    check_launch(name, &cfg)?;
    let mut params: Vec<*mut c_void> = args.iter().map(|a| a.as_param()).collect();
    let c_name = CString::new(name).map_err(|_| format!("bad kernel name {name:?}"))?;
    let mut error = [0 as c_char; 512];
    let grid = [cfg.grid_dim.0, cfg.grid_dim.1, cfg.grid_dim.2];
    let block = [cfg.block_dim.0, cfg.block_dim.1, cfg.block_dim.2];
    // SAFETY: the arrays and strings live across the call; the parameters match the kernel
    // and address live memory (this function's contract); `error` has the length passed.
    let failed = unsafe {
        emu_launch(
            c_name.as_ptr(),
            grid.as_ptr(),
            block.as_ptr(),
            cfg.shared_mem_bytes,
            params.as_mut_ptr(),
            error.as_mut_ptr(),
            error.len(),
        )
    };
    if failed != 0 {
        // SAFETY: runtime.cpp wrote a zero-terminated string into `error`.
        let text = unsafe { CStr::from_ptr(error.as_ptr()) };
        return Err(format!("kernel {}", text.to_string_lossy()));
    }
    check_guards(name)
}

/// Refuses a launch a GPU would refuse: empty or oversized grids and blocks (grid y and z at
/// most 65,535; block x and y at most 1,024, z at most 64, 1,024 threads in all).
fn check_launch(name: &str, cfg: &LaunchConfig) -> Result<()> {
    let (gx, gy, gz) = cfg.grid_dim;
    let (bx, by, bz) = cfg.block_dim;
    let threads = bx as u64 * by as u64 * bz as u64;
    let grid_ok =
        (1..(1 << 31)).contains(&gx) && (1..=65_535).contains(&gy) && (1..=65_535).contains(&gz);
    let block_ok = bx <= 1024 && by <= 1024 && bz <= 64 && (1..=1024).contains(&threads);
    if grid_ok && block_ok {
        Ok(())
    } else {
        Err(format!(
            "kernel {name}: a GPU refuses grid {:?} with blocks {:?}",
            cfg.grid_dim, cfg.block_dim
        ))
    }
}

/// An error naming `kernel` if any live buffer's guard bytes changed.
fn check_guards(kernel: &str) -> Result<()> {
    for (&start, &bytes) in live().iter() {
        let start = start as *const u8;
        // SAFETY: live buffers are allocations of `GUARD + bytes + GUARD` bytes at `start`,
        // and only their guards are read: other threads may be writing the bytes between.
        let (before, after) = unsafe {
            (
                std::slice::from_raw_parts(start, GUARD),
                std::slice::from_raw_parts(start.add(GUARD + bytes), GUARD),
            )
        };
        if let Some(side) = [(before, "before"), (after, "past the end of")]
            .iter()
            .find(|(guard, _)| guard.iter().any(|&b| b != GUARD_BYTE))
            .map(|(_, side)| side)
        {
            return Err(format!(
                "kernel {kernel} wrote {side} a buffer of {bytes} bytes"
            ));
        }
    }
    Ok(())
}

/// Host memory standing in for device memory, with guard bytes on both sides.
#[derive(Debug)]
pub struct DeviceBuffer {
    /// The allocation: `GUARD + bytes + GUARD` bytes and padding, from a boxed `[u64]` of
    /// `words` elements.
    start: *mut u8,
    words: usize,
    bytes: usize,
}

// SAFETY: the buffer owns its allocation; like device memory, it is written only through
// launches and copies, whose callers order them.
unsafe impl Send for DeviceBuffer {}
// SAFETY: as above; `&DeviceBuffer` gives only the address and the size.
unsafe impl Sync for DeviceBuffer {}

impl DeviceBuffer {
    fn new(bytes: usize, fill: u8) -> DeviceBuffer {
        let words = (2 * GUARD + bytes).div_ceil(8);
        let memory = vec![u64::from_ne_bytes([GUARD_BYTE; 8]); words].into_boxed_slice();
        let start = Box::into_raw(memory) as *mut u8;
        // SAFETY: the allocation holds `GUARD + bytes` bytes and more.
        unsafe { std::ptr::write_bytes(start.add(GUARD), fill, bytes) };
        live().insert(start as usize, bytes);
        DeviceBuffer {
            start,
            words,
            bytes,
        }
    }

    /// The address of the first byte, as kernels take it.
    pub fn ptr(&self) -> u64 {
        self.start as u64 + GUARD as u64
    }

    /// The size requested.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        live().remove(&(self.start as usize));
        let slice = std::ptr::slice_from_raw_parts_mut(self.start as *mut u64, self.words);
        // SAFETY: `start` and `words` came from `Box::into_raw` of a `[u64]` of that length.
        drop(unsafe { Box::from_raw(slice) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(grid: (u32, u32, u32), block: (u32, u32, u32)) -> LaunchConfig {
        LaunchConfig {
            grid_dim: grid,
            block_dim: block,
            shared_mem_bytes: 0,
        }
    }

    fn download_u64(gpu: &Gpu, buf: &DeviceBuffer, n: usize) -> Vec<u64> {
        let mut bytes = vec![0u8; n * 8];
        gpu.download(buf, &mut bytes).unwrap();
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn blocks_barriers_and_block_reductions() {
        let gpu = Gpu::get(0).unwrap();
        let (threads, blocks) = (96usize, 6usize);
        let out = gpu.alloc(blocks * threads * 3 * 8).unwrap();
        let ptr = out.ptr();
        // SAFETY: `emu_test_block_sum(out)` writes 3 u64 per thread of the grid.
        unsafe { run("emu_test_block_sum", cfg((3, 2, 1), (96, 1, 1)), &[&ptr]) }.unwrap();
        let got = download_u64(&gpu, &out, blocks * threads * 3);
        let sum = (threads * (threads - 1) / 2) as u64;
        for b in 0..blocks {
            for t in 0..threads {
                let o = &got[3 * (b * threads + t)..][..3];
                assert_eq!(o, [t as u64, b as u64, sum], "block {b}, thread {t}");
            }
        }
    }

    #[test]
    fn lanes_of_a_three_dimensional_block() {
        let gpu = Gpu::get(0).unwrap();
        let threads = 8 * 4 * 3;
        let out = gpu.alloc(threads * 3 * 8).unwrap();
        let ptr = out.ptr();
        // SAFETY: `emu_test_warp_lanes(out)` writes 3 u64 per thread of one block.
        unsafe { run("emu_test_warp_lanes", cfg((1, 1, 1), (8, 4, 3)), &[&ptr]) }.unwrap();
        let got = download_u64(&gpu, &out, threads * 3);
        for t in 0..threads as u64 {
            let o = &got[3 * t as usize..][..3];
            assert_eq!(o, [t, t - t % 32, t ^ 1], "thread {t}");
        }
    }

    #[test]
    fn a_barrier_and_a_shuffle_that_wait_for_each_other_are_an_error() {
        let gpu = Gpu::get(0).unwrap();
        let out = gpu.alloc(64 * 4).unwrap();
        let ptr = out.ptr();
        // SAFETY: `emu_test_divergent_barrier(out)` writes at most one int per thread.
        let err = unsafe {
            run(
                "emu_test_divergent_barrier",
                cfg((1, 1, 1), (64, 1, 1)),
                &[&ptr],
            )
        }
        .unwrap_err();
        assert!(
            err.contains("32 threads wait at __syncthreads and 32 at a warp shuffle"),
            "{err}"
        );
        assert!(err.contains("would hang"), "{err}");
    }

    #[test]
    fn a_shuffle_in_a_partial_warp_is_an_error() {
        let gpu = Gpu::get(0).unwrap();
        let out = gpu.alloc(40 * 3 * 8).unwrap();
        let ptr = out.ptr();
        // SAFETY: `emu_test_block_sum(out)` writes 3 u64 per thread of the grid.
        let err =
            unsafe { run("emu_test_block_sum", cfg((1, 1, 1), (40, 1, 1)), &[&ptr]) }.unwrap_err();
        assert!(err.contains("a lane past the end of the block"), "{err}");
    }

    #[test]
    fn a_shuffle_after_a_lane_exited_is_an_error() {
        let gpu = Gpu::get(0).unwrap();
        let out = gpu.alloc(32 * 4).unwrap();
        let ptr = out.ptr();
        // SAFETY: `emu_test_exited_shuffle(out)` writes one int per thread of a warp.
        let err = unsafe {
            run(
                "emu_test_exited_shuffle",
                cfg((1, 1, 1), (32, 1, 1)),
                &[&ptr],
            )
        }
        .unwrap_err();
        assert!(err.contains("lanes had exited"), "{err}");
    }

    #[test]
    fn a_write_past_the_end_is_caught_by_the_guard() {
        let gpu = Gpu::get(0).unwrap();
        let out = gpu.alloc(10 * 4).unwrap();
        let (ptr, n) = (out.ptr(), 10u64);
        // SAFETY: the kernel writes 11 floats into a buffer of 10, which ends in guard bytes
        // that the allocation owns.
        let err = unsafe {
            run(
                "emu_test_write_past_end",
                cfg((1, 1, 1), (32, 1, 1)),
                &[&ptr, &n],
            )
        }
        .unwrap_err();
        assert!(
            err.contains("wrote past the end of a buffer of 40 bytes"),
            "{err}"
        );
    }

    #[test]
    fn launches_a_gpu_would_refuse_are_errors() {
        let err = unsafe {
            run(
                "emu_test_divergent_barrier",
                cfg((1, 1, 1), (33, 32, 1)),
                &[],
            )
        }
        .unwrap_err();
        assert!(err.contains("a GPU refuses"), "{err}");
        let gpu = Gpu::get(0).unwrap();
        // SAFETY: the launch is refused before anything runs.
        let err = unsafe {
            gpu.launch(
                Family::Softmax,
                "gemm_tiled_f32",
                cfg((1, 1, 1), (1, 1, 1)),
                &[],
            )
        }
        .unwrap_err();
        assert_eq!(err, "softmax.cu has no kernel gemm_tiled_f32");
    }

    #[test]
    fn new_buffers_read_as_nan_and_zeroed_ones_as_zero() {
        let gpu = Gpu::get(0).unwrap();
        let mut bytes = [0u8; 8];
        gpu.download(&gpu.alloc(8).unwrap(), &mut bytes).unwrap();
        assert!(f32::from_ne_bytes(bytes[..4].try_into().unwrap()).is_nan());
        gpu.download(&gpu.alloc_zeroed(8).unwrap(), &mut bytes)
            .unwrap();
        assert_eq!(bytes, [0; 8]);
    }
}
