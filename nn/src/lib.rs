//! Neural-network layers on the autograd crate.
//!
//! Every layer implements [`Module`]: a forward pass, parameters with stable dotted names, and
//! a train/eval switch. The transformer pieces (attention with a KV cache, MLP, pre-LayerNorm
//! block) are what the GPT in the `llm` crate is built from; RMS norm, rotary embeddings,
//! grouped-query attention and the SwiGLU block make up Llama's block ([`llama_block`]).
//!
//! Beside the layers: LoRA adapters ([`lora`]), optimizers ([`optim`]), learning-rate
//! schedules ([`schedule`]), gradient clipping ([`clip`]) and safetensors state dicts
//! ([`state_dict`]).
//!
//! ```
//! use autograd::Var;
//! use nn::{AdamW, AdamWConfig, Block, BlockConfig, Module, NormKind, Optimizer, Schedule};
//! use nn::SharedRng;
//! use tensor::{DType, Rng, Tensor};
//!
//! let cfg = BlockConfig {
//!     dim: 16, n_head: 2, bias: true, dropout: 0.0, proj_std: 0.02, norm: NormKind::Layer,
//! };
//! let block = Block::new(cfg, &mut Rng::new(0), &SharedRng::new(0));
//! let mut opt = AdamW::new(block.named_params(), AdamWConfig::default());
//! let schedule = Schedule::WarmupCosine {
//!     max_lr: 1e-2,
//!     min_lr: 1e-3,
//!     warmup_iters: 2,
//!     decay_iters: 8,
//! };
//! let x = Var::constant(Tensor::randn(&[2, 4, 16], 0.0, 1.0, DType::F32, &mut Rng::new(1)));
//! let mut losses = vec![];
//! for step in 0..8 {
//!     opt.zero_grad();
//!     let loss = block.forward(&x).square().mean_all();
//!     loss.backward();
//!     nn::clip::clip_grad_norm(&block.params(), 1.0);
//!     opt.step(schedule.lr(step)).unwrap();
//!     losses.push(loss.value().item());
//! }
//! assert!(losses[7] < losses[0]);
//! ```

#![warn(missing_docs)]

pub mod activation;
pub mod attention;
pub mod batch_norm;
pub mod block;
pub mod clip;
pub mod dropout;
pub mod embedding;
pub mod gqa;
pub mod init;
pub mod layer_norm;
pub mod linear;
pub mod llama_block;
pub mod lora;
pub mod mlp;
pub mod module;
pub mod norm;
pub mod optim;
pub mod rms_norm;
pub mod rope;
pub mod schedule;
pub mod state_dict;
pub mod swiglu;

pub use activation::{Gelu, Relu};
pub use attention::{CausalSelfAttention, KvCache};
pub use batch_norm::BatchNorm1d;
pub use block::{Block, BlockConfig};
pub use dropout::{Dropout, SharedRng};
pub use embedding::Embedding;
pub use gqa::GroupedQueryAttention;
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use llama_block::{LlamaBlock, LlamaBlockConfig};
pub use lora::{LoraAdapter, LoraConfig};
pub use mlp::Mlp;
pub use module::Module;
pub use norm::{Norm, NormKind};
pub use optim::{AdamW, AdamWConfig, Optimizer, OptimizerState, Sgd, SgdConfig};
pub use rms_norm::RmsNorm;
pub use rope::Rope;
pub use schedule::Schedule;
pub use state_dict::StateDict;
pub use swiglu::SwiGlu;
