//! Products that pack each right operand once: inside [`with_packed_weights`], a product
//! `(..., M, K) @ (K, N)` on the CPU in f32 packs its right operand (a weight) the first time
//! it meets it and reuses the packed copy afterwards (see [`crate::cpu::gemm::prepacked`]).
//!
//! For decoding loops, which multiply the same weights by a few new rows at every step. A
//! right operand is known by its storage and layout; the scope holds each one it packed, so
//! no storage is freed (and its address reused) while the scope lasts, and an in-place update
//! of it fails with [`crate::Error::SharedStorage`] instead of leaving a stale copy. The
//! results are bit-identical to the products outside the scope.

use crate::cpu::gemm::{kernel, MatMut, MatRef, PackedB};
use crate::{DType, Tensor};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// A right operand: its storage's address and its layout.
#[derive(Hash, PartialEq, Eq)]
struct Key {
    storage: usize,
    offset: usize,
    shape: Vec<usize>,
    strides: Vec<usize>,
}

/// A packed operand and the tensor it was packed from, held so its storage lives on.
struct Entry {
    _source: Tensor,
    packed: Arc<PackedB>,
}

thread_local! {
    /// The packed operands of the innermost scope on this thread; `None` outside any scope.
    static PACKED: RefCell<Option<HashMap<Key, Entry>>> = const { RefCell::new(None) };
}

/// Runs `f` with products packing each right operand once (see the module docs). The packed
/// copies (as large as the operands) are dropped when `f` returns. A nested call shares the
/// outer scope's copies.
pub fn with_packed_weights<R>(f: impl FnOnce() -> R) -> R {
    /// Ends the scope when dropped, also when `f` panics.
    struct Scope;
    impl Drop for Scope {
        fn drop(&mut self) {
            PACKED.with(|p| p.borrow_mut().take());
        }
    }
    if PACKED.with(|p| p.borrow().is_some()) {
        return f();
    }
    PACKED.with(|p| *p.borrow_mut() = Some(HashMap::new()));
    let _scope = Scope;
    f()
}

/// `a @ b` with `b` packed once, when a scope is open and the product qualifies: both f32 on
/// the CPU, `a (..., M, K)` contiguous with at least two rows in all (one row reads `b` where
/// it lies, see `gemv`), `b (K, N)` with `K >= 1`. Shapes must already be checked.
pub(crate) fn product(a: &Tensor, b: &Tensor) -> Option<Tensor> {
    if PACKED.with(|p| p.borrow().is_none()) {
        return None;
    }
    let (k, n) = (b.dim(0), *b.shape().get(1)?);
    let rows = a.numel() / k.max(1);
    let f32s = a.dtype() == DType::F32 && b.dtype() == DType::F32;
    if b.rank() != 2 || k == 0 || rows < 2 || !f32s || !a.is_contiguous() {
        return None;
    }
    let a_data = &a.cpu_data::<f32>()?[..a.numel()];
    let packed = packed(b)?;
    let mut out = vec![0.0f32; rows * n];
    let a_view = MatRef {
        ptr: a_data.as_ptr(),
        rs: k as isize,
        cs: 1,
    };
    let c = MatMut {
        ptr: out.as_mut_ptr(),
        rs: n as isize,
    };
    // SAFETY: `a_data` holds `rows x k` elements row after row and `out` `rows x n`; `out` is
    // ours alone; the packed panels are a separate buffer.
    unsafe { packed.multiply(a_view, rows, c) };
    let mut shape = a.shape()[..a.rank() - 1].to_vec();
    shape.push(n);
    Some(Tensor::from_vec(out, &shape))
}

/// The packed copy of `b (K, N)` (a CPU f32 tensor), made on first use.
fn packed(b: &Tensor) -> Option<Arc<PackedB>> {
    let key = Key {
        storage: Arc::as_ptr(b.storage_arc()) as usize,
        offset: b.layout().offset(),
        shape: b.shape().to_vec(),
        strides: b.strides().to_vec(),
    };
    if let Some(hit) = PACKED.with(|p| Some(p.borrow().as_ref()?.get(&key)?.packed.clone())) {
        return Some(hit);
    }
    let data = b.cpu_data::<f32>()?;
    let view = MatRef {
        ptr: data.as_ptr(),
        rs: b.strides()[0] as isize,
        cs: b.strides()[1] as isize,
    };
    let (k, n) = (b.dim(0), b.dim(1));
    // SAFETY: the layout fits the storage, so every `(p, j)`, `p < k`, `j < n`, is readable
    // at these strides; `best` runs on this CPU.
    let packed = Arc::new(unsafe { PackedB::new(kernel::best(), view, k, n) });
    PACKED.with(|p| {
        let entry = Entry {
            _source: b.clone(),
            packed: packed.clone(),
        };
        p.borrow_mut().as_mut().map(|m| m.insert(key, entry))
    });
    Some(packed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Rng};

    fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(
            (0..n).map(|_| rng.normal() as f32).collect::<Vec<f32>>(),
            shape,
        )
    }

    #[test]
    fn products_in_a_scope_are_bit_identical_and_reuse_the_packing() {
        let mut rng = Rng::new(5);
        let w = random(&[37, 20], &mut rng);
        let x = random(&[3, 5, 20], &mut rng);
        let outside = x.matmul(&w.t()).to_vec::<f32>();
        let (first, again, cached) = with_packed_weights(|| {
            let first = x.matmul(&w.t()).to_vec::<f32>();
            let again = x.matmul(&w.t()).to_vec::<f32>();
            let cached = PACKED.with(|p| p.borrow().as_ref().map(HashMap::len));
            (first, again, cached)
        });
        assert_eq!(first, outside);
        assert_eq!(again, outside);
        assert_eq!(cached, Some(1), "one weight packed once");
        assert!(PACKED.with(|p| p.borrow().is_none()), "the scope is closed");
    }

    #[test]
    fn a_packed_operand_cannot_change_inside_the_scope() {
        let mut rng = Rng::new(6);
        let mut w = random(&[4, 4], &mut rng);
        let x = random(&[2, 4], &mut rng);
        with_packed_weights(|| {
            x.matmul(&w);
            assert_eq!(w.fill_(0.0).unwrap_err(), Error::SharedStorage);
        });
        w.fill_(0.0).unwrap();
    }

    #[test]
    fn single_rows_and_other_dtypes_take_the_plain_path() {
        let x = Tensor::ones(&[1, 4], DType::F32);
        let w = Tensor::ones(&[4, 3], DType::F32);
        let x64 = Tensor::ones(&[2, 4], DType::F64);
        let w64 = Tensor::ones(&[4, 3], DType::F64);
        with_packed_weights(|| {
            assert!(product(&x, &w).is_none());
            assert!(product(&x64, &w64).is_none());
            assert_eq!(x.matmul(&w).to_vec::<f32>(), vec![4.0; 3]);
        });
    }
}
