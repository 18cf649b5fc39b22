//! The CPU backend: real GEMM (matrixmultiply's packed AVX2/FMA kernels) and real STREAM on every
//! core, timed with the monotonic clock. It audits CPU instances, and it lets every layer above the
//! backend run end to end on machines with no GPU.
//!
//! Threads: rayon's global pool, one thread per logical CPU. GEMM splits C into one band of rows
//! per thread (each thread runs matrixmultiply single-threaded on its band), which scales past the
//! 4 threads matrixmultiply's own threading caps itself at. STREAM splits arrays into one
//! contiguous chunk per thread, like OpenMP's static schedule in the reference STREAM.

use super::host_memory::{HostArray, ZeroIsValid};
use super::{
    Backend, BackendKind, Component, Device, DeviceInfo, GemmWorkload, StreamWorkload, Timed,
};
use crate::bench::gemm::{GemmDtype, GemmSpec, Operands, ProductAccess};
use crate::bench::stream::{SCALAR, START_VALUES, StreamOp, StreamSpec};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::time::Instant;

pub struct CpuBackend {
    devices: Vec<DeviceInfo>,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    pub fn new() -> Self {
        let host = crate::host::collect();
        CpuBackend {
            devices: vec![DeviceInfo {
                index: 0,
                name: host.cpu_model.clone(),
                memory_bytes: host.memory_bytes,
                threads: Some(rayon::current_num_threads()),
                last_level_cache_bytes: crate::host::last_level_cache_bytes(),
                ..DeviceInfo::default()
            }],
        }
    }
}

impl Backend for CpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    fn components(&self) -> Vec<Component> {
        vec![
            Component {
                name: "matrixmultiply (GEMM)".into(),
                path: None,
                version: Some("0.3".into()),
                problem: None,
            },
            Component {
                name: "rayon (threads)".into(),
                path: None,
                version: Some(format!("{} threads", rayon::current_num_threads())),
                problem: None,
            },
        ]
    }

    fn open(&self, index: usize) -> Result<Box<dyn Device>> {
        let info = self.devices.get(index).cloned().ok_or_else(|| {
            Error::Usage(format!("the CPU backend has one device (0), not {index}"))
        })?;
        Ok(Box::new(CpuDevice { info }))
    }
}

pub struct CpuDevice {
    info: DeviceInfo,
}

impl Device for CpuDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn gemm_dtypes(&self) -> Vec<GemmDtype> {
        vec![GemmDtype::Fp32, GemmDtype::Fp64]
    }

    fn gemm(&mut self, spec: &GemmSpec, seed: u64) -> Result<Box<dyn GemmWorkload + '_>> {
        let ops = Operands::new(*spec, seed);
        let GemmSpec { m, n, k, dtype } = *spec;
        match dtype {
            GemmDtype::Fp32 => Ok(Box::new(CpuGemm::<f32>::new(ops, m, n, k)?)),
            GemmDtype::Fp64 => Ok(Box::new(CpuGemm::<f64>::new(ops, m, n, k)?)),
            other => Err(Error::Unsupported(format!("{other} GEMM on the CPU"))),
        }
    }

    fn stream(&mut self, spec: &StreamSpec) -> Result<Box<dyn StreamWorkload + '_>> {
        Ok(Box::new(CpuStream::new(spec.elements)?))
    }
}

/// Element types the CPU GEMM runs, with their matrixmultiply entry points.
pub trait CpuFloat: ZeroIsValid + Default {
    const NAME: &'static str;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// Row-major C (m×n) = A (m×k) · B (k×n), single-threaded.
    fn gemm(m: usize, n: usize, k: usize, a: &[Self], b: &[Self], c: &mut [Self]);
}

/// Both impls differ only in the matrixmultiply entry point.
macro_rules! cpu_float {
    ($t:ty, $name:literal, $gemm:path) => {
        impl CpuFloat for $t {
            const NAME: &'static str = $name;
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn gemm(m: usize, n: usize, k: usize, a: &[$t], b: &[$t], c: &mut [$t]) {
                debug_assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
                // SAFETY: the slices hold m×k, k×n and m×n elements (callers slice them so,
                // asserted above); the strides describe dense row-major storage within them.
                unsafe {
                    $gemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            }
        }
    };
}

cpu_float!(f32, "f32", matrixmultiply::sgemm);
cpu_float!(f64, "f64", matrixmultiply::dgemm);

pub struct CpuGemm<T: CpuFloat> {
    m: usize,
    n: usize,
    k: usize,
    a: HostArray<T>,
    b: HostArray<T>,
    c: HostArray<T>,
}

impl<T: CpuFloat> CpuGemm<T> {
    fn new(ops: Operands, m: usize, n: usize, k: usize) -> Result<Self> {
        if m == 0 || n == 0 || k == 0 {
            return Err(Error::Usage(format!(
                "GEMM shape {m}×{n}×{k} has a zero dimension"
            )));
        }
        let mut a = HostArray::<T>::zeroed(m * k, "GEMM operand A")?;
        let mut b = HostArray::<T>::zeroed(k * n, "GEMM operand B")?;
        let c = HostArray::<T>::zeroed(m * n, "GEMM result C")?;
        a.par_chunks_mut(k).enumerate().for_each(|(i, row)| {
            row.iter_mut()
                .enumerate()
                .for_each(|(l, x)| *x = T::from_f64(ops.a(i, l)))
        });
        b.par_chunks_mut(n).enumerate().for_each(|(l, row)| {
            row.iter_mut()
                .enumerate()
                .for_each(|(j, x)| *x = T::from_f64(ops.b(l, j)))
        });
        Ok(CpuGemm { m, n, k, a, b, c })
    }

    fn multiply(&mut self) {
        let (n, k) = (self.n, self.k);
        let threads = rayon::current_num_threads().max(1);
        let band_rows = self.m.div_ceil(threads).max(1);
        let (a, b) = (&self.a, &self.b);
        self.c
            .par_chunks_mut(band_rows * n)
            .enumerate()
            .for_each(|(band, c_band)| {
                let rows = c_band.len() / n;
                let a_band = &a[band * band_rows * k..(band * band_rows + rows) * k];
                T::gemm(rows, n, k, a_band, b, c_band);
            });
    }
}

impl<T: CpuFloat> Timed for CpuGemm<T> {
    fn run_timed(&mut self, iterations: u32) -> Result<f64> {
        let start = Instant::now();
        for _ in 0..iterations {
            self.multiply();
        }
        Ok(start.elapsed().as_secs_f64())
    }
}

impl<T: CpuFloat> GemmWorkload for CpuGemm<T> {
    fn implementation(&self) -> String {
        format!(
            "matrixmultiply 0.3 {} ({} threads, row bands)",
            T::NAME,
            rayon::current_num_threads()
        )
    }
}

impl<T: CpuFloat> ProductAccess for CpuGemm<T> {
    fn product_times(&mut self, vectors: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        let n = self.n;
        Ok(vectors
            .iter()
            .map(|r| {
                self.c
                    .par_chunks(n)
                    .map(|row| row.iter().zip(r).map(|(c, r)| c.to_f64() * r).sum())
                    .collect()
            })
            .collect())
    }

    fn product_entries(&mut self, entries: &[(usize, usize)]) -> Result<Vec<f64>> {
        // An out-of-range entry reads as NaN, which the check reports as wrong.
        Ok(entries
            .iter()
            .map(|&(i, j)| match (i < self.m, self.c.get(i * self.n + j)) {
                (true, Some(x)) if j < self.n => x.to_f64(),
                _ => f64::NAN,
            })
            .collect())
    }
}

pub struct CpuStream {
    a: HostArray<f64>,
    b: HostArray<f64>,
    c: HostArray<f64>,
    chunk: usize,
    last_dot: f64,
}

impl CpuStream {
    fn new(elements: usize) -> Result<Self> {
        if elements == 0 {
            return Err(Error::Usage(
                "STREAM arrays need at least one element".into(),
            ));
        }
        let threads = rayon::current_num_threads().max(1);
        // One contiguous chunk per thread, rounded to a cache line of f64s.
        let chunk = elements.div_ceil(threads).div_ceil(8) * 8;
        let mut s = CpuStream {
            a: HostArray::zeroed(elements, "STREAM array a")?,
            b: HostArray::zeroed(elements, "STREAM array b")?,
            c: HostArray::zeroed(elements, "STREAM array c")?,
            chunk,
            last_dot: f64::NAN,
        };
        // First touch in parallel, with the same partition the kernels use, so on multi-socket
        // machines each thread's pages live on its own node.
        let [a0, b0, c0] = START_VALUES;
        s.a.par_chunks_mut(chunk).for_each(|x| x.fill(a0));
        s.b.par_chunks_mut(chunk).for_each(|x| x.fill(b0));
        s.c.par_chunks_mut(chunk).for_each(|x| x.fill(c0));
        Ok(s)
    }

    fn run_once(&mut self, op: StreamOp) {
        let cs = self.chunk;
        let (a, b, c) = (&mut self.a, &mut self.b, &mut self.c);
        match op {
            StreamOp::Copy => c
                .par_chunks_mut(cs)
                .zip(a.par_chunks(cs))
                .for_each(|(c, a)| c.copy_from_slice(a)),
            StreamOp::Scale => b
                .par_chunks_mut(cs)
                .zip(c.par_chunks(cs))
                .for_each(|(b, c)| b.iter_mut().zip(c).for_each(|(b, c)| *b = SCALAR * c)),
            StreamOp::Add => c
                .par_chunks_mut(cs)
                .zip(a.par_chunks(cs).zip(b.par_chunks(cs)))
                .for_each(|(c, (a, b))| {
                    c.iter_mut()
                        .zip(a.iter().zip(b))
                        .for_each(|(c, (a, b))| *c = a + b)
                }),
            StreamOp::Triad => a
                .par_chunks_mut(cs)
                .zip(b.par_chunks(cs).zip(c.par_chunks(cs)))
                .for_each(|(a, (b, c))| {
                    a.iter_mut()
                        .zip(b.iter().zip(c))
                        .for_each(|(a, (b, c))| *a = b + SCALAR * c)
                }),
            StreamOp::Dot => {
                self.last_dot = a
                    .par_chunks(cs)
                    .zip(b.par_chunks(cs))
                    .map(|(a, b)| dot_chunk(a, b))
                    .sum();
            }
        }
    }
}

/// Dot product with eight independent accumulators: a single running sum is one dependent add per
/// element, which would make dot latency-bound instead of memory-bound.
fn dot_chunk(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f64 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f64>() + tail
}

fn max_abs_deviation(x: &[f64], expected: f64) -> f64 {
    x.par_iter()
        .map(|v| {
            let d = (v - expected).abs();
            if d.is_nan() { f64::INFINITY } else { d }
        })
        .reduce(|| 0.0, f64::max)
}

impl StreamWorkload for CpuStream {
    fn implementation(&self) -> String {
        format!(
            "rust f64 ({} threads, static chunks)",
            rayon::current_num_threads()
        )
    }

    fn run_timed(&mut self, op: StreamOp, iterations: u32) -> Result<f64> {
        let start = Instant::now();
        for _ in 0..iterations {
            self.run_once(op);
        }
        Ok(start.elapsed().as_secs_f64())
    }

    fn max_deviation(&mut self, expected: [f64; 3]) -> Result<[f64; 3]> {
        Ok([
            max_abs_deviation(&self.a, expected[0]),
            max_abs_deviation(&self.b, expected[1]),
            max_abs_deviation(&self.c, expected[2]),
        ])
    }

    fn last_dot(&mut self) -> Result<f64> {
        Ok(self.last_dot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::gemm::verify;
    use crate::bench::stream::{ExpectedState, judge};

    #[test]
    fn gemm_matches_a_naive_product_on_odd_shapes() {
        for (m, n, k) in [(1, 1, 1), (17, 257, 3), (66, 65, 129)] {
            let spec = GemmSpec {
                dtype: GemmDtype::Fp64,
                m,
                n,
                k,
            };
            let ops = Operands::new(spec, 5);
            let mut g = CpuGemm::<f64>::new(ops, m, n, k).expect("small alloc");
            g.run_timed(1).expect("cpu gemm");
            for i in 0..m {
                for j in 0..n {
                    let naive: f64 = (0..k).map(|l| ops.a(i, l) * ops.b(l, j)).sum();
                    let got = g.c[i * n + j];
                    assert!(
                        (got - naive).abs() <= 1e-12 * (1.0 + naive.abs()),
                        "{i},{j}"
                    );
                }
            }
        }
    }

    #[test]
    fn gemm_products_pass_verification_at_both_dtypes() {
        let mut device = CpuDevice {
            info: DeviceInfo::default(),
        };
        for dtype in [GemmDtype::Fp32, GemmDtype::Fp64] {
            for size in [1, 31, 512] {
                let spec = GemmSpec::square(dtype, size);
                let mut w = device.gemm(&spec, 9).expect("alloc");
                w.run_timed(1).expect("run");
                let check = verify(spec, 9, 0, &mut *w).expect("check");
                assert!(check.passed, "{dtype} {size}: {}", check.describe());
            }
        }
    }

    #[test]
    fn gemm_verification_catches_a_corrupted_cpu_product() {
        let spec = GemmSpec::square(GemmDtype::Fp32, 256);
        let ops = Operands::new(spec, 3);
        let mut g = CpuGemm::<f32>::new(ops, 256, 256, 256).expect("alloc");
        g.run_timed(1).expect("run");
        g.c[100 * 256 + 7] *= 1.5;
        let check = verify(spec, 3, 0, &mut g).expect("check");
        assert!(!check.passed);
    }

    #[test]
    fn unsupported_dtypes_are_errors_not_panics() {
        let mut device = CpuDevice {
            info: DeviceInfo::default(),
        };
        let e = device
            .gemm(&GemmSpec::square(GemmDtype::Bf16, 8), 1)
            .err()
            .expect("bf16 is not offered on the CPU");
        assert!(matches!(e, Error::Unsupported(_)));
    }

    #[test]
    fn stream_kernels_compute_babelstream_values() {
        let n = 10_007; // odd, not a multiple of the chunk
        let mut s = CpuStream::new(n).expect("alloc");
        let mut expected = ExpectedState::default();
        for op in StreamOp::ALL {
            s.run_timed(op, 3).expect("run");
            expected.apply(op);
            let dev = s.max_deviation(expected.values).expect("check");
            let dot = (op == StreamOp::Dot).then_some((s.last_dot, n));
            let (_, problem) = judge(&expected, dev, dot);
            assert!(problem.is_none(), "{op:?}: {problem:?}");
        }
        // Corrupt one element: the check must see it.
        s.c[n - 1] += 1e-6;
        let dev = s.max_deviation(expected.values).expect("check");
        assert!(judge(&expected, dev, None).1.is_some());
    }

    #[test]
    fn dot_chunk_handles_tails() {
        let a: Vec<f64> = (0..13).map(|x| x as f64).collect();
        let b = vec![2.0; 13];
        assert_eq!(dot_chunk(&a, &b), 156.0);
        assert_eq!(dot_chunk(&[], &[]), 0.0);
    }
}
