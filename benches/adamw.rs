//! One AdamW step over about 10M f32 parameters in 100 tensors shaped like a small GPT
//! (8 layers of width 320). `benches/compare/adamw_torch.py` times `torch.optim.AdamW` on the
//! same shapes and runs this bench to print the ratio.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench adamw`
//!
//! Prints the median, min and max time of one step and the memory traffic it implies (the
//! update reads parameter, gradient and both moments and writes three of them: 28 bytes per
//! parameter). A second run gives every weight matrix its gradient as a transposed view, the
//! layout a linear layer's backward pass would hand over if it did not produce `dW` in `W`'s
//! own order; the kernel then copies each such gradient first.

use autograd::Var;
use nn::{AdamW, AdamWConfig, Optimizer};
use std::time::Instant;
use tensor::{DType, Rng, Tensor};

const N_LAYER: usize = 8;
const C: usize = 320;
const VOCAB: usize = 512;
const BLOCK: usize = 256;
const WARMUP: usize = 3;
const STEPS: usize = 20;

/// The parameter shapes, in the order the comparison script uses.
fn shapes() -> Vec<(String, Vec<usize>)> {
    let mut s = vec![
        ("wte".to_string(), vec![VOCAB, C]),
        ("wpe".to_string(), vec![BLOCK, C]),
    ];
    for l in 0..N_LAYER {
        let p = |n: &str| format!("blocks.{l}.{n}");
        s.extend([
            (p("ln1.weight"), vec![C]),
            (p("ln1.bias"), vec![C]),
            (p("attn.qkv.weight"), vec![3 * C, C]),
            (p("attn.qkv.bias"), vec![3 * C]),
            (p("attn.proj.weight"), vec![C, C]),
            (p("attn.proj.bias"), vec![C]),
            (p("ln2.weight"), vec![C]),
            (p("ln2.bias"), vec![C]),
            (p("mlp.fc.weight"), vec![4 * C, C]),
            (p("mlp.fc.bias"), vec![4 * C]),
            (p("mlp.proj.weight"), vec![C, 4 * C]),
            (p("mlp.proj.bias"), vec![C]),
        ]);
    }
    s.push(("ln_f.weight".to_string(), vec![C]));
    s.push(("ln_f.bias".to_string(), vec![C]));
    s
}

/// Parameters with random gradients; matrices' gradients as transposed views if `transposed`.
fn params(transposed: bool) -> Vec<(String, Var)> {
    let mut rng = Rng::new(0);
    shapes()
        .into_iter()
        .map(|(name, shape)| {
            let p = Var::parameter(Tensor::randn(&shape, 0.0, 0.02, DType::F32, &mut rng));
            let g = if transposed && shape.len() == 2 {
                Tensor::randn(&[shape[1], shape[0]], 0.0, 1.0, DType::F32, &mut rng).t()
            } else {
                Tensor::randn(&shape, 0.0, 1.0, DType::F32, &mut rng)
            };
            p.set_grad(Some(g));
            (name, p)
        })
        .collect()
}

/// Median, min and max milliseconds of one step.
fn time_steps(transposed: bool) -> (f64, f64, f64, usize, usize) {
    let params = params(transposed);
    let (count, numel) = (params.len(), params.iter().map(|(_, p)| p.numel()).sum());
    let config = AdamWConfig {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
    };
    let mut opt = AdamW::new(params, config);
    let mut ms: Vec<f64> = (0..WARMUP + STEPS)
        .map(|_| {
            let t = Instant::now();
            opt.step(1e-3).expect("adamw step");
            t.elapsed().as_secs_f64() * 1e3
        })
        .skip(WARMUP)
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[STEPS / 2], ms[0], ms[STEPS - 1], count, numel)
}

fn main() {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    for (label, transposed) in [
        ("contiguous grads", false),
        ("transposed matrix grads", true),
    ] {
        let (median, min, max, count, numel) = time_steps(transposed);
        let gbs = 28.0 * numel as f64 / (median * 1e-3) / 1e9;
        println!(
            "adamw step, {numel} params in {count} tensors, {label}, {threads} threads: \
             median {median:.2} ms (min {min:.2}, max {max:.2}), {gbs:.1} GB/s"
        );
        if !transposed {
            println!("median_ms={median:.4}");
        }
    }
}
