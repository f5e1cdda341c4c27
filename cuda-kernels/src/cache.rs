//! The on-disk PTX cache: compiling every family takes seconds, so the PTX of each is kept
//! per source, architecture and NVRTC version, and a second run loads it instead.
//!
//! Location: `$CUDA_KERNELS_CACHE` if set, else `$XDG_CACHE_HOME/llm-stack/ptx`, else
//! `$HOME/.cache/llm-stack/ptx`, else the system's temporary directory. A file is named
//! `{family}-{hash}.ptx`, the hash covering the program text, the architecture and the NVRTC
//! version, so an edited kernel or another NVRTC never reuses stale PTX. Files are written
//! to a temporary name and renamed, so a reader never sees half a file. A cache that cannot be
//! written only costs a recompilation.

use crate::nvrtc::Nvrtc;
use crate::{Family, Result};
use std::path::PathBuf;

/// Environment variable naming the cache directory.
pub const CACHE_ENV: &str = "CUDA_KERNELS_CACHE";

/// The cache directory (not created here).
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os(CACHE_ENV) {
        return d.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("llm-stack").join("ptx")
}

/// 64-bit FNV-1a: a stable hash (unlike `std`'s, which may change between Rust releases).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(&[0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The cache file of `family` compiled for `compute_{arch}` by NVRTC `version`.
pub fn path(family: Family, arch: u32, version: (i32, i32)) -> PathBuf {
    let tag = format!("compute_{arch} nvrtc {}.{}", version.0, version.1);
    let hash = fnv1a(&[family.program().as_bytes(), tag.as_bytes()]);
    dir().join(format!("{}-{hash:016x}.ptx", family.name()))
}

/// The PTX of `family` for `compute_{arch}`: from the cache, or compiled by `nvrtc` and stored.
pub fn ptx(family: Family, arch: u32, nvrtc: &Nvrtc) -> Result<String> {
    let file = path(family, arch, nvrtc.version());
    if let Ok(ptx) = std::fs::read_to_string(&file) {
        return Ok(ptx);
    }
    let ptx = nvrtc.compile(&family.program(), &format!("{}.cu", family.name()), arch)?;
    store(&file, &ptx);
    Ok(ptx)
}

/// Writes `ptx` to `file` through a temporary file and a rename; failures are ignored.
fn store(file: &std::path::Path, ptx: &str) {
    let Some(parent) = file.parent() else { return };
    if std::fs::create_dir_all(parent).is_err() {
        return;
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, ptx).is_ok() && std::fs::rename(&tmp, file).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_source_arch_and_version() {
        let a = path(Family::Unary, 80, (12, 4));
        assert_ne!(a, path(Family::Unary, 90, (12, 4)));
        assert_ne!(a, path(Family::Unary, 80, (12, 6)));
        assert_ne!(a, path(Family::Binary, 80, (12, 4)));
        assert_eq!(a, path(Family::Unary, 80, (12, 4)));
        assert!(a
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("unary-"));
    }
}
