//! The normalisation in front of a GPT block's attention and MLP, and after the last block,
//! chosen by configuration: layer norm (GPT-2's, the default), batch norm, RMS norm (Llama's)
//! or none.
//!
//! Batch norm normalises each channel over the batch and the positions together: `x (B, T, C)`
//! is read as `B T` rows of `C` channels. In training it uses that batch's statistics, so a
//! position's output depends on every other sequence and position in the batch (including
//! later positions of its own sequence: the statistics are not causal). In evaluation it uses
//! the running statistics, so each position is normalised alone, and a decoding step with a
//! key/value cache computes exactly what the full pass computes for that position.

use crate::batch_norm::BatchNorm1d;
use crate::layer_norm::LayerNorm;
use crate::module::Module;
use crate::rms_norm::RmsNorm;
use autograd::Var;
use serde::{Deserialize, Serialize};

/// Which normalisation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormKind {
    /// Layer norm over the channels of each position (with a bias when the model has biases).
    #[default]
    Layer,
    /// Batch norm over the batch and positions of each channel.
    Batch,
    /// RMS norm over the channels of each position (a weight, no bias).
    Rms,
    /// None: the identity.
    None,
}

impl NormKind {
    /// The configuration's name of the kind.
    pub fn name(self) -> &'static str {
        match self {
            NormKind::Layer => "layer",
            NormKind::Batch => "batch",
            NormKind::Rms => "rms",
            NormKind::None => "none",
        }
    }
}

/// A normalisation layer of one of the [`NormKind`]s. Its parameters (and batch norm's running
/// statistics) carry the names of the layer inside, so a layer-norm model's names are those of
/// a plain [`LayerNorm`].
pub enum Norm {
    /// Layer norm.
    Layer(LayerNorm),
    /// Batch norm.
    Batch(BatchNorm1d),
    /// RMS norm.
    Rms(RmsNorm),
    /// The identity.
    Identity,
}

impl Norm {
    /// A fresh norm of `kind` over `dim` channels; `bias` applies to layer norm.
    pub fn new(kind: NormKind, dim: usize, bias: bool) -> Norm {
        match kind {
            NormKind::Layer => Norm::Layer(LayerNorm::new(dim, bias)),
            NormKind::Batch => Norm::Batch(BatchNorm1d::new(dim)),
            NormKind::Rms => Norm::Rms(RmsNorm::new(dim, 1e-5)),
            NormKind::None => Norm::Identity,
        }
    }
}

impl Module for Norm {
    /// `x (..., C)` -> same shape.
    fn forward(&self, x: &Var) -> Var {
        match self {
            Norm::Layer(n) => n.forward(x),
            Norm::Rms(n) => n.forward(x),
            Norm::Batch(n) => {
                let shape = x.shape();
                let c = shape[shape.len() - 1];
                n.forward(&x.reshape(&[x.numel() / c, c])).reshape(&shape)
            }
            Norm::Identity => x.clone(),
        }
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        match self {
            Norm::Layer(n) => n.visit_params(prefix, f),
            Norm::Batch(n) => n.visit_params(prefix, f),
            Norm::Rms(n) => n.visit_params(prefix, f),
            Norm::Identity => {}
        }
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        if let Norm::Batch(n) = self {
            n.visit_buffers(prefix, f);
        }
    }

    fn set_training(&mut self, training: bool) {
        if let Norm::Batch(n) = self {
            n.set_training(training);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::{DType, Rng, Tensor};

    fn input(shape: &[usize], seed: u64) -> Tensor {
        Tensor::randn(shape, 1.0, 2.0, DType::F64, &mut Rng::new(seed))
    }

    /// In evaluation, batch norm normalises each position with the running statistics alone:
    /// a sequence's output does not change with the rest of the batch. In training it does.
    #[test]
    fn batch_norm_in_evaluation_ignores_the_rest_of_the_batch() {
        let mut norm = Norm::new(NormKind::Batch, 4, true);
        norm.to_dtype(DType::F64).unwrap();
        // Training steps move the running statistics away from their start.
        for seed in 0..3 {
            norm.forward(&Var::constant(input(&[3, 5, 4], seed)));
        }
        let alone = input(&[1, 5, 4], 9);
        let others = input(&[2, 5, 4], 10);
        let batch = Tensor::cat(&[&alone, &others], 0);
        let first = |norm: &Norm, x: &Tensor| {
            let y = norm.forward(&Var::constant(x.clone())).value();
            y.narrow(0, 0, 1).to_vec::<f64>()
        };
        assert_ne!(first(&norm, &alone), first(&norm, &batch));
        norm.eval();
        assert_eq!(first(&norm, &alone), first(&norm, &batch));
    }

    #[test]
    fn each_kind_names_its_parameters_as_its_layer_does() {
        let names = |kind| {
            let n = Norm::new(kind, 3, true);
            n.named_state()
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(NormKind::Layer), ["weight", "bias"]);
        assert_eq!(
            names(NormKind::Batch),
            ["weight", "bias", "running_mean", "running_var"]
        );
        assert_eq!(names(NormKind::Rms), ["weight"]);
        assert!(names(NormKind::None).is_empty());
    }
}
