//! criterion benches of the GPU kernels and libraries, timed with CUDA events (`iter_custom`
//! returns the event-measured time of each batch). On a machine without a CUDA driver, device or
//! libraries, every group prints why it is skipped and the run succeeds.
//!
//! `cargo bench --bench gpu`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gpuaudit::backend::cuda::CudaBackend;
use gpuaudit::backend::{Backend, Device};
use gpuaudit::bench::gemm::{GemmDtype, GemmSpec};
use gpuaudit::bench::stream::{StreamOp, StreamSpec};
use std::time::Duration;

/// Device 0, or `None` after printing why there is none.
fn device() -> Option<Box<dyn Device>> {
    let backend = match CudaBackend::probe() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("gpu benches skipped: {why}");
            return None;
        }
    };
    match backend.open(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("gpu benches skipped: cannot open device 0: {e}");
            None
        }
    }
}

fn seconds(result: gpuaudit::Result<f64>) -> Duration {
    match result {
        Ok(s) => Duration::from_secs_f64(s),
        // criterion has no error path inside a timing closure; stop loudly rather than report a
        // time for work that failed.
        Err(e) => panic!("GPU operation failed: {e}"),
    }
}

fn gpu(c: &mut Criterion) {
    let Some(mut device) = device() else {
        return;
    };

    let mut launch = c.benchmark_group("gpu_launch");
    match device.launch() {
        Ok(mut w) => {
            launch.bench_function("empty_kernel", |b| {
                b.iter_custom(|iters| seconds(w.run_timed(iters as u32)))
            });
        }
        Err(e) => eprintln!("gpu_launch skipped: {e}"),
    }
    launch.finish();

    let spec = StreamSpec { elements: 1 << 26 };
    let mut stream = c.benchmark_group("gpu_stream");
    match device.stream(&spec) {
        Ok(mut w) => {
            for op in [StreamOp::Copy, StreamOp::Triad] {
                stream.throughput(Throughput::Bytes(spec.bytes(op) as u64));
                stream.bench_function(op.name(), |b| {
                    b.iter_custom(|iters| seconds(w.run_timed(op, iters as u32)))
                });
            }
        }
        Err(e) => eprintln!("gpu_stream skipped: {e}"),
    }
    stream.finish();

    let mut gemm = c.benchmark_group("gpu_gemm");
    gemm.sample_size(20);
    for dtype in [GemmDtype::Bf16, GemmDtype::Fp32] {
        let spec = GemmSpec::square(dtype, 4096);
        match device.gemm(&spec, 1) {
            Ok(mut w) => {
                gemm.throughput(Throughput::Elements(spec.flops() as u64));
                gemm.bench_function(format!("{dtype}_4096"), |b| {
                    b.iter_custom(|iters| seconds(w.run_timed(iters as u32)))
                });
            }
            Err(e) => eprintln!("gpu_gemm {dtype} skipped: {e}"),
        }
    }
    gemm.finish();
}

criterion_group!(benches, gpu);
criterion_main!(benches);
