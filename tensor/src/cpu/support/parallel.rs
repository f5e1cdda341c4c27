//! When and how kernels split work across threads.
//!
//! Small work stays on the calling thread: a rayon task costs about a microsecond, so a kernel
//! goes parallel only when each task gets at least [`MIN_TASK_WORK`] units of work (roughly
//! element-operations). Chunk boundaries depend only on the problem size and the thread count,
//! never on scheduling, so results are reproducible for a given thread count.
//!
//! The calling thread works on the chunks too ([`par_for_each`]), beside the helpers of the
//! kernels' own pool ([`super::pool`]), which spin between kernels instead of sleeping: a
//! thread wake-up costs as much as a whole 50-microsecond kernel, and a training step of a
//! small model runs hundreds of them.
//!
//! Kernels that return a new buffer build it with [`collect_chunks`], which never zero-fills
//! it: `vec![0.0; n]` costs a full extra write pass over the output, as much as a whole
//! elementwise op when the data sits in cache.

use std::mem::MaybeUninit;
use std::sync::{Mutex, PoisonError};

/// The least work (element-operations) worth handing to another thread.
pub const MIN_TASK_WORK: usize = 1 << 15;

/// Number of threads kernels may use (rayon's pool size, set by `RAYON_NUM_THREADS`).
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}

/// How many items to put in one task, for `items` items costing `work_per_item` each:
/// one contiguous task per thread, but none smaller than [`MIN_TASK_WORK`].
///
/// One task per thread beat four (taken first come, first served, for balance) by 15-25% on
/// elementwise ops of 1M elements, whose data sits in the last-level cache: each thread then
/// streams one range.
pub fn chunk_len(items: usize, work_per_item: usize) -> usize {
    let threads = num_threads();
    if threads <= 1 {
        return items.max(1);
    }
    let min_items = MIN_TASK_WORK.div_ceil(work_per_item.max(1));
    let balanced = items.div_ceil(threads);
    balanced.max(min_items).max(1)
}

/// Runs `f(first_item, chunk)` over chunks of `out`, where each item is `item_len` consecutive
/// elements costing `work_per_item`; in parallel when the work is large enough.
pub fn for_each_chunk<T: Send>(
    out: &mut [T],
    item_len: usize,
    work_per_item: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let item_len = item_len.max(1);
    let items = out.len() / item_len;
    let per_chunk = chunk_len(items, work_per_item);
    if per_chunk >= items {
        f(0, out);
        return;
    }
    par_for_each(
        out.chunks_mut(per_chunk * item_len).enumerate(),
        |(i, chunk)| f(i * per_chunk, chunk),
    );
}

/// Runs `f(item)` once for every item of `items`, on up to [`num_threads`] threads: the
/// calling thread and the kernel pool's helpers ([`super::pool`]) take items one at a time
/// until none are left.
///
/// A single item runs on the calling thread without taking the pool, so that work nested in
/// it (a large product inside a one-batch matmul) can still use every thread.
pub fn par_for_each<I: Iterator + Send>(mut items: I, f: impl Fn(I::Item) + Sync)
where
    I::Item: Send,
{
    let Some(first) = items.next() else {
        return;
    };
    let Some(second) = items.next() else {
        return f(first);
    };
    let items = Mutex::new([first, second].into_iter().chain(items));
    let next = || items.lock().unwrap_or_else(PoisonError::into_inner).next();
    let work = || {
        while let Some(item) = next() {
            f(item);
        }
    };
    if num_threads() <= 1 {
        return work();
    }
    super::pool::broadcast(&work);
}

/// A new vector of `len` elements, filled by `f(first_item, chunk)` over chunks of
/// uninitialized memory exactly as [`for_each_chunk`] splits them; nothing is written before
/// `f` runs.
///
/// # Safety
/// `f` must initialize every element of every chunk it is given (a panic in `f` is fine: the
/// buffer is then dropped unread).
pub unsafe fn collect_chunks<T: Send>(
    len: usize,
    item_len: usize,
    work_per_item: usize,
    f: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync + Send,
) -> Vec<T> {
    let mut out = Vec::with_capacity(len);
    for_each_chunk(
        &mut out.spare_capacity_mut()[..len],
        item_len,
        work_per_item,
        f,
    );
    // SAFETY: the chunks cover `0..len` and the caller's `f` initialized each one.
    unsafe { out.set_len(len) };
    out
}

/// [`collect_chunks`] for kernels with one more result per item (say a row's statistics):
/// `f(first_item, chunk, side_chunk)` also gets the chunk's items' elements of `side`, which
/// holds one element per item (`len` must be a whole number of items).
///
/// # Safety
/// As for [`collect_chunks`]: `f` must initialize every element of every chunk it is given.
pub unsafe fn collect_chunks_with<T: Send, S: Send>(
    len: usize,
    item_len: usize,
    work_per_item: usize,
    side: &mut [S],
    f: impl Fn(usize, &mut [MaybeUninit<T>], &mut [S]) + Sync + Send,
) -> Vec<T> {
    let item_len = item_len.max(1);
    let items = side.len();
    assert_eq!(
        items * item_len,
        len,
        "collect_chunks_with: one side element per item"
    );
    let mut out = Vec::with_capacity(len);
    let chunk = &mut out.spare_capacity_mut()[..len];
    let per_chunk = chunk_len(items, work_per_item);
    if per_chunk >= items {
        f(0, chunk, side);
    } else {
        par_for_each(
            chunk
                .chunks_mut(per_chunk * item_len)
                .zip(side.chunks_mut(per_chunk))
                .enumerate(),
            |(i, (c, s))| f(i * per_chunk, c, s),
        );
    }
    // SAFETY: the chunks cover `0..len` and the caller's `f` initialized each one.
    unsafe { out.set_len(len) };
    out
}

/// Runs `f(range)` over chunks of `0..items` (for kernels whose outputs are not one slice);
/// in parallel when the work is large enough.
pub fn for_each_range(
    items: usize,
    work_per_item: usize,
    f: impl Fn(std::ops::Range<usize>) + Sync + Send,
) {
    let per_chunk = chunk_len(items, work_per_item);
    if per_chunk >= items {
        f(0..items);
        return;
    }
    let chunks = items.div_ceil(per_chunk);
    par_for_each(0..chunks, |c| {
        f(c * per_chunk..((c + 1) * per_chunk).min(items))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_item_once() {
        let mut v = vec![0u32; 1_000_003];
        for_each_chunk(&mut v, 1, 1, |first, chunk| {
            for (i, x) in chunk.iter_mut().enumerate() {
                *x = (first + i) as u32;
            }
        });
        assert!(v.iter().enumerate().all(|(i, &x)| x as usize == i));
    }

    #[test]
    fn par_for_each_runs_every_item_once_inside_and_outside_the_pool() {
        let run = || {
            let hits: Vec<std::sync::atomic::AtomicU8> =
                (0..1000).map(|_| Default::default()).collect();
            par_for_each(hits.iter(), |h| {
                h.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
            hits.iter()
                .all(|h| h.load(std::sync::atomic::Ordering::Relaxed) == 1)
        };
        assert!(run());
        assert!(rayon::join(run, run) == (true, true));
    }

    #[test]
    fn collected_chunks_hold_what_f_wrote() {
        // SAFETY: the closure writes every element of its chunk.
        let v: Vec<u64> = unsafe {
            collect_chunks(1_000_003, 3, 1, |first, chunk| {
                for (i, x) in chunk.iter_mut().enumerate() {
                    x.write((first * 3 + i) as u64);
                }
            })
        };
        assert!(v.iter().enumerate().all(|(i, &x)| x as usize == i));
    }

    #[test]
    fn side_chunks_line_up_with_items() {
        let mut side = vec![0usize; 10_007];
        // SAFETY: the closure writes every element of its chunk.
        let v: Vec<usize> = unsafe {
            collect_chunks_with(10_007 * 5, 5, 1000, &mut side, |first, chunk, s| {
                for (i, x) in chunk.iter_mut().enumerate() {
                    x.write(first * 5 + i);
                }
                for (i, x) in s.iter_mut().enumerate() {
                    *x = first + i;
                }
            })
        };
        assert!(v.iter().enumerate().all(|(i, &x)| x == i));
        assert!(side.iter().enumerate().all(|(i, &x)| x == i));
    }

    #[test]
    fn ranges_cover_every_item_once() {
        let hits: Vec<std::sync::atomic::AtomicU8> =
            (0..100_001).map(|_| Default::default()).collect();
        for_each_range(hits.len(), 3, |r| {
            for i in r {
                hits[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        assert!(hits
            .iter()
            .all(|h| h.load(std::sync::atomic::Ordering::Relaxed) == 1));
    }
}
