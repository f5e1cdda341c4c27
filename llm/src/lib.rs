//! The language-model pipeline: models, training, generation and evaluation.

pub mod eval;
pub mod generate;
pub mod model;
