//! Packing's transposes with AVX2: a panel from contiguous rows, 8 x 8 floats at a time.
//!
//! When a source's rows are contiguous over `p` (A row-major, or B stored transposed as in a
//! linear layer's `x W^T`), packing is a transpose. Element by element that costs a few cycles
//! per float, as much as the arithmetic of a thin product; eight rows loaded as eight vectors
//! and transposed with 24 shuffles cost a fraction of a cycle per float.

use super::pack::MatRef;
use std::arch::x86_64::*;

/// [`super::pack::Transpose`] through 8 x 8 register transposes: rows in groups of eight,
/// depth in steps of eight, and a scalar loop for the last `depth % 8` steps.
///
/// # Safety
/// As [`super::pack::Transpose`]; and the CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn transpose<const W: usize>(src: MatRef, h: usize, depth: usize, panel: &mut [f32]) {
    let whole = depth - depth % 8;
    for g in (0..h).step_by(8) {
        let gh = (h - g).min(8);
        // SAFETY: rows `g..g + gh` are among the caller's rows `0..h`.
        let row = |i: usize| unsafe { src.ptr.offset((g + i) as isize * src.rs) };
        for p in (0..whole).step_by(8) {
            let mut r = [_mm256_setzero_ps(); 8];
            for (i, v) in r.iter_mut().enumerate().take(gh) {
                // SAFETY: row `g + i` has `depth` readable elements and `p + 8 <= depth`.
                *v = unsafe { _mm256_loadu_ps(row(i).add(p)) };
            }
            for (q, v) in transpose8(r).into_iter().enumerate() {
                store(&mut panel[(p + q) * W + g..][..gh], v);
            }
        }
        for p in whole..depth {
            for i in 0..gh {
                // SAFETY: `p < depth` on row `g + i`.
                panel[p * W + g + i] = unsafe { *row(i).add(p) };
            }
        }
    }
}

/// Transposes eight rows of eight floats: lane `j` of output `i` is lane `i` of input `j`.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    // Interleave pairs of rows: t0 = r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5], ...
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    // Then pairs of pairs: s0 = column 0 of rows 0..4 | column 4 of rows 0..4, ...
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xee>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xee>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xee>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xee>(t5, t7);
    // Then join the 128-bit halves of rows 0..4 and 4..8.
    [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ]
}

/// Stores the first `dst.len() <= 8` lanes of `v` into `dst`.
#[inline]
#[target_feature(enable = "avx2")]
fn store(dst: &mut [f32], v: __m256) {
    match dst.len() {
        // SAFETY: `dst` holds 8 floats.
        8 => unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), v) },
        // SAFETY: `dst` holds 4 floats.
        4 => unsafe { _mm_storeu_ps(dst.as_mut_ptr(), _mm256_castps256_ps128(v)) },
        n => {
            let mut lanes = [0.0; 8];
            // SAFETY: `lanes` holds 8 floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
            dst.copy_from_slice(&lanes[..n]);
        }
    }
}
