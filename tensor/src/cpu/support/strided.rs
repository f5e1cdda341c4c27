//! Walking strided views in row-major order.
//!
//! A kernel over N same-shaped views (say the output and two broadcast inputs) should not pay
//! for index arithmetic per element. [`Strided`] first merges dimensions that every view
//! traverses as one (`stride[k] == stride[k+1] * shape[k+1]` in all views) and drops size-1
//! dims, so a contiguous tensor becomes a single run. It then hands the kernel "runs": a
//! starting storage index per view and a length along the innermost merged dimension, with a
//! fixed stride per view. The kernel's inner loop is a plain strided (often unit-stride, hence
//! vectorizable) loop.

use crate::Layout;

/// N strided views of one shape, merged for iteration.
#[derive(Clone, Debug)]
pub struct Strided<const N: usize> {
    shape: Vec<usize>,
    strides: [Vec<usize>; N],
    offsets: [usize; N],
}

impl<const N: usize> Strided<N> {
    /// Plans a walk over views that all have the given shape.
    pub fn new(shape: &[usize], views: [(&[usize], usize); N]) -> Self {
        let mut dims: Vec<(usize, [usize; N])> = Vec::with_capacity(shape.len());
        for (k, &d) in shape.iter().enumerate() {
            if d == 1 {
                continue;
            }
            let s: [usize; N] = std::array::from_fn(|v| views[v].0[k]);
            match dims.last_mut() {
                Some((pd, ps)) if (0..N).all(|v| ps[v] == s[v] * d) => {
                    *pd *= d;
                    *ps = s;
                }
                _ => dims.push((d, s)),
            }
        }
        if shape.contains(&0) {
            dims = vec![(0, [0; N])];
        } else if dims.is_empty() {
            dims.push((1, [0; N]));
        }
        Strided {
            shape: dims.iter().map(|d| d.0).collect(),
            strides: std::array::from_fn(|v| dims.iter().map(|d| d.1[v]).collect()),
            offsets: std::array::from_fn(|v| views[v].1),
        }
    }

    /// Plans a walk over layouts that must share one shape.
    pub fn from_layouts(layouts: [&Layout; N]) -> Self {
        let shape = layouts[0].shape();
        debug_assert!(layouts.iter().all(|l| l.shape() == shape));
        Self::new(
            shape,
            std::array::from_fn(|v| (layouts[v].strides(), layouts[v].offset())),
        )
    }

    /// Number of logical elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Length of the innermost merged dimension (the longest possible run).
    pub fn inner_len(&self) -> usize {
        *self.shape.last().unwrap_or(&1)
    }

    /// Stride of each view along the innermost merged dimension.
    pub fn inner_strides(&self) -> [usize; N] {
        std::array::from_fn(|v| *self.strides[v].last().unwrap_or(&0))
    }

    /// Calls `f(starts, pos, len)` for consecutive runs covering logical elements
    /// `start..end` in row-major order: `starts` are the storage indices of element `pos` in each
    /// view, and the run continues for `len` elements with [`Strided::inner_strides`].
    pub fn for_each_run(
        &self,
        start: usize,
        end: usize,
        mut f: impl FnMut([usize; N], usize, usize),
    ) {
        if start >= end {
            return;
        }
        let rank = self.shape.len();
        let inner = self.inner_len();
        // Multi-index of `start` over all merged dims.
        let mut idx = vec![0; rank];
        let mut rem = start;
        for k in (0..rank).rev() {
            idx[k] = rem % self.shape[k];
            rem /= self.shape[k];
        }
        let mut base: [usize; N] = std::array::from_fn(|v| {
            self.offsets[v]
                + idx
                    .iter()
                    .zip(&self.strides[v])
                    .map(|(i, s)| i * s)
                    .sum::<usize>()
        });
        let mut pos = start;
        while pos < end {
            let len = (inner - idx[rank - 1]).min(end - pos);
            f(base, pos, len);
            pos += len;
            if pos >= end {
                break;
            }
            // Advance the odometer past this run: the inner index wraps to 0, carries outward.
            for (b, s) in base.iter_mut().zip(&self.strides) {
                *b -= idx[rank - 1] * s[rank - 1];
            }
            idx[rank - 1] = 0;
            let mut k = rank - 1;
            loop {
                if k == 0 {
                    return;
                }
                k -= 1;
                idx[k] += 1;
                for (b, s) in base.iter_mut().zip(&self.strides) {
                    *b += s[k];
                }
                if idx[k] < self.shape[k] {
                    break;
                }
                for (b, s) in base.iter_mut().zip(&self.strides) {
                    *b -= idx[k] * s[k];
                }
                idx[k] = 0;
            }
        }
    }
}

/// Storage indices of every element of a layout, in row-major order (the plain reference
/// walk that tests compare [`Strided`] against).
pub fn offsets_reference(layout: &Layout) -> Vec<usize> {
    let shape = layout.shape();
    let mut out = Vec::with_capacity(layout.numel());
    let mut idx = vec![0; shape.len()];
    for _ in 0..layout.numel() {
        out.push(layout.index_of(&idx));
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn walk(layout: &Layout, start: usize, end: usize) -> Vec<usize> {
        let plan = Strided::from_layouts([layout]);
        let [stride] = plan.inner_strides();
        let mut out = vec![];
        plan.for_each_run(start, end, |[b], pos, len| {
            assert_eq!(pos, start + out.len());
            out.extend((0..len).map(|i| b + i * stride));
        });
        out
    }

    #[test]
    fn contiguous_is_one_run() {
        let l = Layout::contiguous(&[3, 4, 5]);
        let plan = Strided::from_layouts([&l]);
        assert_eq!(plan.inner_len(), 60);
    }

    #[test]
    fn empty_and_scalar_layouts() {
        assert!(walk(&Layout::contiguous(&[3, 0]), 0, 0).is_empty());
        assert_eq!(walk(&Layout::new(vec![], vec![], 7), 0, 1), vec![7]);
    }

    proptest! {
        #[test]
        fn runs_visit_the_same_offsets_as_the_reference(
            shape in proptest::collection::vec(1usize..5, 0..5),
            perm_seed in any::<u64>(),
            narrow in any::<bool>(),
            expand in any::<bool>(),
            split in any::<(u16, u16)>(),
        ) {
            // Build a view: permuted, optionally narrowed and broadcast.
            let mut l = Layout::contiguous(&shape);
            let rank = shape.len();
            let mut dims: Vec<usize> = (0..rank).collect();
            let mut s = perm_seed;
            for i in (1..rank).rev() {
                dims.swap(i, (s % (i as u64 + 1)) as usize);
                s /= 7;
            }
            l = l.permute(&dims).unwrap();
            if narrow && rank > 0 && l.shape()[0] > 1 {
                l = l.narrow(0, 1, l.shape()[0] - 1).unwrap();
            }
            if expand {
                let mut target = vec![3];
                target.extend_from_slice(l.shape());
                l = l.unsqueeze(0).unwrap().broadcast_to(&target).unwrap();
            }
            let n = l.numel();
            let reference = offsets_reference(&l);
            prop_assert_eq!(walk(&l, 0, n), reference.clone());
            let a = split.0 as usize % (n + 1);
            let b = a + split.1 as usize % (n - a + 1);
            prop_assert_eq!(walk(&l, a, b), reference[a..b].to_vec());
        }
    }
}
