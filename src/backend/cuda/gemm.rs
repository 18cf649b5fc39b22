//! GEMM on a GPU: fp64 and strict fp32 through cuBLAS, tf32/fp16/bf16/fp8 through cuBLASLt with
//! fp32 accumulation, operands generated on the device by `kernels/init.cu`.
//!
//! **Layout.** `bench::gemm` defines row-major A (m×k), B (k×n), C (m×n). A row-major matrix is
//! the column-major transpose, so cuBLAS (column-major) is called as Cᵀ = Bᵀ·Aᵀ: first operand our
//! B (n×k column-major view, ld n), second our A (k×m, ld k), output Cᵀ (n×m, ld n), which is C
//! row-major. FP8 needs the first operand transposed (TRANSA = T, cuBLASLt's "TN" rule), so B is
//! generated transposed (column-major k×n, ld k): the same values, at other positions.
//!
//! **Rotation.** Several operand sets, each holding the same values at different addresses, are
//! used in turn so that no operand is still in L2 when it is used again (enough sets that their
//! total is ≥ 2× L2, at least two, as far as memory allows). The check reads the C written last.
//!
//! **Verification** runs on the device (`kernels/gemm_check.cu`): C·r per row in f64 and a gather
//! of sampled entries. Copying C back instead would move up to 512 MiB over PCIe and cost the
//! 2-core hosts seconds of O(n²) work per check; the kernel reads C once at memory speed.
//!
//! **Timing**: CUDA events around a batch of products on one stream.

use super::memory::{alloc, ensure_fits, free_bytes};
use super::{CudaDevice, EventTimer, NAME, driver_err};
use crate::backend::{GemmWorkload, Timed};
use crate::bench::gemm::{GemmDtype, GemmSpec, ProductAccess, STREAM_A, STREAM_B};
use crate::error::{Error, Result};
use cudarc::cublas::{result as cublas_result, sys as cublas_sys};
use cudarc::cublaslt::{result as lt_result, sys as lt_sys};
use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg};
use std::ffi::c_void;
use std::sync::Arc;

/// cuBLASLt workspace: NVIDIA recommends 32 MiB on Hopper and newer, 4 MiB before.
fn workspace_bytes(major: u32) -> usize {
    if major >= 9 { 32 << 20 } else { 4 << 20 }
}

/// Storage and library settings of one dtype.
struct Format {
    in_bytes: usize,
    out_bytes: usize,
    fill: &'static str,
    row_times: &'static str,
    gather: &'static str,
    /// Generate B transposed (FP8's TN requirement).
    b_transposed: bool,
}

fn format(dtype: GemmDtype) -> Format {
    let f = |in_bytes, out_bytes, fill, out: &'static str| Format {
        in_bytes,
        out_bytes,
        fill,
        row_times: match out {
            "f64" => "row_times_f64",
            "f32" => "row_times_f32",
            "f16" => "row_times_f16",
            _ => "row_times_bf16",
        },
        gather: match out {
            "f64" => "gather_f64",
            "f32" => "gather_f32",
            "f16" => "gather_f16",
            _ => "gather_bf16",
        },
        b_transposed: false,
    };
    match dtype {
        GemmDtype::Fp64 => f(8, 8, "fill_f64", "f64"),
        GemmDtype::Fp32 | GemmDtype::Tf32 => f(4, 4, "fill_f32", "f32"),
        GemmDtype::Fp16 => f(2, 2, "fill_f16", "f16"),
        GemmDtype::Bf16 => f(2, 2, "fill_bf16", "bf16"),
        GemmDtype::Fp8E4m3 => Format {
            b_transposed: true,
            ..f(1, 2, "fill_fp8_e4m3", "bf16")
        },
    }
}

/// What the result records as `implementation`.
pub fn implementation_name(dtype: GemmDtype) -> &'static str {
    match dtype {
        GemmDtype::Fp64 => "cuBLAS cublasDgemm: fp64 in / fp64 compute / fp64 out",
        GemmDtype::Fp32 => {
            "cuBLAS cublasSgemm, CUBLAS_DEFAULT_MATH (no TF32): fp32 in / fp32 compute / fp32 out"
        }
        GemmDtype::Tf32 => {
            "cuBLASLt: fp32 in / tf32 tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32) / fp32 out"
        }
        GemmDtype::Fp16 => "cuBLASLt: fp16 in / fp32 compute (CUBLAS_COMPUTE_32F) / fp16 out",
        GemmDtype::Bf16 => "cuBLASLt: bf16 in / fp32 compute (CUBLAS_COMPUTE_32F) / bf16 out",
        GemmDtype::Fp8E4m3 => {
            "cuBLASLt: fp8 e4m3 in (TN, unit scales) / fp32 compute (CUBLAS_COMPUTE_32F) / bf16 out"
        }
    }
}

struct OperandSet {
    a: CudaSlice<u8>,
    b: CudaSlice<u8>,
    c: CudaSlice<u8>,
}

enum Engine {
    Cublas {
        handle: cublas_sys::cublasHandle_t,
    },
    Lt {
        handle: lt_sys::cublasLtHandle_t,
        desc: lt_sys::cublasLtMatmulDesc_t,
        /// Layouts of the first operand (our B), second (our A), and C/D.
        layouts: [lt_sys::cublasLtMatrixLayout_t; 3],
        algo: lt_sys::cublasLtMatmulAlgo_t,
        workspace: CudaSlice<u8>,
    },
}

pub struct CudaGemm {
    spec: GemmSpec,
    stream: Arc<CudaStream>,
    sets: Vec<OperandSet>,
    next: usize,
    last: Option<usize>,
    engine: Engine,
    timer: EventTimer,
    row_times: CudaFunction,
    gather: CudaFunction,
    check_blocks: u32,
    kernel_path: String,
}

fn blas_err(what: &'static str) -> impl Fn(cublas_result::CublasError) -> Error {
    move |e| Error::backend(NAME, format!("{what}: {e:?}"))
}

fn lt_err(what: &'static str) -> impl Fn(lt_result::CublasError) -> Error {
    move |e| Error::backend(NAME, format!("{what}: {e:?}"))
}

impl CudaGemm {
    pub fn new(device: &CudaDevice, spec: GemmSpec, seed: u64) -> Result<CudaGemm> {
        let GemmSpec { m, n, k, dtype } = spec;
        if m == 0 || n == 0 || k == 0 {
            return Err(Error::Usage(format!(
                "GEMM shape {m}×{n}×{k} has a zero dimension"
            )));
        }
        let int_max = i32::MAX as usize;
        if m.max(n).max(k) > int_max || m * k > int_max * 64 {
            return Err(Error::Usage(format!("GEMM shape {m}×{n}×{k} is too large")));
        }
        let fmt = format(dtype);
        let stream = device.stream.clone();
        let (major, _) = device.compute_capability;

        // Sets: enough to cover 2× L2, at least two, as many as fit.
        let set_bytes = ((m * k + k * n) * fmt.in_bytes + m * n * fmt.out_bytes) as u64;
        let l2 = device.info.last_level_cache_bytes.unwrap_or(50 << 20);
        let wanted = (2 * l2).div_ceil(set_bytes).clamp(2, 64);
        let free = free_bytes(&device.ctx)?;
        let workspace = workspace_bytes(major) as u64;
        let fitting = (free.saturating_sub((free / 10).max(256 << 20) + workspace)) / set_bytes;
        let count = wanted.min(fitting).max(1);
        ensure_fits(
            count * set_bytes + workspace,
            free,
            &format!("{} GEMM {m}×{n}×{k} ({count} operand set(s))", dtype),
        )?;

        let fill = device.kernels.get(fmt.fill)?;
        let config = device.launch_config(device.grid_blocks());
        let mut sets = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let a = alloc::<u8>(&stream, m * k * fmt.in_bytes, "GEMM operand A")?;
            let b = alloc::<u8>(&stream, k * n * fmt.in_bytes, "GEMM operand B")?;
            let c = alloc::<u8>(&stream, m * n * fmt.out_bytes, "GEMM result C")?;
            for (buffer, rng_stream, rows, cols, transposed) in [
                (&a, STREAM_A, m, k, 0i32),
                (&b, STREAM_B, k, n, fmt.b_transposed as i32),
            ] {
                let count = (rows * cols) as u64;
                let (rows, cols) = (rows as u64, cols as u64);
                launch_kernel!(&stream, fill, config; buffer, &count, &seed, &rng_stream, &rows, &cols, &transposed)?;
            }
            sets.push(OperandSet { a, b, c });
        }
        let engine = Engine::new(&stream, spec, major)?;
        stream.synchronize().map_err(driver_err("operand fill"))?;
        Ok(CudaGemm {
            spec,
            sets,
            next: 0,
            last: None,
            engine,
            timer: EventTimer::new(&device.ctx)?,
            row_times: device.kernels.get(fmt.row_times)?.clone(),
            gather: device.kernels.get(fmt.gather)?.clone(),
            check_blocks: device.sm_count * 16,
            kernel_path: device.kernels.path.clone(),
            stream,
        })
    }

    /// Enqueue one product on the next operand set.
    fn enqueue(&mut self) -> Result<()> {
        let set = &self.sets[self.next];
        let (a, _ga) = set.a.device_ptr(&self.stream);
        let (b, _gb) = set.b.device_ptr(&self.stream);
        let (c, _gc) = set.c.device_ptr(&self.stream);
        let GemmSpec { m, n, k, dtype } = self.spec;
        let (m, n, k) = (m as i32, n as i32, k as i32);
        match &self.engine {
            Engine::Cublas { handle } => {
                use cublas_sys::cublasOperation_t::CUBLAS_OP_N as N;
                // SAFETY: the pointers are device buffers of m·k, k·n and m·n elements of the
                // dtype (allocated in `new`), live for this call; leading dimensions describe
                // dense column-major views of those buffers; alpha/beta point to host values
                // (default pointer mode).
                let status = unsafe {
                    if dtype == GemmDtype::Fp64 {
                        let (alpha, beta) = (1.0f64, 0.0f64);
                        cublas_sys::cublasDgemm_v2(
                            *handle,
                            N,
                            N,
                            n,
                            m,
                            k,
                            &alpha,
                            b as *const f64,
                            n,
                            a as *const f64,
                            k,
                            &beta,
                            c as *mut f64,
                            n,
                        )
                    } else {
                        let (alpha, beta) = (1.0f32, 0.0f32);
                        cublas_sys::cublasSgemm_v2(
                            *handle,
                            N,
                            N,
                            n,
                            m,
                            k,
                            &alpha,
                            b as *const f32,
                            n,
                            a as *const f32,
                            k,
                            &beta,
                            c as *mut f32,
                            n,
                        )
                    }
                };
                status.result().map_err(blas_err("cuBLAS gemm"))?;
            }
            Engine::Lt {
                handle,
                desc,
                layouts,
                algo,
                workspace,
            } => {
                let (ws, _gw) = workspace.device_ptr(&self.stream);
                let (alpha, beta) = (1.0f32, 0.0f32);
                // SAFETY: descriptor, layouts and algorithm were created for exactly these
                // buffers' types and shapes in `Engine::new`; the buffers and the workspace are
                // live device allocations of the sizes the layouts describe; C is also D
                // (beta = 0, so C is not read).
                unsafe {
                    lt_result::matmul(
                        *handle,
                        *desc,
                        (&alpha as *const f32).cast(),
                        (&beta as *const f32).cast(),
                        b as *const c_void,
                        layouts[0],
                        a as *const c_void,
                        layouts[1],
                        c as *const c_void,
                        layouts[2],
                        c as *mut c_void,
                        layouts[2],
                        algo,
                        ws as *mut c_void,
                        workspace.len(),
                        self.stream.cu_stream() as lt_sys::cudaStream_t,
                    )
                }
                .map_err(lt_err("cublasLtMatmul"))?;
            }
        }
        self.last = Some(self.next);
        self.next = (self.next + 1) % self.sets.len();
        Ok(())
    }

    fn last_c(&self) -> Result<&CudaSlice<u8>> {
        self.last
            .and_then(|i| self.sets.get(i))
            .map(|s| &s.c)
            .ok_or_else(|| Error::backend(NAME, "GEMM checked before it ran"))
    }
}

impl Engine {
    fn new(stream: &Arc<CudaStream>, spec: GemmSpec, major: u32) -> Result<Engine> {
        let GemmSpec { m, n, k, dtype } = spec;
        if matches!(dtype, GemmDtype::Fp64 | GemmDtype::Fp32) {
            let handle = cublas_result::create_handle().map_err(blas_err("cublasCreate"))?;
            let engine = Engine::Cublas { handle };
            // SAFETY: `handle` is live; the stream belongs to the current context.
            unsafe {
                cublas_result::set_stream(handle, stream.cu_stream() as cublas_sys::cudaStream_t)
            }
            .map_err(blas_err("cublasSetStream"))?;
            // Strict FP32: default math never uses TF32 tensor cores (verification would reject
            // a TF32-rounded product at fp32 tolerances anyway).
            // SAFETY: live handle.
            unsafe {
                cublas_sys::cublasSetMathMode(handle, cublas_sys::cublasMath_t::CUBLAS_DEFAULT_MATH)
            }
            .result()
            .map_err(blas_err("cublasSetMathMode"))?;
            return Ok(engine);
        }
        use lt_sys::cublasComputeType_t as Compute;
        use lt_sys::cudaDataType as Ty;
        let (input, output, compute) = match dtype {
            GemmDtype::Tf32 => (
                Ty::CUDA_R_32F,
                Ty::CUDA_R_32F,
                Compute::CUBLAS_COMPUTE_32F_FAST_TF32,
            ),
            GemmDtype::Fp16 => (Ty::CUDA_R_16F, Ty::CUDA_R_16F, Compute::CUBLAS_COMPUTE_32F),
            GemmDtype::Bf16 => (
                Ty::CUDA_R_16BF,
                Ty::CUDA_R_16BF,
                Compute::CUBLAS_COMPUTE_32F,
            ),
            _ => (
                Ty::CUDA_R_8F_E4M3,
                Ty::CUDA_R_16BF,
                Compute::CUBLAS_COMPUTE_32F,
            ),
        };
        let fp8 = dtype == GemmDtype::Fp8E4m3;
        let workspace = alloc::<u8>(stream, workspace_bytes(major), "cuBLASLt workspace")?;
        let handle = lt_result::create_handle().map_err(lt_err("cublasLtCreate"))?;
        // From here on, Drop releases whatever was created, even if a later step fails.
        let mut engine = Engine::Lt {
            handle,
            desc: std::ptr::null_mut(),
            layouts: [std::ptr::null_mut(); 3],
            // SAFETY: a plain-data struct of integers, filled by the heuristic below before use.
            algo: unsafe { std::mem::zeroed() },
            workspace,
        };
        let Engine::Lt {
            desc,
            layouts,
            algo,
            workspace,
            ..
        } = &mut engine
        else {
            unreachable!("constructed as Lt just above")
        };
        *desc = lt_result::create_matmul_desc(compute, Ty::CUDA_R_32F)
            .map_err(lt_err("cublasLtMatmulDescCreate"))?;
        if fp8 {
            let transpose: i32 = 1; // CUBLAS_OP_T
            // SAFETY: live descriptor; TRANSA takes a cublasOperation_t (int32).
            unsafe {
                lt_result::set_matmul_desc_attribute(
                    *desc,
                    lt_sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA,
                    (&transpose as *const i32).cast(),
                    std::mem::size_of::<i32>(),
                )
            }
            .map_err(lt_err("CUBLASLT_MATMUL_DESC_TRANSA"))?;
        }
        let (m, n, k) = (m as u64, n as u64, k as u64);
        // First operand (our B): stored n×k column-major (ld n), or for FP8 k×n (ld k) and
        // transposed by the descriptor.
        layouts[0] = if fp8 {
            lt_result::create_matrix_layout(input, k, n, k as i64)
        } else {
            lt_result::create_matrix_layout(input, n, k, n as i64)
        }
        .map_err(lt_err("layout of B"))?;
        layouts[1] = lt_result::create_matrix_layout(input, k, m, k as i64)
            .map_err(lt_err("layout of A"))?;
        layouts[2] = lt_result::create_matrix_layout(output, n, m, n as i64)
            .map_err(lt_err("layout of C"))?;
        let pref = lt_result::create_matmul_pref().map_err(lt_err("preference"))?;
        let size = workspace.len();
        // SAFETY: live preference; the attribute is a u64 (size_t) byte count.
        let heuristic = unsafe {
            lt_result::set_matmul_pref_attribute(
                pref,
                lt_sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                (&size as *const usize).cast(),
                std::mem::size_of::<usize>(),
            )
            .and_then(|_| {
                lt_result::get_matmul_algo_heuristic(
                    handle, *desc, layouts[0], layouts[1], layouts[2], layouts[2], pref,
                )
            })
        };
        // SAFETY: created above, destroyed once.
        let _ = unsafe { lt_result::destroy_matmul_pref(pref) };
        *algo = heuristic
            .map_err(|e| {
                Error::backend(
                    NAME,
                    format!("cuBLASLt has no algorithm for {dtype} {m}×{n}×{k}: {e:?}"),
                )
            })?
            .algo;
        Ok(engine)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: each handle/descriptor was created once by this engine and is destroyed once;
        // null ones (creation failed) are skipped. Errors at teardown cannot be acted on.
        unsafe {
            match self {
                Engine::Cublas { handle } => {
                    let _ = cublas_result::destroy_handle(*handle);
                }
                Engine::Lt {
                    handle,
                    desc,
                    layouts,
                    ..
                } => {
                    for layout in layouts.iter().filter(|l| !l.is_null()) {
                        let _ = lt_result::destroy_matrix_layout(*layout);
                    }
                    if !desc.is_null() {
                        let _ = lt_result::destroy_matmul_desc(*desc);
                    }
                    let _ = lt_result::destroy_handle(*handle);
                }
            }
        }
    }
}

impl Timed for CudaGemm {
    fn run_timed(&mut self, iterations: u32) -> Result<f64> {
        self.timer.begin(&self.stream)?;
        for _ in 0..iterations {
            self.enqueue()?;
        }
        self.timer.finish(&self.stream, "GEMM")
    }
}

impl GemmWorkload for CudaGemm {
    fn implementation(&self) -> String {
        format!(
            "{}; {} rotating operand set(s); checks on device ({})",
            implementation_name(self.spec.dtype),
            self.sets.len(),
            self.kernel_path
        )
    }
}

impl ProductAccess for CudaGemm {
    fn product_times(&mut self, vectors: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        let GemmSpec { m, n, .. } = self.spec;
        let c = self.last_c()?;
        let (m64, n64) = (m as u64, n as u64);
        let config = LaunchConfig {
            grid_dim: (self.check_blocks.min(m as u32).max(1), 1, 1),
            block_dim: (super::kernels::REDUCTION_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut out = Vec::with_capacity(vectors.len());
        for r in vectors {
            if r.len() != n {
                return Err(Error::backend(NAME, "Freivalds vector of the wrong length"));
            }
            let r_dev = self.stream.clone_htod(r).map_err(driver_err("copy r"))?;
            let z_dev = alloc::<f64>(&self.stream, m, "Freivalds result")?;
            launch_kernel!(&self.stream, &self.row_times, config; c, &m64, &n64, &r_dev, &z_dev)?;
            let z = self
                .stream
                .clone_dtoh(&z_dev)
                .map_err(driver_err("copy z"))?;
            self.stream.synchronize().map_err(driver_err("C·r"))?;
            out.push(z);
        }
        Ok(out)
    }

    fn product_entries(&mut self, entries: &[(usize, usize)]) -> Result<Vec<f64>> {
        let GemmSpec { m, n, .. } = self.spec;
        let c = self.last_c()?;
        // Out-of-range entries become an index past the end, which the kernel reads as NaN.
        let idx: Vec<u64> = entries
            .iter()
            .map(|&(i, j)| {
                if i < m && j < n {
                    (i * n + j) as u64
                } else {
                    u64::MAX
                }
            })
            .collect();
        if idx.is_empty() {
            return Ok(Vec::new());
        }
        let idx_dev = self
            .stream
            .clone_htod(&idx)
            .map_err(driver_err("copy indices"))?;
        let out_dev = alloc::<f64>(&self.stream, idx.len(), "sampled entries")?;
        let (len, count) = ((m * n) as u64, idx.len() as u64);
        let config = LaunchConfig {
            grid_dim: (
                (idx.len() as u32).div_ceil(super::kernels::REDUCTION_BLOCK),
                1,
                1,
            ),
            block_dim: (super::kernels::REDUCTION_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        launch_kernel!(&self.stream, &self.gather, config; c, &len, &idx_dev, &count, &out_dev)?;
        let out = self
            .stream
            .clone_dtoh(&out_dev)
            .map_err(driver_err("copy entries"))?;
        self.stream.synchronize().map_err(driver_err("gather"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_verification_model() {
        // The stored output format must be the one `GemmDtype::unit_roundoffs` assumes.
        for dtype in GemmDtype::ALL {
            let f = format(dtype);
            let (_, _, u_out) = dtype.unit_roundoffs();
            let expected_out_bytes = if u_out == 2f64.powi(-53) {
                8
            } else if u_out == 2f64.powi(-24) {
                4
            } else {
                2
            };
            assert_eq!(f.out_bytes, expected_out_bytes, "{dtype}");
            assert_eq!(f.b_transposed, dtype == GemmDtype::Fp8E4m3);
        }
        assert!(implementation_name(GemmDtype::Tf32).contains("FAST_TF32"));
        assert!(!implementation_name(GemmDtype::Fp32).contains("TF32 tensor"));
    }
}
