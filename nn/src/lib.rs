//! Neural-network layers on the autograd crate.
//!
//! Every layer implements [`Module`]: a forward pass, parameters with stable dotted names, and
//! a train/eval switch. The transformer pieces (attention with a KV cache, MLP, pre-LayerNorm
//! block) are what the GPT in the `llm` crate is built from.
//!
//! Beside the layers: LoRA adapters ([`lora`]), optimizers ([`optim`]), learning-rate
//! schedules ([`schedule`]), gradient clipping ([`clip`]) and safetensors state dicts
//! ([`state_dict`]).

pub mod activation;
pub mod attention;
pub mod batch_norm;
pub mod block;
pub mod clip;
pub mod dropout;
pub mod embedding;
pub mod init;
pub mod layer_norm;
pub mod linear;
pub mod lora;
pub mod mlp;
pub mod module;
pub mod optim;
pub mod schedule;
pub mod state_dict;

pub use activation::{Gelu, Relu};
pub use attention::{CausalSelfAttention, KvCache};
pub use batch_norm::BatchNorm1d;
pub use block::{Block, BlockConfig};
pub use dropout::{Dropout, SharedRng};
pub use embedding::Embedding;
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use lora::{LoraAdapter, LoraConfig};
pub use mlp::Mlp;
pub use module::Module;
pub use optim::{AdamW, AdamWConfig, Optimizer, OptimizerState, Sgd, SgdConfig};
pub use schedule::Schedule;
pub use state_dict::StateDict;
