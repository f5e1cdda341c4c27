//! llama2.c's model files (`.bin`): read into a [`Model`], and written so that llama2.c's
//! `run.c` runs a model trained here.
//!
//! Two layouts, both little-endian float32 after a header:
//!
//! - **version 0** (what `run.c` reads): seven int32 `dim, hidden_dim, n_layers, n_heads,
//!   n_kv_heads, vocab_size, seq_len`; a negative `vocab_size` means the file has its own
//!   output head (`wcls`), a positive one that the head is the token embedding. Then
//!   `token_embedding (V, C)`, and for all layers in turn `rms_att (L, C)`, `wq (L, C, C)`,
//!   `wk (L, KV, C)`, `wv (L, KV, C)`, `wo (L, C, C)`, `rms_ffn (L, C)`, `w1 (L, H, C)`,
//!   `w2 (L, C, H)`, `w3 (L, H, C)`; `rms_final (C)`; two rotary tables `(seq_len, HS / 2)` that
//!   are not read (the rotations are recomputed); `wcls (V, C)` when present.
//! - **version 1** (llama2.c's `export.py --version 1`): the magic `0x616b3432` ("ak42"),
//!   int32 version 1, the same seven int32 (the vocabulary size positive), a byte that is 1
//!   when the head is shared, zeros up to 256 bytes; then the attention norms of all layers,
//!   the feed-forward norms, the final norm, the token embedding, and `wq`, `wk`, `wv`, `wo`,
//!   `w1`, `w2`, `w3` of all layers; `wcls` when not shared.
//!
//! Matrices are `(out, in)` row-major, as our linear layers hold them. `KV = n_kv_heads * HS`,
//! `HS = dim / n_heads`. The model runs with llama2.c's constants: RMS epsilon 1e-5, rotary
//! base 10,000.

use crate::model::config::{Architecture, Config};
use crate::model::Model;
use crate::{Error, Result};
use autograd::Var;
use nn::{Module, SharedRng};
use std::path::Path;
use tensor::{Rng, Tensor};

/// The first four bytes of a version-1 file, as a little-endian u32.
const MAGIC: u32 = 0x616b_3432;
/// The size of a version-1 header.
const HEADER_V1: usize = 256;

/// The shape a file's header gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Width `C`.
    pub dim: usize,
    /// Width of the feed-forward block.
    pub hidden_dim: usize,
    /// Blocks.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Context length.
    pub seq_len: usize,
    /// Whether the output head is the token embedding.
    pub shared_head: bool,
}

impl Shape {
    /// The configuration of a Llama of this shape (training keys from the default preset).
    pub fn config(&self) -> Config {
        Config {
            model: Architecture::Llama,
            vocab_size: self.vocab_size,
            block_size: self.seq_len,
            n_layer: self.n_layers,
            n_head: self.n_heads,
            n_embd: self.dim,
            n_kv_head: self.n_kv_heads,
            hidden_dim: self.hidden_dim,
            untied_head: !self.shared_head,
            dropout: 0.0,
            bias: false,
            ..Config::char_small()
        }
    }

    /// The shape of a Llama configuration.
    fn of(cfg: &Config) -> Shape {
        Shape {
            dim: cfg.n_embd,
            hidden_dim: cfg.hidden_dim,
            n_layers: cfg.n_layer,
            n_heads: cfg.n_head,
            n_kv_heads: cfg.kv_heads(),
            vocab_size: cfg.vocab_size,
            seq_len: cfg.block_size,
            shared_head: !cfg.untied_head,
        }
    }

    fn head_size(&self) -> usize {
        self.dim / self.n_heads
    }

    fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_size()
    }
}

/// The parameters of a Llama in one of the files' orders.
struct Layout {
    /// In file order: our name (within a block for a per-layer tensor), the shape of one, and
    /// whether the file holds one per layer, all layers' in a row.
    tensors: Vec<(String, Vec<usize>, bool)>,
}

impl Layout {
    /// Version 0's order (without the rotary tables, which sit before `wcls`).
    fn v0(s: &Shape) -> (Layout, Layout) {
        let (c, kv, h) = (s.dim, s.kv_dim(), s.hidden_dim);
        let per = |name: &str, shape: &[usize]| (name.to_string(), shape.to_vec(), true);
        let once = |name: &str, shape: &[usize]| (name.to_string(), shape.to_vec(), false);
        let body = Layout {
            tensors: vec![
                once("tok_embeddings.weight", &[s.vocab_size, c]),
                per("attn_norm.weight", &[c]),
                per("attn.wq.weight", &[c, c]),
                per("attn.wk.weight", &[kv, c]),
                per("attn.wv.weight", &[kv, c]),
                per("attn.wo.weight", &[c, c]),
                per("ffn_norm.weight", &[c]),
                per("ffn.w1.weight", &[h, c]),
                per("ffn.w2.weight", &[c, h]),
                per("ffn.w3.weight", &[h, c]),
                once("norm.weight", &[c]),
            ],
        };
        (body, Layout::head(s))
    }

    /// Version 1's order.
    fn v1(s: &Shape) -> Layout {
        let (c, kv, h) = (s.dim, s.kv_dim(), s.hidden_dim);
        let per = |name: &str, shape: &[usize]| (name.to_string(), shape.to_vec(), true);
        let once = |name: &str, shape: &[usize]| (name.to_string(), shape.to_vec(), false);
        let mut tensors = vec![
            per("attn_norm.weight", &[c]),
            per("ffn_norm.weight", &[c]),
            once("norm.weight", &[c]),
            once("tok_embeddings.weight", &[s.vocab_size, c]),
            per("attn.wq.weight", &[c, c]),
            per("attn.wk.weight", &[kv, c]),
            per("attn.wv.weight", &[kv, c]),
            per("attn.wo.weight", &[c, c]),
            per("ffn.w1.weight", &[h, c]),
            per("ffn.w2.weight", &[c, h]),
            per("ffn.w3.weight", &[h, c]),
        ];
        tensors.extend(Layout::head(s).tensors);
        Layout { tensors }
    }

    /// The output head, when the file has one of its own.
    fn head(s: &Shape) -> Layout {
        let tensors = match s.shared_head {
            true => vec![],
            false => vec![(
                "output.weight".to_string(),
                vec![s.vocab_size, s.dim],
                false,
            )],
        };
        Layout { tensors }
    }

    /// Floats the layout holds for `layers` blocks.
    fn floats(&self, layers: usize) -> usize {
        self.tensors
            .iter()
            .map(|(_, shape, per)| shape.iter().product::<usize>() * if *per { layers } else { 1 })
            .sum()
    }

    /// Our parameter names in file order with their shapes, the per-layer ones repeated for
    /// each block.
    fn named(&self, layers: usize) -> Vec<(String, Vec<usize>)> {
        let mut out = vec![];
        for (name, shape, per) in &self.tensors {
            match per {
                true => {
                    out.extend((0..layers).map(|l| (format!("blocks.{l}.{name}"), shape.clone())))
                }
                false => out.push((name.clone(), shape.clone())),
            }
        }
        out
    }
}

/// Little-endian int32 `i` of `bytes`.
fn int(bytes: &[u8], i: usize) -> i32 {
    i32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("four bytes"))
}

/// Reads the shape from a header (`v1`: after the magic and version), checking every size.
fn shape_of(header: &[u8], v1: bool, file: &str) -> Result<Shape> {
    let at = if v1 { 2 } else { 0 };
    let field = |i: usize| int(header, at + i);
    let vocab = field(5);
    let positive = |i: usize, name: &str| -> Result<usize> {
        let v = if i == 5 {
            vocab.unsigned_abs() as i64
        } else {
            field(i) as i64
        };
        match v {
            1..=1_000_000_000 => Ok(v as usize),
            _ => Err(Error::Invalid(format!(
                "{file}: the header's {name} is {}",
                field(i)
            ))),
        }
    };
    let shape = Shape {
        dim: positive(0, "dim")?,
        hidden_dim: positive(1, "hidden_dim")?,
        n_layers: positive(2, "n_layers")?,
        n_heads: positive(3, "n_heads")?,
        n_kv_heads: positive(4, "n_kv_heads")?,
        vocab_size: positive(5, "vocab_size")?,
        seq_len: positive(6, "seq_len")?,
        shared_head: if v1 { header[36] == 1 } else { vocab > 0 },
    };
    let s = &shape;
    if !s.dim.is_multiple_of(s.n_heads)
        || !s.head_size().is_multiple_of(2)
        || !s.n_heads.is_multiple_of(s.n_kv_heads)
    {
        return Err(Error::Invalid(format!(
            "{file}: dim {} with {} heads and {} key/value heads is not a Llama shape (the head \
             size must be even and the key/value heads must divide the heads)",
            s.dim, s.n_heads, s.n_kv_heads
        )));
    }
    Ok(shape)
}

/// Reads a llama2.c model file (either version) into a Llama and its configuration. Sizes the
/// file does not hold, a header that is not a Llama shape, or a file of the wrong length are
/// errors naming the file.
pub fn read(path: &Path) -> Result<(Model, Config)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let file = path.display().to_string();
    if bytes.len() < 28 {
        return Err(Error::Invalid(format!(
            "{file} is too short for a llama2.c model"
        )));
    }
    let v1 = u32::from_le_bytes(bytes[..4].try_into().expect("four bytes")) == MAGIC;
    if v1 && (bytes.len() < HEADER_V1 || int(&bytes, 1) != 1) {
        return Err(Error::Invalid(format!(
            "{file}: a llama2.c file of version {} (only versions 0 and 1, float32, are read)",
            if bytes.len() >= 8 { int(&bytes, 1) } else { -1 }
        )));
    }
    let shape = shape_of(&bytes, v1, &file)?;
    let (order, tables) = match v1 {
        true => (Layout::v1(&shape), 0),
        false => {
            let (body, head) = Layout::v0(&shape);
            let mut tensors = body.tensors;
            let tables = shape.seq_len * shape.head_size();
            tensors.extend(head.tensors);
            (Layout { tensors }, tables)
        }
    };
    let start = if v1 { HEADER_V1 } else { 28 };
    let want = start + 4 * (order.floats(shape.n_layers) + tables);
    if bytes.len() != want {
        return Err(Error::Invalid(format!(
            "{file} holds {} bytes, but its header's shape needs {want}",
            bytes.len()
        )));
    }
    let cfg = shape.config();
    let model = Model::new(&cfg, &mut Rng::new(0), &SharedRng::new(0));
    let params: std::collections::HashMap<String, Var> = model.named_params().into_iter().collect();
    let mut at = start;
    for (name, dims) in order.named(shape.n_layers) {
        if name == "output.weight" && !v1 {
            at += 4 * tables;
        }
        let n: usize = dims.iter().product();
        let floats: Vec<f32> = bytes[at..at + 4 * n]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("four bytes")))
            .collect();
        at += 4 * n;
        params[&name].set_value(Tensor::from_vec(floats, &dims));
    }
    Ok((model, cfg))
}

/// Writes a Llama in version 0, the layout `run.c` reads (rotary tables included, as it
/// expects them in the file). An error for another architecture.
pub fn write(model: &Model, cfg: &Config, path: &Path) -> Result<()> {
    if cfg.model != Architecture::Llama || model.classifier.is_some() {
        return Err(Error::Invalid(
            "only a Llama language model can be written as a llama2.c file".into(),
        ));
    }
    let shape = Shape::of(cfg);
    let vocab = shape.vocab_size as i32 * if shape.shared_head { 1 } else { -1 };
    let header = [
        shape.dim as i32,
        shape.hidden_dim as i32,
        shape.n_layers as i32,
        shape.n_heads as i32,
        shape.n_kv_heads as i32,
        vocab,
        shape.seq_len as i32,
    ];
    let mut bytes: Vec<u8> = header.iter().flat_map(|v| v.to_le_bytes()).collect();
    let params: std::collections::HashMap<String, Var> = model.named_params().into_iter().collect();
    let floats =
        |bytes: &mut Vec<u8>, v: &[f32]| bytes.extend(v.iter().flat_map(|x| x.to_le_bytes()));
    let (body, head) = Layout::v0(&shape);
    for (name, _) in body.named(shape.n_layers) {
        floats(
            &mut bytes,
            &params[&name].value().contiguous().to_vec::<f32>(),
        );
    }
    let (cos, sin) = rotary_tables(&shape, cfg.rope_theta());
    floats(&mut bytes, &cos);
    floats(&mut bytes, &sin);
    for (name, _) in head.named(shape.n_layers) {
        floats(
            &mut bytes,
            &params[&name].value().contiguous().to_vec::<f32>(),
        );
    }
    crate::run::write_atomically(path, &bytes)
}

/// The cosine and sine tables `(seq_len, HS / 2)` version 0 stores, as llama2.c computes them.
fn rotary_tables(s: &Shape, theta: f64) -> (Vec<f32>, Vec<f32>) {
    let hs = s.head_size();
    let (mut cos, mut sin) = (vec![], vec![]);
    for p in 0..s.seq_len {
        for j in 0..hs / 2 {
            let freq = 1.0f32 / (theta as f32).powf((2 * j) as f32 / hs as f32);
            let a = p as f32 * freq;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    (cos, sin)
}
