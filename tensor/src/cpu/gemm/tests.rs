//! The packed GEMM against the triple loop: every kernel this CPU runs, odd sizes, transposed,
//! strided and offset operands, alpha and beta, one thread and many.

use super::kernel::{self, Kernel, Tile};
use super::{gemm_reference, sgemm, Threads};
use crate::cpu::matmul::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How an operand is laid out in its buffer.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// Rows contiguous, each padded by 5 elements, starting 3 elements in.
    RowMajor,
    /// Stored transposed (columns contiguous), padded by 2.
    ColMajor,
    /// Neither stride is 1: every second element of a padded row-major buffer.
    Strided,
}

const FORMS: [Form; 3] = [Form::RowMajor, Form::ColMajor, Form::Strided];

/// A random `rows x cols` operand in `form`: its buffer, offset, row and column strides.
struct Operand {
    data: Vec<f32>,
    offset: usize,
    rs: usize,
    cs: usize,
}

impl Operand {
    fn new(rows: usize, cols: usize, form: Form, rng: &mut ChaCha8Rng) -> Operand {
        let (offset, rs, cs, len) = match form {
            Form::RowMajor => (3, cols + 5, 1, 3 + rows * (cols + 5)),
            Form::ColMajor => (0, 1, rows + 2, cols * (rows + 2)),
            Form::Strided => (1, 2 * cols + 1, 2, 1 + rows * (2 * cols + 1)),
        };
        let data = (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        Operand {
            data,
            offset,
            rs,
            cs,
        }
    }

    fn mat(&self) -> Mat<'_, f32> {
        Mat {
            data: &self.data[self.offset..],
            rs: self.rs,
            cs: self.cs,
        }
    }

    /// The same operand in f64, with every value replaced by `f(value)`.
    fn map64(&self, f: impl Fn(f64) -> f64) -> (Vec<f64>, usize, usize, usize) {
        let data = self.data.iter().map(|&x| f(x as f64)).collect();
        (data, self.offset, self.rs, self.cs)
    }
}

/// The exact product (in f64) and an error bound for an f32 sum of `k` terms, per element:
/// `(k + 2) u (|alpha| |A| |B| + |beta| |C|)` with `u` the f32 unit roundoff, doubled.
fn expected(
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    a: &Operand,
    b: &Operand,
    beta: f32,
    c: &[f32],
    rsc: usize,
) -> (Vec<f64>, Vec<f64>) {
    let run = |f: &dyn Fn(f64) -> f64| {
        let (ad, ao, ars, acs) = a.map64(f);
        let (bd, bo, brs, bcs) = b.map64(f);
        let mut cd: Vec<f64> = c.iter().map(|&x| f(x as f64)).collect();
        let (al, be) = (f(alpha as f64), f(beta as f64));
        let am = Mat {
            data: &ad[ao..],
            rs: ars,
            cs: acs,
        };
        let bm = Mat {
            data: &bd[bo..],
            rs: brs,
            cs: bcs,
        };
        gemm_reference(m, k, n, al, am, bm, be, &mut cd, rsc);
        cd
    };
    let want = run(&|x| x);
    let bound = run(&|x: f64| x.abs())
        .into_iter()
        .map(|mag| 2.0 * (k + 2) as f64 * f32::EPSILON as f64 / 2.0 * mag)
        .collect();
    (want, bound)
}

/// Panics naming the worst element unless every `|got - want| <= bound` (NaN never passes).
#[track_caller]
fn assert_within(got: &[f32], want: &[f64], bound: &[f64], what: &str) {
    for (i, ((&g, &w), &b)) in got.iter().zip(want).zip(bound).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(
            err <= b,
            "{what}: element {i} is {g}, expected {w} (error {err:e}, bound {b:e})"
        );
    }
}

/// Kernels this CPU runs: the plain one always, AVX2 and AVX-512 when present.
fn kernels() -> Vec<Kernel> {
    kernel::all()
        .into_iter()
        .filter(|k| (k.available)())
        .collect()
}

/// Checks every runnable kernel, single-threaded and threaded, on one problem.
#[allow(clippy::too_many_arguments)]
fn check((m, k, n): (usize, usize, usize), forms: (Form, Form), alpha: f32, beta: f32, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a = Operand::new(m, k, forms.0, &mut rng);
    let b = Operand::new(k, n, forms.1, &mut rng);
    let rsc = n + 3;
    let c0: Vec<f32> = (0..m * rsc).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let (want, bound) = expected((m, k, n), alpha, &a, &b, beta, &c0, rsc);
    for kern in kernels() {
        for threads in [Threads::One, Threads::Auto] {
            let mut c = c0.clone();
            sgemm(
                &kern,
                threads,
                m,
                k,
                n,
                alpha,
                a.mat(),
                b.mat(),
                beta,
                &mut c,
                rsc,
            );
            let what = format!(
                "{} {threads:?} m={m} k={k} n={n} {forms:?} alpha={alpha} beta={beta}",
                kern.name
            );
            assert_within(&c, &want, &bound, &what);
        }
    }
}

#[test]
fn odd_sizes_and_every_layout_match_the_reference() {
    const SIZES: [usize; 8] = [1, 7, 17, 63, 65, 127, 129, 1023];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut seed = 0;
    // Each size in each of m, k and n, the other two drawn so that the product stays small
    // enough for the f64 triple loop.
    for &size in &SIZES {
        for dim in 0..3 {
            let mut mkn = [0; 3];
            for (d, x) in mkn.iter_mut().enumerate() {
                *x = if d == dim {
                    size
                } else {
                    SIZES[rng.gen_range(0..SIZES.len())]
                };
            }
            while mkn.iter().product::<usize>() > 1 << 21 {
                let d = (dim + 1 + rng.gen_range(0..2)) % 3;
                mkn[d] = SIZES[rng.gen_range(0..4)];
            }
            let forms = (FORMS[seed as usize % 3], FORMS[(seed as usize / 3) % 3]);
            seed += 1;
            check((mkn[0], mkn[1], mkn[2]), forms, 1.0, 0.0, seed);
        }
    }
}

#[test]
fn all_operand_layouts_on_a_blocked_product() {
    // Larger than one A block and one K block for every kernel, with ragged edges.
    for (i, fa) in FORMS.into_iter().enumerate() {
        for (j, fb) in FORMS.into_iter().enumerate() {
            check((203, 517, 91), (fa, fb), 1.0, 0.0, (10 * i + j) as u64);
        }
    }
}

#[test]
fn alpha_and_beta_scale_and_accumulate() {
    for (alpha, beta) in [
        (1.0, 1.0),
        (0.5, -2.0),
        (-1.5, 0.0),
        (2.0, 0.25),
        (0.0, 3.0),
    ] {
        check(
            (37, 45, 70),
            (Form::RowMajor, Form::ColMajor),
            alpha,
            beta,
            3,
        );
        check(
            (140, 400, 33),
            (Form::ColMajor, Form::RowMajor),
            alpha,
            beta,
            4,
        );
    }
}

#[test]
fn beta_zero_ignores_nan_in_c() {
    let (m, k, n) = (29, 31, 45);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let a = Operand::new(m, k, Form::RowMajor, &mut rng);
    let b = Operand::new(k, n, Form::RowMajor, &mut rng);
    let zeros = vec![0.0; m * n];
    let (want, bound) = expected((m, k, n), 1.0, &a, &b, 0.0, &zeros, n);
    for kern in kernels() {
        for threads in [Threads::One, Threads::Auto] {
            let mut c = vec![f32::NAN; m * n];
            sgemm(
                &kern,
                threads,
                m,
                k,
                n,
                1.0,
                a.mat(),
                b.mat(),
                0.0,
                &mut c,
                n,
            );
            assert_within(&c, &want, &bound, kern.name);
        }
    }
}

#[test]
fn empty_depth_scales_c_and_empty_output_is_a_no_op() {
    let mat = |data: &'static [f32], rs| Mat { data, rs, cs: 1 };
    for kern in kernels() {
        let run = |(m, k, n), a, b, beta, c: &mut [f32]| {
            sgemm(&kern, Threads::Auto, m, k, n, 1.0, a, b, beta, c, n)
        };
        let mut c = vec![1.0, 2.0, f32::NAN, 4.0];
        run((2, 0, 2), mat(&[], 0), mat(&[], 2), 2.0, &mut c);
        assert!(c[..2] == [2.0, 4.0] && c[2].is_nan() && c[3] == 8.0);
        run((2, 0, 2), mat(&[], 0), mat(&[], 2), 0.0, &mut c);
        assert_eq!(c, [0.0; 4]);
        run((0, 5, 3), mat(&[], 5), mat(&[1.0; 15], 3), 0.0, &mut []);
    }
}

#[test]
fn threads_do_not_change_a_single_bit() {
    // Large enough to go parallel; rows and columns split unevenly across 1, 2 and 3 threads.
    let (m, k, n) = (301, 700, 389);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let a = Operand::new(m, k, Form::RowMajor, &mut rng);
    let b = Operand::new(k, n, Form::ColMajor, &mut rng);
    for kern in kernels() {
        let run = |threads: usize, mode: Threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut c = vec![0.0; m * n];
            pool.install(|| sgemm(&kern, mode, m, k, n, 1.0, a.mat(), b.mat(), 0.0, &mut c, n));
            c
        };
        let one = run(1, Threads::One);
        for threads in [2, 3, 4] {
            assert!(
                run(threads, Threads::Auto) == one,
                "{} {threads}",
                kern.name
            );
        }
    }
}

#[test]
fn one_row_products_skip_packing_and_match_the_reference() {
    use super::{gemv, MatMut, MatRef, Product};
    let mut seed = 100;
    for (k, n) in [(1, 1), (7, 17), (65, 300), (1023, 1029), (384, 1152)] {
        // B with contiguous columns (a weight read transposed) and with contiguous rows.
        for form in [Form::ColMajor, Form::RowMajor] {
            for (alpha, beta) in [(1.0, 0.0), (0.5, -2.0)] {
                seed += 1;
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let a = Operand::new(1, k, Form::Strided, &mut rng);
                let b = Operand::new(k, n, form, &mut rng);
                let c0: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
                let (want, bound) = expected((1, k, n), alpha, &a, &b, beta, &c0, n);
                for threads in [Threads::One, Threads::Auto] {
                    // Where beta is zero, C starts as NaN: it must be written, never read.
                    let mut c = if beta == 0.0 {
                        vec![f32::NAN; n]
                    } else {
                        c0.clone()
                    };
                    let view = |o: &Operand| MatRef {
                        ptr: o.data[o.offset..].as_ptr(),
                        rs: o.rs as isize,
                        cs: o.cs as isize,
                    };
                    let p = Product {
                        m: 1,
                        k,
                        n,
                        alpha,
                        a: view(&a),
                        b: view(&b),
                        beta,
                        c: MatMut {
                            ptr: c.as_mut_ptr(),
                            rs: n as isize,
                        },
                    };
                    assert!(gemv::applies(&p));
                    // SAFETY: the operands' buffers hold every element their strides address,
                    // and `c` is a separate buffer of `n` elements.
                    unsafe { gemv::gemv(p, threads) };
                    let what = format!("gemv {threads:?} k={k} n={n} {form:?} beta={beta}");
                    assert_within(&c, &want, &bound, &what);
                }
            }
        }
    }
}

#[test]
fn fma_kernels_agree_bit_for_bit() {
    // AVX-512 and AVX2 share the depth blocking and sum each block in one FMA chain, so their
    // products are identical; K spans several blocks, and the tile edges differ between them.
    let (m, k, n) = (37, 2 * kernel::KC + 45, 53);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let a = Operand::new(m, k, Form::RowMajor, &mut rng);
    let b = Operand::new(k, n, Form::Strided, &mut rng);
    let c0: Vec<f32> = (0..m * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let products: Vec<(&str, Vec<f32>)> = kernels()
        .into_iter()
        .filter(|kern| !kern.name.starts_with("generic"))
        .map(|kern| {
            let mut c = c0.clone();
            sgemm(
                &kern,
                Threads::One,
                m,
                k,
                n,
                0.5,
                a.mat(),
                b.mat(),
                0.25,
                &mut c,
                n,
            );
            (kern.name, c)
        })
        .collect();
    for pair in products.windows(2) {
        assert!(
            pair[0].1 == pair[1].1,
            "{} and {} differ",
            pair[0].0,
            pair[1].0
        );
    }
}

#[test]
fn products_nested_in_parallel_tasks_reuse_buffers_safely() {
    // Rayon may run a second product on a thread that is waiting inside the first.
    use rayon::prelude::*;
    let (m, k, n) = (150, 300, 200);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let a = Operand::new(m, k, Form::RowMajor, &mut rng);
    let b = Operand::new(k, n, Form::RowMajor, &mut rng);
    let kern = kernel::best();
    let mut want = vec![0.0; m * n];
    sgemm(
        kern,
        Threads::One,
        m,
        k,
        n,
        1.0,
        a.mat(),
        b.mat(),
        0.0,
        &mut want,
        n,
    );
    let outs: Vec<Vec<f32>> = (0..8)
        .into_par_iter()
        .map(|_| {
            let mut c = vec![0.0; m * n];
            sgemm(
                kern,
                Threads::Auto,
                m,
                k,
                n,
                1.0,
                a.mat(),
                b.mat(),
                0.0,
                &mut c,
                n,
            );
            c
        })
        .collect();
    assert!(outs.iter().all(|c| *c == want));
}

#[test]
fn each_micro_kernel_stores_exactly_its_tile() {
    // Called directly on random panels: every partial tile shape, C with a wider row stride,
    // and a guard of NaN around the tile that must stay untouched.
    for kern in kernels() {
        let (mr, nr, kc) = (kern.mr, kern.nr, 13);
        let mut rng = ChaCha8Rng::seed_from_u64(kc as u64);
        let a: Vec<f32> = (0..mr * kc).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..nr * kc).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let rsc = nr + 4;
        for rows in 1..=mr {
            for cols in 1..=nr {
                for (alpha, beta) in [(1.0, 0.0), (0.5, 2.0)] {
                    let mut c: Vec<f32> = (0..(mr + 1) * rsc).map(|x| x as f32).collect();
                    let old = c.clone();
                    let tile = Tile {
                        c: c.as_mut_ptr(),
                        rsc: rsc as isize,
                        rows,
                        cols,
                        alpha,
                        beta,
                    };
                    // SAFETY: the tile's rows x cols lie inside `c` (rows <= mr, cols <= nr <
                    // rsc); the kernel is available on this CPU.
                    unsafe { (kern.micro)(&a, &b, &tile) };
                    for i in 0..=mr {
                        for j in 0..rsc {
                            let got = c[i * rsc + j];
                            if i < rows && j < cols {
                                let ab: f64 = (0..kc)
                                    .map(|p| a[p * mr + i] as f64 * b[p * nr + j] as f64)
                                    .sum();
                                let want =
                                    alpha as f64 * ab + beta as f64 * old[i * rsc + j] as f64;
                                let tol = 1e-5 * (1.0 + want.abs());
                                assert!(
                                    (got as f64 - want).abs() <= tol,
                                    "{} tile {rows}x{cols} ({i},{j}): {got} vs {want}",
                                    kern.name
                                );
                            } else {
                                assert_eq!(
                                    got,
                                    old[i * rsc + j],
                                    "{} wrote outside its tile",
                                    kern.name
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A right operand packed ahead gives the packed GEMM's product bit for bit: every runnable
/// kernel, B in each form, depths over one block, rows over one A block, odd widths, threads.
#[test]
fn a_prepacked_operand_matches_packing_each_time() {
    use super::pack::MatRef;
    use super::{MatMut, PackedB};
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    for (m, k, n) in [
        (2, 1, 1),
        (7, 13, 33),
        (64, 384, 100),
        (200, 1600, 70),
        (3, 800, 1030),
    ] {
        for form in FORMS {
            let a = Operand::new(m, k, Form::RowMajor, &mut rng);
            let b = Operand::new(k, n, form, &mut rng);
            for kern in kernels() {
                let mut want = vec![f32::NAN; m * n];
                let (am, bm) = (a.mat(), b.mat());
                sgemm(&kern, Threads::One, m, k, n, 1.0, am, bm, 0.0, &mut want, n);
                let view = |o: &Operand| MatRef {
                    ptr: o.data[o.offset..].as_ptr(),
                    rs: o.rs as isize,
                    cs: o.cs as isize,
                };
                let mut got = vec![f32::NAN; m * n];
                // SAFETY: the operands hold `m x k` and `k x n` elements at their strides and
                // `got` holds `m x n`; the kernel runs on this CPU.
                unsafe {
                    let packed = PackedB::new(&kern, view(&b), k, n);
                    let c = MatMut {
                        ptr: got.as_mut_ptr(),
                        rs: n as isize,
                    };
                    packed.multiply(view(&a), m, c);
                }
                assert_eq!(got, want, "{} {m}x{k}x{n} {form:?}", kern.name);
            }
        }
    }
}
