//! Elementwise binary ops and comparisons with broadcasting: `z[i] = f(x[i], y[i])`.
//!
//! Both inputs arrive already broadcast to the output shape (size-1 and missing dims have
//! stride 0); the output is contiguous. The fast version walks merged runs and picks a
//! vectorized loop by the run's strides: both unit-stride (same shape), one operand fixed (a
//! scalar or a broadcast row, e.g. adding a bias), or a general strided loop, writing straight
//! into the new output buffer (never zero-filled first).

use super::parallel::{collect_chunks, for_each_chunk};
use super::simd;
use super::strided::{offsets_reference, Strided};
use crate::dtype::{Element, Float};
use crate::op::{BinaryOp, CmpOp};
use crate::Layout;

/// The exact scalar definition of each binary op.
#[inline(always)]
pub fn apply<T: Float>(op: BinaryOp, a: T, b: T) -> T {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Maximum => a.max_nan(b),
        BinaryOp::Minimum => a.min_nan(b),
    }
}

/// The scalar definition of each comparison (1 for true, 0 for false; NaN compares false
/// except under `Ne`).
#[inline(always)]
pub fn compare<T: PartialOrd>(op: CmpOp, a: T, b: T) -> u8 {
    (match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }) as u8
}

/// Plain reference: one index computation per element.
pub fn binary_reference<T: Float>(
    op: BinaryOp,
    x: &[T],
    xl: &Layout,
    y: &[T],
    yl: &Layout,
) -> Vec<T> {
    offsets_reference(xl)
        .into_iter()
        .zip(offsets_reference(yl))
        .map(|(i, j)| apply(op, x[i], y[j]))
        .collect()
}

/// `z = x op y` for broadcast layouts of one shape, vectorized and threaded.
pub fn binary<T: Float>(op: BinaryOp, x: &[T], xl: &Layout, y: &[T], yl: &Layout) -> Vec<T> {
    match op {
        BinaryOp::Add => zip_runs(x, xl, y, yl, |a, b| a + b),
        BinaryOp::Sub => zip_runs(x, xl, y, yl, |a, b| a - b),
        BinaryOp::Mul => zip_runs(x, xl, y, yl, |a, b| a * b),
        BinaryOp::Div => zip_runs(x, xl, y, yl, |a, b| a / b),
        BinaryOp::Pow => zip_runs(x, xl, y, yl, T::powf),
        BinaryOp::Maximum => zip_runs(x, xl, y, yl, T::max_nan),
        BinaryOp::Minimum => zip_runs(x, xl, y, yl, T::min_nan),
    }
}

/// Applies `f` over the merged runs of two broadcast views.
fn zip_runs<T: Float, F: Fn(T, T) -> T + Copy + Sync + Send>(
    x: &[T],
    xl: &Layout,
    y: &[T],
    yl: &Layout,
    f: F,
) -> Vec<T> {
    let plan = Strided::from_layouts([xl, yl]);
    let [sx, sy] = plan.inner_strides();
    // SAFETY: the runs of `first..first + chunk.len()` cover the chunk, and each arm writes
    // every element of its run.
    unsafe {
        collect_chunks(plan.numel(), 1, 1, |first, chunk| {
            plan.for_each_run(first, first + chunk.len(), |[bx, by], pos, len| {
                let z = &mut chunk[pos - first..pos - first + len];
                match (sx, sy) {
                    (1, 1) => simd::zip_map_uninit(&x[bx..bx + len], &y[by..by + len], z, f),
                    (1, 0) => simd::map_scalar_uninit(&x[bx..bx + len], y[by], z, f),
                    (0, 1) => simd::scalar_map_uninit(x[bx], &y[by..by + len], z, f),
                    _ => {
                        for (i, zi) in z.iter_mut().enumerate() {
                            zi.write(f(x[bx + i * sx], y[by + i * sy]));
                        }
                    }
                }
            });
        })
    }
}

/// `x[i] = x[i] op y[i]` in place over layouts of one shape (`y` may broadcast; `x` must not
/// overlap itself). Threaded when `x` is contiguous, serial otherwise.
pub fn binary_inplace<T: Float>(op: BinaryOp, x: &mut [T], xl: &Layout, y: &[T], yl: &Layout) {
    match op {
        BinaryOp::Add => zip_runs_inplace(x, xl, y, yl, |a, b| a + b),
        BinaryOp::Sub => zip_runs_inplace(x, xl, y, yl, |a, b| a - b),
        BinaryOp::Mul => zip_runs_inplace(x, xl, y, yl, |a, b| a * b),
        BinaryOp::Div => zip_runs_inplace(x, xl, y, yl, |a, b| a / b),
        BinaryOp::Pow => zip_runs_inplace(x, xl, y, yl, T::powf),
        BinaryOp::Maximum => zip_runs_inplace(x, xl, y, yl, T::max_nan),
        BinaryOp::Minimum => zip_runs_inplace(x, xl, y, yl, T::min_nan),
    }
}

fn zip_runs_inplace<T: Float, F: Fn(T, T) -> T + Copy + Sync + Send>(
    x: &mut [T],
    xl: &Layout,
    y: &[T],
    yl: &Layout,
    f: F,
) {
    if let Some(range) = xl.contiguous_range() {
        // Walk y against a contiguous view of x's elements, chunk by chunk.
        let plan = Strided::from_layouts([yl]);
        let [sy] = plan.inner_strides();
        for_each_chunk(&mut x[range], 1, 1, |first, chunk| {
            plan.for_each_run(first, first + chunk.len(), |[by], pos, len| {
                let z = &mut chunk[pos - first..pos - first + len];
                match sy {
                    1 => simd::zip_map_inplace(z, &y[by..by + len], f),
                    _ => {
                        for (i, zi) in z.iter_mut().enumerate() {
                            *zi = f(*zi, y[by + i * sy]);
                        }
                    }
                }
            });
        });
        return;
    }
    let plan = Strided::from_layouts([xl, yl]);
    let [sx, sy] = plan.inner_strides();
    plan.for_each_run(0, plan.numel(), |[bx, by], _, len| {
        for i in 0..len {
            x[bx + i * sx] = f(x[bx + i * sx], y[by + i * sy]);
        }
    });
}

/// Plain reference for comparisons.
pub fn compare_reference<T: Element + PartialOrd>(
    op: CmpOp,
    x: &[T],
    xl: &Layout,
    y: &[T],
    yl: &Layout,
) -> Vec<u8> {
    offsets_reference(xl)
        .into_iter()
        .zip(offsets_reference(yl))
        .map(|(i, j)| compare(op, x[i], y[j]))
        .collect()
}

/// `mask = x op y` for broadcast layouts of one shape, as 0/1 bytes.
pub fn compare_broadcast<T: Element + PartialOrd>(
    op: CmpOp,
    x: &[T],
    xl: &Layout,
    y: &[T],
    yl: &Layout,
) -> Vec<u8> {
    let plan = Strided::from_layouts([xl, yl]);
    let [sx, sy] = plan.inner_strides();
    let mut out = vec![0u8; plan.numel()];
    for_each_chunk(&mut out, 1, 1, |first, chunk| {
        plan.for_each_run(first, first + chunk.len(), |[bx, by], pos, len| {
            for (i, m) in chunk[pos - first..pos - first + len].iter_mut().enumerate() {
                *m = compare(op, x[bx + i * sx], y[by + i * sy]);
            }
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{assert_close, random_vec, views_of};
    use crate::layout::broadcast_shape;

    /// Pairs of shapes that broadcast, including scalars, size-1 dims and odd sizes.
    const PAIRS: [(&[usize], &[usize]); 6] = [
        (&[1023], &[1023]),
        (&[7, 5], &[5]),
        (&[7, 1], &[1, 9]),
        (&[3, 4, 5], &[]),
        (&[1], &[2, 3]),
        (&[2, 3, 1, 5], &[4, 1]),
    ];

    #[test]
    fn fast_matches_reference_on_broadcast_views() {
        for (sa, sb) in PAIRS {
            let out = broadcast_shape("test", sa, sb).unwrap();
            for (la, na) in views_of(sa) {
                for (lb, nb) in views_of(sb) {
                    let (la, lb) = (
                        la.broadcast_to(&out).unwrap(),
                        lb.broadcast_to(&out).unwrap(),
                    );
                    let x = random_vec::<f64>(na, 1)
                        .iter()
                        .map(|v| v.abs() + 0.5)
                        .collect::<Vec<_>>();
                    let y = random_vec::<f64>(nb, 2);
                    for op in BinaryOp::ALL {
                        let got = binary(op, &x, &la, &y, &lb);
                        let want = binary_reference(op, &x, &la, &y, &lb);
                        assert_close(&got, &want, 0.0, 0.0, &format!("{op:?} {la:?} {lb:?}"));
                    }
                    for op in [CmpOp::Lt, CmpOp::Ge, CmpOp::Eq] {
                        let got = compare_broadcast(op, &x, &la, &y, &lb);
                        assert_eq!(got, compare_reference(op, &x, &la, &y, &lb));
                    }
                }
            }
        }
    }

    #[test]
    fn inplace_matches_out_of_place() {
        for (lx, nx) in views_of(&[6, 1023]) {
            if lx.strides().contains(&0) {
                continue; // a broadcast destination would overlap itself
            }
            let x = random_vec::<f32>(nx, 7);
            let y = random_vec::<f32>(1023, 8);
            let ly = Layout::contiguous(&[1023])
                .broadcast_to(&[6, 1023])
                .unwrap();
            let want = binary(BinaryOp::Mul, &x, &lx, &y, &ly);
            let mut z = x.clone();
            binary_inplace(BinaryOp::Mul, &mut z, &lx, &y, &ly);
            assert_eq!(crate::cpu::copy::contiguous(&z, &lx), want, "{lx:?}");
        }
    }

    #[test]
    fn large_broadcast_add_is_threaded_and_exact() {
        let x = random_vec::<f32>(4096 * 385, 3);
        let b = random_vec::<f32>(385, 4);
        let xl = Layout::contiguous(&[4096, 385]);
        let bl = Layout::contiguous(&[385])
            .broadcast_to(&[4096, 385])
            .unwrap();
        let got = binary(BinaryOp::Add, &x, &xl, &b, &bl);
        assert_eq!(got, binary_reference(BinaryOp::Add, &x, &xl, &b, &bl));
    }
}
