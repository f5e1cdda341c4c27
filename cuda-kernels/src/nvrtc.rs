//! NVRTC, the CUDA runtime compiler, loaded from a chosen library file.
//!
//! PTX from an NVRTC newer than the driver's CUDA version does not load, and a machine often
//! has several NVRTCs (a toolkit, PyTorch's wheels, ...). [`select`] therefore opens every
//! `libnvrtc` it can find, asks each for its version, and keeps the newest one that is not
//! newer than the driver; with no driver (a CPU-only machine compiling to check the sources)
//! it keeps the newest. `CUDA_KERNELS_NVRTC` names a library file to use instead.
//!
//! The binding is written here (nine functions through `libloading`) rather than taken from
//! `cudarc::nvrtc`, because that one loads whichever `libnvrtc` the dynamic loader finds first
//! and panics when there is none; choosing among several needs each opened by path.

use crate::libs;
use crate::Result;
use libloading::Library;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};

/// Environment variable naming the `libnvrtc` file to use.
pub const NVRTC_ENV: &str = "CUDA_KERNELS_NVRTC";

type Program = *mut c_void;
type Status = c_int;

/// The NVRTC entry points this crate uses.
struct Api {
    version: unsafe extern "C" fn(*mut c_int, *mut c_int) -> Status,
    create: unsafe extern "C" fn(
        *mut Program,
        *const c_char,
        *const c_char,
        c_int,
        *const *const c_char,
        *const *const c_char,
    ) -> Status,
    compile: unsafe extern "C" fn(Program, c_int, *const *const c_char) -> Status,
    ptx_size: unsafe extern "C" fn(Program, *mut usize) -> Status,
    ptx: unsafe extern "C" fn(Program, *mut c_char) -> Status,
    log_size: unsafe extern "C" fn(Program, *mut usize) -> Status,
    log: unsafe extern "C" fn(Program, *mut c_char) -> Status,
    destroy: unsafe extern "C" fn(*mut Program) -> Status,
    error_string: unsafe extern "C" fn(Status) -> *const c_char,
    num_archs: unsafe extern "C" fn(*mut c_int) -> Status,
    archs: unsafe extern "C" fn(*mut c_int) -> Status,
}

/// One opened NVRTC library.
pub struct Nvrtc {
    api: Api,
    path: PathBuf,
    version: (i32, i32),
    // Keeps the library mapped while `api` points into it; declared last, dropped last.
    _lib: Library,
}

// SAFETY: NVRTC's functions are thread safe (each compilation uses its own program object),
// and the struct holds only function pointers and the library handle.
unsafe impl Send for Nvrtc {}
// SAFETY: as above; nothing in `Nvrtc` is mutated after it is opened.
unsafe impl Sync for Nvrtc {}

impl std::fmt::Debug for Nvrtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NVRTC {}.{} ({})",
            self.version.0,
            self.version.1,
            self.path.display()
        )
    }
}

impl Nvrtc {
    /// Opens the library at `path` (a file or a soname) and reads its version.
    pub fn open(path: &Path) -> Result<Nvrtc> {
        // SAFETY: the candidates are NVRTC libraries; loading one only maps it.
        let lib = unsafe { libs::open(path) }?;
        let missing =
            |e: libloading::Error| format!("{} is not a usable NVRTC ({e})", path.display());
        // SAFETY: each symbol is looked up under its documented NVRTC name, with the signature
        // that NVRTC's header declares for it (unchanged since CUDA 11.2).
        let api = unsafe {
            Api {
                version: *lib.get(b"nvrtcVersion\0").map_err(missing)?,
                create: *lib.get(b"nvrtcCreateProgram\0").map_err(missing)?,
                compile: *lib.get(b"nvrtcCompileProgram\0").map_err(missing)?,
                ptx_size: *lib.get(b"nvrtcGetPTXSize\0").map_err(missing)?,
                ptx: *lib.get(b"nvrtcGetPTX\0").map_err(missing)?,
                log_size: *lib.get(b"nvrtcGetProgramLogSize\0").map_err(missing)?,
                log: *lib.get(b"nvrtcGetProgramLog\0").map_err(missing)?,
                destroy: *lib.get(b"nvrtcDestroyProgram\0").map_err(missing)?,
                error_string: *lib.get(b"nvrtcGetErrorString\0").map_err(missing)?,
                num_archs: *lib.get(b"nvrtcGetNumSupportedArchs\0").map_err(missing)?,
                archs: *lib.get(b"nvrtcGetSupportedArchs\0").map_err(missing)?,
            }
        };
        let (mut major, mut minor) = (0, 0);
        // SAFETY: both pointers are valid places for one integer each.
        let status = unsafe { (api.version)(&mut major, &mut minor) };
        let mut nvrtc = Nvrtc {
            api,
            path: path.to_path_buf(),
            version: (0, 0),
            _lib: lib,
        };
        nvrtc.check(status, "nvrtcVersion")?;
        nvrtc.version = (major, minor);
        Ok(nvrtc)
    }

    /// `(major, minor)` CUDA version of this NVRTC.
    pub fn version(&self) -> (i32, i32) {
        self.version
    }

    /// The library file (or soname) it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Virtual architectures this NVRTC can compile for, as `10 * major + minor` (e.g. 90).
    pub fn supported_archs(&self) -> Result<Vec<u32>> {
        let mut n: c_int = 0;
        // SAFETY: `n` is a valid place for one integer.
        self.check(
            unsafe { (self.api.num_archs)(&mut n) },
            "nvrtcGetNumSupportedArchs",
        )?;
        let mut archs = vec![0 as c_int; n.max(0) as usize];
        // SAFETY: `archs` has room for the `n` integers the function writes.
        self.check(
            unsafe { (self.api.archs)(archs.as_mut_ptr()) },
            "nvrtcGetSupportedArchs",
        )?;
        Ok(archs.into_iter().map(|a| a as u32).collect())
    }

    /// The newest architecture this NVRTC supports that does not exceed `device` (a compute
    /// capability as `10 * major + minor`); PTX for it runs on the device.
    pub fn arch_for(&self, device: u32) -> Result<u32> {
        let archs = self.supported_archs()?;
        archs
            .iter()
            .copied()
            .filter(|&a| a <= device)
            .max()
            .ok_or_else(|| {
                format!(
                    "NVRTC {}.{} cannot compile for compute capability {}.{} (it supports {:?})",
                    self.version.0,
                    self.version.1,
                    device / 10,
                    device % 10,
                    archs
                )
            })
    }

    /// Compiles one translation unit to PTX for `compute_{arch}`; a compile error returns the
    /// compiler's log.
    pub fn compile(&self, source: &str, name: &str, arch: u32) -> Result<String> {
        let src =
            CString::new(source).map_err(|_| format!("{name}: source contains a NUL byte"))?;
        let cname = CString::new(name).map_err(|_| format!("{name}: name contains a NUL byte"))?;
        let opts: Vec<CString> = [
            format!("--gpu-architecture=compute_{arch}"),
            "--std=c++17".to_string(),
        ]
        .into_iter()
        .map(|o| CString::new(o).expect("options have no NUL byte"))
        .collect();
        let opt_ptrs: Vec<*const c_char> = opts.iter().map(|o| o.as_ptr()).collect();
        let mut prog: Program = std::ptr::null_mut();
        // SAFETY: `src` and `cname` are NUL-terminated and outlive the call; no headers.
        let status = unsafe {
            (self.api.create)(
                &mut prog,
                src.as_ptr(),
                cname.as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        self.check(status, "nvrtcCreateProgram")?;
        let result = self.compile_program(prog, &opt_ptrs, name);
        // SAFETY: `prog` was created above and is destroyed exactly once.
        unsafe { (self.api.destroy)(&mut prog) };
        result
    }

    fn compile_program(&self, prog: Program, opts: &[*const c_char], name: &str) -> Result<String> {
        // SAFETY: `prog` is a live program; `opts` holds `opts.len()` valid C strings.
        let status = unsafe { (self.api.compile)(prog, opts.len() as c_int, opts.as_ptr()) };
        if status != 0 {
            return Err(format!(
                "NVRTC {}.{} failed to compile {name}:\n{}",
                self.version.0,
                self.version.1,
                self.read(prog, self.api.log_size, self.api.log)?
            ));
        }
        self.read(prog, self.api.ptx_size, self.api.ptx)
    }

    /// Reads a NUL-terminated output (the PTX or the log) of a compiled program.
    fn read(
        &self,
        prog: Program,
        size: unsafe extern "C" fn(Program, *mut usize) -> Status,
        get: unsafe extern "C" fn(Program, *mut c_char) -> Status,
    ) -> Result<String> {
        let mut n = 0usize;
        // SAFETY: `prog` is a live program and `n` a valid place for its output size.
        self.check(unsafe { size(prog, &mut n) }, "nvrtcGet*Size")?;
        let mut buf = vec![0u8; n.max(1)];
        // SAFETY: `buf` has room for the `n` bytes (terminating NUL included) NVRTC writes.
        self.check(unsafe { get(prog, buf.as_mut_ptr().cast()) }, "nvrtcGet*")?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
    }

    fn check(&self, status: Status, what: &str) -> Result<()> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: nvrtcGetErrorString returns a static NUL-terminated string for any status.
        let msg = unsafe { CStr::from_ptr((self.api.error_string)(status)) };
        Err(format!("{what} failed: {}", msg.to_string_lossy()))
    }
}

/// Every NVRTC this machine has: the file named by `CUDA_KERNELS_NVRTC` alone if it is set,
/// else the library files found by [`libs::find`] and the sonames the loader resolves.
pub fn candidates() -> Vec<Nvrtc> {
    if let Some(path) = std::env::var_os(NVRTC_ENV) {
        return Nvrtc::open(Path::new(&path)).into_iter().collect();
    }
    let mut paths = libs::find("nvrtc");
    paths.extend(
        [
            "libnvrtc.so.13",
            "libnvrtc.so.12",
            "libnvrtc.so.11.2",
            "libnvrtc.so",
        ]
        .map(PathBuf::from),
    );
    let mut found: Vec<Nvrtc> = vec![];
    for p in paths {
        let Ok(n) = Nvrtc::open(&p) else { continue };
        if !found.iter().any(|f| f.version == n.version) {
            found.push(n);
        }
    }
    found
}

/// The NVRTC to compile with for a driver supporting CUDA `driver` (`None`: no driver, keep
/// the newest), or an error naming what was found and what is needed.
pub fn select(driver: Option<(i32, i32)>) -> Result<Nvrtc> {
    let found = candidates();
    let names: Vec<String> = found.iter().map(|n| format!("{n:?}")).collect();
    let usable = found
        .into_iter()
        .filter(|n| driver.is_none_or(|d| n.version <= d));
    if let Some(best) = usable.max_by_key(|n| n.version) {
        return Ok(best);
    }
    let fix = format!(
        "install one matching the driver (e.g. `pip install nvidia-cuda-nvrtc-cu12`) or set {NVRTC_ENV} to its libnvrtc.so"
    );
    Err(match driver {
        Some((a, b)) if !names.is_empty() => format!(
            "the driver supports CUDA {a}.{b} but every NVRTC found is newer ({}), so its PTX would not load; {fix}",
            names.join(", ")
        ),
        _ => format!("no NVRTC library (libnvrtc.so) was found; {fix}"),
    })
}
