//! A seeded random number generator whose state saves and restores exactly (for checkpoints),
//! and the random tensors built from it.
//!
//! The generator is ChaCha8: its output for a seed is fixed across platforms and versions of
//! this crate, so a seed names one run. Normal samples use the Box-Muller transform.

use crate::{DType, Tensor};
use rand::{Rng as _, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded generator. `serde` round-trips its exact state.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    /// A generator seeded with `seed`; the same seed gives the same stream on every platform.
    pub fn new(seed: u64) -> Rng {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// The next 64 uniformly random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        self.0.gen::<f64>()
    }

    /// Uniform integer in `[0, n)`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0.gen_range(0..n)
    }

    /// Two independent standard normal samples (Box-Muller).
    pub fn normal_pair(&mut self) -> (f64, f64) {
        // 1 - u lies in (0, 1], so the log is finite.
        let r = (-2.0 * (1.0 - self.uniform()).ln()).sqrt();
        let theta = std::f64::consts::TAU * self.uniform();
        (r * theta.cos(), r * theta.sin())
    }

    /// One standard normal sample.
    pub fn normal(&mut self) -> f64 {
        self.normal_pair().0
    }
}

impl Tensor {
    /// Uniform samples in `[lo, hi)`.
    pub fn rand(shape: &[usize], lo: f64, hi: f64, dtype: DType, rng: &mut Rng) -> Tensor {
        let n = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| lo + (hi - lo) * rng.uniform()).collect();
        Tensor::from_vec(v, shape).to_dtype(dtype)
    }

    /// Normal samples with the given mean and standard deviation.
    pub fn randn(shape: &[usize], mean: f64, std: f64, dtype: DType, rng: &mut Rng) -> Tensor {
        let n: usize = shape.iter().product();
        let mut v = Vec::with_capacity(n + 1);
        while v.len() < n {
            let (a, b) = rng.normal_pair();
            v.push(mean + std * a);
            v.push(mean + std * b);
        }
        v.truncate(n);
        Tensor::from_vec(v, shape).to_dtype(dtype)
    }

    /// A dropout mask: each element is `1 / (1 - p)` with probability `1 - p`, else 0, so
    /// `x * mask` keeps the expectation of `x`.
    pub fn dropout_mask(shape: &[usize], p: f64, dtype: DType, rng: &mut Rng) -> Tensor {
        assert!(
            (0.0..1.0).contains(&p),
            "dropout: probability {p} must be in [0, 1)"
        );
        let keep = 1.0 / (1.0 - p);
        let n = shape.iter().product();
        let v: Vec<f64> = (0..n)
            .map(|_| if rng.uniform() < p { 0.0 } else { keep })
            .collect();
        Tensor::from_vec(v, shape).to_dtype(dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_tensors_and_state_round_trips() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let x = Tensor::randn(&[5, 3], 0.0, 1.0, DType::F32, &mut a);
        let y = Tensor::randn(&[5, 3], 0.0, 1.0, DType::F32, &mut b);
        assert_eq!(x.to_vec::<f32>(), y.to_vec::<f32>());
        let saved = serde_json::to_string(&a).unwrap();
        let next = a.next_u64();
        let mut restored: Rng = serde_json::from_str(&saved).unwrap();
        assert_eq!(restored.next_u64(), next);
    }

    #[test]
    fn normal_and_uniform_moments() {
        let mut rng = Rng::new(1);
        let x = Tensor::randn(&[100_000], 2.0, 3.0, DType::F64, &mut rng);
        let (m, v) = (x.mean_all().item(), x.var(&[0], false, 1).item());
        assert!(
            (m - 2.0).abs() < 0.05 && (v - 9.0).abs() < 0.2,
            "mean {m} var {v}"
        );
        let u = Tensor::rand(&[100_000], -1.0, 1.0, DType::F64, &mut rng);
        assert!(u.min(&[0], false).item() >= -1.0 && u.max(&[0], false).item() < 1.0);
        assert!(u.mean_all().item().abs() < 0.01);
    }

    #[test]
    fn dropout_mask_keeps_the_expectation() {
        let mut rng = Rng::new(3);
        let m = Tensor::dropout_mask(&[100_000], 0.2, DType::F64, &mut rng).to_vec::<f64>();
        let kept = m.iter().filter(|&&v| v > 0.0).count() as f64 / 1e5;
        assert!((kept - 0.8).abs() < 0.01, "kept {kept}");
        assert!(m.iter().all(|&v| v == 0.0 || v == 1.25));
    }
}
