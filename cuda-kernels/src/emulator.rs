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
//! - reads and writes past the end of a buffer: every buffer ends where an inaccessible page
//!   begins, and runtime.cpp turns the fault into an error naming the thread and the buffer;
//! - writes before the start of a buffer (guard bytes, checked after each launch);
//! - reads of memory no one wrote: new buffers and shared memory start as NaN bytes.
//!
//! It does not show races between threads that do not synchronize, or reads a little before
//! the start of a buffer. There is no cuBLAS, so every GEMM runs the tiled kernel.

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
        fault: *mut u64,
    ) -> c_int;
}

/// Bytes of guard before every buffer.
const GUARD: usize = 256;
/// What the guard bytes hold; a kernel that writes before a buffer changes some of them.
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

/// Buffers alive now: address of the first byte -> size in bytes.
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
        self.timed(|| name.to_string(), || unsafe { run(name, cfg, args) })
    }

    /// Starts (clearing what was timed before) or stops timing every kernel by the wall clock.
    pub fn set_profiling(&self, on: bool) {
        *lock(&self.profile) = on.then(Totals::default);
    }

    /// Time per kernel since profiling was started, most first; empty when profiling is off.
    pub fn kernel_times(&self) -> Result<Vec<KernelTime>> {
        Ok(lock(&self.profile).as_ref().map_or(vec![], Totals::rows))
    }

    /// Always 0: every launch has run when it returns, so the host never waits for queued work.
    pub fn host_wait_ms(&self) -> f64 {
        0.0
    }

    /// Runs `work`, one kernel, timing it while profiling under `name()` (called only then).
    pub(crate) fn timed(
        &self,
        name: impl FnOnce() -> String,
        work: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        if lock(&self.profile).is_none() {
            return work();
        }
        let start = std::time::Instant::now();
        work()?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if let Some(totals) = lock(&self.profile).as_mut() {
            totals.add(&name(), ms);
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
    let mut fault = 0u64;
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
            &mut fault,
        )
    };
    if failed != 0 {
        // SAFETY: runtime.cpp wrote a zero-terminated string into `error`.
        let text = unsafe { CStr::from_ptr(error.as_ptr()) };
        return Err(format!(
            "kernel {}{}",
            text.to_string_lossy(),
            locate(fault)
        ));
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

/// An error naming `kernel` if the guard bytes before any live buffer changed.
fn check_guards(kernel: &str) -> Result<()> {
    for (&ptr, &bytes) in live().iter() {
        // SAFETY: every live buffer has `GUARD` guard bytes before its first byte, and only
        // those are read: other threads may be writing the buffers themselves.
        let guard = unsafe { std::slice::from_raw_parts((ptr - GUARD) as *const u8, GUARD) };
        if guard.iter().any(|&b| b != GUARD_BYTE) {
            return Err(format!(
                "kernel {kernel} wrote before a buffer of {bytes} bytes"
            ));
        }
    }
    Ok(())
}

/// Where a faulting address lies: past the end of which live buffer (the page after each
/// buffer is the inaccessible one), or in none ("" when `fault` is 0: no fault).
fn locate(fault: u64) -> String {
    if fault == 0 {
        return String::new();
    }
    let fault = fault as usize;
    live()
        .iter()
        .find(|(&ptr, &bytes)| (ptr + bytes..ptr + bytes + page_size()).contains(&fault))
        .map_or_else(
            || " (not in the page after any live buffer: freed or never allocated)".to_string(),
            |(&ptr, &bytes)| {
                format!(
                    " ({} bytes past the end of a buffer of {bytes} bytes)",
                    fault - (ptr + bytes)
                )
            },
        )
}

/// The size of a memory page.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Host memory standing in for device memory: a mapping whose last page is inaccessible, with
/// the buffer's bytes ending where that page begins and `GUARD` guard bytes before them.
///
/// Ending exactly at the page means the first byte is aligned only as far as the size allows
/// (to its largest power-of-two divisor, at most a page): `n` elements of any type stay
/// aligned for that type, and the kernels read no wider vectors than their element type.
#[derive(Debug)]
pub struct DeviceBuffer {
    /// The mapping, `mapped` bytes long.
    base: *mut u8,
    mapped: usize,
    /// The first byte.
    ptr: *mut u8,
    bytes: usize,
}

// SAFETY: the buffer owns its mapping; like device memory, it is written only through
// launches and copies, whose callers order them.
unsafe impl Send for DeviceBuffer {}
// SAFETY: as above; `&DeviceBuffer` gives only the address and the size.
unsafe impl Sync for DeviceBuffer {}

impl DeviceBuffer {
    fn new(bytes: usize, fill: u8) -> DeviceBuffer {
        let page = page_size();
        let mapped = (GUARD + bytes).div_ceil(page) * page + page;
        // SAFETY: an anonymous private mapping, owned by the buffer until it is dropped.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(
            base != libc::MAP_FAILED,
            "the emulator could not map {mapped} bytes of memory"
        );
        let base = base as *mut u8;
        // SAFETY: all offsets lie inside the mapping; the last page becomes inaccessible and
        // the buffer's bytes end where it begins.
        let ptr = unsafe {
            let end = base.add(mapped - page);
            let status = libc::mprotect(end.cast(), page, libc::PROT_NONE);
            assert_eq!(status, 0, "the emulator could not protect a guard page");
            let ptr = end.sub(bytes);
            std::ptr::write_bytes(ptr.sub(GUARD), GUARD_BYTE, GUARD);
            std::ptr::write_bytes(ptr, fill, bytes);
            ptr
        };
        live().insert(ptr as usize, bytes);
        DeviceBuffer {
            base,
            mapped,
            ptr,
            bytes,
        }
    }

    /// The address of the first byte, as kernels take it.
    pub fn ptr(&self) -> u64 {
        self.ptr as u64
    }

    /// The size requested.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        live().remove(&(self.ptr as usize));
        // SAFETY: `base` and `mapped` describe the mapping this buffer owns; nothing uses it
        // after the buffer is dropped.
        unsafe { libc::munmap(self.base.cast(), self.mapped) };
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
    fn a_read_past_the_end_is_an_error_naming_the_thread_and_the_buffer() {
        let gpu = Gpu::get(0).unwrap();
        let (x, out) = (gpu.alloc(10 * 4).unwrap(), gpu.alloc(10 * 4).unwrap());
        let (xp, op, n) = (x.ptr(), out.ptr(), 10u64);
        // SAFETY: the kernel reads x[1..=10] of a buffer of 10 floats; the read of x[10] hits
        // the inaccessible page after the buffer, which the runtime turns into an error.
        let err = unsafe {
            run(
                "emu_test_read_past_end",
                cfg((1, 1, 1), (32, 1, 1)),
                &[&xp, &op, &n],
            )
        }
        .unwrap_err();
        assert!(
            err.contains("thread (9, 0, 0) touched address")
                && err.contains("(0 bytes past the end of a buffer of 40 bytes)"),
            "{err}"
        );
        // The runtime goes on after a fault.
        let sums = gpu.alloc(32 * 3 * 8).unwrap();
        let ptr = sums.ptr();
        // SAFETY: `emu_test_block_sum(out)` writes 3 u64 per thread of the grid.
        unsafe { run("emu_test_block_sum", cfg((1, 1, 1), (32, 1, 1)), &[&ptr]) }.unwrap();
        assert_eq!(download_u64(&gpu, &sums, 96)[95], 31 * 32 / 2);
    }

    #[test]
    fn a_write_past_the_end_is_an_error() {
        let gpu = Gpu::get(0).unwrap();
        let out = gpu.alloc(10 * 4).unwrap();
        let (ptr, n) = (out.ptr(), 10u64);
        // SAFETY: the kernel writes 11 floats into a buffer of 10; the last write hits the
        // inaccessible page after the buffer, which the runtime turns into an error.
        let err = unsafe {
            run(
                "emu_test_write_past_end",
                cfg((1, 1, 1), (32, 1, 1)),
                &[&ptr, &n],
            )
        }
        .unwrap_err();
        assert!(
            err.contains("thread (10, 0, 0) touched address")
                && err.contains("(0 bytes past the end of a buffer of 40 bytes)"),
            "{err}"
        );
    }

    #[test]
    fn a_write_before_the_start_is_caught_by_the_guard() {
        let gpu = Gpu::get(0).unwrap();
        let out = gpu.alloc(10 * 4).unwrap();
        let ptr = out.ptr();
        // SAFETY: the kernel writes the float before the buffer, into guard bytes that the
        // mapping owns.
        let err = unsafe {
            run(
                "emu_test_write_before_start",
                cfg((1, 1, 1), (32, 1, 1)),
                &[&ptr],
            )
        }
        .unwrap_err();
        assert!(
            err.contains("kernel emu_test_write_before_start wrote before a buffer of 40 bytes"),
            "{err}"
        );
    }

    /// Recurses until the stack overflows.
    fn overflow(depth: u64) -> u64 {
        let frame = std::hint::black_box([depth; 512]);
        if depth == u64::MAX {
            return frame[0];
        }
        overflow(depth + 1) + frame[1]
    }

    #[test]
    fn a_fault_outside_kernels_reaches_the_previous_handler() {
        const CHILD: &str = "EMULATOR_TEST_OVERFLOW_CHILD";
        let gpu = Gpu::get(0).unwrap();
        let out = gpu.alloc(32 * 3 * 8).unwrap();
        let ptr = out.ptr();
        // SAFETY: `emu_test_block_sum(out)` writes 3 u64 per thread of the grid. The launch
        // installs the runtime's SIGSEGV handler.
        unsafe { run("emu_test_block_sum", cfg((1, 1, 1), (32, 1, 1)), &[&ptr]) }.unwrap();
        if std::env::var_os(CHILD).is_some() {
            overflow(0);
            return;
        }
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "emulator::tests::a_fault_outside_kernels_reaches_the_previous_handler",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&child.stderr);
        assert!(!child.status.success(), "the child did not fail: {stderr}");
        assert!(
            stderr.contains("has overflowed its stack"),
            "Rust's handler did not report the overflow: {stderr}"
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
