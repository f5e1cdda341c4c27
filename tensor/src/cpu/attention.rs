//! Causal scaled-dot-product attention, forward and backward, one fused kernel each.
//!
//! Shapes: `q (BH, Tq, D)`, `k, v (BH, Tk, D)`, contiguous, with `Tq <= Tk`. Query row `i` sits
//! at position `p_i = i + Tk - Tq` (so a KV cache of earlier keys works) and sees keys `j <= p_i`.
//! With `scale = 1 / sqrt(D)`:
//! `S_ij = scale q_i . k_j`, `lse_i = logsumexp_{j <= p_i} S_ij`, `P_ij = exp(S_ij - lse_i)`,
//! `out_i = sum_j P_ij v_j`.
//! The forward saves only `lse (BH, Tq)`; the backward recomputes `P` from it:
//! `dV = P^T dO`, `dP = dO V^T`, `D_i = dO_i . out_i`, `dS = P * (dP - D_i)`,
//! `dQ = scale dS K`, `dK = scale dS^T Q`.
//!
//! The fast version works per head on blocks of [`BLOCK`] query rows: a block only needs the
//! keys up to its last row's position, so the masked upper triangle is (mostly) never computed,
//! and each block's products are GEMMs. Heads run on separate threads; within a head, blocks
//! accumulate `dK` and `dV` in a fixed order.

use super::matmul::{gemm, Gemm, Mat};
use super::parallel::{num_threads, par_for_each, MIN_TASK_WORK};
use super::simd;
use super::softmax;
use crate::backend::AttentionDims;
use crate::dtype::Float;

/// Query rows per block.
pub const BLOCK: usize = 64;

impl AttentionDims {
    fn scale<T: Float>(&self) -> T {
        T::ONE / T::from_usize(self.d).sqrt()
    }

    /// Number of keys query row `i` sees.
    fn visible(&self, i: usize) -> usize {
        i + self.tk - self.tq + 1
    }

    /// Run per head on threads only when there is enough work.
    fn parallel(&self) -> bool {
        num_threads() > 1
            && self.bh > 1
            && self.bh * self.tq * self.tk * self.d >= 4 * MIN_TASK_WORK
    }
}

/// Output and the row logsumexp saved for the backward.
pub struct AttentionOut<T> {
    /// Attention output `(BH, Tq, D)`.
    pub out: Vec<T>,
    /// Logsumexp of each query row's scaled scores `(BH, Tq)`.
    pub lse: Vec<T>,
}

/// Gradients of q, k and v.
pub struct AttentionGrads<T> {
    /// Gradient of `q`, `(BH, Tq, D)`.
    pub dq: Vec<T>,
    /// Gradient of `k`, `(BH, Tk, D)`.
    pub dk: Vec<T>,
    /// Gradient of `v`, `(BH, Tk, D)`.
    pub dv: Vec<T>,
}

/// Plain reference forward: scores, softmax and weighted sum, row by row.
pub fn forward_reference<T: Float>(
    q: &[T],
    k: &[T],
    v: &[T],
    dims: AttentionDims,
) -> AttentionOut<T> {
    let AttentionDims { bh, tq, tk, d } = dims;
    let scale: T = dims.scale();
    let (mut out, mut lse) = (vec![T::ZERO; bh * tq * d], vec![T::ZERO; bh * tq]);
    for h in 0..bh {
        for i in 0..tq {
            let qi = &q[(h * tq + i) * d..][..d];
            let s: Vec<T> = (0..dims.visible(i))
                .map(|j| {
                    scale
                        * qi.iter()
                            .zip(&k[(h * tk + j) * d..][..d])
                            .map(|(&a, &b)| a * b)
                            .sum::<T>()
                })
                .collect();
            let m = s.iter().fold(T::NEG_INFINITY, |a, &b| a.max_nan(b));
            let l = m + s.iter().map(|&x| (x - m).exp()).sum::<T>().ln();
            lse[h * tq + i] = l;
            for (j, &sj) in s.iter().enumerate() {
                let p = (sj - l).exp();
                for c in 0..d {
                    out[(h * tq + i) * d + c] += p * v[(h * tk + j) * d + c];
                }
            }
        }
    }
    AttentionOut { out, lse }
}

/// Forward for one head: blocks of query rows, each `S = scale Q K^T`, softmax, `O = P V`.
fn forward_head<T: Gemm>(
    q: &[T],
    k: &[T],
    v: &[T],
    dims: AttentionDims,
    o: &mut [T],
    lse: &mut [T],
) {
    let AttentionDims { tq, tk, d, .. } = dims;
    let mut s = vec![T::ZERO; BLOCK.min(tq) * tk];
    for i0 in (0..tq).step_by(BLOCK) {
        let rows = BLOCK.min(tq - i0);
        let kend = dims.visible(i0 + rows - 1);
        let qb = Mat {
            data: &q[i0 * d..],
            rs: d,
            cs: 1,
        };
        let kt = Mat {
            data: k,
            rs: 1,
            cs: d,
        };
        gemm(rows, d, kend, dims.scale(), qb, kt, T::ZERO, &mut s, kend);
        for r in 0..rows {
            let row = &mut s[r * kend..(r + 1) * kend];
            let (seen, masked) = row.split_at_mut(dims.visible(i0 + r));
            lse[i0 + r] = softmax::row_in_place(seen);
            masked.fill(T::ZERO);
        }
        let p = Mat {
            data: &s,
            rs: kend,
            cs: 1,
        };
        let vb = Mat {
            data: v,
            rs: d,
            cs: 1,
        };
        gemm(rows, kend, d, T::ONE, p, vb, T::ZERO, &mut o[i0 * d..], d);
    }
}

/// Causal attention forward over all heads.
pub fn forward<T: Gemm>(q: &[T], k: &[T], v: &[T], dims: AttentionDims) -> AttentionOut<T> {
    let AttentionDims { bh, tq, tk, d } = dims;
    let mut out = vec![T::ZERO; bh * tq * d];
    let mut lse = vec![T::ZERO; bh * tq];
    if tq == 0 || d == 0 {
        return AttentionOut { out, lse };
    }
    let head = |h: usize, o: &mut [T], l: &mut [T]| {
        forward_head(
            &q[h * tq * d..][..tq * d],
            &k[h * tk * d..][..tk * d],
            &v[h * tk * d..][..tk * d],
            dims,
            o,
            l,
        )
    };
    if dims.parallel() {
        let heads = out.chunks_mut(tq * d).zip(lse.chunks_mut(tq)).enumerate();
        par_for_each(heads, |(h, (o, l))| head(h, o, l));
    } else {
        for (h, (o, l)) in out.chunks_mut(tq * d).zip(lse.chunks_mut(tq)).enumerate() {
            head(h, o, l);
        }
    }
    AttentionOut { out, lse }
}

/// Plain reference backward, straight from the formulas in the module doc.
pub fn backward_reference<T: Float>(
    q: &[T],
    k: &[T],
    v: &[T],
    out: &[T],
    lse: &[T],
    dout: &[T],
    dims: AttentionDims,
) -> AttentionGrads<T> {
    let AttentionDims { bh, tq, tk, d } = dims;
    let scale: T = dims.scale();
    let mut g = AttentionGrads {
        dq: vec![T::ZERO; bh * tq * d],
        dk: vec![T::ZERO; bh * tk * d],
        dv: vec![T::ZERO; bh * tk * d],
    };
    let dot = |a: &[T], b: &[T]| a.iter().zip(b).map(|(&x, &y)| x * y).sum::<T>();
    for h in 0..bh {
        for i in 0..tq {
            let qi = &q[(h * tq + i) * d..][..d];
            let doi = &dout[(h * tq + i) * d..][..d];
            let di = dot(doi, &out[(h * tq + i) * d..][..d]);
            for j in 0..dims.visible(i) {
                let (kj, vj) = (&k[(h * tk + j) * d..][..d], &v[(h * tk + j) * d..][..d]);
                let p = (scale * dot(qi, kj) - lse[h * tq + i]).exp();
                let ds = p * (dot(doi, vj) - di);
                for c in 0..d {
                    g.dv[(h * tk + j) * d + c] += p * doi[c];
                    g.dq[(h * tq + i) * d + c] += scale * ds * kj[c];
                    g.dk[(h * tk + j) * d + c] += scale * ds * qi[c];
                }
            }
        }
    }
    g
}

/// Inputs of one head's backward.
struct HeadIn<'a, T> {
    q: &'a [T],
    k: &'a [T],
    v: &'a [T],
    out: &'a [T],
    lse: &'a [T],
    dout: &'a [T],
}

/// Backward for one head, block by block (see the module doc for the formulas).
fn backward_head<T: Gemm>(
    x: HeadIn<T>,
    dims: AttentionDims,
    dq: &mut [T],
    dk: &mut [T],
    dv: &mut [T],
) {
    let AttentionDims { tq, tk, d, .. } = dims;
    let scale: T = dims.scale();
    let cap = BLOCK.min(tq) * tk;
    let (mut p, mut ds) = (vec![T::ZERO; cap], vec![T::ZERO; cap]);
    for i0 in (0..tq).step_by(BLOCK) {
        let rows = BLOCK.min(tq - i0);
        let kend = dims.visible(i0 + rows - 1);
        let qb = Mat {
            data: &x.q[i0 * d..],
            rs: d,
            cs: 1,
        };
        let dob = Mat {
            data: &x.dout[i0 * d..],
            rs: d,
            cs: 1,
        };
        // P = exp(scale Q K^T - lse), zero where masked.
        gemm(
            rows,
            d,
            kend,
            scale,
            qb,
            Mat {
                data: x.k,
                rs: 1,
                cs: d,
            },
            T::ZERO,
            &mut p,
            kend,
        );
        for r in 0..rows {
            let l = x.lse[i0 + r];
            let (seen, masked) = p[r * kend..(r + 1) * kend].split_at_mut(dims.visible(i0 + r));
            simd::map_inplace(seen, |s| (s - l).fast_exp());
            masked.fill(T::ZERO);
        }
        // dV[:kend] += P^T dO.
        let pt = Mat {
            data: &p,
            rs: 1,
            cs: kend,
        };
        gemm(kend, rows, d, T::ONE, pt, dob, T::ONE, dv, d);
        // dP = dO V^T, then dS = P * (dP - D_i).
        gemm(
            rows,
            d,
            kend,
            T::ONE,
            dob,
            Mat {
                data: x.v,
                rs: 1,
                cs: d,
            },
            T::ZERO,
            &mut ds,
            kend,
        );
        for r in 0..rows {
            let i = i0 + r;
            let di = simd::dot(&x.dout[i * d..(i + 1) * d], &x.out[i * d..(i + 1) * d]);
            let (pr, dr) = (
                &p[r * kend..(r + 1) * kend],
                &mut ds[r * kend..(r + 1) * kend],
            );
            simd::zip_map_inplace(dr, pr, |dp, pv| pv * (dp - di));
        }
        // dQ = scale dS K;  dK[:kend] += scale dS^T Q.
        let dsm = Mat {
            data: &ds,
            rs: kend,
            cs: 1,
        };
        gemm(
            rows,
            kend,
            d,
            scale,
            dsm,
            Mat {
                data: x.k,
                rs: d,
                cs: 1,
            },
            T::ZERO,
            &mut dq[i0 * d..],
            d,
        );
        let dst = Mat {
            data: &ds,
            rs: 1,
            cs: kend,
        };
        gemm(kend, rows, d, scale, dst, qb, T::ONE, dk, d);
    }
}

/// Causal attention backward over all heads.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Gemm>(
    q: &[T],
    k: &[T],
    v: &[T],
    out: &[T],
    lse: &[T],
    dout: &[T],
    dims: AttentionDims,
) -> AttentionGrads<T> {
    let AttentionDims { bh, tq, tk, d } = dims;
    let mut g = AttentionGrads {
        dq: vec![T::ZERO; bh * tq * d],
        dk: vec![T::ZERO; bh * tk * d],
        dv: vec![T::ZERO; bh * tk * d],
    };
    if tq == 0 || d == 0 {
        return g;
    }
    let head = |h: usize, dq: &mut [T], dk: &mut [T], dv: &mut [T]| {
        let (qs, ks) = (h * tq * d, h * tk * d);
        let x = HeadIn {
            q: &q[qs..qs + tq * d],
            k: &k[ks..ks + tk * d],
            v: &v[ks..ks + tk * d],
            out: &out[qs..qs + tq * d],
            lse: &lse[h * tq..(h + 1) * tq],
            dout: &dout[qs..qs + tq * d],
        };
        backward_head(x, dims, dq, dk, dv)
    };
    if dims.parallel() {
        let heads =
            g.dq.chunks_mut(tq * d)
                .zip(g.dk.chunks_mut(tk * d))
                .zip(g.dv.chunks_mut(tk * d))
                .enumerate();
        par_for_each(heads, |(h, ((dq, dk), dv))| head(h, dq, dk, dv));
    } else {
        let chunks =
            g.dq.chunks_mut(tq * d)
                .zip(g.dk.chunks_mut(tk * d))
                .zip(g.dv.chunks_mut(tk * d));
        for (h, ((dq, dk), dv)) in chunks.enumerate() {
            head(h, dq, dk, dv);
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{assert_close, random_vec};

    const CASES: [AttentionDims; 6] = [
        AttentionDims {
            bh: 1,
            tq: 1,
            tk: 1,
            d: 1,
        },
        AttentionDims {
            bh: 2,
            tq: 7,
            tk: 7,
            d: 5,
        },
        AttentionDims {
            bh: 3,
            tq: 65,
            tk: 65,
            d: 16,
        },
        AttentionDims {
            bh: 2,
            tq: 130,
            tk: 130,
            d: 64,
        },
        AttentionDims {
            bh: 2,
            tq: 1,
            tk: 37,
            d: 8,
        },
        AttentionDims {
            bh: 4,
            tq: 9,
            tk: 70,
            d: 3,
        },
    ];

    fn inputs(dims: AttentionDims, seed: u64) -> [Vec<f64>; 4] {
        let AttentionDims { bh, tq, tk, d } = dims;
        [
            random_vec(bh * tq * d, seed),
            random_vec(bh * tk * d, seed + 1),
            random_vec(bh * tk * d, seed + 2),
            random_vec(bh * tq * d, seed + 3),
        ]
    }

    #[test]
    fn forward_and_backward_match_reference() {
        for dims in CASES {
            let [q, k, v, dout] = inputs(dims, 1);
            let got = forward(&q, &k, &v, dims);
            let want = forward_reference(&q, &k, &v, dims);
            assert_close(&got.out, &want.out, 1e-12, 1e-10, &format!("out {dims:?}"));
            assert_close(&got.lse, &want.lse, 1e-12, 1e-10, &format!("lse {dims:?}"));
            let g = backward(&q, &k, &v, &got.out, &got.lse, &dout, dims);
            let r = backward_reference(&q, &k, &v, &want.out, &want.lse, &dout, dims);
            assert_close(&g.dq, &r.dq, 1e-12, 1e-9, &format!("dq {dims:?}"));
            assert_close(&g.dk, &r.dk, 1e-12, 1e-9, &format!("dk {dims:?}"));
            assert_close(&g.dv, &r.dv, 1e-12, 1e-9, &format!("dv {dims:?}"));
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let dims = AttentionDims {
            bh: 6,
            tq: 200,
            tk: 200,
            d: 64,
        };
        let [q, k, v, _] = inputs(dims, 9);
        let want = forward(&q, &k, &v, dims);
        let f = |x: &Vec<f64>| x.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let got = forward(&f(&q), &f(&k), &f(&v), dims);
        assert_close(&got.out, &f(&want.out), 1e-5, 1e-4, "out");
    }

    #[test]
    fn kv_cache_rows_match_full_attention() {
        // The last query row against all keys equals the last row of full attention.
        let dims = AttentionDims {
            bh: 2,
            tq: 20,
            tk: 20,
            d: 8,
        };
        let [q, k, v, _] = inputs(dims, 5);
        let full = forward(&q, &k, &v, dims);
        let one = AttentionDims { tq: 1, ..dims };
        let q_last: Vec<f64> = (0..2)
            .flat_map(|h| q[(h * 20 + 19) * 8..(h * 20 + 20) * 8].to_vec())
            .collect();
        let got = forward(&q_last, &k, &v, one);
        let want: Vec<f64> = (0..2)
            .flat_map(|h| full.out[(h * 20 + 19) * 8..(h * 20 + 20) * 8].to_vec())
            .collect();
        assert_close(&got.out, &want, 1e-12, 1e-12, "cached row");
    }
}
