//! CPU benchmarks: the CPU backend's kernels, the GEMM check, and the statistics code.
//! `cargo bench --bench cpu`. Speed targets (≥ 90% of numpy/OpenBLAS GEMM and of C STREAM triad)
//! are checked by `scripts/cpu-compare.sh`, which runs the peers on the same machine.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gpuaudit::backend::Backend;
use gpuaudit::backend::cpu::CpuBackend;
use gpuaudit::bench::gemm::{self, GemmDtype, GemmSpec};
use gpuaudit::bench::stream::{StreamOp, StreamSpec};
use gpuaudit::stats::{Summary, median_ci_bounds};
use std::hint::black_box;

fn gemm_kernels(c: &mut Criterion) {
    let backend = CpuBackend::new();
    let Ok(mut device) = backend.open(0) else {
        eprintln!("skipped: cannot open the CPU device");
        return;
    };
    let mut group = c.benchmark_group("cpu_gemm");
    group.sample_size(10);
    for (dtype, size) in [(GemmDtype::Fp32, 1024), (GemmDtype::Fp64, 1024)] {
        let spec = GemmSpec::square(dtype, size);
        let Ok(mut w) = device.gemm(&spec, 1) else {
            eprintln!("skipped: cannot allocate {dtype} {size}");
            continue;
        };
        group.throughput(Throughput::Elements(spec.flops() as u64));
        group.bench_function(BenchmarkId::new(dtype.name(), size), |b| {
            b.iter(|| w.run_timed(1))
        });
    }
    group.finish();
}

fn gemm_check(c: &mut Criterion) {
    let backend = CpuBackend::new();
    let Ok(mut device) = backend.open(0) else {
        return;
    };
    let spec = GemmSpec::square(GemmDtype::Fp32, 1024);
    let Ok(mut w) = device.gemm(&spec, 1) else {
        return;
    };
    if w.run_timed(1).is_err() {
        return;
    }
    c.bench_function("gemm_verify_1024", |b| {
        b.iter(|| gemm::verify(spec, 1, 0, &mut *w))
    });
}

fn stream_kernels(c: &mut Criterion) {
    let backend = CpuBackend::new();
    let Ok(mut device) = backend.open(0) else {
        return;
    };
    let spec = StreamSpec {
        elements: 16 << 20, // 128 MiB per array
    };
    let Ok(mut w) = device.stream(&spec) else {
        eprintln!("skipped: cannot allocate STREAM arrays");
        return;
    };
    let mut group = c.benchmark_group("cpu_stream");
    group.sample_size(20);
    for op in StreamOp::ALL {
        group.throughput(Throughput::Bytes(spec.bytes(op) as u64));
        group.bench_function(op.name(), |b| b.iter(|| w.run_timed(op, 1)));
    }
    group.finish();
}

fn statistics(c: &mut Criterion) {
    let samples: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 1000) as f64).collect();
    c.bench_function("summary_1000_samples", |b| {
        b.iter(|| Summary::of(black_box(&samples), 0.95))
    });
    c.bench_function("median_ci_bounds_n10000", |b| {
        b.iter(|| median_ci_bounds(black_box(10_000), 0.95))
    });
}

criterion_group!(
    benches,
    gemm_kernels,
    gemm_check,
    stream_kernels,
    statistics
);
criterion_main!(benches);
