//! The AdamW update, in place over one parameter and its moment buffers.
//!
//! With gradient `g`, step `t` (from 1), and PyTorch's order of operations:
//! `p *= 1 - lr wd` (decoupled weight decay), `m += (1 - b1)(g - m)`,
//! `v = b2 v + (1 - b2) g^2`, `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
//! All four buffers are contiguous and of one length.

use super::parallel::{num_threads, par_for_each, MIN_TASK_WORK};
use crate::backend::AdamWStep;
use crate::dtype::Float;
use multiversion::multiversion;

/// Scalars derived once per step.
#[derive(Clone, Copy)]
struct Coeffs<T> {
    decay: T,
    one_minus_b1: T,
    b2: T,
    one_minus_b2: T,
    step_size: T,
    inv_bc2_sqrt: T,
    eps: T,
}

impl<T: Float> Coeffs<T> {
    fn new(h: &AdamWStep) -> Self {
        let bc1 = 1.0 - h.beta1.powi(h.step as i32);
        let bc2 = 1.0 - h.beta2.powi(h.step as i32);
        Coeffs {
            decay: T::from_f64(1.0 - h.lr * h.weight_decay),
            one_minus_b1: T::from_f64(1.0 - h.beta1),
            b2: T::from_f64(h.beta2),
            one_minus_b2: T::from_f64(1.0 - h.beta2),
            step_size: T::from_f64(h.lr / bc1),
            inv_bc2_sqrt: T::from_f64(1.0 / bc2.sqrt()),
            eps: T::from_f64(h.eps),
        }
    }
}

/// The update of one element.
#[inline(always)]
fn update<T: Float>(c: Coeffs<T>, p: &mut T, g: T, m: &mut T, v: &mut T) {
    *p *= c.decay;
    *m += c.one_minus_b1 * (g - *m);
    *v = c.b2 * *v + c.one_minus_b2 * g * g;
    *p -= c.step_size * *m / (v.sqrt() * c.inv_bc2_sqrt + c.eps);
}

/// Plain reference: one element at a time.
pub fn step_reference<T: Float>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], h: &AdamWStep) {
    let c = Coeffs::new(h);
    for i in 0..p.len() {
        update(c, &mut p[i], g[i], &mut m[i], &mut v[i]);
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma"))]
fn step_slice<T: Float>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], c: Coeffs<T>) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        update(c, p, g, m, v);
    }
}

/// The update over whole buffers, vectorized and split across threads when large.
pub fn step<T: Float>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], h: &AdamWStep) {
    assert!(
        g.len() == p.len() && m.len() == p.len() && v.len() == p.len(),
        "adamw: buffer lengths differ"
    );
    let c = Coeffs::new(h);
    let chunk = (MIN_TASK_WORK * 2).max(p.len().div_ceil(4 * num_threads()));
    if p.len() <= chunk {
        step_slice(p, g, m, v, c);
        return;
    }
    let chunks = p
        .chunks_mut(chunk)
        .zip(g.chunks(chunk))
        .zip(m.chunks_mut(chunk))
        .zip(v.chunks_mut(chunk));
    par_for_each(chunks, |(((p, g), m), v)| step_slice(p, g, m, v, c));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{assert_close, random_vec};

    #[test]
    fn fast_matches_reference_over_several_steps() {
        for n in [1, 7, 1023, 200_001] {
            let mut p = random_vec::<f32>(n, 1);
            let mut m = vec![0.0; n];
            let mut v = vec![0.0; n];
            let (mut pr, mut mr, mut vr) = (p.clone(), m.clone(), v.clone());
            for t in 1..=5 {
                let g = random_vec::<f32>(n, 10 + t);
                let h = AdamWStep {
                    lr: 1e-2,
                    beta1: 0.9,
                    beta2: 0.99,
                    eps: 1e-8,
                    weight_decay: 0.1,
                    step: t,
                };
                step(&mut p, &g, &mut m, &mut v, &h);
                step_reference(&mut pr, &g, &mut mr, &mut vr, &h);
            }
            assert_close(&p, &pr, 0.0, 1e-6, "param");
            assert_close(&v, &vr, 0.0, 1e-6, "second moment");
        }
    }

    #[test]
    fn first_step_moves_by_lr_against_the_gradient_sign() {
        // After one step with zero decay, m_hat / sqrt(v_hat) = sign(g), so p moves by ~lr.
        let (mut p, mut m, mut v) = (vec![1.0f64, 1.0], vec![0.0; 2], vec![0.0; 2]);
        let h = AdamWStep {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 0.0,
            weight_decay: 0.0,
            step: 1,
        };
        step(&mut p, &[3.0, -0.5], &mut m, &mut v, &h);
        assert_close(&p, &[0.9, 1.1], 1e-12, 0.0, "params");
    }
}
