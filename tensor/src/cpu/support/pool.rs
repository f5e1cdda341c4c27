//! The kernels' thread pool: `num_threads() - 1` helper threads that wait for work by spinning
//! before they sleep.
//!
//! A training step of a small model calls a few hundred parallel kernels, each lasting tens of
//! microseconds. Waking a sleeping thread costs about as much (measured: a two-item parallel
//! loop through rayon took 19 us back to back and 73 us after a 200 us pause, in a virtual
//! machine), so a pool whose threads sleep between kernels spends much of the step waking them.
//! Here a helper that finishes a job spins for [`SPIN`] watching for the next one, and only
//! then sleeps on a condition variable; a kernel that follows within that time starts on all
//! threads at once.
//!
//! One job runs at a time. A call made while the pool is busy (from another thread, or nested
//! inside a job) runs its work on the calling thread alone, so calls never wait for each other
//! and nesting cannot deadlock. Helpers join a job only while it is open: once the calling
//! thread has finished its own share it closes the job and waits only for helpers already
//! inside, never for one still waking up.

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Condvar, Mutex, OnceLock, TryLockError};
use std::time::{Duration, Instant};

/// The flag of `Pool::state` that lets helpers join the current job.
const OPEN: usize = 1 << (usize::BITS - 1);

/// How long an idle helper spins before it sleeps.
const SPIN: Duration = Duration::from_micros(300);

/// The work of one job: every thread calls it once.
type Work<'a> = &'a (dyn Fn() + Sync);

struct Pool {
    helpers: usize,
    /// Held by the caller for the whole of a job: one job at a time.
    busy: Mutex<()>,
    /// Counts jobs; helpers watch it for a change.
    epoch: AtomicU64,
    /// The current job, a `*const Work` into the caller's frame, valid while the job is open
    /// or helpers are inside it.
    job: AtomicPtr<()>,
    /// [`OPEN`] while helpers may join the current job, plus the number of helpers inside it.
    state: AtomicUsize,
    /// Whether a helper's work panicked during the current job.
    panicked: AtomicBool,
    /// Helpers asleep (or about to be) on `wake`.
    sleeping: AtomicUsize,
    sleep_lock: Mutex<()>,
    wake: Condvar,
}

thread_local! {
    /// True on the pool's helper threads.
    static IS_HELPER: Cell<bool> = const { Cell::new(false) };
}

/// The pool, started on first use with one helper fewer than [`super::parallel::num_threads`].
fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let helpers = super::parallel::num_threads().saturating_sub(1);
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            helpers,
            busy: Mutex::new(()),
            epoch: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            state: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleeping: AtomicUsize::new(0),
            sleep_lock: Mutex::new(()),
            wake: Condvar::new(),
        }));
        for i in 0..helpers {
            std::thread::Builder::new()
                .name(format!("tensor-pool-{i}"))
                .spawn(move || pool.helper_loop())
                .expect("cannot start a kernel thread");
        }
        pool
    })
}

impl Pool {
    fn helper_loop(&self) {
        IS_HELPER.with(|h| h.set(true));
        let mut seen = 0;
        loop {
            seen = self.wait_for_job(seen);
            if !self.join() {
                continue;
            }
            // SAFETY: this helper joined an open job, whose caller stored `job` before opening
            // it (release/acquire through `state`) and keeps the `Work` alive until no helper
            // is inside, which this one is until the `fetch_sub` below.
            let work: Work = unsafe { *(self.job.load(Acquire) as *const Work) };
            if catch_unwind(AssertUnwindSafe(work)).is_err() {
                self.panicked.store(true, Relaxed);
            }
            self.state.fetch_sub(1, Release);
        }
    }

    /// Enters the current job if it is still open.
    fn join(&self) -> bool {
        let mut s = self.state.load(Acquire);
        while s & OPEN != 0 {
            match self.state.compare_exchange_weak(s, s + 1, Acquire, Acquire) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    /// Waits until `epoch` differs from `seen` (spinning, then sleeping); returns it.
    fn wait_for_job(&self, seen: u64) -> u64 {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let epoch = self.epoch.load(Acquire);
            if epoch != seen {
                return epoch;
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                break;
            }
        }
        let mut guard = self.sleep_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.sleeping.fetch_add(1, SeqCst);
        while self.epoch.load(SeqCst) == seen {
            guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        self.sleeping.fetch_sub(1, SeqCst);
        self.epoch.load(Acquire)
    }
}

/// Runs `work` on the calling thread and on every helper that arrives before the calling
/// thread's call returns, then waits for the helpers inside; on the calling thread alone when
/// there are no helpers or the pool is busy. `work` must therefore do the whole job when called
/// once, sharing it with any other calls (as [`super::parallel::par_for_each`]'s item queue
/// does). A panic in any thread's `work` is raised again here, after every thread has left.
pub fn broadcast(work: Work) {
    if IS_HELPER.with(Cell::get) {
        return work();
    }
    let pool = pool();
    let _busy = match pool.busy.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => return work(),
    };
    if pool.helpers == 0 {
        return work();
    }
    pool.panicked.store(false, Relaxed);
    pool.job.store(&work as *const Work as *mut (), Relaxed);
    pool.state.store(OPEN, Release);
    pool.epoch.fetch_add(1, SeqCst);
    if pool.sleeping.load(SeqCst) > 0 {
        let _lock = pool.sleep_lock.lock().unwrap_or_else(|e| e.into_inner());
        pool.wake.notify_all();
    }
    let mine = catch_unwind(AssertUnwindSafe(work));
    // Helpers inside read `work` from this frame: close the job, then wait for them to leave.
    pool.state.fetch_and(!OPEN, AcqRel);
    while pool.state.load(Acquire) != 0 {
        std::hint::spin_loop();
    }
    if let Err(payload) = mine {
        resume_unwind(payload);
    }
    if pool.panicked.load(Relaxed) {
        panic!("a kernel thread panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::super::parallel::par_for_each;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    /// Runs `par_for_each` over `n` items and checks that each ran exactly once.
    fn every_item_once(n: usize) {
        let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        par_for_each(hits.iter(), |h| {
            h.fetch_add(1, Relaxed);
        });
        assert!(hits.iter().all(|h| h.load(Relaxed) == 1));
    }

    #[test]
    fn jobs_back_to_back_and_after_the_helpers_sleep() {
        for i in 0..2000 {
            every_item_once(1 + i % 7);
        }
        std::thread::sleep(super::SPIN * 4);
        every_item_once(1000);
    }

    #[test]
    fn nested_and_concurrent_calls_finish_and_cover_every_item() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    par_for_each(0..50, |_| {
                        par_for_each(0..10, |_| {
                            total.fetch_add(1, Relaxed);
                        });
                    });
                });
            }
        });
        assert_eq!(total.load(Relaxed), 4 * 50 * 10);
    }

    #[test]
    fn work_nested_in_a_single_item_still_gets_every_thread() {
        if super::super::parallel::num_threads() < 2 {
            return;
        }
        // Two inner items that each wait (up to a second) for the other to start: they meet
        // only if they run on two threads at once. Other tests may hold the pool for a
        // moment (then the inner loop runs alone, correctly), so a few attempts are allowed.
        let attempt = || {
            let started = AtomicUsize::new(0);
            let met = AtomicUsize::new(0);
            par_for_each(0..1, |_| {
                par_for_each(0..2, |_| {
                    started.fetch_add(1, Relaxed);
                    let t = std::time::Instant::now();
                    while started.load(Relaxed) < 2 && t.elapsed().as_millis() < 200 {
                        std::hint::spin_loop();
                    }
                    if started.load(Relaxed) == 2 {
                        met.fetch_add(1, Relaxed);
                    }
                });
            });
            met.load(Relaxed) == 2
        };
        assert!((0..20).any(|_| attempt()));
    }

    #[test]
    fn a_panic_in_a_job_reaches_the_caller_and_the_pool_keeps_working() {
        let result = std::panic::catch_unwind(|| {
            par_for_each(0..100, |i| {
                if i == 57 {
                    panic!("item 57");
                }
            });
        });
        assert!(result.is_err());
        every_item_once(1000);
    }
}
