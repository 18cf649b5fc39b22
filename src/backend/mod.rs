//! Backends: where benchmarks run. One narrow trait, one file (or folder) per implementation.
//!
//! A [`Backend`] lists the devices it can measure and opens each on the thread that will drive it.
//! A [`Device`] prepares workloads (allocates and fills operands); the benchmark families in
//! `crate::bench` decide what to run, check the answers and time them, written once for all
//! backends. Nothing here panics when hardware or libraries are missing: absence is data.

pub mod cpu;
pub mod cuda;
pub mod host_memory;

use crate::bench::gemm::{GemmDtype, GemmSpec, ProductAccess};
use crate::bench::stream::{StreamOp, StreamSpec};
use crate::bench::transfer::TransferSpec;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    Cpu,
    Cuda,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which backend the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// CUDA when a driver and a device are present, otherwise the CPU.
    Auto,
    Cuda,
    Cpu,
}

/// Identity and capabilities of one measured device, as published in the result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DeviceInfo {
    pub index: usize,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Datasheet SKU the device was matched to; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_capability: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_count: Option<u32>,
    pub memory_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    /// Threads the CPU backend runs on (logical cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Last-level cache (CPU) or L2 (GPU) size; STREAM arrays are sized from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_level_cache_bytes: Option<u64>,
}

/// A library or component a backend found (or failed to find), for `gpuaudit info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    /// Where it was loaded from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why it is unavailable, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;

    /// Devices this backend can measure, in index order.
    fn devices(&self) -> &[DeviceInfo];

    /// Libraries and components in use, with versions, for `info` and provenance.
    fn components(&self) -> Vec<Component>;

    /// Open device `index` for measuring. Called on the thread that will drive the device.
    fn open(&self, index: usize) -> Result<Box<dyn Device>>;
}

/// One device, opened for measuring. Methods allocate and fill operands; a family the device does
/// not offer returns [`Error::Unsupported`].
pub trait Device {
    fn info(&self) -> &DeviceInfo;

    /// Which GEMM dtypes this device can run (e.g. fp8 needs sm_89+).
    fn gemm_dtypes(&self) -> Vec<GemmDtype>;

    /// Allocate and fill the operands of one GEMM with the shared counter RNG (see
    /// `bench::gemm::operand_value`).
    fn gemm(&mut self, spec: &GemmSpec, seed: u64) -> Result<Box<dyn GemmWorkload + '_>>;

    /// Allocate and initialise the three STREAM arrays.
    fn stream(&mut self, spec: &StreamSpec) -> Result<Box<dyn StreamWorkload + '_>>;

    /// Device memory free right now, for sizing buffers; `None` when the backend cannot tell
    /// (host memory is sized by the backend itself).
    fn free_memory_bytes(&self) -> Option<u64> {
        None
    }

    /// Allocate and fill the buffers of one host↔device or device↔device copy.
    fn transfer(&mut self, spec: &TransferSpec) -> Result<Box<dyn TransferWorkload + '_>> {
        Err(Error::Unsupported(format!("transfer {}", spec.kind.name())))
    }

    /// Prepare back-to-back launches of an empty kernel.
    fn launch(&mut self) -> Result<Box<dyn LaunchWorkload + '_>> {
        Err(Error::Unsupported("kernel launch latency".into()))
    }
}

/// A prepared copy; [`Timed::run_timed`] runs it `iterations` times.
pub trait TransferWorkload: Timed {
    /// Copy engine path and memory kinds, e.g. "cuMemcpyHtoDAsync from pinned host memory".
    fn implementation(&self) -> String;

    /// Compare every destination byte with its source after the latest run; `None` when equal,
    /// else a description of the first difference.
    fn check(&mut self) -> Result<Option<String>>;
}

/// Back-to-back launches of an empty kernel; [`Timed::run_timed`] returns the elapsed seconds of
/// `iterations` launches.
pub trait LaunchWorkload: Timed {
    fn implementation(&self) -> String;
}

/// Something run back-to-back and timed with the backend's own clock (device events on CUDA, a
/// monotonic clock on the CPU).
pub trait Timed {
    /// Run the operation `iterations` times; return the elapsed seconds of the whole batch.
    fn run_timed(&mut self, iterations: u32) -> Result<f64>;
}

/// A prepared GEMM: C = A·B with A (m×k), B (k×n) as defined in `bench::gemm`. Read access to
/// the stored product ([`ProductAccess`]) serves the correctness check; it reads the C that the
/// latest run wrote.
pub trait GemmWorkload: Timed + ProductAccess {
    /// Library path and compute type, e.g. "matrixmultiply 0.3 f32 (2 threads, row bands)".
    fn implementation(&self) -> String;
}

/// Three arrays a, b, c of `StreamSpec::elements` f64 each.
pub trait StreamWorkload {
    fn implementation(&self) -> String;

    /// Run `op` `iterations` times; return elapsed seconds.
    fn run_timed(&mut self, op: StreamOp, iterations: u32) -> Result<f64>;

    /// Largest |x_i − expected| over each array, in order a, b, c.
    fn max_deviation(&mut self, expected: [f64; 3]) -> Result<[f64; 3]>;

    /// The value the latest dot product computed.
    fn last_dot(&mut self) -> Result<f64>;
}

/// The backend the user asked for, plus a sentence saying why it was chosen (printed at start and
/// kept in the result).
pub struct Selected {
    pub backend: Box<dyn Backend>,
    pub reason: String,
}

/// Pick a backend. `Auto` prefers CUDA and falls back to the CPU with the reason; an explicit
/// `Cuda` that cannot be had is an environment error (exit code 3).
pub fn select(choice: BackendChoice) -> Result<Selected> {
    match choice {
        BackendChoice::Cpu => Ok(Selected {
            backend: Box::new(cpu::CpuBackend::new()),
            reason: "CPU backend, as asked (--backend cpu)".into(),
        }),
        BackendChoice::Cuda => match probe_cuda() {
            Ok(backend) => Ok(Selected {
                reason: "CUDA backend, as asked (--backend cuda)".into(),
                backend,
            }),
            Err(why) => Err(Error::Environment(format!(
                "CUDA backend unavailable: {why}. Use --backend cpu to measure the CPU instead."
            ))),
        },
        BackendChoice::Auto => match probe_cuda() {
            Ok(backend) => Ok(Selected {
                reason: format!("CUDA backend: {} device(s) found", backend.devices().len()),
                backend,
            }),
            Err(why) => Ok(Selected {
                backend: Box::new(cpu::CpuBackend::new()),
                reason: format!("no usable CUDA ({why}); using the CPU backend"),
            }),
        },
    }
}

/// Try to bring up the CUDA backend; the error is a sentence saying what is missing.
fn probe_cuda() -> std::result::Result<Box<dyn Backend>, String> {
    cuda::CudaBackend::probe().map(|b| Box::new(b) as Box<dyn Backend>)
}
