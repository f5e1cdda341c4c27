//! Batch normalization over the channels of `x (N, C)` or `x (N, C, L)`, with PyTorch's
//! `BatchNorm1d` semantics.
//!
//! Training: each channel is normalized with the statistics of the batch, taken over `N` (and
//! `L`): `y = (x - mean) / sqrt(var + eps) * weight + bias`, where `var` is the biased variance
//! (divided by `n = N L`). The forward is composed of differentiable ops, so gradients flow
//! through the batch statistics. The running statistics move towards the batch's by `momentum`:
//! `running_mean = (1 - momentum) running_mean + momentum mean` and the same for `running_var`
//! with the *unbiased* variance `var n / (n - 1)`.
//!
//! Evaluation: the running statistics replace the batch's, so each sample is normalized alone.
//!
//! `running_mean` and `running_var` are buffers (saved and loaded with the parameters, never
//! trained). PyTorch's `num_batches_tracked` counter is not kept: it only matters when PyTorch
//! runs with `momentum=None`.

use crate::init;
use crate::module::{join, Module};
use autograd::{no_grad, Var};
use tensor::{DType, Tensor};

/// Batch norm over `num_features` channels, with a learned per-channel scale and shift.
pub struct BatchNorm1d {
    /// Scale, `(C)`, initially one.
    pub weight: Var,
    /// Shift, `(C)`, initially zero.
    pub bias: Var,
    /// Mean used in evaluation, `(C)`, initially zero.
    pub running_mean: Var,
    /// Variance used in evaluation, `(C)`, initially one.
    pub running_var: Var,
    /// Weight of the newest batch in the running statistics (PyTorch's default 0.1).
    pub momentum: f64,
    /// Added to the variance before the square root (PyTorch's default 1e-5).
    pub eps: f64,
    training: bool,
}

impl BatchNorm1d {
    /// Weight one, bias zero, running mean zero and variance one; starts in training mode.
    pub fn new(num_features: usize) -> BatchNorm1d {
        BatchNorm1d {
            weight: init::ones(&[num_features]),
            bias: init::zeros(&[num_features]),
            running_mean: Var::constant(Tensor::zeros(&[num_features], DType::F32)),
            running_var: Var::constant(Tensor::ones(&[num_features], DType::F32)),
            momentum: 0.1,
            eps: 1e-5,
            training: true,
        }
    }

    /// Number of channels `C`.
    pub fn num_features(&self) -> usize {
        self.weight.dim(0)
    }

    /// Moves the running statistics towards the batch's (`var` is the biased batch variance,
    /// `n` the number of values per channel).
    fn update_running_stats(&self, mean: &Tensor, var: &Tensor, n: usize) {
        let m = self.momentum;
        let unbiased = var.mul_scalar(n as f64 / (n - 1) as f64);
        let blend = |running: &Var, batch: &Tensor| {
            let new = running
                .value()
                .mul_scalar(1.0 - m)
                .add(&batch.mul_scalar(m));
            running.set_value(new);
        };
        blend(&self.running_mean, mean);
        blend(&self.running_var, &unbiased);
    }
}

impl Module for BatchNorm1d {
    /// `x (N, C)` or `(N, C, L)` -> same shape.
    fn forward(&self, x: &Var) -> Var {
        let shape = x.shape();
        let c = self.num_features();
        assert!(
            matches!(shape.len(), 2 | 3) && shape[1] == c,
            "batch norm: expected input (N, {c}) or (N, {c}, L), got {shape:?}"
        );
        // Statistics are taken over every dim but the channel dim; per-channel vectors are
        // viewed as (1, C) or (1, C, 1) so they broadcast against x.
        let (dims, channel_shape): (&[isize], Vec<usize>) = if shape.len() == 2 {
            (&[0], vec![1, c])
        } else {
            (&[0, 2], vec![1, c, 1])
        };
        let per_channel = |v: &Var| v.reshape(&channel_shape);
        let (mean, var) = if self.training {
            let n = x.numel() / c;
            assert!(
                n > 1,
                "batch norm: expected more than 1 value per channel when training, \
                 got input {shape:?}"
            );
            let mean = x.mean(dims, true);
            let var = x.var(dims, true, 0);
            no_grad(|| {
                self.update_running_stats(
                    &mean.value().reshape(&[c]),
                    &var.value().reshape(&[c]),
                    n,
                )
            });
            (mean, var)
        } else {
            (
                per_channel(&self.running_mean),
                per_channel(&self.running_var),
            )
        };
        let x_hat = x.sub(&mean).mul(&var.add_scalar(self.eps).rsqrt());
        x_hat
            .mul(&per_channel(&self.weight))
            .add(&per_channel(&self.bias))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        f(&join(prefix, "weight"), &self.weight);
        f(&join(prefix, "bias"), &self.bias);
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        f(&join(prefix, "running_mean"), &self.running_mean);
        f(&join(prefix, "running_var"), &self.running_var);
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_normalizes_each_channel_and_eval_uses_running_stats() {
        // Channel 0 holds 1, 2, 3, 4 and channel 1 holds 10, 10, 10, 30 (N = 2, L = 2).
        let x = Tensor::from_vec(vec![1.0f64, 2., 10., 10., 3., 4., 10., 30.], &[2, 2, 2]);
        let mut bn = BatchNorm1d::new(2);
        bn.to_dtype(DType::F64).unwrap();
        let y = bn.forward(&Var::constant(x.clone())).value();
        // Channel 0: mean 2.5, biased var 1.25.
        let want0 = (1.0 - 2.5) / (1.25f64 + 1e-5).sqrt();
        assert!((y.to_vec::<f64>()[0] - want0).abs() < 1e-12);
        // Running stats after one step: 0.9 * init + 0.1 * batch, with unbiased var (n = 4).
        let rm = bn.running_mean.value().to_vec::<f64>();
        let rv = bn.running_var.value().to_vec::<f64>();
        assert!((rm[0] - 0.25).abs() < 1e-12 && (rm[1] - 1.5).abs() < 1e-12);
        assert!((rv[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-12);
        assert!((rv[1] - (0.9 + 0.1 * 100.0)).abs() < 1e-12);
        // Eval: (x - running_mean) / sqrt(running_var + eps), and the statistics stay put.
        bn.eval();
        let y = bn.forward(&Var::constant(x)).value().to_vec::<f64>();
        assert!((y[0] - (1.0 - 0.25) / (rv[0] + 1e-5).sqrt()).abs() < 1e-12);
        assert_eq!(bn.running_mean.value().to_vec::<f64>(), rm);
    }

    #[test]
    fn running_stats_are_named_buffers() {
        let names: Vec<String> = BatchNorm1d::new(3)
            .named_state()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["weight", "bias", "running_mean", "running_var"]);
        assert_eq!(BatchNorm1d::new(3).num_params(), 6);
    }
}
