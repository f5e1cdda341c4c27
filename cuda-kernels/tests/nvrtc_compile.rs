//! Compiles every kernel family to PTX with NVRTC, so a syntax error in a kernel fails on a
//! machine without a GPU. Needs only `libnvrtc` (the PyPI wheel `nvidia-cuda-nvrtc` provides
//! it); without one the test says so and passes, unless `CUDA_KERNELS_REQUIRE_NVRTC` is set
//! (as CI sets it), when a missing NVRTC fails the test.
//!
//! Each family is compiled for the oldest and the newest architecture the NVRTC supports
//! (from compute_70 on), and its PTX must define exactly the entry points
//! [`Family::kernels`] lists, the names the Rust side launches.

use cuda_kernels::nvrtc;
use cuda_kernels::Family;
use std::collections::BTreeSet;

/// The NVRTC to compile with, or `None` after saying why the test is skipped.
fn nvrtc_or_skip() -> Option<nvrtc::Nvrtc> {
    match nvrtc::select(None) {
        Ok(n) => Some(n),
        Err(e) if std::env::var_os("CUDA_KERNELS_REQUIRE_NVRTC").is_some() => {
            panic!("CUDA_KERNELS_REQUIRE_NVRTC is set but {e}")
        }
        Err(e) => {
            eprintln!("skipped: the kernels were not compiled because {e}");
            None
        }
    }
}

/// The `.entry` names a PTX module defines.
fn entries(ptx: &str) -> BTreeSet<String> {
    ptx.lines()
        .filter_map(|l| l.trim_start().strip_prefix(".visible .entry "))
        .map(|l| l.split('(').next().unwrap_or("").trim().to_string())
        .collect()
}

#[test]
fn every_kernel_source_compiles_to_ptx() {
    let Some(nvrtc) = nvrtc_or_skip() else { return };
    let archs: Vec<u32> = nvrtc
        .supported_archs()
        .unwrap()
        .into_iter()
        .filter(|&a| a >= 70)
        .collect();
    let targets: BTreeSet<u32> = [archs[0], archs[archs.len() - 1]].into();
    eprintln!("compiling with {nvrtc:?} for {targets:?}");
    for family in Family::ALL {
        for &arch in &targets {
            let name = format!("{}.cu", family.name());
            let ptx = nvrtc
                .compile(&family.program(), &name, arch)
                .unwrap_or_else(|e| panic!("{e}"));
            let want: BTreeSet<String> = family.kernels().iter().map(|s| s.to_string()).collect();
            assert_eq!(entries(&ptx), want, "{name} for compute_{arch}");
        }
    }
}

#[test]
fn a_syntax_error_is_reported_with_the_log() {
    let Some(nvrtc) = nvrtc_or_skip() else { return };
    let err = nvrtc
        .compile(
            "extern \"C\" __global__ void k() { int x = ; }",
            "broken.cu",
            75,
        )
        .unwrap_err();
    assert!(err.contains("broken.cu") && err.contains("error"), "{err}");
}
