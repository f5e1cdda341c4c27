//! The training stages, one objective per file (see [`crate::train::objective`]): what turns a
//! batch into a loss and a model into metrics. Pretraining is one stage among others.

pub mod classify;
pub mod dpo;
pub mod grpo;
pub mod pairs;
pub mod ppo;
pub mod pretrain;
pub mod reward;
pub mod rollout;
pub mod scorer;
pub mod sft;
