//! One GPU: its context and stream, its kernels, its memory and cuBLAS.
//!
//! [`Gpu::get`] opens a device once per process and hands out the same [`Gpu`] afterwards. It
//! checks each library before `cudarc` uses it, so on a machine without a driver, a device or
//! a matching NVRTC it returns an error of one sentence instead of panicking. All work of a
//! device runs in order on its one stream; host reads wait for it.

use crate::alloc::{DeviceBuffer, Pool};
use crate::cublas::Cublas;
use crate::nvrtc::{self, Nvrtc};
use crate::profile::{KernelTime, Totals};
use crate::{cache, libs, lock, Family, Result};
use crate::{DeviceInfo, KernelArg};
use cudarc::driver::{
    result::{self as driver, DriverError},
    sys, CudaContext, CudaEvent, CudaFunction, CudaModule, CudaStream, LaunchConfig,
};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// One opened device.
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    pool: Arc<Pool>,
    nvrtc: Nvrtc,
    info: DeviceInfo,
    modules: Mutex<HashMap<Family, Arc<CudaModule>>>,
    functions: Mutex<HashMap<(Family, &'static str), CudaFunction>>,
    blas: Option<Mutex<Cublas>>,
    profile: Mutex<Option<Profile>>,
}

/// Launches timed while profiling is on: event pairs not yet read, and the sums of those read.
#[derive(Default)]
struct Profile {
    pending: Vec<(String, CudaEvent, CudaEvent)>,
    totals: Totals,
    /// Milliseconds the host spent blocked on the stream (reads back, synchronizations).
    waited_ms: f64,
}

/// Event pairs kept unread before they are read (which waits for the stream), so a long
/// profiled run holds a bounded number of events.
const MAX_PENDING_EVENTS: usize = 8192;

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gpu({})", self.info)
    }
}

/// A driver error as "what: CUDA_ERROR_NAME (description)".
pub fn driver_error(what: &str, e: DriverError) -> String {
    let name = e.error_name().map(|s| s.to_string_lossy().into_owned());
    let text = e.error_string().map(|s| s.to_string_lossy().into_owned());
    match (name, text) {
        (Ok(n), Ok(t)) => format!("{what}: {n} ({t})"),
        _ => format!("{what}: {e:?}"),
    }
}

/// The devices opened so far, and the errors of those that could not be.
type Registry = Mutex<HashMap<usize, Result<Arc<Gpu>>>>;

/// Opens device 0 and describes it, or says in one sentence why CUDA cannot be used here.
pub fn probe() -> Result<DeviceInfo> {
    Gpu::get(0).map(|g| g.info().clone())
}

impl Gpu {
    /// Device `ordinal`, opened on first use; later calls return the same device (or the same
    /// error).
    pub fn get(ordinal: usize) -> Result<Arc<Gpu>> {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        let registry = REGISTRY.get_or_init(Default::default);
        let mut map = lock(registry);
        map.entry(ordinal)
            .or_insert_with(|| Gpu::open_guarded(ordinal).map(Arc::new))
            .clone()
    }

    /// [`Gpu::open`], with any panic from the CUDA bindings turned into an error.
    fn open_guarded(ordinal: usize) -> Result<Gpu> {
        let opened = std::panic::catch_unwind(|| Gpu::open(ordinal));
        let result = opened.unwrap_or_else(|panic| {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!(
                "the CUDA bindings failed while opening the device ({msg})"
            ))
        });
        result.map_err(|e| format!("CUDA is unavailable: {e}."))
    }

    fn open(ordinal: usize) -> Result<Gpu> {
        let driver_lib = libs::driver_library()?;
        let driver_cuda = libs::driver_version(&driver_lib)?;
        driver::init().map_err(|e| driver_error("the NVIDIA driver failed to initialize", e))?;
        let count =
            CudaContext::device_count().map_err(|e| driver_error("counting devices failed", e))?;
        if ordinal >= count.max(0) as usize {
            return Err(format!(
                "there is no CUDA device {ordinal} (this machine has {count})"
            ));
        }
        let ctx =
            CudaContext::new(ordinal).map_err(|e| driver_error("opening the device failed", e))?;
        // SAFETY: all work of this context runs on one stream (below), so the per-buffer events
        // that order work across streams are not needed; this is called before any allocation.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        let name = ctx
            .name()
            .map_err(|e| driver_error("reading the device name failed", e))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| driver_error("reading the compute capability failed", e))?;
        let memory_bytes = ctx
            .total_mem()
            .map_err(|e| driver_error("reading the memory size failed", e))?;
        let nvrtc = nvrtc::select(Some(driver_cuda))?;
        let arch = nvrtc.arch_for((10 * major + minor) as u32)?;
        ctx.bind_to_thread()
            .map_err(|e| driver_error("binding the CUDA context failed", e))?;
        let blas = Cublas::open(driver_cuda, stream.cu_stream().cast());
        let info = DeviceInfo {
            ordinal,
            name,
            compute_capability: (major, minor),
            memory_bytes,
            driver_cuda,
            nvrtc: format!("{nvrtc:?}"),
            arch,
            cublas: blas
                .as_ref()
                .map(|b| format!("{b:?}"))
                .map_err(Clone::clone),
        };
        Ok(Gpu {
            pool: Pool::new(stream.clone()),
            ctx,
            stream,
            nvrtc,
            info,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            blas: blas.ok().map(Mutex::new),
            profile: Mutex::new(None),
        })
    }

    /// What was found when the device was opened.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The device's stream.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The cuBLAS handle, if cuBLAS could be loaded.
    pub fn blas(&self) -> Option<MutexGuard<'_, Cublas>> {
        self.blas.as_ref().map(lock)
    }

    /// Makes this device's context current on the calling thread.
    pub fn bind(&self) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| driver_error("binding the CUDA context failed", e))
    }

    /// The loaded module of `family`, compiling (or reading the cached PTX) on first use.
    fn module(&self, family: Family) -> Result<Arc<CudaModule>> {
        if let Some(m) = lock(&self.modules).get(&family) {
            return Ok(m.clone());
        }
        let ptx = cache::ptx(family, self.info.arch, &self.nvrtc)?;
        let module = self
            .ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
            .map_err(|e| {
                driver_error(
                    &format!("loading the PTX of {}.cu failed", family.name()),
                    e,
                )
            })?;
        Ok(lock(&self.modules).entry(family).or_insert(module).clone())
    }

    /// The kernel `name` of `family`; the name must be one of [`Family::kernels`].
    pub fn function(&self, family: Family, name: &str) -> Result<CudaFunction> {
        let name: &'static str = family
            .kernels()
            .iter()
            .find(|&&k| k == name)
            .ok_or_else(|| format!("{}.cu has no kernel {name}", family.name()))?;
        if let Some(f) = lock(&self.functions).get(&(family, name)) {
            return Ok(f.clone());
        }
        let f = self
            .module(family)?
            .load_function(name)
            .map_err(|e| driver_error(&format!("loading kernel {name} failed"), e))?;
        Ok(lock(&self.functions)
            .entry((family, name))
            .or_insert(f)
            .clone())
    }

    /// Queues kernel `name` of `family` on the stream.
    ///
    /// # Safety
    /// `args` must match the kernel's parameter list in number, order and types, and every
    /// device address among them must point to memory that stays allocated until the kernel
    /// has run and that is large enough for every access the kernel makes with these
    /// arguments and `cfg`.
    pub unsafe fn launch(
        &self,
        family: Family,
        name: &str,
        cfg: LaunchConfig,
        args: &[&dyn KernelArg],
    ) -> Result<()> {
        let f = self.function(family, name)?;
        if cfg.shared_mem_bytes > 48 * 1024 {
            f.set_attribute(
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                cfg.shared_mem_bytes as i32,
            )
            .map_err(|e| {
                driver_error(
                    &format!(
                        "{name} needs {} bytes of shared memory",
                        cfg.shared_mem_bytes
                    ),
                    e,
                )
            })?;
        }
        let mut params: Vec<*mut c_void> = args.iter().map(|a| a.as_param()).collect();
        self.bind()?;
        self.timed(
            || name.to_string(),
            || {
                // SAFETY: the parameters match the kernel and its memory is valid (this function's
                // contract); `params` points at values that live until the call returns, and the
                // launch copies them.
                unsafe {
                    driver::launch_kernel(
                        f.cu_function(),
                        cfg.grid_dim,
                        cfg.block_dim,
                        cfg.shared_mem_bytes,
                        self.stream.cu_stream(),
                        &mut params,
                    )
                }
                .map_err(|e| driver_error(&format!("launching {name} failed"), e))
            },
        )
    }

    /// Starts (clearing what was timed before) or stops timing every kernel; see
    /// [`crate::profile`].
    pub fn set_profiling(&self, on: bool) {
        *lock(&self.profile) = on.then(Profile::default);
    }

    /// Time per kernel since profiling was started, most first, once the queued work has run;
    /// empty when profiling is off.
    pub fn kernel_times(&self) -> Result<Vec<KernelTime>> {
        let mut profile = lock(&self.profile);
        let Some(p) = profile.as_mut() else {
            return Ok(vec![]);
        };
        read_events(p)?;
        Ok(p.totals.rows())
    }

    /// Milliseconds the host spent waiting for this device's queued work (in reads back to the
    /// host, uploads from it, and synchronizations) since profiling was started; 0 when
    /// profiling is off. With [`Gpu::kernel_times`] it tells a GPU-bound run (the host mostly
    /// waits) from a host-bound one (the GPU mostly waits).
    pub fn host_wait_ms(&self) -> f64 {
        lock(&self.profile).as_ref().map_or(0.0, |p| p.waited_ms)
    }

    /// Runs `wait`, which blocks until queued work is done; while profiling, the time it took
    /// counts toward [`Gpu::host_wait_ms`].
    fn waiting(&self, wait: impl FnOnce() -> Result<()>) -> Result<()> {
        let start = std::time::Instant::now();
        let result = wait();
        if let Some(p) = lock(&self.profile).as_mut() {
            p.waited_ms += start.elapsed().as_secs_f64() * 1e3;
        }
        result
    }

    /// Runs `queue`, which queues one kernel or library call on the stream; while profiling,
    /// between two events, counted under `name()` (called only then).
    pub(crate) fn timed(
        &self,
        name: impl FnOnce() -> String,
        queue: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let mut profile = lock(&self.profile);
        let Some(p) = profile.as_mut() else {
            drop(profile);
            return queue();
        };
        let start = self.recorded_event()?;
        queue()?;
        let end = self.recorded_event()?;
        p.pending.push((name(), start, end));
        if p.pending.len() >= MAX_PENDING_EVENTS {
            read_events(p)?;
        }
        Ok(())
    }

    /// A timing event recorded on the stream now.
    fn recorded_event(&self) -> Result<CudaEvent> {
        let event = self
            .ctx
            .new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(|e| driver_error("creating a timing event failed", e))?;
        event
            .record(&self.stream)
            .map_err(|e| driver_error("recording a timing event failed", e))?;
        Ok(event)
    }

    /// `bytes` of device memory with unspecified contents, from the caching allocator.
    pub fn alloc(&self, bytes: usize) -> Result<DeviceBuffer> {
        self.bind()?;
        self.pool.alloc(bytes)
    }

    /// `bytes` of zeroed device memory.
    pub fn alloc_zeroed(&self, bytes: usize) -> Result<DeviceBuffer> {
        let buf = self.alloc(bytes)?;
        if bytes > 0 {
            // SAFETY: the buffer holds at least `bytes` bytes and lives past the queued memset
            // (it is only reused after later work on the same stream).
            unsafe { driver::memset_d8_async(buf.ptr(), 0, bytes, self.stream.cu_stream()) }
                .map_err(|e| driver_error("zeroing device memory failed", e))?;
        }
        Ok(buf)
    }

    /// A device copy of host bytes.
    pub fn upload(&self, host: &[u8]) -> Result<DeviceBuffer> {
        let mut buf = self.alloc(host.len())?;
        if !host.is_empty() {
            // From pageable memory the copy waits for the stream (cudarc synchronizes it).
            self.waiting(|| {
                self.stream
                    .memcpy_htod(host, buf.slice_mut())
                    .map_err(|e| driver_error("copying to the device failed", e))
            })?;
        }
        Ok(buf)
    }

    /// Copies the first `host.len()` bytes of `buf` into `host`, waiting for queued work.
    pub fn download(&self, buf: &DeviceBuffer, host: &mut [u8]) -> Result<()> {
        assert!(
            host.len() <= buf.bytes(),
            "download past the end of a device buffer"
        );
        if !host.is_empty() {
            self.bind()?;
            let view = buf.slice().slice(..host.len());
            self.waiting(|| {
                self.stream
                    .memcpy_dtoh(&view, host)
                    .map_err(|e| driver_error("copying from the device failed", e))
            })?;
        }
        self.synchronize()
    }

    /// Copies `bytes` bytes between device addresses, queued on the stream.
    ///
    /// # Safety
    /// Both ranges must lie in live device buffers and must not overlap.
    pub unsafe fn copy(&self, dst: u64, src: u64, bytes: usize) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        self.bind()?;
        // SAFETY: forwarded from this function's contract.
        unsafe { driver::memcpy_dtod_async(dst, src, bytes, self.stream.cu_stream()) }
            .map_err(|e| driver_error("copying on the device failed", e))
    }

    /// Waits until all queued work has run; reports an error a kernel raised.
    pub fn synchronize(&self) -> Result<()> {
        self.waiting(|| {
            self.stream
                .synchronize()
                .map_err(|e| driver_error("the device reported an error", e))
        })
    }

    /// Bytes the caching allocator holds for reuse.
    pub fn cached_bytes(&self) -> usize {
        self.pool.cached_bytes()
    }
}

/// Waits for the pending event pairs of `p` and adds their times to its totals.
fn read_events(p: &mut Profile) -> Result<()> {
    for (name, start, end) in p.pending.drain(..) {
        let ms = start
            .elapsed_ms(&end)
            .map_err(|e| driver_error("reading a timing event failed", e))?;
        p.totals.add(&name, f64::from(ms));
    }
    Ok(())
}
