//! Selection by a mask: `out[i] = if mask[i] != 0 { a[i] } else { b[i] }`, with all three
//! operands broadcast to the output shape. `masked_fill` is this with a scalar `a`.

use super::parallel::for_each_chunk;
use super::strided::{offsets_reference, Strided};
use crate::dtype::Element;
use crate::Layout;

/// Plain reference: one index computation per element.
pub fn where_reference<T: Element>(
    mask: &[u8],
    ml: &Layout,
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
) -> Vec<T> {
    let (mo, ao, bo) = (
        offsets_reference(ml),
        offsets_reference(al),
        offsets_reference(bl),
    );
    (0..mo.len())
        .map(|i| if mask[mo[i]] != 0 { a[ao[i]] } else { b[bo[i]] })
        .collect()
}

/// `where(mask, a, b)` over broadcast layouts of one shape; contiguous output.
pub fn where_cond<T: Element>(
    mask: &[u8],
    ml: &Layout,
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
) -> Vec<T> {
    let plan = Strided::from_layouts([ml, al, bl]);
    let [sm, sa, sb] = plan.inner_strides();
    let mut out = vec![T::default(); plan.numel()];
    for_each_chunk(&mut out, 1, 1, |first, chunk| {
        plan.for_each_run(first, first + chunk.len(), |[m0, a0, b0], pos, len| {
            for (i, o) in chunk[pos - first..pos - first + len].iter_mut().enumerate() {
                *o = if mask[m0 + i * sm] != 0 {
                    a[a0 + i * sa]
                } else {
                    b[b0 + i * sb]
                };
            }
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{random_vec, views_of};

    #[test]
    fn fast_matches_reference_with_broadcast_mask() {
        let shape = [3, 5, 7];
        for (la, na) in views_of(&shape) {
            let a = random_vec::<f32>(na, 1);
            let b = random_vec::<f32>(7, 2);
            let bl = Layout::contiguous(&[7]).broadcast_to(&shape).unwrap();
            let mask: Vec<u8> = (0..35).map(|i| (i % 3 == 0) as u8).collect();
            let ml = Layout::contiguous(&[5, 7]).broadcast_to(&shape).unwrap();
            let got = where_cond(&mask, &ml, &a, &la, &b, &bl);
            assert_eq!(got, where_reference(&mask, &ml, &a, &la, &b, &bl));
        }
    }
}
