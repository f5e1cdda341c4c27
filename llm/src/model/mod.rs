//! Language models: token ids in, next-token logits out.

pub mod bigram;
pub mod check;
pub mod config;
pub mod gpt;
pub mod heads;
pub mod hf;
pub mod llama;
pub mod llama2c;

use crate::data::batch::{masked_cross_entropy, IGNORE};
use crate::model::config::{Architecture, Config};
use autograd::Var;
use bigram::Bigram;
use gpt::Gpt;
use heads::{ClassifierHead, Pool};
use llama::Llama;
use nn::{KvCache, Linear, LoraConfig, Module, SharedRng};
use tensor::{Rng, Tensor};

/// The architecture under the heads.
enum Body {
    /// The bigram table.
    Bigram(Bigram),
    /// The GPT-2-style transformer.
    Gpt(Gpt),
    /// The Llama-style transformer.
    Llama(Llama),
}

/// A language model (an architecture with its tied LM head) and the heads put on it: a
/// classification head when its configuration has classes. LoRA adapters sit on the blocks'
/// linear layers when the configuration gives them a rank.
pub struct Model {
    body: Body,
    /// The classification head and how it pools an example, when the model classifies.
    pub classifier: Option<(ClassifierHead, Pool)>,
}

/// What incremental decoding keeps between steps: each GPT block's key/value cache.
pub struct DecodeState {
    caches: Vec<KvCache>,
}

impl DecodeState {
    /// Number of positions already processed.
    pub fn len(&self) -> usize {
        self.caches.first().map_or(0, KvCache::len)
    }

    /// True when no position has been processed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room for `positions` in all (see [`KvCache::reserve`]).
    pub fn reserve(&mut self, positions: usize) {
        self.caches.iter_mut().for_each(|c| c.reserve(positions));
    }
}

impl Model {
    /// A freshly initialised model for `cfg` (whose `vocab_size` must be set). The classifier's
    /// weights are drawn after the body's, so a model without one is initialised as before.
    pub fn new(cfg: &Config, rng: &mut Rng, drop_rng: &SharedRng) -> Model {
        assert!(cfg.vocab_size > 0, "the model's vocabulary size is not set");
        let body = match cfg.model {
            Architecture::Bigram => Body::Bigram(Bigram::new(cfg.vocab_size, rng)),
            Architecture::Gpt => Body::Gpt(Gpt::new(cfg, rng, drop_rng)),
            Architecture::Llama => Body::Llama(Llama::new(cfg, rng)),
        };
        let width = body.width();
        let mut model = Model {
            body,
            classifier: (cfg.n_classes > 0)
                .then(|| (ClassifierHead::new(width, cfg.n_classes, rng), cfg.pool)),
        };
        if cfg.lora_rank > 0 {
            let lora = LoraConfig {
                rank: cfg.lora_rank,
                alpha: cfg.lora_alpha,
                dropout: 0.0,
                targets: lora_targets(cfg.model)
                    .iter()
                    .map(|t| t.to_string())
                    .collect(),
            };
            nn::lora::apply(model.body.module_mut(), &lora, rng, drop_rng);
        }
        model
    }

    /// Makes rows `first..first + count` of the token embedding (and so of the tied head) new
    /// tokens' rows, growing the table when it has fewer rows; returns its new number of rows.
    /// Every new row is the mean of rows `0..first` (the tokens the model was trained with), so
    /// a new token starts as an average token and its logit as their average logit, not as an
    /// arbitrary one (the choice argued for in Hewitt, "Initializing New Word Embeddings for
    /// Pretrained Language Models", 2021). Other rows are kept bit for bit.
    ///
    /// A Llama with an output head of its own grows that head's rows the same way.
    pub fn add_token_rows(&mut self, first: usize, count: usize) -> crate::Result<usize> {
        let tables: Vec<&mut Var> = match &mut self.body {
            Body::Bigram(_) => {
                return Err(crate::Error::Invalid(
                    "new tokens need a transformer: the bigram model's table is its head".into(),
                ))
            }
            Body::Gpt(gpt) => vec![&mut gpt.wte.weight],
            Body::Llama(llama) => {
                let mut t = vec![&mut llama.tok_embeddings.weight];
                t.extend(llama.output.as_mut().map(|o| &mut o.weight));
                t
            }
        };
        let mut grown_rows = 0;
        for table in tables {
            grown_rows = grow_rows(table, first, count)?;
        }
        Ok(grown_rows)
    }

    /// The device the weights live on.
    pub fn device(&self) -> tensor::Device {
        self.params()
            .first()
            .map_or(tensor::Device::Cpu, |p| p.value().device())
    }

    /// The GPT under the heads, if the architecture is GPT.
    pub fn gpt(&self) -> Option<&Gpt> {
        match &self.body {
            Body::Gpt(m) => Some(m),
            _ => None,
        }
    }

    /// The names of the parameters with a row per token, the ones [`Model::add_token_rows`]
    /// grows: the token embedding, and a Llama's output head of its own.
    pub fn token_row_names(&self) -> Vec<String> {
        match &self.body {
            Body::Bigram(_) => vec!["table.weight".into()],
            Body::Gpt(_) => vec!["wte.weight".into()],
            Body::Llama(m) => {
                let mut names = vec!["tok_embeddings.weight".to_string()];
                if m.output.is_some() {
                    names.push("output.weight".into());
                }
                names
            }
        }
    }

    /// The name patterns of the last transformer block's and the final norm's parameters
    /// (empty for the bigram model).
    pub fn last_block_patterns(&self) -> Vec<String> {
        match &self.body {
            Body::Bigram(_) => vec![],
            Body::Gpt(m) => vec![format!("blocks.{}.*", m.blocks.len() - 1), "ln_f.*".into()],
            Body::Llama(m) => vec![format!("blocks.{}.*", m.blocks.len() - 1), "norm.*".into()],
        }
    }

    /// The Llama under the heads, if the architecture is Llama.
    pub fn llama(&self) -> Option<&Llama> {
        match &self.body {
            Body::Llama(m) => Some(m),
            _ => None,
        }
    }

    /// Logits `(B, T, V)` for `ids (B, T)`, on the model's device (`ids` may be anywhere).
    pub fn logits(&self, ids: &Tensor) -> Var {
        match &self.body {
            Body::Bigram(m) => m.logits(ids),
            Body::Gpt(m) => m.logits(ids),
            Body::Llama(m) => m.logits(ids),
        }
    }

    /// Hidden states `(B, T, C)` of `ids (B, T)` after the final layer norm, what the heads of
    /// [`heads`] read; the bigram model has none.
    pub fn hidden(&self, ids: &Tensor) -> crate::Result<Var> {
        match &self.body {
            Body::Bigram(_) => Err(crate::Error::Invalid(
                "the bigram model has no hidden states to put a head on".into(),
            )),
            Body::Gpt(m) => Ok(m.hidden(ids)),
            Body::Llama(m) => Ok(m.hidden(ids)),
        }
    }

    /// Class logits `(B, K)` of right-padded `ids (B, T)` whose examples have `lengths` real
    /// tokens; an error for a model without a classification head.
    pub fn classify(&self, ids: &Tensor, lengths: &[usize]) -> crate::Result<Var> {
        let Some((head, how)) = &self.classifier else {
            return Err(crate::Error::Invalid(
                "this model has no classification head".into(),
            ));
        };
        Ok(head.forward(&heads::pool(&self.hidden(ids)?, lengths, *how)))
    }

    /// Mean cross-entropy of the next-token logits of `ids (B, T)` against `targets (B, T)` at
    /// the positions whose target is not [`IGNORE`] (0, with zero gradients, when every target
    /// is ignored); `ids` and `targets` may be on any device.
    ///
    /// The GPT's head runs only at the scored positions: in fine-tuning most positions (the
    /// prompt, the padding) have no target, and the head over the vocabulary is the largest
    /// product of a small model. The value and gradients are those of the head at every
    /// position followed by the masked mean, summed in another order.
    pub fn masked_lm_loss(&self, ids: &Tensor, targets: &Tensor) -> Var {
        match self.scored_logits(ids, targets) {
            Some((logits, kept)) => logits.cross_entropy(&kept, None),
            None => masked_cross_entropy(&self.logits(ids), targets),
        }
    }

    /// The log-probability `(N)` of each target of `targets (B, T)` that is not [`IGNORE`], in
    /// row-major order of the positions, under the next-token distribution at its position
    /// (the head run there only). At least one target must be scored.
    pub fn target_log_probs(&self, ids: &Tensor, targets: &Tensor) -> Var {
        let (logits, kept) = self
            .scored_logits(ids, targets)
            .expect("log-probabilities of at least one target");
        let n = kept.numel();
        logits
            .log_softmax(1)
            .gather(1, &kept.reshape(&[n, 1]))
            .reshape(&[n])
    }

    /// [`Model::target_log_probs`], and the entropy `-sum_v p_v log p_v` `(N)` of the
    /// next-token distribution at each of those positions.
    pub fn target_log_probs_and_entropy(&self, ids: &Tensor, targets: &Tensor) -> (Var, Var) {
        let (logits, kept) = self
            .scored_logits(ids, targets)
            .expect("log-probabilities of at least one target");
        let n = kept.numel();
        let all = logits.log_softmax(1);
        let picked = all.gather(1, &kept.reshape(&[n, 1])).reshape(&[n]);
        let entropy = all.exp().mul(&all).sum(&[1], false).neg();
        (picked, entropy)
    }

    /// The logits `(N, V)` at the positions with a target, and those targets `(N)` on the
    /// model's device; `None` when no target is scored.
    fn scored_logits(&self, ids: &Tensor, targets: &Tensor) -> Option<(Var, Tensor)> {
        let all = targets.to_device(tensor::Device::Cpu).to_vec::<i64>();
        let (rows, kept): (Vec<u32>, Vec<i64>) = all
            .iter()
            .enumerate()
            .filter(|(_, &t)| t != IGNORE)
            .map(|(i, &t)| (i as u32, t))
            .unzip();
        if rows.is_empty() {
            return None;
        }
        let n = rows.len();
        let device = self.device();
        let rows = Tensor::from_vec(rows, &[n]).to_device(device);
        let kept = Tensor::from_vec(kept, &[n]).to_device(device);
        let picked = |hidden: Var| {
            let width = hidden.dim(2);
            hidden.reshape(&[all.len(), width]).index_select(0, &rows)
        };
        let logits = match &self.body {
            Body::Gpt(gpt) => gpt.lm_head(&picked(gpt.hidden(ids))),
            Body::Llama(llama) => llama.lm_head(&picked(llama.hidden(ids))),
            Body::Bigram(m) => {
                let logits = m.logits(ids);
                let v = logits.dim(2);
                logits.reshape(&[all.len(), v]).index_select(0, &rows)
            }
        };
        Some((logits, kept))
    }

    /// The width `C` of the hidden states (the bigram model's is its vocabulary).
    pub fn width(&self) -> usize {
        self.body.width()
    }

    /// Mean cross-entropy of the logits for `ids` against `targets` (both `(B, T)`, on any
    /// device), on the model's device.
    pub fn loss(&self, ids: &Tensor, targets: &Tensor) -> Var {
        let logits = self.logits(ids);
        logits.cross_entropy(&targets.to_device(logits.device()), None)
    }

    /// The longest sequence the model takes (unbounded for the bigram model).
    pub fn context(&self) -> usize {
        match &self.body {
            Body::Bigram(_) => usize::MAX,
            Body::Gpt(m) => m.block_size,
            Body::Llama(m) => m.context,
        }
    }

    /// An empty decoding state.
    pub fn start_decoding(&self) -> DecodeState {
        let layers = match &self.body {
            Body::Bigram(_) => 0,
            Body::Gpt(m) => m.blocks.len(),
            Body::Llama(m) => m.blocks.len(),
        };
        DecodeState {
            caches: (0..layers).map(|_| KvCache::new()).collect(),
        }
    }

    /// Logits `(B, V)` after feeding `ids (B, T_new)` (on any device) on top of `state`, which
    /// is extended.
    pub fn logits_next(&self, ids: &Tensor, state: &mut DecodeState) -> Var {
        match &self.body {
            Body::Bigram(m) => {
                let last = ids.narrow(1, ids.dim(1) - 1, 1);
                m.logits(&last).squeeze(1)
            }
            Body::Gpt(m) => m.logits_cached(ids, &mut state.caches),
            Body::Llama(m) => m.logits_cached(ids, &mut state.caches),
        }
    }

    /// Logits `(B, V)` after one new token per sequence, `ids (B, 1)`, where sequence `b` has
    /// its own decoding state `states[b]` (of any length), which is extended.
    pub fn logits_next_ragged(&self, ids: &Tensor, states: &mut [&mut DecodeState]) -> Var {
        match &self.body {
            Body::Bigram(m) => m.logits(ids).squeeze(1),
            Body::Gpt(m) => m.logits_ragged(ids, &mut caches_of(states)),
            Body::Llama(m) => m.logits_ragged(ids, &mut caches_of(states)),
        }
    }
}

/// Makes rows `first..first + count` of `table (rows, C)` the mean of rows `0..first`, growing
/// it when it has fewer rows (see [`Model::add_token_rows`]); returns its new number of rows.
fn grow_rows(table: &mut Var, first: usize, count: usize) -> crate::Result<usize> {
    let value = table.value();
    let rows = value.dim(0);
    if first == 0 || first > rows {
        return Err(crate::Error::Invalid(format!(
            "new token rows from {first}, but the embedding has {rows} rows"
        )));
    }
    let end = first + count;
    let mean = value.narrow(0, 0, first).mean(&[0], true);
    let mut parts = vec![
        value.narrow(0, 0, first),
        mean.expand(&[count, value.dim(1)]),
    ];
    if end < rows {
        parts.push(value.narrow(0, end, rows - end));
    }
    let grown = Tensor::cat(&parts.iter().collect::<Vec<_>>(), 0).contiguous();
    *table = Var::parameter(grown);
    Ok(rows.max(end))
}

/// Each sequence's caches, one per block.
fn caches_of<'a>(states: &'a mut [&mut DecodeState]) -> Vec<&'a mut [KvCache]> {
    states.iter_mut().map(|s| s.caches.as_mut_slice()).collect()
}

impl Body {
    fn module(&self) -> &dyn Module {
        match self {
            Body::Bigram(m) => m,
            Body::Gpt(m) => m,
            Body::Llama(m) => m,
        }
    }

    fn module_mut(&mut self) -> &mut dyn Module {
        match self {
            Body::Bigram(m) => m,
            Body::Gpt(m) => m,
            Body::Llama(m) => m,
        }
    }

    fn width(&self) -> usize {
        match self {
            Body::Bigram(m) => m.table.weight.dim(1),
            Body::Gpt(m) => m.wte.weight.dim(1),
            Body::Llama(m) => m.tok_embeddings.weight.dim(1),
        }
    }
}

/// The layers that get LoRA adapters when the configuration asks for them: every linear layer
/// of the transformer blocks (the classification head is trained whole).
pub fn lora_targets(model: Architecture) -> &'static [&'static str] {
    match model {
        Architecture::Llama => &[
            "attn.wq", "attn.wk", "attn.wv", "attn.wo", "ffn.w1", "ffn.w2", "ffn.w3",
        ],
        _ => &["attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"],
    }
}

/// The name prefix of the classification head's weights.
pub const CLASSIFIER: &str = "classifier";

/// The body's names are those of its architecture (`wte.weight`, `blocks.0.ln1.weight`, ...);
/// the classification head's are under [`CLASSIFIER`].
impl Module for Model {
    fn forward(&self, x: &Var) -> Var {
        self.body.module().forward(x)
    }
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        self.body.module().visit_params(prefix, f);
        if let Some((head, _)) = &self.classifier {
            head.visit_params(&nn::module::join(prefix, CLASSIFIER), f);
        }
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Var)) {
        self.body.module().visit_buffers(prefix, f)
    }
    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        self.body.module_mut().visit_linears_mut(prefix, f);
        if let Some((head, _)) = &mut self.classifier {
            f(&nn::module::join(prefix, CLASSIFIER), &mut head.linear);
        }
    }
    fn set_training(&mut self, training: bool) {
        self.body.module_mut().set_training(training)
    }
}
