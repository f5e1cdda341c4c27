//! A caching device allocator, so a training step does not call the driver's allocator per op.
//!
//! Sizes are rounded up to a bucket (a multiple of 512 bytes below 1 MiB, of 2 MiB above), and
//! a dropped [`DeviceBuffer`] goes back to its bucket's free list instead of to the driver; the
//! next request of that bucket takes it. A training step allocates the same sizes every
//! step, so after the first step every request is served from the lists. When the driver
//! runs out of memory, the free lists are released and the request retried once.
//!
//! Reuse is safe because all work of a device runs on its one stream: a kernel that reads a
//! buffer is queued before the buffer is dropped, and any later user of the memory is queued
//! after it.

use crate::Result;
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The bucket that serves a request of `bytes`.
pub fn bucket(bytes: usize) -> usize {
    const SMALL: usize = 512;
    const LARGE: usize = 2 << 20;
    let bytes = bytes.max(1);
    if bytes < (1 << 20) {
        bytes.div_ceil(SMALL) * SMALL
    } else {
        bytes.div_ceil(LARGE) * LARGE
    }
}

/// Free lists of device memory, by bucket size.
#[derive(Debug)]
pub struct Pool {
    stream: Arc<CudaStream>,
    free: Mutex<HashMap<usize, Vec<CudaSlice<u8>>>>,
}

impl Pool {
    /// An empty pool allocating on `stream`.
    pub fn new(stream: Arc<CudaStream>) -> Arc<Pool> {
        Arc::new(Pool {
            stream,
            free: Mutex::new(HashMap::new()),
        })
    }

    /// A buffer of at least `bytes` bytes with unspecified contents.
    pub fn alloc(self: &Arc<Self>, bytes: usize) -> Result<DeviceBuffer> {
        let size = bucket(bytes);
        let cached = self.lists().get_mut(&size).and_then(Vec::pop);
        let slice = match cached {
            Some(s) => s,
            None => self.fresh(size)?,
        };
        let (ptr, _) = slice.device_ptr(&self.stream);
        Ok(DeviceBuffer {
            slice: Some(slice),
            ptr,
            bytes,
            pool: self.clone(),
        })
    }

    /// Bytes held in the free lists.
    pub fn cached_bytes(&self) -> usize {
        self.lists()
            .iter()
            .map(|(size, list)| size * list.len())
            .sum()
    }

    /// Returns all cached memory to the driver.
    pub fn release(&self) {
        self.lists().clear();
    }

    fn lists(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Vec<CudaSlice<u8>>>> {
        // A panic while holding the lock leaves the lists consistent (each change is a single
        // push, pop or clear), so a poisoned lock is still usable.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// New memory from the driver; on failure, releases the cache and tries once more.
    fn fresh(&self, size: usize) -> Result<CudaSlice<u8>> {
        // SAFETY: the memory is uninitialized bytes; every user writes before it reads
        // (kernels write whole outputs, uploads fill the buffer, zeroed buffers are memset).
        let first = unsafe { self.stream.alloc::<u8>(size) };
        first.or_else(|_| {
            self.release();
            self.stream
                .synchronize()
                .map_err(|e| format!("CUDA synchronize failed: {e}"))?;
            // SAFETY: as above.
            unsafe { self.stream.alloc::<u8>(size) }
                .map_err(|e| format!("CUDA could not allocate {size} bytes: {e}"))
        })
    }

    fn give_back(&self, slice: CudaSlice<u8>) {
        self.lists().entry(slice.len()).or_default().push(slice);
    }
}

/// Device memory from a [`Pool`], returned to it on drop.
#[derive(Debug)]
pub struct DeviceBuffer {
    slice: Option<CudaSlice<u8>>,
    ptr: u64,
    bytes: usize,
    pool: Arc<Pool>,
}

impl DeviceBuffer {
    /// The device address of the first byte, as kernels take it.
    pub fn ptr(&self) -> u64 {
        self.ptr
    }

    /// The size requested (the memory behind it may be larger).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The memory as a `cudarc` slice, for copies.
    pub fn slice(&self) -> &CudaSlice<u8> {
        self.slice.as_ref().expect("present until drop")
    }

    /// The memory as a mutable `cudarc` slice, for copies.
    pub fn slice_mut(&mut self) -> &mut CudaSlice<u8> {
        self.slice.as_mut().expect("present until drop")
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        if let Some(slice) = self.slice.take() {
            self.pool.give_back(slice);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn buckets_round_up() {
        assert_eq!(bucket(0), 512);
        assert_eq!(bucket(1), 512);
        assert_eq!(bucket(513), 1024);
        assert_eq!(bucket(1 << 20), 2 << 20);
        assert_eq!(bucket((2 << 20) + 1), 4 << 20);
    }
}
