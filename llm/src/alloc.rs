//! Allocator settings for programs that train: the `llm` binary and the benchmarks that time
//! it. Training allocates and frees many large buffers each step; the system allocator hands
//! big freed blocks back to the kernel, which must zero fresh pages on the next allocation.
//! mimalloc, told to keep freed pages ([`keep_freed_pages`]), reuses them instead, which saves
//! about a tenth of a training step's time. A program opts in with
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
//!
//! fn main() {
//!     llm::alloc::keep_freed_pages();
//!     // ...
//! }
//! ```

/// Tells mimalloc never to return freed pages to the operating system: the same buffer sizes
/// come back every step, so the pages are reused instead of being zeroed again. Has no effect
/// unless mimalloc is the program's global allocator.
pub fn keep_freed_pages() {
    /// `mi_option_purge_delay` in mimalloc's `mi_option_t` (the binding does not name it; it
    /// comes right before `mi_option_use_numa_nodes`, which it does name).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_use_numa_nodes - 1;
    // SAFETY: `mi_option_set` only stores an option value; -1 ("never purge") is a valid value.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}
