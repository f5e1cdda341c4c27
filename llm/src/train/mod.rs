//! Training: the loop, checkpoints, the log and the loss curve.

pub mod plot;
