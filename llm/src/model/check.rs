//! The configuration of a stored model checked against its weights file before the model is
//! built, so that a wrong or hostile `config.json` is an error naming the mismatch, not a
//! panic in a layer or an allocation of gigabytes that the weights never held.
//!
//! The sizes that fix the number of weights are checked against tensors in the file's header:
//! for GPT the token and position embeddings (`vocab_size x n_embd`, `block_size x n_embd`) and
//! the number of blocks (the last block's first layer norm is there, one more is not); for
//! Llama the token embedding and the number of blocks likewise; for the bigram model its table
//! (`vocab_size x vocab_size`). Every other shape follows from these and
//! is checked when the weights are copied in.

use super::config::{Architecture, Config};
use crate::{Error, Result};
use nn::state_dict::StateDict;

/// Checks `cfg` against the weights in `dict`; `stored(ours)` is the name in the file of our
/// parameter named `ours` (for example `wte.weight`).
pub fn config_matches_weights(
    cfg: &Config,
    dict: &StateDict,
    stored: impl Fn(&str) -> String,
) -> Result<()> {
    let file = dict.path().display().to_string();
    let expect_shape = |ours: &str, want: [usize; 2], what: &str| -> Result<()> {
        let name = stored(ours);
        match dict.shape(&name) {
            None => Err(Error::Invalid(format!("{file}: no tensor `{name}`"))),
            Some(shape) if shape != want => Err(Error::Invalid(format!(
                "{file}: `{name}` has shape {shape:?}, but the configuration gives {want:?} ({what})"
            ))),
            Some(_) => Ok(()),
        }
    };
    match cfg.model {
        Architecture::Bigram => expect_shape(
            "table.weight",
            [cfg.vocab_size, cfg.vocab_size],
            "vocab_size x vocab_size",
        ),
        Architecture::Gpt | Architecture::Llama => {
            let (embedding, first_norm) = match cfg.model {
                Architecture::Gpt => ("wte.weight", "ln1.weight"),
                _ => ("tok_embeddings.weight", "attn_norm.weight"),
            };
            expect_shape(
                embedding,
                [cfg.vocab_size, cfg.n_embd],
                "vocab_size x n_embd",
            )?;
            if cfg.model == Architecture::Gpt {
                expect_shape(
                    "wpe.weight",
                    [cfg.block_size, cfg.n_embd],
                    "block_size x n_embd",
                )?;
            }
            let block = |i: usize| stored(&format!("blocks.{i}.{first_norm}"));
            let last_present = dict.shape(&block(cfg.n_layer - 1)).is_some();
            if !last_present || dict.shape(&block(cfg.n_layer)).is_some() {
                let held = (0..)
                    .take_while(|&i| dict.shape(&block(i)).is_some())
                    .count();
                return Err(Error::Invalid(format!(
                    "{file} holds {held} blocks, but the configuration gives n_layer {}",
                    cfg.n_layer
                )));
            }
            Ok(())
        }
    }
}
