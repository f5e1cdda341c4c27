//! Criterion benches of the tensor kernels: every case of `cases.rs`, with throughput in
//! GFLOP/s for products (criterion prints them as `Gelem/s`: one element is one flop) and in
//! GB/s for memory-bound kernels.
//!
//! `cargo bench --bench tensor_ops [-- FILTER]`; set `RAYON_NUM_THREADS` to fix the thread count.

mod cases;

use cases::Unit;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::time::Duration;

fn tensor_kernels(c: &mut Criterion) {
    for case in cases::all() {
        let mut group = c.benchmark_group(case.group);
        group.throughput(match case.unit {
            Unit::Flop => Throughput::Elements(case.work),
            Unit::Byte => Throughput::BytesDecimal(case.work),
        });
        // Flat sampling with few samples keeps the 0.1-1 s cases to seconds each.
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        let mut call = None;
        group.bench_function(&case.id, |b| {
            let call = call.get_or_insert_with(|| (case.setup)());
            b.iter(call)
        });
        group.finish();
    }
}

criterion_group!(benches, tensor_kernels);
criterion_main!(benches);
