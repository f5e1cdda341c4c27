//! Rotary position embeddings (Su et al., 2021, "RoFormer"), in the layout of Llama as llama2.c
//! writes it: within each head of size `HS`, the consecutive pair of features `(2j, 2j + 1)` at
//! position `p` is rotated by the angle `p * theta^(-2j / HS)`:
//!
//! ```text
//! y[2j]     = x[2j] cos(a) - x[2j+1] sin(a)
//! y[2j + 1] = x[2j] sin(a) + x[2j+1] cos(a)        a = p * theta^(-2j / HS)
//! ```
//!
//! Queries and keys are rotated before attention, so their dot product depends on the
//! positions only through their difference.

use autograd::Var;
use std::sync::Mutex;
use tensor::{DType, Device, Tensor};

/// The cosines and sines of every position's angles.
pub struct Rope {
    /// `cos(a)` of shape `(positions, HS / 2)`, f32 on the CPU.
    cos: Tensor,
    /// `sin(a)`, shaped like `cos`.
    sin: Tensor,
    /// The tables in the dtype and on the device they were last used with, so that a model on
    /// a GPU does not copy them there at every step.
    converted: Mutex<Option<(DType, Device, Tensor, Tensor)>>,
}

impl Rope {
    /// The tables for heads of `head_size` (even) at positions `0..positions`, base `theta`
    /// (10,000 in Llama 2).
    pub fn new(head_size: usize, positions: usize, theta: f64) -> Rope {
        assert!(
            head_size.is_multiple_of(2),
            "rotary embeddings need an even head size, not {head_size}"
        );
        let half = head_size / 2;
        let angle = |p: usize, j: usize| {
            // llama2.c computes the frequency in single precision; so does this, so that a
            // checkpoint of theirs runs here with the same rotations.
            let freq = 1.0f32 / (theta as f32).powf((2 * j) as f32 / head_size as f32);
            p as f32 * freq
        };
        let table = |f: fn(f32) -> f32| {
            let v: Vec<f32> = (0..positions)
                .flat_map(|p| (0..half).map(move |j| f(angle(p, j))))
                .collect();
            Tensor::from_vec(v, &[positions, half])
        };
        Rope {
            cos: table(f32::cos),
            sin: table(f32::sin),
            converted: Mutex::new(None),
        }
    }

    /// Positions the tables cover.
    pub fn positions(&self) -> usize {
        self.cos.dim(0)
    }

    /// The tables in the dtype and on the device of `like`.
    fn tables_like(&self, like: &Var) -> (Tensor, Tensor) {
        let (dtype, device) = (like.dtype(), like.device());
        let mut converted = self.converted.lock().unwrap_or_else(|e| e.into_inner());
        match &*converted {
            Some((d, v, cos, sin)) if (*d, *v) == (dtype, device) => (cos.clone(), sin.clone()),
            _ => {
                let fit = |t: &Tensor| t.to_dtype(dtype).to_device(device);
                let (cos, sin) = (fit(&self.cos), fit(&self.sin));
                *converted = Some((dtype, device, cos.clone(), sin.clone()));
                (cos, sin)
            }
        }
    }

    /// `x (B, NH, T, HS)` at positions `start..start + T`, rotated (one fused op; see
    /// `tensor/src/cpu/rope.rs`).
    pub fn apply(&self, x: &Var, start: usize) -> Var {
        assert!(
            start + x.dim(2) <= self.positions(),
            "rotary tables cover {} positions, not {}",
            self.positions(),
            start + x.dim(2)
        );
        let (cos, sin) = self.tables_like(x);
        x.rope(&cos, &sin, start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_each_pair_by_its_angle() {
        let rope = Rope::new(4, 8, 10_000.0);
        // One head of size 4 at positions 0..3; features 1, 2, 3, 4 everywhere.
        let x = Var::constant(Tensor::from_vec(
            [1.0f32, 2.0, 3.0, 4.0].repeat(3),
            &[1, 1, 3, 4],
        ));
        let y = rope.apply(&x, 2).value().to_vec::<f32>();
        for (row, p) in y.chunks(4).zip(2..5) {
            // Pair 0 turns by p radians, pair 1 by p / 100 (theta^(-2/4) = 1/100).
            for (j, (a, b)) in [(1.0f32, 2.0f32), (3.0, 4.0)].into_iter().enumerate() {
                let angle = p as f32 * [1.0f32, 0.01][j];
                let want = [
                    a * angle.cos() - b * angle.sin(),
                    a * angle.sin() + b * angle.cos(),
                ];
                assert!((row[2 * j] - want[0]).abs() < 1e-5, "{row:?} at {p}");
                assert!((row[2 * j + 1] - want[1]).abs() < 1e-5, "{row:?} at {p}");
            }
        }
    }

    #[test]
    fn position_zero_is_left_alone() {
        let rope = Rope::new(6, 4, 10_000.0);
        let v: Vec<f32> = (0..12).map(|i| i as f32 - 5.0).collect();
        let x = Var::constant(Tensor::from_vec(v.clone(), &[1, 2, 1, 6]));
        assert_eq!(rope.apply(&x, 0).value().to_vec::<f32>(), v);
    }
}
