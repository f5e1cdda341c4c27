//! Training-step throughput of a GPT-2 (forward, backward and AdamW), on the CPU or a GPU.
//!
//! The model is GPT-2's architecture written with autograd ops: token and position
//! embeddings, `L` pre-norm blocks of causal self-attention and a GELU MLP, a final layer
//! norm and the output layer tied to the token embedding. `train_step.py` beside this file
//! builds the same model in PyTorch eager, and `scripts/gpu-tests.sh run` prints both.
//!
//! ```text
//! cargo bench --features cuda --bench train_step -- --device cuda --preset gpt2 --batch 8 --seq 1024
//! ```
//! The last line printed is `tokens_per_s=<median> ms_per_step=<median>`.

use autograd::Var;
use std::time::Instant;
use tensor::{AdamWStep, DType, Device, Rng, Tensor};

/// Model and batch sizes.
#[derive(Clone, Copy, Debug)]
struct Config {
    vocab: usize,
    layers: usize,
    heads: usize,
    channels: usize,
    batch: usize,
    seq: usize,
}

/// Parameters of one block, in order: ln1 (w, b), attention (w_qkv, b_qkv, w_proj, b_proj),
/// ln2 (w, b), MLP (w_fc, b_fc, w_out, b_out).
const PER_BLOCK: usize = 12;

struct Gpt {
    cfg: Config,
    /// wte, wpe, then `PER_BLOCK` per block, then ln_f (w, b).
    params: Vec<Var>,
}

impl Gpt {
    /// GPT-2's initialization: weights N(0, 0.02), biases 0, layer norms 1 and 0.
    fn new(cfg: Config, device: Device) -> Gpt {
        let mut rng = Rng::new(1337);
        let c = cfg.channels;
        let mut shapes: Vec<(Vec<usize>, f64)> =
            vec![(vec![cfg.vocab, c], 0.02), (vec![cfg.seq, c], 0.02)];
        for _ in 0..cfg.layers {
            shapes.extend([
                (vec![c], 1.0),
                (vec![c], 0.0),
                (vec![c, 3 * c], 0.02),
                (vec![3 * c], 0.0),
                (vec![c, c], 0.02),
                (vec![c], 0.0),
                (vec![c], 1.0),
                (vec![c], 0.0),
                (vec![c, 4 * c], 0.02),
                (vec![4 * c], 0.0),
                (vec![4 * c, c], 0.02),
                (vec![c], 0.0),
            ]);
        }
        shapes.extend([(vec![c], 1.0), (vec![c], 0.0)]);
        let params = shapes
            .into_iter()
            .map(|(shape, v)| {
                let t = if shape.len() == 2 {
                    Tensor::randn(&shape, 0.0, v, DType::F32, &mut rng)
                } else {
                    Tensor::full(&shape, v, DType::F32)
                };
                Var::parameter(t.to_device(device))
            })
            .collect();
        Gpt { cfg, params }
    }

    /// Mean next-token loss of `ids (B, T)` against `targets (B, T)`.
    fn loss(&self, ids: &Tensor, targets: &Tensor) -> Var {
        let Config {
            batch: b,
            seq: t,
            channels: c,
            heads: nh,
            vocab: v,
            ..
        } = self.cfg;
        let p = &self.params;
        let ln = |x: &Var, i: usize| x.layer_norm(Some(&p[i]), Some(&p[i + 1]), 1e-5);
        let linear = |x: &Var, i: usize| x.matmul(&p[i]).add(&p[i + 1]);
        let heads = |x: &Var| x.reshape(&[b, t, nh, c / nh]).permute(&[0, 2, 1, 3]);
        let mut x = p[0]
            .embedding(&ids.flatten_all())
            .reshape(&[b, t, c])
            .add(&p[1]);
        for layer in 0..self.cfg.layers {
            let at = 2 + layer * PER_BLOCK;
            let qkv = linear(&ln(&x, at), at + 2).chunk(3, -1);
            let y = Var::attention(&heads(&qkv[0]), &heads(&qkv[1]), &heads(&qkv[2]));
            let y = y.permute(&[0, 2, 1, 3]).reshape(&[b, t, c]);
            x = x.add(&linear(&y, at + 4));
            let h = linear(&ln(&x, at + 6), at + 8).gelu();
            x = x.add(&linear(&h, at + 10));
        }
        let logits = ln(&x, p.len() - 2).matmul(&p[0].t());
        logits
            .reshape(&[b * t, v])
            .cross_entropy(&targets.flatten_all(), None)
    }
}

/// Parses `--name value` pairs.
fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let device = Device::parse(&arg(&args, "--device").unwrap_or_else(|| "cpu".into()))
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
    let num = |name: &str, default: usize| {
        arg(&args, name).map_or(default, |v| v.parse().expect("a number"))
    };
    let (vocab, layers, heads, channels) = match arg(&args, "--preset").as_deref().unwrap_or("tiny")
    {
        "gpt2" => (50257, 12, 12, 768),
        _ => (512, 2, 4, 64),
    };
    let cfg = Config {
        vocab,
        layers,
        heads,
        channels,
        batch: num("--batch", 4),
        seq: num("--seq", 64),
    };
    let steps = num("--steps", 10);
    if let Err(e) = Tensor::zeros(&[1], DType::F32).try_to_device(device) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    eprintln!("{cfg:?} on {device}, {steps} timed steps after 2 warm-up steps");
    let model = Gpt::new(cfg, device);
    let mut moments: Vec<(Tensor, Tensor)> = model
        .params
        .iter()
        .map(|p| (p.value().zeros_like(), p.value().zeros_like()))
        .collect();
    let mut rng = Rng::new(7);
    let mut times = vec![];
    for step in 1..=steps as u64 + 2 {
        let tokens: Vec<u32> = (0..cfg.batch * (cfg.seq + 1))
            .map(|_| rng.below(cfg.vocab) as u32)
            .collect();
        let batch = Tensor::from_vec(tokens, &[cfg.batch, cfg.seq + 1]);
        let ids = batch.narrow(1, 0, cfg.seq).contiguous().to_device(device);
        let targets = batch.narrow(1, 1, cfg.seq).contiguous().to_device(device);
        let start = Instant::now();
        let loss = model.loss(&ids, &targets);
        loss.backward();
        let h = AdamWStep {
            lr: 6e-4,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.0,
            step,
        };
        for (p, (m, v)) in model.params.iter().zip(moments.iter_mut()) {
            let g = p.grad().expect("every parameter gets a gradient");
            p.update(|w| w.adamw_step_(&g, m, v, &h)).unwrap();
            p.zero_grad();
        }
        // Reading a value waits for the device to finish the step.
        let loss = loss.value().item();
        model.params[model.params.len() - 1]
            .value()
            .sum_all()
            .item();
        let ms = start.elapsed().as_secs_f64() * 1e3;
        eprintln!("step {step:3} | loss {loss:.4} | {ms:8.1} ms");
        if step > 2 {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let tokens = (cfg.batch * cfg.seq) as f64;
    println!(
        "tokens_per_s={:.1} ms_per_step={median:.2}",
        tokens / median * 1e3
    );
}
