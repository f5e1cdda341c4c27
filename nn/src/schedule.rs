//! Learning-rate schedules: a function from the step number to the learning rate.

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// How the learning rate changes over training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    /// The same rate at every step.
    Constant {
        /// The learning rate.
        lr: f64,
    },
    /// nanoGPT's schedule: a linear warmup over `warmup_iters` steps, then a cosine from
    /// `max_lr` down to `min_lr` at step `decay_iters`, then `min_lr`.
    WarmupCosine {
        /// The peak, reached at the end of the warmup.
        max_lr: f64,
        /// The floor, reached at `decay_iters`.
        min_lr: f64,
        /// Steps of linear warmup.
        warmup_iters: usize,
        /// The step where the cosine reaches `min_lr`.
        decay_iters: usize,
    },
}

impl Schedule {
    /// The learning rate at step `step` (counting from 0). For `WarmupCosine`, with
    /// `w = warmup_iters` and `d = decay_iters`:
    ///
    /// ```text
    /// step < w:        max_lr * (step + 1) / (w + 1)
    /// w <= step <= d:  min_lr + (max_lr - min_lr) * (1 + cos(pi * (step - w) / (d - w))) / 2
    /// step > d:        min_lr
    /// ```
    ///
    /// (When `d <= w` there is no cosine part: `min_lr` follows the warmup.)
    pub fn lr(&self, step: usize) -> f64 {
        match *self {
            Schedule::Constant { lr } => lr,
            Schedule::WarmupCosine {
                max_lr,
                min_lr,
                warmup_iters,
                decay_iters,
            } => {
                if step < warmup_iters {
                    return max_lr * (step + 1) as f64 / (warmup_iters + 1) as f64;
                }
                if step > decay_iters || decay_iters <= warmup_iters {
                    return min_lr;
                }
                let ratio = (step - warmup_iters) as f64 / (decay_iters - warmup_iters) as f64;
                let coeff = 0.5 * (1.0 + (PI * ratio).cos());
                min_lr + coeff * (max_lr - min_lr)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_peak_cosine_and_floor() {
        let s = Schedule::WarmupCosine {
            max_lr: 1e-3,
            min_lr: 1e-4,
            warmup_iters: 4,
            decay_iters: 14,
        };
        assert_eq!(s.lr(0), 1e-3 / 5.0);
        assert_eq!(s.lr(3), 1e-3 * 4.0 / 5.0);
        assert_eq!(s.lr(4), 1e-3);
        assert!((s.lr(9) - 5.5e-4).abs() < 1e-15, "halfway is the midpoint");
        assert!((s.lr(14) - 1e-4).abs() < 1e-15);
        assert_eq!(s.lr(15), 1e-4);
        assert_eq!(Schedule::Constant { lr: 0.3 }.lr(1_000_000), 0.3);
    }
}
