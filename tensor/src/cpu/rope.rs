//! Rotary position embeddings (RoPE) in llama2.c's layout: within each row of `HS` features at
//! position `p`, the consecutive pair `(2j, 2j + 1)` turns by the angle `a = p f_j`:
//!
//! ```text
//! y[2j]     = x[2j] cos(a) - x[2j+1] sin(a)
//! y[2j + 1] = x[2j] sin(a) + x[2j+1] cos(a)
//! ```
//!
//! Shapes: `x (N, T, HS)` contiguous, the `T` rows of each of the `N` blocks at positions
//! `start..start + T`; `cos`, `sin (P, HS / 2)`, the tables of every position's angles
//! (`start + T <= P`). A rotation is undone by the rotation by `-a`, which is also its
//! transpose: the backward is this kernel with `inverse` set (the sines negated).

use super::parallel::collect_chunks;
use crate::backend::RopeDims;
use crate::dtype::Float;

impl RopeDims {
    /// Table row (position) of row `r` of `x`.
    fn position(&self, r: usize) -> usize {
        self.start + r % self.t
    }

    /// The sine's sign: -1 for the inverse rotation.
    fn sign<T: Float>(&self) -> T {
        if self.inverse {
            -T::ONE
        } else {
            T::ONE
        }
    }
}

/// Plain reference: each pair of each row, in order.
pub fn apply_reference<T: Float>(x: &[T], cos: &[T], sin: &[T], d: RopeDims) -> Vec<T> {
    let half = d.hs / 2;
    let mut y = vec![T::ZERO; x.len()];
    for r in 0..d.rows {
        let p = d.position(r);
        for j in 0..half {
            let (c, s) = (cos[p * half + j], d.sign::<T>() * sin[p * half + j]);
            let (a, b) = (x[r * d.hs + 2 * j], x[r * d.hs + 2 * j + 1]);
            y[r * d.hs + 2 * j] = a * c - b * s;
            y[r * d.hs + 2 * j + 1] = a * s + b * c;
        }
    }
    y
}

/// The rotation, threaded over rows. The same products as the reference, so the same bits.
pub fn apply<T: Float>(x: &[T], cos: &[T], sin: &[T], d: RopeDims) -> Vec<T> {
    let half = d.hs / 2;
    // SAFETY: every pair of every row of each chunk is written.
    unsafe {
        collect_chunks(x.len(), d.hs, 3 * d.hs, |first, chunk| {
            for (i, yr) in chunk.chunks_exact_mut(d.hs).enumerate() {
                let r = first + i;
                let p = d.position(r);
                let (cr, sr) = (&cos[p * half..][..half], &sin[p * half..][..half]);
                let xr = &x[r * d.hs..][..d.hs];
                let pairs = xr.chunks_exact(2).zip(yr.chunks_exact_mut(2));
                for ((xp, yp), (&c, &s)) in pairs.zip(cr.iter().zip(sr)) {
                    let s = d.sign::<T>() * s;
                    yp[0].write(xp[0] * c - xp[1] * s);
                    yp[1].write(xp[0] * s + xp[1] * c);
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::random_vec;

    fn tables(positions: usize, half: usize) -> (Vec<f64>, Vec<f64>) {
        let angle = |i: usize| (i / half) as f64 * 0.3f64.powi((i % half) as i32);
        let n = positions * half;
        (
            (0..n).map(|i| angle(i).cos()).collect(),
            (0..n).map(|i| angle(i).sin()).collect(),
        )
    }

    #[test]
    fn matches_the_reference_bit_for_bit() {
        for (n, t, hs, start) in [(1, 1, 2, 0), (3, 5, 8, 2), (7, 13, 6, 0), (2, 300, 64, 11)] {
            let (cos, sin) = tables(start + t, hs / 2);
            let x = random_vec::<f64>(n * t * hs, 5);
            for inverse in [false, true] {
                let d = RopeDims {
                    rows: n * t,
                    t,
                    hs,
                    start,
                    inverse,
                };
                assert_eq!(apply(&x, &cos, &sin, d), apply_reference(&x, &cos, &sin, d));
            }
        }
    }

    #[test]
    fn the_inverse_undoes_the_rotation() {
        let (t, hs, start) = (6, 10, 3);
        let (cos, sin) = tables(start + t, hs / 2);
        let x = random_vec::<f64>(2 * t * hs, 6);
        let d = RopeDims {
            rows: 2 * t,
            t,
            hs,
            start,
            inverse: false,
        };
        let y = apply(&x, &cos, &sin, d);
        let back = apply(&y, &cos, &sin, RopeDims { inverse: true, ..d });
        for (a, b) in back.iter().zip(&x) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }
}
