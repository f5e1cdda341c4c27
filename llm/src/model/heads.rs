//! Heads: what turns a model's hidden states `(B, T, C)` (after the final layer norm) into
//! outputs, and pooling, which picks one hidden state per example for the heads that need one.
//!
//! - The language-model head is GPT-2's: the token embedding, transposed (tied weights), giving
//!   next-token logits `(B, T, V)` ([`crate::model::gpt::Gpt::logits`]).
//! - [`ClassifierHead`]: a linear map of the pooled state to `n_classes` logits `(B, K)`.
//! - [`ScalarHead`]: a linear map of each state to one number, `(B, T)` (a reward model scores
//!   the pooled state; a value function, every position).
//!
//! Examples of different lengths share a batch right-padded: example `b` holds real tokens at
//! positions `0..len_b` and padding after. Attention is causal, so no real position ever sees a
//! pad and padding needs no mask; only pooling and the loss must skip it.

use autograd::Var;
use nn::{Linear, Module};
use tensor::{Rng, Tensor};

/// Which hidden state stands for a whole example.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// The last real token's state, which has seen the whole example (the default).
    #[default]
    Last,
    /// The state at the last position of the batch, padding or not.
    Position,
    /// The first token's state, which has seen only itself under causal attention.
    First,
    /// The mean of the real tokens' states.
    Mean,
}

impl std::str::FromStr for Pool {
    type Err = String;

    fn from_str(s: &str) -> Result<Pool, String> {
        match s {
            "last" => Ok(Pool::Last),
            "position" => Ok(Pool::Position),
            "first" => Ok(Pool::First),
            "mean" => Ok(Pool::Mean),
            other => Err(format!(
                "unknown pooling `{other}`; choose last, position, first or mean"
            )),
        }
    }
}

/// One state per example, `(B, C)`, from `hidden (B, T, C)` whose example `b` has `lengths[b]`
/// real tokens (each between 1 and `T`).
pub fn pool(hidden: &Var, lengths: &[usize], how: Pool) -> Var {
    let (b, t, c) = (hidden.dim(0), hidden.dim(1), hidden.dim(2));
    assert_eq!(
        lengths.len(),
        b,
        "pool: {} lengths for a batch of {b}",
        lengths.len()
    );
    assert!(
        lengths.iter().all(|&n| (1..=t).contains(&n)),
        "pool: lengths {lengths:?} must each be in 1..={t}"
    );
    match how {
        Pool::Position => hidden.narrow(1, t - 1, 1).squeeze(1),
        Pool::First => hidden.narrow(1, 0, 1).squeeze(1),
        Pool::Last => {
            let rows: Vec<u32> = (0..b).map(|i| (i * t + lengths[i] - 1) as u32).collect();
            let rows = Tensor::from_vec(rows, &[b]).to_device(hidden.device());
            hidden.reshape(&[b * t, c]).index_select(0, &rows)
        }
        Pool::Mean => {
            // Weights 1/len at real positions and 0 at padding, so the sum over T is the mean.
            let weights: Vec<f64> = (0..b)
                .flat_map(|i| {
                    (0..t).map(move |j| (j < lengths[i]) as u8 as f64 / lengths[i] as f64)
                })
                .collect();
            let weights = Tensor::from_vec(weights, &[b, t, 1])
                .to_dtype(hidden.dtype())
                .to_device(hidden.device());
            hidden.mul(&Var::constant(weights)).sum(&[1], false)
        }
    }
}

/// `pooled (B, C) -> logits (B, n_classes)`.
pub struct ClassifierHead {
    /// `C -> n_classes`, with a bias.
    pub linear: Linear,
}

impl ClassifierHead {
    /// A head for `dim`-wide states and `n_classes` classes: weights from `N(0, 0.02^2)`, bias
    /// zero.
    pub fn new(dim: usize, n_classes: usize, rng: &mut Rng) -> ClassifierHead {
        ClassifierHead {
            linear: Linear::new(dim, n_classes, true, nn::init::GPT2_STD, rng),
        }
    }

    /// The number of classes.
    pub fn n_classes(&self) -> usize {
        self.linear.out_features()
    }
}

impl Module for ClassifierHead {
    fn forward(&self, pooled: &Var) -> Var {
        self.linear.forward(pooled)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        self.linear.visit_params(prefix, f);
    }
}

/// `states (..., C) -> scores (...)`: one number per state.
pub struct ScalarHead {
    /// `C -> 1`, with a bias.
    pub linear: Linear,
}

impl ScalarHead {
    /// A head for `dim`-wide states: weights from `N(0, 0.02^2)`, bias zero.
    pub fn new(dim: usize, rng: &mut Rng) -> ScalarHead {
        ScalarHead {
            linear: Linear::new(dim, 1, true, nn::init::GPT2_STD, rng),
        }
    }
}

impl Module for ScalarHead {
    fn forward(&self, states: &Var) -> Var {
        self.linear.forward(states).squeeze(-1)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        self.linear.visit_params(prefix, f);
    }
}
