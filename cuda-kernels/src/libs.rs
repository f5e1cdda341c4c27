//! Finding the CUDA libraries of this machine at run time, without panicking when they are
//! absent.
//!
//! `cudarc` panics when it cannot load a library, so everything here loads a library itself
//! first (with `libloading`) and reports failure as an error. Libraries are looked for in the
//! dynamic loader's own search (bare sonames) and in the directories of [`search_dirs`]: the
//! loader path, CUDA toolkit installs, and Python environments, where the PyPI wheels
//! (`nvidia-cuda-nvrtc`, `nvidia-cuda-nvrtc-cu12`, `nvidia-cublas-cu12`, ...) put them under
//! `site-packages/nvidia/*/lib`.

use crate::Result;
use libloading::Library;
use std::ffi::c_int;
use std::path::{Path, PathBuf};

/// Extra directories to search, separated by `:`, before all others.
pub const LIB_DIRS_ENV: &str = "CUDA_KERNELS_LIB_DIRS";

/// Directories that may hold CUDA libraries, most specific first, each listed once.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = vec![];
    for var in [LIB_DIRS_ENV, "LD_LIBRARY_PATH"] {
        if let Ok(v) = std::env::var(var) {
            dirs.extend(std::env::split_paths(&v));
        }
    }
    for var in ["CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"] {
        if let Ok(v) = std::env::var(var) {
            dirs.push(Path::new(&v).join("lib64"));
            dirs.push(Path::new(&v).join("lib"));
        }
    }
    dirs.push("/usr/local/cuda/lib64".into());
    dirs.extend(children("/usr/local", |n| n.starts_with("cuda-")).map(|d| d.join("lib64")));
    for site in site_packages() {
        dirs.extend(children(&site.join("nvidia"), |_| true).map(|d| d.join("lib")));
    }
    for d in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/lib/wsl/lib",
    ] {
        dirs.push(d.into());
    }
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| d.is_dir() && seen.insert(d.clone()));
    dirs
}

/// Python `site-packages` (and `dist-packages`) directories of the usual environments: the
/// active virtual or conda environment, `PYTHONPATH`, the user's, pyenv's and the system's.
fn site_packages() -> Vec<PathBuf> {
    let mut prefixes: Vec<PathBuf> = vec![];
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Ok(v) = std::env::var(var) {
            prefixes.push(v.into());
        }
    }
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        prefixes.push(home.join(".local"));
        prefixes.extend(children(&home.join(".pyenv/versions"), |_| true));
    }
    prefixes.extend(["/usr/local".into(), "/usr".into(), "/opt/conda".into()]);
    let mut out: Vec<PathBuf> = vec![];
    if let Ok(v) = std::env::var("PYTHONPATH") {
        out.extend(std::env::split_paths(&v));
    }
    for prefix in prefixes {
        for lib in children(&prefix.join("lib"), |n| n.starts_with("python3")) {
            out.push(lib.join("site-packages"));
            out.push(lib.join("dist-packages"));
        }
    }
    out.push("/usr/lib/python3/dist-packages".into());
    out
}

/// Subdirectories of `dir` whose names pass `keep`, sorted (missing `dir`: none).
fn children(dir: impl AsRef<Path>, keep: impl Fn(&str) -> bool) -> impl Iterator<Item = PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(&keep))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    found.into_iter()
}

/// True for `lib{name}.so` and `lib{name}.so.<digits>[.<digits>...]`.
fn is_library_file(file: &str, name: &str) -> bool {
    let Some(rest) = file.strip_prefix(&format!("lib{name}.so")) else {
        return false;
    };
    rest.is_empty()
        || rest.strip_prefix('.').is_some_and(|v| {
            v.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Files named like the shared library `lib{name}.so*` in the [`search_dirs`], in their order.
pub fn find(name: &str) -> Vec<PathBuf> {
    let mut out = vec![];
    for dir in search_dirs() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|f| is_library_file(f, name))
            })
            .map(|e| e.path())
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// Opens a shared library by path or by soname.
///
/// # Safety
/// Loading a library runs its initializers; callers only pass CUDA's own libraries.
pub unsafe fn open(lib: &Path) -> Result<Library> {
    // SAFETY: forwarded from this function's contract.
    unsafe { Library::new(lib) }.map_err(|e| format!("{} could not be loaded ({e})", lib.display()))
}

/// The driver library, `libcuda.so.1`, or an error saying this machine has no NVIDIA driver.
pub fn driver_library() -> Result<Library> {
    for name in ["libcuda.so.1", "libcuda.so"] {
        // SAFETY: libcuda is the NVIDIA driver's own library; loading it has no other effect.
        if let Ok(lib) = unsafe { open(Path::new(name)) } {
            return Ok(lib);
        }
    }
    Err("no NVIDIA driver was found (libcuda.so.1 could not be loaded)".into())
}

/// The CUDA version the driver supports, as `(major, minor)` (`cuDriverGetVersion`, which
/// needs no initialization).
pub fn driver_version(lib: &Library) -> Result<(i32, i32)> {
    type GetVersion = unsafe extern "C" fn(*mut c_int) -> c_int;
    // SAFETY: `cuDriverGetVersion` has this signature in every CUDA driver.
    let f = unsafe { lib.get::<GetVersion>(b"cuDriverGetVersion\0") }
        .map_err(|e| format!("the NVIDIA driver library has no cuDriverGetVersion ({e})"))?;
    let mut v: c_int = 0;
    // SAFETY: `v` is a valid place for the one integer the function writes.
    let status = unsafe { f(&mut v) };
    if status != 0 {
        return Err(format!(
            "cuDriverGetVersion failed with CUDA error {status}"
        ));
    }
    Ok((v / 1000, (v % 1000) / 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_file_names() {
        assert!(is_library_file("libnvrtc.so", "nvrtc"));
        assert!(is_library_file("libnvrtc.so.12", "nvrtc"));
        assert!(is_library_file("libnvrtc.so.11.2", "nvrtc"));
        assert!(!is_library_file("libnvrtc-builtins.so.12.4", "nvrtc"));
        assert!(!is_library_file("libnvrtc.alt.so.12", "nvrtc"));
        assert!(!is_library_file("libnvrtc.so.12.", "nvrtc"));
    }
}
