//! Dropout, and the shared seeded generator that drives it.
//!
//! In training, each element is zeroed with probability `p` and the rest are scaled by
//! `1/(1-p)`, which keeps expectations; in evaluation dropout is the identity. All dropout
//! layers of a model draw from one [`SharedRng`], so saving that one generator's state in a
//! checkpoint makes a resumed run draw the same masks as an uninterrupted one.

use crate::module::Module;
use autograd::Var;
use std::sync::{Arc, Mutex};
use tensor::Rng;

/// A seeded generator shared by several layers.
#[derive(Clone, Debug)]
pub struct SharedRng(Arc<Mutex<Rng>>);

impl SharedRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SharedRng {
        SharedRng(Arc::new(Mutex::new(Rng::new(seed))))
    }

    /// A copy of the generator's current state.
    pub fn state(&self) -> Rng {
        self.0.lock().expect("rng lock poisoned").clone()
    }

    /// Restores a state saved with [`SharedRng::state`].
    pub fn set_state(&self, rng: Rng) {
        *self.0.lock().expect("rng lock poisoned") = rng;
    }

    /// Runs `f` with exclusive use of the generator.
    pub fn with<R>(&self, f: impl FnOnce(&mut Rng) -> R) -> R {
        f(&mut self.0.lock().expect("rng lock poisoned"))
    }
}

/// Dropout with probability `p`.
pub struct Dropout {
    /// Probability of zeroing an element in training.
    pub p: f64,
    rng: SharedRng,
    training: bool,
}

impl Dropout {
    /// Starts in training mode.
    pub fn new(p: f64, rng: SharedRng) -> Dropout {
        assert!(
            (0.0..1.0).contains(&p),
            "dropout probability {p} must be in [0, 1)"
        );
        Dropout {
            p,
            rng,
            training: true,
        }
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Var) -> Var {
        if !self.training || self.p == 0.0 {
            return x.clone();
        }
        self.rng.with(|rng| x.dropout(self.p, rng))
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Var)) {}

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::{DType, Tensor};

    #[test]
    fn identity_in_eval_and_scaled_mask_in_training() {
        let x = Var::constant(Tensor::ones(&[100_000], DType::F32));
        let mut d = Dropout::new(0.25, SharedRng::new(5));
        let y = d.forward(&x).value().to_vec::<f32>();
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / 1e5;
        assert!((kept - 0.75).abs() < 0.01, "kept fraction {kept}");
        assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
        // The same seed gives the same mask.
        let again = Dropout::new(0.25, SharedRng::new(5))
            .forward(&x)
            .value()
            .to_vec::<f32>();
        assert_eq!(y, again);
        d.eval();
        assert_eq!(d.forward(&x).value().to_vec::<f32>(), vec![1.0; 100_000]);
    }
}
