//! Checks that need a GPU: the tiled GEMM against cuBLAS, the caching allocator's reuse, and
//! the PTX cache. Without a GPU each test prints why it was skipped and passes. Not built with
//! the emulator, which has neither cuBLAS nor a caching allocator nor PTX.
#![cfg(not(feature = "emulator"))]

use cuda_kernels::gemm::{self, Operand, Problem};
use cuda_kernels::{cache, DeviceBuffer, Family, Gpu};
use std::sync::Arc;

/// Device 0, or `None` after printing why the test is skipped.
fn gpu() -> Option<Arc<Gpu>> {
    match Gpu::get(0) {
        Ok(g) => {
            eprintln!("on {}", g.info());
            Some(g)
        }
        Err(reason) => {
            eprintln!("skipped (needs a GPU): {reason}");
            None
        }
    }
}

/// `n` values in [-1, 1) from a fixed linear congruential sequence.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn upload(gpu: &Gpu, v: &[f32]) -> DeviceBuffer {
    gpu.upload(bytemuck::cast_slice(v)).unwrap()
}

fn download(gpu: &Gpu, buf: &DeviceBuffer, n: usize) -> Vec<f32> {
    let mut bytes = vec![0u8; n * 4];
    gpu.download(buf, &mut bytes).unwrap();
    bytemuck::pod_collect_to_vec(&bytes)
}

#[test]
fn tiled_gemm_matches_cublas() {
    let Some(gpu) = gpu() else { return };
    if let Err(why) = &gpu.info().cublas {
        eprintln!("skipped: no cuBLAS to compare the tiled kernel with ({why})");
        return;
    }
    // (batch, m, k, n, a transposed, b transposed)
    let cases = [
        (1, 1, 1, 1, false, false),
        (1, 7, 13, 5, false, true),
        (3, 17, 9, 33, true, false),
        (2, 130, 70, 90, true, true),
        (4, 64, 768, 256, false, false),
        (1, 513, 129, 263, false, true),
    ];
    for (batch, m, k, n, ta, tb) in cases {
        let a = upload(&gpu, &values(batch * m * k, 1));
        let b = upload(&gpu, &values(batch * k * n, 2));
        // A transposed: stored (K, M) per batch; B transposed: stored (N, K).
        let (rsa, csa) = if ta { (1, m as i64) } else { (k as i64, 1) };
        let (rsb, csb) = if tb { (1, k as i64) } else { (n as i64, 1) };
        let ao = Operand {
            ptr: a.ptr(),
            rs: rsa,
            cs: csa,
            bs: (m * k) as i64,
        };
        let bo = Operand {
            ptr: b.ptr(),
            rs: rsb,
            cs: csb,
            bs: (k * n) as i64,
        };
        let p = Problem { m, n, k, batch };
        let (c1, c2) = (
            gpu.alloc(batch * m * n * 4).unwrap(),
            gpu.alloc(batch * m * n * 4).unwrap(),
        );
        // SAFETY: the operands describe exactly the uploaded buffers, and each output holds
        // `batch * m * n` floats.
        unsafe {
            assert!(gemm::cublas::<f32>(&gpu, p, ao, bo, c1.ptr()).unwrap());
            gemm::tiled::<f32>(&gpu, p, ao, bo, c2.ptr()).unwrap();
        }
        let (x, y) = (
            download(&gpu, &c1, batch * m * n),
            download(&gpu, &c2, batch * m * n),
        );
        for (i, (u, v)) in x.iter().zip(&y).enumerate() {
            assert!(
                (u - v).abs() <= 1e-5 + 1e-4 * u.abs(),
                "({batch}, {m}, {k}, {n}, {ta}, {tb}) element {i}: cuBLAS {u}, tiled {v}"
            );
        }
    }
}

#[test]
fn dropped_buffers_are_reused() {
    let Some(gpu) = gpu() else { return };
    let first = gpu.alloc(3 << 20).unwrap();
    let ptr = first.ptr();
    drop(first);
    assert!(gpu.cached_bytes() >= 3 << 20);
    let again = gpu.alloc((3 << 20) - 100).unwrap();
    assert_eq!(
        again.ptr(),
        ptr,
        "a request of the same bucket takes the cached block"
    );
}

#[test]
fn compiled_ptx_is_cached_on_disk() {
    let Some(gpu) = gpu() else { return };
    gpu.function(Family::Gelu, "gelu_backward_f32").unwrap();
    let nvrtc = cuda_kernels::nvrtc::select(Some(gpu.info().driver_cuda)).unwrap();
    let file = cache::path(Family::Gelu, gpu.info().arch, nvrtc.version());
    assert!(file.is_file(), "{} was not written", file.display());
}
