//! Training on the GPU gives the CPU's numbers: a one-block GPT-style decoder (token and
//! position embeddings, layer norms, causal self-attention, a GELU MLP, tied output
//! embedding, cross-entropy) written directly with autograd ops, trained with AdamW for 10
//! steps from the same initial weights and batches on both devices. Losses must agree to 1e-4
//! relative; the final parameters within 1e-3 (AdamW's normalized steps amplify rounding
//! differences in the smallest gradients, while a wrong gradient moves a parameter by ~lr per
//! step).
//!
//! Needs an NVIDIA GPU (`--features cuda`): without one it prints why it was skipped.
#![cfg(feature = "cuda")]

use autograd::Var;
use tensor::{AdamWStep, DType, Device, Rng, Tensor};

const V: usize = 37;
const C: usize = 32;
const T: usize = 16;
const B: usize = 3;
const NH: usize = 4;

/// The model's parameters, in a fixed order.
struct Model {
    params: Vec<Var>,
}

impl Model {
    fn new(device: Device) -> Model {
        let mut rng = Rng::new(7);
        let shapes: [&[usize]; 12] = [
            &[V, C],     // token embedding (tied with the output layer)
            &[T, C],     // position embedding
            &[C],        // ln1 weight
            &[C],        // ln1 bias
            &[C, 3 * C], // q, k, v projection
            &[C, C],     // attention output projection
            &[C],        // ln2 weight
            &[C],        // ln2 bias
            &[C, 4 * C], // MLP in
            &[4 * C, C], // MLP out
            &[C],        // final ln weight
            &[C],        // final ln bias
        ];
        let params = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let t = if s.len() == 1 {
                    Tensor::full(s, if i % 2 == 0 { 1.0 } else { 0.0 }, DType::F32)
                } else {
                    Tensor::randn(s, 0.0, 0.2, DType::F32, &mut rng)
                };
                Var::parameter(t.to_device(device))
            })
            .collect();
        Model { params }
    }

    /// Mean next-token loss of `ids (B, T)` against `targets (B, T)`.
    fn loss(&self, ids: &Tensor, targets: &Tensor) -> Var {
        let p = &self.params;
        let ln = |x: &Var, w: usize| x.layer_norm(Some(&p[w]), Some(&p[w + 1]), 1e-5);
        let x = p[0]
            .embedding(&ids.flatten_all())
            .reshape(&[B, T, C])
            .add(&p[1]);
        let qkv = ln(&x, 2).matmul(&p[4]);
        let heads = |v: &Var| v.reshape(&[B, T, NH, C / NH]).permute(&[0, 2, 1, 3]);
        let [q, k, v]: [Var; 3] = qkv.chunk(3, -1).try_into().ok().unwrap();
        let y = Var::attention(&heads(&q), &heads(&k), &heads(&v));
        let x = x.add(&y.permute(&[0, 2, 1, 3]).reshape(&[B, T, C]).matmul(&p[5]));
        let x = x.add(&ln(&x, 6).matmul(&p[8]).gelu().matmul(&p[9]));
        let logits = ln(&x, 10).matmul(&p[0].t());
        logits
            .reshape(&[B * T, V])
            .cross_entropy(&targets.flatten_all(), None)
    }

    /// One AdamW step on every parameter from its gradient.
    fn step(&self, moments: &mut [(Tensor, Tensor)], step: u64) {
        let h = AdamWStep {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            step,
        };
        for (p, (m, v)) in self.params.iter().zip(moments.iter_mut()) {
            let g = p.grad().expect("every parameter gets a gradient");
            p.update(|w| w.adamw_step_(&g, m, v, &h)).unwrap();
            p.zero_grad();
        }
    }
}

/// Losses of `steps` training steps on `device`, and the final parameters (on the CPU).
fn train(device: Device, steps: u64) -> (Vec<f64>, Vec<Tensor>) {
    let model = Model::new(device);
    let mut moments: Vec<(Tensor, Tensor)> = model
        .params
        .iter()
        .map(|p| (p.value().zeros_like(), p.value().zeros_like()))
        .collect();
    let mut rng = Rng::new(11);
    let mut losses = vec![];
    for step in 1..=steps {
        let tokens: Vec<u32> = (0..B * (T + 1)).map(|_| rng.below(V) as u32).collect();
        let batch = Tensor::from_vec(tokens, &[B, T + 1]);
        let ids = batch.narrow(1, 0, T).contiguous().to_device(device);
        let targets = batch.narrow(1, 1, T).contiguous().to_device(device);
        let loss = model.loss(&ids, &targets);
        losses.push(loss.value().item());
        loss.backward();
        model.step(&mut moments, step);
    }
    let params = model
        .params
        .iter()
        .map(|p| p.value().to_device(Device::Cpu))
        .collect();
    (losses, params)
}

#[test]
fn a_decoder_block_trains_to_the_same_losses_on_gpu_and_cpu() {
    if let Err(reason) = tensor::cuda::probe() {
        eprintln!("skipped (needs a GPU): {reason}");
        return;
    }
    let (cpu_losses, cpu_params) = train(Device::Cpu, 10);
    let (gpu_losses, gpu_params) = train(Device::Cuda(0), 10);
    eprintln!("cpu {cpu_losses:?}\ngpu {gpu_losses:?}");
    for (step, (c, g)) in cpu_losses.iter().zip(&gpu_losses).enumerate() {
        assert!(
            (c - g).abs() <= 1e-4 * c.abs(),
            "step {}: loss {g} on the GPU, {c} on the CPU",
            step + 1
        );
    }
    for (i, (c, g)) in cpu_params.iter().zip(&gpu_params).enumerate() {
        for (j, (a, b)) in c.to_vec::<f32>().iter().zip(g.to_vec::<f32>()).enumerate() {
            assert!(
                (a - b).abs() <= 1e-3 + 1e-3 * a.abs(),
                "parameter {i} element {j}: {b} on the GPU, {a} on the CPU"
            );
        }
    }
}
