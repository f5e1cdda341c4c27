use std::time::Instant;
use tensor::cpu::attention_decode::{decode, Cache};
fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    let (nh, d, len) = (a[0], a[1], a[2]);
    let k: Vec<f32> = (0..nh * 512 * d)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let v = k.clone();
    let q: Vec<f32> = (0..nh * d).map(|i| (i as f32 * 0.37).sin()).collect();
    let caches = [Cache {
        k: &k,
        v: &v,
        cap: 512,
        len,
    }];
    let mut best = f64::MAX;
    for _ in 0..20 {
        let t = Instant::now();
        let mut s = 0.0;
        for _ in 0..1000 {
            s += decode(&q, &caches, nh, d)[0];
        }
        best = best.min(t.elapsed().as_secs_f64() / 1000.0);
        std::hint::black_box(s);
    }
    println!("decode nh={nh} d={d} len={len}: {:.2} us", best * 1e6);
}
