//! Layout: how a tensor's logical elements map onto its storage.
//!
//! Element `[i0, i1, ..., in]` lives at storage index `offset + sum(ik * strides[k])`.
//! Every view (permute, narrow, expand, squeeze, reshape of viewable data) is a new layout over
//! the same storage; none copies. A stride of 0 repeats an element (broadcasting).

use crate::error::{Error, Result};

/// Shape, strides (in elements) and offset of a tensor view.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

/// `(O, S, I)` of `shape` around `dim`: the product of the sizes before it, its size, and the
/// product of the sizes after it (a contiguous tensor is `O` blocks of `S` rows of `I`).
pub fn sizes_around(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    let outer = shape[..dim].iter().product();
    let inner = shape[dim + 1..].iter().product();
    (outer, shape[dim], inner)
}

/// Row-major (C order) strides for `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= d;
    }
    strides
}

/// The shape two shapes broadcast to under numpy's rules: align at the right; each pair of
/// sizes must be equal or contain a 1.
pub fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() {
            1
        } else {
            a[i - (rank - a.len())]
        };
        let db = if i < rank - b.len() {
            1
        } else {
            b[i - (rank - b.len())]
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: a.to_vec(),
                    rhs: b.to_vec(),
                })
            }
        };
    }
    Ok(out)
}

/// Resolves a possibly negative dimension index against `rank`.
pub fn resolve_dim(op: &'static str, dim: isize, rank: usize) -> Result<usize> {
    let d = if dim < 0 { dim + rank as isize } else { dim };
    if d < 0 || d as usize >= rank {
        return Err(Error::DimOutOfRange { op, dim, rank });
    }
    Ok(d as usize)
}

impl Layout {
    /// A dense row-major layout starting at offset 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// A layout with explicit strides and offset. The caller guarantees it fits its storage
    /// (checked by [`Layout::required_len`] where a storage is attached).
    pub fn new(shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Self {
        assert_eq!(
            shape.len(),
            strides.len(),
            "shape and strides must have one entry per dim"
        );
        Layout {
            shape,
            strides,
            offset,
        }
    }

    /// Size of each dim.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Storage elements to step per unit of each dim (0 for a broadcast dim).
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Storage index of the first element.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The view of the dims not in `dims`, with this layout's offset, and the view of those in
    /// `dims`, from offset 0: a reduction's output positions, and the elements each of them
    /// reduces relative to its own position.
    pub fn split_dims(&self, dims: &[usize]) -> (Layout, Layout) {
        let (mut ks, mut kt, mut rs, mut rt) = (vec![], vec![], vec![], vec![]);
        for (d, (&size, &stride)) in self.shape.iter().zip(&self.strides).enumerate() {
            if dims.contains(&d) {
                rs.push(size);
                rt.push(stride);
            } else {
                ks.push(size);
                kt.push(stride);
            }
        }
        (Layout::new(ks, kt, self.offset), Layout::new(rs, rt, 0))
    }

    /// Number of dims (0 for a scalar).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of logical elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The storage length this layout needs: one past the largest index it can address
    /// (0 for an empty view).
    pub fn required_len(&self) -> usize {
        if self.numel() == 0 {
            return 0;
        }
        self.offset
            + self
                .shape
                .iter()
                .zip(&self.strides)
                .map(|(&d, &s)| (d - 1) * s)
                .sum::<usize>()
            + 1
    }

    /// True when the elements are dense and in row-major order (sizes of 1 may have any stride).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// The storage range of a contiguous layout, or `None` when it is not contiguous.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        self.is_contiguous()
            .then(|| self.offset..self.offset + self.numel())
    }

    /// Storage index of a logical multi-index (no bounds check beyond debug asserts).
    pub fn index_of(&self, idx: &[usize]) -> usize {
        debug_assert_eq!(idx.len(), self.rank());
        self.offset
            + idx
                .iter()
                .zip(&self.strides)
                .map(|(&i, &s)| i * s)
                .sum::<usize>()
    }

    /// Reorders dimensions: output dim `k` is input dim `dims[k]`.
    pub fn permute(&self, dims: &[usize]) -> Result<Layout> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        let valid = dims.len() == rank
            && dims.iter().all(|&d| {
                let fresh = d < rank && !seen[d];
                if fresh {
                    seen[d] = true;
                }
                fresh
            });
        if !valid {
            return Err(Error::InvalidArgument(format!(
                "permute: {dims:?} is not a permutation of the {rank} dims of shape {:?}",
                self.shape
            )));
        }
        Ok(Layout {
            shape: dims.iter().map(|&d| self.shape[d]).collect(),
            strides: dims.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        })
    }

    /// Swaps two dimensions.
    pub fn transpose(&self, d0: usize, d1: usize) -> Result<Layout> {
        let rank = self.rank();
        for d in [d0, d1] {
            if d >= rank {
                return Err(Error::DimOutOfRange {
                    op: "transpose",
                    dim: d as isize,
                    rank,
                });
            }
        }
        let mut dims: Vec<usize> = (0..rank).collect();
        dims.swap(d0, d1);
        self.permute(&dims)
    }

    /// Keeps `len` elements of `dim` starting at `start`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Layout> {
        let rank = self.rank();
        if dim >= rank {
            return Err(Error::DimOutOfRange {
                op: "narrow",
                dim: dim as isize,
                rank,
            });
        }
        let size = self.shape[dim];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::IndexOutOfRange {
                op: "narrow",
                index: start + len,
                size,
            });
        }
        let mut out = self.clone();
        out.shape[dim] = len;
        if len > 0 {
            out.offset += start * self.strides[dim];
        }
        Ok(out)
    }

    /// Broadcasts to `shape` (numpy rules): new leading dims and size-1 dims get stride 0.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Layout> {
        let err = || Error::ShapeMismatch {
            op: "expand",
            lhs: self.shape.clone(),
            rhs: shape.to_vec(),
        };
        if shape.len() < self.rank() {
            return Err(err());
        }
        let lead = shape.len() - self.rank();
        let mut strides = vec![0; shape.len()];
        for (i, &target) in shape.iter().enumerate().skip(lead) {
            let (d, s) = (self.shape[i - lead], self.strides[i - lead]);
            strides[i] = if d == target {
                s
            } else if d == 1 {
                0
            } else {
                return Err(err());
            };
        }
        Ok(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }

    /// Removes `dim`, which must have size 1.
    pub fn squeeze(&self, dim: usize) -> Result<Layout> {
        if dim >= self.rank() || self.shape[dim] != 1 {
            return Err(Error::InvalidArgument(format!(
                "squeeze: dim {dim} of shape {:?} is not a dimension of size 1",
                self.shape
            )));
        }
        let mut out = self.clone();
        out.shape.remove(dim);
        out.strides.remove(dim);
        Ok(out)
    }

    /// Inserts a dimension of size 1 at `dim` (0 ..= rank).
    pub fn unsqueeze(&self, dim: usize) -> Result<Layout> {
        if dim > self.rank() {
            return Err(Error::DimOutOfRange {
                op: "unsqueeze",
                dim: dim as isize,
                rank: self.rank() + 1,
            });
        }
        let mut out = self.clone();
        let stride = if dim < self.rank() {
            self.shape[dim] * self.strides[dim]
        } else {
            1
        };
        out.shape.insert(dim, 1);
        out.strides.insert(dim, stride);
        Ok(out)
    }

    /// A view with a new shape over the same elements in row-major order, if the strides
    /// allow one; `None` means the data must be copied first.
    ///
    /// Walking from the last dim, input dims are grouped into chunks that are contiguous among
    /// themselves (`stride[k-1] == stride[k] * shape[k]`). Each chunk must be covered exactly by
    /// a run of output dims, whose strides then step through the chunk from its base stride.
    pub fn reshape_view(&self, shape: &[usize]) -> Option<Layout> {
        debug_assert_eq!(shape.iter().product::<usize>(), self.numel());
        if self.is_contiguous() || self.numel() == 0 {
            return Some(Layout {
                shape: shape.to_vec(),
                strides: contiguous_strides(shape),
                offset: self.offset,
            });
        }
        let (old_shape, old_strides) = (&self.shape, &self.strides);
        let mut strides = vec![0; shape.len()];
        let mut view_d = shape.len();
        let mut chunk_stride = *old_strides.last()?;
        let (mut chunk_numel, mut view_numel) = (1, 1);
        for d in (0..old_shape.len()).rev() {
            chunk_numel *= old_shape[d];
            let chunk_ends = d == 0
                || (old_shape[d - 1] != 1 && old_strides[d - 1] != chunk_numel * chunk_stride);
            if !chunk_ends {
                continue;
            }
            while view_d > 0 && (view_numel < chunk_numel || shape[view_d - 1] == 1) {
                strides[view_d - 1] = view_numel * chunk_stride;
                view_numel *= shape[view_d - 1];
                view_d -= 1;
            }
            if view_numel != chunk_numel {
                return None;
            }
            if d > 0 {
                chunk_stride = old_strides[d - 1];
                chunk_numel = 1;
                view_numel = 1;
            }
        }
        (view_d == 0).then(|| Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_splits_into_kept_and_reduced_dims() {
        let l = Layout::new(vec![2, 3, 4], vec![1, 8, 2], 5);
        let (kept, reduced) = l.split_dims(&[1]);
        assert_eq!(
            (kept.shape(), kept.strides(), kept.offset()),
            (&[2, 4][..], &[1, 2][..], 5)
        );
        assert_eq!(
            (reduced.shape(), reduced.strides(), reduced.offset()),
            (&[3][..], &[8][..], 0)
        );
        assert_eq!(sizes_around(&[2, 3, 4], 1), (2, 3, 4));
        assert_eq!(sizes_around(&[5], 0), (1, 5, 1));
    }

    #[test]
    fn contiguous_strides_are_row_major() {
        assert_eq!(contiguous_strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(contiguous_strides(&[]), Vec::<usize>::new());
    }

    #[test]
    fn broadcast_follows_numpy() {
        assert_eq!(broadcast_shape("t", &[3, 1], &[4]).unwrap(), vec![3, 4]);
        assert_eq!(broadcast_shape("t", &[], &[2, 2]).unwrap(), vec![2, 2]);
        assert_eq!(
            broadcast_shape("t", &[5, 1, 7], &[6, 1]).unwrap(),
            vec![5, 6, 7]
        );
        let err = broadcast_shape("add", &[3], &[4]).unwrap_err().to_string();
        assert!(
            err.contains("add") && err.contains("[3]") && err.contains("[4]"),
            "{err}"
        );
    }

    #[test]
    fn transpose_then_reshape_needs_a_copy() {
        let l = Layout::contiguous(&[2, 3]).transpose(0, 1).unwrap();
        assert!(!l.is_contiguous());
        assert!(l.reshape_view(&[6]).is_none());
        // Splitting a dim of a transposed view is still a view.
        let l = Layout::contiguous(&[4, 6]).transpose(0, 1).unwrap();
        let v = l.reshape_view(&[2, 3, 4]).unwrap();
        assert_eq!(v.strides(), &[3, 1, 6]);
    }

    #[test]
    fn narrow_moves_offset_and_keeps_strides() {
        let l = Layout::contiguous(&[4, 5]).narrow(1, 2, 3).unwrap();
        assert_eq!(
            (l.shape(), l.strides(), l.offset()),
            (&[4, 3][..], &[5, 1][..], 2)
        );
        assert!(Layout::contiguous(&[4]).narrow(0, 3, 2).is_err());
    }

    #[test]
    fn expand_uses_stride_zero() {
        let l = Layout::contiguous(&[3, 1])
            .broadcast_to(&[2, 3, 4])
            .unwrap();
        assert_eq!(l.strides(), &[0, 1, 0]);
        assert!(Layout::contiguous(&[3]).broadcast_to(&[4]).is_err());
    }

    #[test]
    fn required_len_covers_the_last_element() {
        let l = Layout::new(vec![2, 3], vec![1, 2], 1);
        assert_eq!(l.required_len(), 1 + 1 + 4 + 1);
        assert_eq!(Layout::contiguous(&[0, 3]).required_len(), 0);
    }
}
