//! Times every case of `benches/cases.rs` and prints one tab-separated line per case:
//! `name  unit  rate  median_seconds_per_call`. `run.sh` joins these lines with PyTorch's.
//!
//! Method (the same as `torch_ops.py`): one warm-up call, then batches of 1, 2, 4, ... calls
//! until a batch lasts at least [`SAMPLE_SECONDS`]; then [`SAMPLES`] batches of that size, and
//! the median of their times per call. Optional arguments are substrings; only cases
//! whose name contains one run.

#[path = "../cases.rs"]
mod cases;

/// The `llm` binary's allocator (freed pages kept), so that kernels are timed as they run there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cases::Unit;
use std::hint::black_box;
use std::time::Instant;

const SAMPLES: usize = 7;
const SAMPLE_SECONDS: f64 = 0.2;

/// Median seconds per call of `call`.
fn time_per_call(call: &mut cases::Call) -> f64 {
    let mut batch = |calls: usize| {
        let start = Instant::now();
        for _ in 0..calls {
            black_box(call());
        }
        start.elapsed().as_secs_f64()
    };
    batch(1);
    let mut calls = 1;
    while batch(calls) < SAMPLE_SECONDS {
        calls *= 2;
    }
    let mut samples: Vec<f64> = (0..SAMPLES).map(|_| batch(calls) / calls as f64).collect();
    samples.sort_by(f64::total_cmp);
    samples[SAMPLES / 2]
}

fn main() {
    llm::alloc::keep_freed_pages();
    // `cargo bench` passes `--bench`; everything else is a name filter.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for case in cases::all() {
        let name = format!("{}/{}", case.group, case.id);
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let mut call = (case.setup)();
        let seconds = time_per_call(&mut call);
        let rate = case.work as f64 / seconds / 1e9;
        let unit = match case.unit {
            Unit::Flop => "GFLOP/s",
            Unit::Byte => "GB/s",
        };
        println!("{name}\t{unit}\t{rate:.3}\t{seconds:.6e}");
    }
}
