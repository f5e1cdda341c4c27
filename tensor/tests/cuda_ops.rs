//! Every CUDA kernel against its CPU twin: each op runs on the same inputs on both devices,
//! with random values, odd sizes, and non-contiguous views (transposed, narrowed, offset and
//! broadcast) built the same way on both. Tolerances: `|gpu - cpu| <= atol + rtol |cpu|` with
//! rtol 1e-5 for f32 elementwise ops and 1e-4 for reductions and attention (f64: 1e-12).
//!
//! Needs an NVIDIA GPU: without one each test prints why it was skipped and passes.
#![cfg(feature = "cuda")]

use tensor::{
    AdamWStep, BinaryOp, CacheView, CmpOp, DType, Device, Gelu, ReduceOp, Rng, Softmax, Tensor,
    UnaryOp,
};

/// The GPU, or `None` after printing why the test is skipped.
fn gpu() -> Option<Device> {
    match tensor::cuda::probe() {
        Ok(_) => Some(Device::Cuda(0)),
        Err(reason) => {
            eprintln!("skipped (needs a GPU): {reason}");
            None
        }
    }
}

/// Elementwise f32 tolerance, and the looser one for reductions and attention.
const EXACT: (f64, f64) = (1e-6, 1e-5);
const REDUCTION: (f64, f64) = (1e-5, 1e-4);

/// Panics, naming the worst element, unless `got` (any device) is close to `want` (CPU).
#[track_caller]
fn check(what: &str, got: &Tensor, want: &Tensor, (atol, rtol): (f64, f64)) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtypes differ");
    let (atol, rtol) = if want.dtype() == DType::F64 {
        (1e-12, 1e-12)
    } else {
        (atol, rtol)
    };
    let g = got.to_device(Device::Cpu).to_vec_f64();
    let w = want.to_vec_f64();
    let mut worst: Option<(usize, f64)> = None;
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        if a == b || (a.is_nan() && b.is_nan()) {
            continue;
        }
        let excess = (a - b).abs() - (atol + rtol * b.abs());
        let excess = if excess.is_nan() {
            f64::INFINITY
        } else {
            excess
        };
        if excess > 0.0 && worst.is_none_or(|(_, e)| excess > e) {
            worst = Some((i, excess));
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: element {i} is {} on the GPU, {} on the CPU",
            g[i], w[i]
        );
    }
}

fn rand(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
    Tensor::rand(shape, -2.0, 2.0, dtype, &mut Rng::new(seed))
}

/// A way to lay out a tensor of a given logical shape: the stored shape and the view of it.
struct Layout {
    name: &'static str,
    stored: Vec<usize>,
    view: Box<dyn Fn(&Tensor) -> Tensor>,
}

/// Contiguous, transposed, narrowed (padded last dim), offset and broadcast layouts of `shape`.
fn layouts(shape: &[usize]) -> Vec<Layout> {
    let shape = shape.to_vec();
    let rank = shape.len();
    let mut out = vec![Layout {
        name: "contiguous",
        stored: shape.clone(),
        view: Box::new(|t| t.clone()),
    }];
    if rank >= 2 {
        let dims: Vec<usize> = (0..rank).rev().collect();
        out.push(Layout {
            name: "transposed",
            stored: shape.iter().rev().cloned().collect(),
            view: Box::new(move |t| t.permute(&dims)),
        });
    }
    if rank >= 1 {
        let (mut padded, last) = (shape.clone(), shape[rank - 1]);
        padded[rank - 1] += 2;
        out.push(Layout {
            name: "narrowed",
            stored: padded,
            view: Box::new(move |t| t.narrow(-1, 1, last)),
        });
        let (mut longer, first) = (shape.clone(), shape[0]);
        longer[0] += 1;
        out.push(Layout {
            name: "offset",
            stored: longer,
            view: Box::new(move |t| t.narrow(0, 1, first)),
        });
    }
    if let Some(d) = shape.iter().position(|&s| s > 1) {
        let mut small = shape.clone();
        small[d] = 1;
        let target = shape.clone();
        out.push(Layout {
            name: "broadcast",
            stored: small,
            view: Box::new(move |t| t.expand(&target)),
        });
    }
    out
}

/// Runs `f` on every layout of `shape` (random values from `seed`) on both devices and
/// compares, with inputs mapped by `prepare` first (e.g. made positive).
fn each_layout(
    dev: Device,
    what: &str,
    shape: &[usize],
    dtype: DType,
    tol: (f64, f64),
    prepare: impl Fn(Tensor) -> Tensor,
    f: impl Fn(&Tensor) -> Tensor,
) {
    for (i, l) in layouts(shape).into_iter().enumerate() {
        let base = prepare(rand(&l.stored, dtype, 10 + i as u64));
        let on_cpu = (l.view)(&base);
        let on_gpu = (l.view)(&base.to_device(dev));
        check(
            &format!("{what} {} {shape:?} {dtype}", l.name),
            &f(&on_gpu),
            &f(&on_cpu),
            tol,
        );
    }
}

const SHAPES: [&[usize]; 5] = [&[1], &[7], &[1023], &[3, 5, 7], &[2, 1, 4, 33]];

#[test]
fn unary_ops() {
    let Some(dev) = gpu() else { return };
    for op in UnaryOp::ALL {
        // Recip too, kept away from its pole.
        let positive = op.wants_positive_input() || op == UnaryOp::Recip;
        let prepare = |t: Tensor| if positive { t.abs().add_scalar(0.1) } else { t };
        for shape in SHAPES {
            for dtype in [DType::F32, DType::F64] {
                each_layout(dev, &format!("{op:?}"), shape, dtype, EXACT, prepare, |x| {
                    x.unary(op)
                });
            }
        }
    }
}

#[test]
fn binary_ops_and_comparisons_broadcast() {
    let Some(dev) = gpu() else { return };
    let pairs: [(&[usize], &[usize]); 5] = [
        (&[1023], &[1023]),
        (&[7, 5], &[5]),
        (&[7, 1], &[1, 9]),
        (&[3, 4, 5], &[]),
        (&[2, 3, 1, 5], &[4, 1]),
    ];
    for (sa, sb) in pairs {
        for (i, la) in layouts(sa).into_iter().enumerate() {
            let a = rand(&la.stored, DType::F32, i as u64).abs().add_scalar(0.5);
            let b = rand(sb, DType::F32, 99).round_to_grid();
            let (a_cpu, a_gpu) = ((la.view)(&a), (la.view)(&a.to_device(dev)));
            let b_gpu = b.to_device(dev);
            for op in BinaryOp::ALL {
                let what = format!("{op:?} {} {sa:?} {sb:?}", la.name);
                check(
                    &what,
                    &a_gpu.binary(&b_gpu, op),
                    &a_cpu.binary(&b, op),
                    EXACT,
                );
            }
            let a_grid = a_cpu.round_to_grid();
            let a_grid_gpu = a_grid.to_device(dev);
            for op in CmpOp::ALL {
                let what = format!("{op:?} {} {sa:?} {sb:?}", la.name);
                check(
                    &what,
                    &a_grid_gpu.compare(&b_gpu, op),
                    &a_grid.compare(&b, op),
                    (0.0, 0.0),
                );
            }
            let mask = a_grid.lt(&b);
            let mask_gpu = mask.to_device(dev);
            check(
                &format!("where {} {sa:?} {sb:?}", la.name),
                &Tensor::where_cond(&mask_gpu, &a_gpu, &b_gpu),
                &Tensor::where_cond(&mask, &a_cpu, &b),
                (0.0, 0.0),
            );
        }
    }
}

/// Rounding to a coarse grid, so comparisons see equal values too.
trait RoundToGrid {
    fn round_to_grid(&self) -> Tensor;
}

impl RoundToGrid for Tensor {
    fn round_to_grid(&self) -> Tensor {
        let v: Vec<f64> = self
            .to_vec_f64()
            .iter()
            .map(|x| (x * 2.0).round() / 2.0)
            .collect();
        Tensor::from_vec(v, self.shape())
            .to_dtype(self.dtype())
            .to_device(self.device())
    }
}

#[test]
fn copies_conversions_and_in_place_updates() {
    let Some(dev) = gpu() else { return };
    for shape in SHAPES {
        each_layout(
            dev,
            "contiguous",
            shape,
            DType::F32,
            (0.0, 0.0),
            |t| t,
            |x| x.contiguous(),
        );
        for dtype in DType::ALL {
            let scaled = |t: Tensor| t.mul_scalar(100.0);
            each_layout(
                dev,
                &format!("to {dtype}"),
                shape,
                DType::F64,
                (0.0, 0.0),
                scaled,
                |x| x.to_dtype(dtype).to_dtype(DType::F64),
            );
        }
    }
    let a = rand(&[4, 6], DType::F32, 1);
    let b = rand(&[4, 3], DType::F32, 2);
    let (ag, bg) = (a.to_device(dev), b.to_device(dev));
    check(
        "cat",
        &Tensor::cat(&[&ag, &bg.t().t()], 1),
        &Tensor::cat(&[&a, &b], 1),
        (0.0, 0.0),
    );
    let row = rand(&[6], DType::F32, 3);
    let (mut c, mut g) = (a.clone(), ag.clone());
    drop((a, ag));
    c.add_(&row).unwrap();
    g.add_(&row.to_device(dev)).unwrap();
    c.mul_(&b.narrow(1, 0, 1)).unwrap();
    g.mul_(&bg.narrow(1, 0, 1)).unwrap();
    check("add_ and mul_", &g, &c, EXACT);
    let mut cf = Tensor::zeros(&[3, 5], DType::I64);
    let mut gf = cf.to_device(dev);
    cf.fill_(-7.0).unwrap();
    gf.fill_(-7.0).unwrap();
    check("fill_ i64", &gf, &cf, (0.0, 0.0));
    let mut cc = Tensor::zeros(&[5, 3], DType::F64);
    let mut gc = cc.to_device(dev);
    let src = rand(&[3, 5], DType::F64, 4);
    cc.copy_(&src.t()).unwrap();
    gc.copy_(&src.to_device(dev).t()).unwrap();
    check("copy_ transposed", &gc, &cc, (0.0, 0.0));
}

#[test]
fn reductions_over_every_dim_set() {
    let Some(dev) = gpu() else { return };
    for shape in [
        &[1023][..],
        &[7, 33],
        &[3, 5, 17],
        &[2, 1, 4, 19],
        // Long reductions, split across blocks and finished by a second pass: over rows
        // (one output, 266240 elements) and over columns (257 adjacent outputs of 300).
        &[4096, 65],
        &[300, 257],
    ] {
        let rank = shape.len() as u32;
        for mask in 1..(1u32 << rank) {
            let dims: Vec<isize> = (0..rank)
                .filter(|d| mask & (1 << d) != 0)
                .map(|d| d as isize)
                .collect();
            for op in ReduceOp::ALL.into_iter().filter(ReduceOp::gives_values) {
                for dtype in [DType::F32, DType::F64] {
                    each_layout(
                        dev,
                        &format!("{op:?} {dims:?}"),
                        shape,
                        dtype,
                        REDUCTION,
                        |t| t,
                        |x| x.try_reduce(op, &dims, false).unwrap(),
                    );
                }
            }
        }
        for dim in 0..rank as isize {
            each_layout(
                dev,
                &format!("argmax {dim}"),
                shape,
                DType::F32,
                (0.0, 0.0),
                |t| t,
                |x| x.argmax(dim, false),
            );
            each_layout(
                dev,
                &format!("argmin {dim}"),
                shape,
                DType::F64,
                (0.0, 0.0),
                |t| t,
                |x| x.argmin(dim, true),
            );
        }
    }
}

#[test]
fn softmax_log_softmax_and_logsumexp() {
    let Some(dev) = gpu() else { return };
    for (rows, n) in [(1, 1), (3, 7), (5, 65), (64, 1023), (2, 50304)] {
        for dtype in [DType::F32, DType::F64] {
            let x = rand(&[rows, n], dtype, 1).mul_scalar(5.0);
            let dy = rand(&[rows, n], dtype, 2);
            let (xg, dyg) = (x.to_device(dev), dy.to_device(dev));
            for kind in [Softmax::Softmax, Softmax::LogSoftmax] {
                let what = format!("{kind:?} ({rows}, {n}) {dtype}");
                let y = x.try_softmax_kind(-1, kind).unwrap();
                let yg = xg.try_softmax_kind(-1, kind).unwrap();
                check(&what, &yg, &y, REDUCTION);
                let dx = y.try_softmax_backward(&dy, -1, kind).unwrap();
                let dxg = yg.try_softmax_backward(&dyg, -1, kind).unwrap();
                check(&format!("{what} backward"), &dxg, &dx, REDUCTION);
            }
            check(
                "logsumexp",
                &xg.logsumexp(-1, false),
                &x.logsumexp(-1, false),
                REDUCTION,
            );
        }
    }
    each_layout(
        dev,
        "softmax dim 0",
        &[9, 5, 3],
        DType::F32,
        REDUCTION,
        |t| t,
        |x| x.softmax(0),
    );
}

#[test]
fn matmul_batched_strided_and_broadcast() {
    let Some(dev) = gpu() else { return };
    let cases: [(&[usize], usize, usize, usize); 6] = [
        (&[], 1, 1, 1),
        (&[], 7, 13, 5),
        (&[3], 17, 9, 33),
        (&[2, 3], 4, 1, 6),
        (&[], 130, 70, 90),
        (&[5], 64, 64, 64),
    ];
    for (batch, m, k, n) in cases {
        for dtype in [DType::F32, DType::F64] {
            let sa: Vec<usize> = batch.iter().cloned().chain([m, k]).collect();
            let sb: Vec<usize> = batch.iter().cloned().chain([k, n]).collect();
            for (ia, la) in layouts(&sa).into_iter().enumerate() {
                for (ib, lb) in layouts(&sb).into_iter().enumerate() {
                    let a = rand(&la.stored, dtype, ia as u64);
                    let b = rand(&lb.stored, dtype, 10 + ib as u64);
                    let want = (la.view)(&a).matmul(&(lb.view)(&b));
                    let got = (la.view)(&a.to_device(dev)).matmul(&(lb.view)(&b.to_device(dev)));
                    check(
                        &format!("matmul {sa:?} {} @ {sb:?} {}", la.name, lb.name),
                        &got,
                        &want,
                        REDUCTION,
                    );
                }
            }
        }
    }
}

#[test]
fn indexing_and_embedding() {
    let Some(dev) = gpu() else { return };
    let table = rand(&[11, 130], DType::F32, 1);
    let ids = Tensor::from_vec((0..1023u32).map(|i| (i * i) % 11).collect(), &[1023]);
    let (tg, ig) = (table.to_device(dev), ids.to_device(dev));
    check(
        "embedding",
        &tg.embedding(&ig),
        &table.embedding(&ids),
        (0.0, 0.0),
    );
    let grad = rand(&[1023, 130], DType::F32, 2);
    let gg = grad.to_device(dev);
    check(
        "index_add",
        &gg.index_add(0, &ig, 11),
        &grad.index_add(0, &ids, 11),
        REDUCTION,
    );
    let x = rand(&[4, 6, 5], DType::F64, 3);
    let xg = x.to_device(dev);
    for dim in 0..3isize {
        let mut idx_shape = vec![3, 5, 4];
        idx_shape[dim as usize] = 7;
        let count: usize = idx_shape.iter().product();
        // Valid along `dim` both for the transposed view (gather) and for `x` (the others).
        let size = x.shape()[dim as usize].min(x.t().shape()[dim as usize]) as i64;
        let idx = Tensor::from_vec(
            (0..count as i64).map(|i| (i * 7 + 3) % size).collect(),
            &idx_shape,
        );
        let idg = idx.to_device(dev);
        check(
            "gather",
            &xg.t().gather(dim, &idg),
            &x.t().gather(dim, &idx),
            (0.0, 0.0),
        );
        let src = rand(&idx_shape, DType::F64, 4);
        let shape = x.shape().to_vec();
        check(
            "scatter_add",
            &src.to_device(dev).scatter_add(dim, &idg, &shape),
            &src.scatter_add(dim, &idx, &shape),
            REDUCTION,
        );
        check(
            "index_select",
            &xg.index_select(dim, &idg.flatten_all()),
            &x.index_select(dim, &idx.flatten_all()),
            (0.0, 0.0),
        );
    }
    let bad = Tensor::from_vec(vec![3u32, 11], &[2]);
    let want = table.try_embedding(&bad).unwrap_err();
    assert_eq!(tg.try_embedding(&bad.to_device(dev)).unwrap_err(), want);
}

#[test]
fn layer_norm_forward_and_backward() {
    let Some(dev) = gpu() else { return };
    for (n, c) in [(1, 1), (3, 7), (33, 65), (1024, 768), (5, 1023)] {
        let x = rand(&[n, c], DType::F32, 1).mul_scalar(3.0).add_scalar(1.0);
        let (w, b, dy) = (
            rand(&[c], DType::F32, 2),
            rand(&[c], DType::F32, 3),
            rand(&[n, c], DType::F32, 4),
        );
        let g = |t: &Tensor| t.to_device(dev);
        for with_bias in [true, false] {
            let bias = with_bias.then_some(&b);
            let bias_g = with_bias.then(|| g(&b));
            let want = x.try_layer_norm(Some(&w), bias, 1e-5).unwrap();
            let got = g(&x)
                .try_layer_norm(Some(&g(&w)), bias_g.as_ref(), 1e-5)
                .unwrap();
            check("layer_norm y", &got.y, &want.y, REDUCTION);
            check("layer_norm rstd", &got.rstd, &want.rstd, REDUCTION);
            let wg = dy
                .try_layer_norm_backward(&x, Some(&w), &want.mean, &want.rstd, with_bias)
                .unwrap();
            let gg = g(&dy)
                .try_layer_norm_backward(&g(&x), Some(&g(&w)), &got.mean, &got.rstd, with_bias)
                .unwrap();
            check("layer_norm dx", &gg.dx, &wg.dx, REDUCTION);
            check(
                "layer_norm dweight",
                gg.dweight.as_ref().unwrap(),
                wg.dweight.as_ref().unwrap(),
                REDUCTION,
            );
            if with_bias {
                check(
                    "layer_norm dbias",
                    gg.dbias.as_ref().unwrap(),
                    wg.dbias.as_ref().unwrap(),
                    REDUCTION,
                );
            }
        }
    }
}

#[test]
fn rms_norm_forward() {
    let Some(dev) = gpu() else { return };
    for dtype in [DType::F32, DType::F64] {
        for (n, c) in [(1, 1), (3, 7), (33, 65), (1024, 64), (5, 1023)] {
            let (x, w) = (rand(&[n, c], dtype, 5), rand(&[c], dtype, 6));
            let (y, rstd) = x.try_rms_norm(&w, 1e-5).unwrap();
            let (gy, grstd) = x
                .to_device(dev)
                .try_rms_norm(&w.to_device(dev), 1e-5)
                .unwrap();
            check("rms_norm y", &gy, &y, REDUCTION);
            check("rms_norm rstd", &grstd, &rstd, REDUCTION);
        }
    }
}

#[test]
fn rope_both_ways_on_every_layout() {
    let Some(dev) = gpu() else { return };
    for dtype in [DType::F32, DType::F64] {
        for (shape, start) in [
            (vec![1, 1, 2], 0),
            (vec![2, 3, 5, 8], 3),
            (vec![3, 7, 6], 1),
        ] {
            let (t, half) = (shape[shape.len() - 2], shape[shape.len() - 1] / 2);
            let angles = rand(&[start + t, half], DType::F64, 7).mul_scalar(3.0);
            let (cos, sin) = (angles.cos().to_dtype(dtype), angles.sin().to_dtype(dtype));
            let (gcos, gsin) = (cos.to_device(dev), sin.to_device(dev));
            for inverse in [false, true] {
                each_layout(
                    dev,
                    "rope",
                    &shape,
                    dtype,
                    EXACT,
                    |t| t,
                    |x| {
                        let (c, s) = if x.device() == Device::Cpu {
                            (&cos, &sin)
                        } else {
                            (&gcos, &gsin)
                        };
                        x.try_rope(c, s, start, inverse).unwrap()
                    },
                );
            }
        }
    }
}

#[test]
fn cross_entropy_with_ignored_rows() {
    let Some(dev) = gpu() else { return };
    for (n, v) in [(1, 1), (7, 65), (64, 1023), (4, 50304)] {
        let logits = rand(&[n, v], DType::F32, 1).mul_scalar(4.0);
        let t: Vec<i64> = (0..n as i64)
            .map(|i| {
                if i % 3 == 2 {
                    -100
                } else {
                    (i * 31) % v as i64
                }
            })
            .collect();
        let t = Tensor::from_vec(t, &[n]);
        let (lg, tg) = (logits.to_device(dev), t.to_device(dev));
        let (loss, lse) = logits.try_cross_entropy(&t, Some(-100)).unwrap();
        let (gloss, glse) = lg.try_cross_entropy(&tg, Some(-100)).unwrap();
        check("cross_entropy loss", &gloss, &loss, REDUCTION);
        check("cross_entropy lse", &glse, &lse, REDUCTION);
        let d = logits
            .try_cross_entropy_backward(&t, Some(-100), &lse, 0.7)
            .unwrap();
        let dg = lg
            .try_cross_entropy_backward(&tg, Some(-100), &glse, 0.7)
            .unwrap();
        check("cross_entropy backward", &dg, &d, REDUCTION);
    }
}

#[test]
fn gelu_backward_and_adamw() {
    let Some(dev) = gpu() else { return };
    for kind in [Gelu::Tanh, Gelu::Erf] {
        let x = rand(&[10007], DType::F32, 1).mul_scalar(3.0);
        let dy = rand(&[10007], DType::F32, 2);
        let got = x
            .to_device(dev)
            .try_gelu_backward(&dy.to_device(dev), kind)
            .unwrap();
        check(
            &format!("gelu backward {kind:?}"),
            &got,
            &x.try_gelu_backward(&dy, kind).unwrap(),
            EXACT,
        );
    }
    for n in [1, 7, 1023, 200_001] {
        let mut p = rand(&[n], DType::F32, 1);
        let (mut m, mut v) = (
            Tensor::zeros(&[n], DType::F32),
            Tensor::zeros(&[n], DType::F32),
        );
        let (mut pg, mut mg, mut vg) = (p.to_device(dev), m.to_device(dev), v.to_device(dev));
        for step in 1..=5 {
            let g = rand(&[n], DType::F32, 10 + step);
            let h = AdamWStep {
                lr: 1e-2,
                beta1: 0.9,
                beta2: 0.99,
                eps: 1e-8,
                weight_decay: 0.1,
                step,
            };
            p.adamw_step_(&g, &mut m, &mut v, &h).unwrap();
            pg.adamw_step_(&g.to_device(dev), &mut mg, &mut vg, &h)
                .unwrap();
        }
        check("adamw param", &pg, &p, EXACT);
        check("adamw second moment", &vg, &v, EXACT);
    }
}

#[test]
fn causal_attention_forward_and_backward() {
    let Some(dev) = gpu() else { return };
    // (batch*heads, Tq, Tk, D), including Tq < Tk (a KV cache) and odd sizes.
    let cases = [
        (1, 1, 1, 1),
        (2, 7, 7, 5),
        (3, 65, 65, 16),
        (2, 130, 130, 64),
        (2, 1, 37, 8),
        (4, 9, 70, 3),
        (2, 33, 33, 128),
    ];
    for (bh, tq, tk, d) in cases {
        for dtype in [DType::F32, DType::F64] {
            let q = rand(&[bh, tq, d], dtype, 1);
            let k = rand(&[bh, tk, d], dtype, 2);
            let v = rand(&[bh, tk, d], dtype, 3);
            let dout = rand(&[bh, tq, d], dtype, 4);
            let g = |t: &Tensor| t.to_device(dev);
            let what = format!("attention ({bh}, {tq}, {tk}, {d}) {dtype}");
            let (out, lse) = Tensor::try_attention(&q, &k, &v).unwrap();
            let (gout, glse) = Tensor::try_attention(&g(&q), &g(&k), &g(&v)).unwrap();
            check(&format!("{what} out"), &gout, &out, REDUCTION);
            check(&format!("{what} lse"), &glse, &lse, REDUCTION);
            let (dq, dk, dv) =
                Tensor::try_attention_backward(&q, &k, &v, &out, &lse, &dout).unwrap();
            let (gdq, gdk, gdv) =
                Tensor::try_attention_backward(&g(&q), &g(&k), &g(&v), &gout, &glse, &g(&dout))
                    .unwrap();
            check(&format!("{what} dq"), &gdq, &dq, REDUCTION);
            check(&format!("{what} dk"), &gdk, &dk, REDUCTION);
            check(&format!("{what} dv"), &gdv, &dv, REDUCTION);
        }
    }
}

#[test]
fn decoding_attention_over_caches_written_in_place() {
    let Some(dev) = gpu() else { return };
    // As many query heads as cached heads, and twice as many (grouped-query attention).
    for nq in [3, 6] {
        decoding_step(dev, nq);
    }
}

/// One decoding step of `nq` query heads over caches of 3 heads.
fn decoding_step(dev: Device, nq: usize) {
    let (nh, d) = (3, 8);
    // Caches with room, filled by `copy_slice_` on each device, then one decoding step.
    let fill = |device: Device, seed: u64, cap: usize, len: usize| {
        let mut buf = Tensor::zeros(&[1, nh, cap, d], DType::F32).to_device(device);
        buf.copy_slice_(
            2,
            0,
            &rand(&[1, nh, len, d], DType::F32, seed).to_device(device),
        )
        .unwrap();
        buf
    };
    let shapes = [(16, 5), (4, 4), (64, 33)];
    let run = |device: Device| {
        let bufs: Vec<(Tensor, Tensor, usize)> = shapes
            .iter()
            .enumerate()
            .map(|(i, &(cap, len))| {
                let seed = 10 + 2 * i as u64;
                (
                    fill(device, seed, cap, len),
                    fill(device, seed + 1, cap, len),
                    len,
                )
            })
            .collect();
        let views: Vec<CacheView> = bufs
            .iter()
            .map(|(k, v, len)| CacheView { k, v, len: *len })
            .collect();
        let q = rand(&[shapes.len(), nq, 1, d], DType::F32, 9).to_device(device);
        Tensor::attention_decode(&q, &views)
    };
    check("attention_decode", &run(dev), &run(Device::Cpu), REDUCTION);
}

#[test]
fn errors_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    let x = Tensor::zeros(&[3], DType::U32);
    let want = x.try_unary(UnaryOp::Exp).unwrap_err();
    assert_eq!(x.to_device(dev).try_unary(UnaryOp::Exp).unwrap_err(), want);
    let logits = Tensor::zeros(&[2, 5], DType::F32);
    let t = Tensor::from_vec(vec![1u32, 9], &[2]);
    let want = logits.try_cross_entropy(&t, None).unwrap_err();
    assert_eq!(
        logits
            .to_device(dev)
            .try_cross_entropy(&t.to_device(dev), None)
            .unwrap_err(),
        want
    );
}
