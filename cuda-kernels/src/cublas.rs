//! cuBLAS, loaded from a chosen library file: a handle on the device's stream and the two
//! strided batched GEMMs (`f32`, `f64`).
//!
//! A machine may hold several cuBLAS libraries (a CUDA toolkit's, PyTorch's wheels, ...), and
//! a cuBLAS needs a driver of at least its own major CUDA version. [`candidates`] opens every
//! `libcublas` it can find and reads its version; [`Cublas::open`] keeps the newest one the
//! driver supports that creates a handle.
//!
//! The binding is written here (seven functions through `libloading`) rather than taken from
//! `cudarc::cublas`, because that one looks only for the sonames of the CUDA version it was
//! built for, so a machine with nothing but CUDA 13's `libcublas.so.13`, or with its cuBLAS in
//! a Python wheel outside the loader's path, would go without.

use crate::libs;
use crate::Result;
use libloading::Library;
use std::ffi::{c_char, c_int, c_longlong, c_void, CStr};
use std::path::{Path, PathBuf};

type Handle = *mut c_void;
type Status = c_int;

/// How cuBLAS reads a column-major operand (`cublasOperation_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub enum Op {
    /// As stored.
    N = 0,
    /// Transposed.
    T = 1,
}

/// `cublas<t>gemmStridedBatched`: `C[i] = alpha op(A[i]) op(B[i]) + beta C[i]`, column-major,
/// for `i < batch`, each operand given by its address, leading dimension and batch stride.
pub type GemmFn<T> = unsafe extern "C" fn(
    Handle,
    Op,
    Op,
    c_int,
    c_int,
    c_int,
    *const T,
    *const T,
    c_int,
    c_longlong,
    *const T,
    c_int,
    c_longlong,
    *const T,
    *mut T,
    c_int,
    c_longlong,
    c_int,
) -> Status;

/// The GEMM entry points of one cuBLAS library.
#[derive(Clone, Copy)]
pub struct Gemms {
    s: GemmFn<f32>,
    d: GemmFn<f64>,
}

/// Element types cuBLAS multiplies here: `f32` and `f64`.
pub trait Scalar: Copy {
    /// `1` of this type.
    const ONE: Self;
    /// `0` of this type.
    const ZERO: Self;
    /// This type's entry point among `gemms`.
    fn gemm_fn(gemms: &Gemms) -> GemmFn<Self>;
}

impl Scalar for f32 {
    const ONE: Self = 1.0;
    const ZERO: Self = 0.0;
    fn gemm_fn(gemms: &Gemms) -> GemmFn<f32> {
        gemms.s
    }
}

impl Scalar for f64 {
    const ONE: Self = 1.0;
    const ZERO: Self = 0.0;
    fn gemm_fn(gemms: &Gemms) -> GemmFn<f64> {
        gemms.d
    }
}

/// The cuBLAS entry points this crate uses.
struct Api {
    create: unsafe extern "C" fn(*mut Handle) -> Status,
    destroy: unsafe extern "C" fn(Handle) -> Status,
    set_stream: unsafe extern "C" fn(Handle, *mut c_void) -> Status,
    get_property: unsafe extern "C" fn(c_int, *mut c_int) -> Status,
    status_name: Option<unsafe extern "C" fn(Status) -> *const c_char>,
    gemms: Gemms,
}

/// One opened cuBLAS library (no handle yet).
pub struct CublasLibrary {
    api: Api,
    path: PathBuf,
    version: (i32, i32, i32),
    // Keep the libraries mapped while `api` points into them; declared last, dropped last.
    _lib: Library,
    _lt: Option<Library>,
}

impl std::fmt::Debug for CublasLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b, c) = self.version;
        write!(f, "cuBLAS {a}.{b}.{c} ({})", self.path.display())
    }
}

impl CublasLibrary {
    /// Opens the library at `path` (a file or a soname), with the `libcublasLt` beside it that
    /// it links against, and reads its version.
    pub fn open(path: &Path) -> Result<CublasLibrary> {
        // SAFETY: `libcublasLt` is cuBLAS's own companion library; loading it only maps it.
        // Loaded first, it satisfies `libcublas`'s dependency even where the loader's path
        // does not reach this directory.
        let lt = lt_beside(path).and_then(|p| unsafe { libs::open(&p) }.ok());
        // SAFETY: the candidates are cuBLAS libraries; loading one only maps it.
        let lib = unsafe { libs::open(path) }?;
        let missing =
            |e: libloading::Error| format!("{} is not a usable cuBLAS ({e})", path.display());
        // SAFETY: each symbol is looked up under its documented cuBLAS name, with the
        // signature cuBLAS's header declares for it (unchanged from CUDA 11 to 13).
        let api = unsafe {
            Api {
                create: *lib.get(b"cublasCreate_v2\0").map_err(missing)?,
                destroy: *lib.get(b"cublasDestroy_v2\0").map_err(missing)?,
                set_stream: *lib.get(b"cublasSetStream_v2\0").map_err(missing)?,
                get_property: *lib.get(b"cublasGetProperty\0").map_err(missing)?,
                status_name: lib.get(b"cublasGetStatusName\0").ok().map(|f| *f),
                gemms: Gemms {
                    s: *lib.get(b"cublasSgemmStridedBatched\0").map_err(missing)?,
                    d: *lib.get(b"cublasDgemmStridedBatched\0").map_err(missing)?,
                },
            }
        };
        let mut out = CublasLibrary {
            api,
            path: path.to_path_buf(),
            version: (0, 0, 0),
            _lib: lib,
            _lt: lt,
        };
        // `libraryPropertyType`: MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL.
        let mut v = [0 as c_int; 3];
        for (property, place) in v.iter_mut().enumerate() {
            // SAFETY: `place` is a valid place for one integer.
            let status = unsafe { (out.api.get_property)(property as c_int, place) };
            out.check(status, "cublasGetProperty")?;
        }
        out.version = (v[0], v[1], v[2]);
        Ok(out)
    }

    /// `(major, minor, patch)` version of this cuBLAS.
    pub fn version(&self) -> (i32, i32, i32) {
        self.version
    }

    fn check(&self, status: Status, what: &str) -> Result<()> {
        if status == 0 {
            return Ok(());
        }
        let name = self.api.status_name.map(|f| {
            // SAFETY: cublasGetStatusName returns a static NUL-terminated string for any status.
            unsafe { CStr::from_ptr(f(status)) }
                .to_string_lossy()
                .into_owned()
        });
        Err(match name {
            Some(n) => format!("{what} failed: {n}"),
            None => format!("{what} failed with cuBLAS status {status}"),
        })
    }
}

/// The `libcublasLt` in the same directory as the `libcublas` file `path`, with the same
/// version suffix; `None` for a bare soname or when there is none.
fn lt_beside(path: &Path) -> Option<PathBuf> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    let suffix = path.file_name()?.to_str()?.strip_prefix("libcublas")?;
    let lt = dir.join(format!("libcublasLt{suffix}"));
    lt.is_file().then_some(lt)
}

/// Every cuBLAS this machine has, one per version, newest first: the library files found by
/// [`libs::find`] and the sonames the loader resolves.
pub fn candidates() -> Vec<CublasLibrary> {
    let mut paths = libs::find("cublas");
    paths.extend(
        [
            "libcublas.so.13",
            "libcublas.so.12",
            "libcublas.so.11",
            "libcublas.so",
        ]
        .map(PathBuf::from),
    );
    let mut found: Vec<CublasLibrary> = vec![];
    for p in paths {
        let Ok(lib) = CublasLibrary::open(&p) else {
            continue;
        };
        if !found.iter().any(|f| f.version == lib.version) {
            found.push(lib);
        }
    }
    found.sort_by_key(|lib| std::cmp::Reverse(lib.version));
    found
}

/// A cuBLAS handle whose work runs on one stream.
pub struct Cublas {
    handle: Handle,
    lib: CublasLibrary,
}

// SAFETY: a cuBLAS handle may be used from any thread whose current context is the one it was
// created in (callers bind it first); `Gpu` serializes its use behind a mutex.
unsafe impl Send for Cublas {}

impl std::fmt::Debug for Cublas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.lib.fmt(f)
    }
}

impl Cublas {
    /// A handle from the newest cuBLAS whose major version the driver (supporting CUDA
    /// `driver`) runs, on `stream`; the current thread must have the device's context bound.
    /// The error says what was found and why none serves.
    pub fn open(driver: (i32, i32), stream: *mut c_void) -> Result<Cublas> {
        let found = candidates();
        if found.is_empty() {
            return Err("no cuBLAS library (libcublas.so) was found".into());
        }
        let mut why = vec![];
        for lib in found {
            if lib.version.0 > driver.0 {
                why.push(format!("{lib:?} needs a driver for CUDA {}", lib.version.0));
                continue;
            }
            match Cublas::with_library(lib, stream) {
                Ok(blas) => return Ok(blas),
                Err(e) => why.push(e),
            }
        }
        Err(why.join("; "))
    }

    fn with_library(lib: CublasLibrary, stream: *mut c_void) -> Result<Cublas> {
        let mut handle: Handle = std::ptr::null_mut();
        // SAFETY: `handle` is a valid place for the handle cublasCreate writes.
        let status = unsafe { (lib.api.create)(&mut handle) };
        lib.check(status, &format!("{lib:?}: cublasCreate"))?;
        let blas = Cublas { handle, lib };
        // SAFETY: `handle` is live and `stream` is a stream of the current context.
        let status = unsafe { (blas.lib.api.set_stream)(blas.handle, stream) };
        blas.lib.check(status, "cublasSetStream")?;
        Ok(blas)
    }

    /// `C[i] (m x n) = A[i] (op_a: m x k) B[i] (op_b: k x n)` for `i < batch`, column-major,
    /// each operand `(address, leading dimension, batch stride)`, queued on the handle's
    /// stream.
    ///
    /// # Safety
    /// Every matrix the arguments describe lies in live device memory of type `T`, and the
    /// handle's context is current on this thread.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm<T: Scalar>(
        &self,
        ops: (Op, Op),
        [m, n, k]: [c_int; 3],
        a: (u64, c_int, c_longlong),
        b: (u64, c_int, c_longlong),
        c: (u64, c_int, c_longlong),
        batch: c_int,
    ) -> Result<()> {
        let (one, zero) = (T::ONE, T::ZERO);
        // SAFETY: the operands are this function's contract; `one` and `zero` outlive the
        // call (the default pointer mode reads them on the host before it returns).
        let status = unsafe {
            T::gemm_fn(&self.lib.api.gemms)(
                self.handle,
                ops.0,
                ops.1,
                m,
                n,
                k,
                &one,
                a.0 as *const T,
                a.1,
                a.2,
                b.0 as *const T,
                b.1,
                b.2,
                &zero,
                c.0 as *mut T,
                c.1,
                c.2,
                batch,
            )
        };
        self.lib.check(status, "cublas<t>gemmStridedBatched")
    }
}

impl Drop for Cublas {
    fn drop(&mut self) {
        // SAFETY: the handle was created by this library and is destroyed exactly once.
        unsafe { (self.lib.api.destroy)(self.handle) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lt_is_looked_for_beside_the_file() {
        let dir = std::env::temp_dir().join(format!("cublas-lt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("libcublasLt.so.13"), b"").unwrap();
        assert_eq!(
            lt_beside(&dir.join("libcublas.so.13")),
            Some(dir.join("libcublasLt.so.13"))
        );
        assert_eq!(lt_beside(&dir.join("libcublas.so.12")), None);
        assert_eq!(lt_beside(Path::new("libcublas.so.13")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The major version in a file name like `libcublas.so.13.1.0.3`, if it has one.
    fn major_in_name(path: &Path) -> Option<i32> {
        let name = path.file_name()?.to_str()?;
        name.strip_prefix("libcublas.so.")?
            .split('.')
            .next()?
            .parse()
            .ok()
    }

    #[test]
    fn every_cublas_found_opens_with_the_version_its_name_says() {
        let files = libs::find("cublas");
        if files.is_empty() {
            eprintln!("skipped: no libcublas file on this machine");
            return;
        }
        for file in files {
            let lib = CublasLibrary::open(&file).unwrap();
            eprintln!("{lib:?}");
            if let Some(major) = major_in_name(&file) {
                assert_eq!(lib.version().0, major, "{}", file.display());
            }
        }
        let versions: Vec<_> = candidates().iter().map(|l| l.version()).collect();
        assert!(versions.windows(2).all(|w| w[0] > w[1]), "{versions:?}");
    }

    #[test]
    fn an_older_driver_rules_out_each_newer_cublas_by_name() {
        let found = candidates();
        let err = Cublas::open((1, 0), std::ptr::null_mut()).unwrap_err();
        if found.is_empty() {
            assert_eq!(err, "no cuBLAS library (libcublas.so) was found");
        }
        for lib in found {
            assert!(
                err.contains(&format!(
                    "{lib:?} needs a driver for CUDA {}",
                    lib.version().0
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn without_a_driver_each_cublas_fails_to_create_a_handle_with_an_error() {
        if libs::driver_library().is_ok() {
            eprintln!("skipped: this machine has an NVIDIA driver");
            return;
        }
        let found = candidates();
        let Err(err) = Cublas::open((99, 0), std::ptr::null_mut()) else {
            panic!("a cuBLAS handle was created without a driver");
        };
        for lib in found {
            assert!(
                err.contains(&format!("{lib:?}: cublasCreate failed")),
                "{err}"
            );
        }
    }
}
