//! The CUDA backend (cudarc 0.19, every library opened at run time). The only place cudarc is
//! named.
//!
//! Detection never panics: the driver and each library are probed with `is_culib_present()`
//! before the first call into them (cudarc panics on a call into a missing library), and each
//! absence becomes a sentence ([`CudaBackend::probe`]). One device is driven by one thread; its
//! context is created on, and bound to, that thread in [`Backend::open`].
//!
//! Work is ordered explicitly on the device's stream(s); cudarc's per-buffer event tracking is
//! turned off so that timed loops contain nothing but the measured operations.

/// Launch `function` on `stream` with the listed kernel arguments (references), e.g.
/// `launch_kernel!(&stream, f, config; &buffer, &count)`.
macro_rules! launch_kernel {
    ($stream:expr, $function:expr, $config:expr; $($arg:expr),* $(,)?) => {{
        let mut builder = $stream.launch_builder($function);
        $( builder.arg($arg); )*
        // SAFETY: every call site passes the argument list its kernel in kernels/*.cu declares
        // (types and order), with buffers at least as large as the counts it passes.
        unsafe { builder.launch($config) }
            .map(|_| ())
            .map_err($crate::backend::cuda::driver_err("kernel launch"))
    }};
}
mod gemm;
pub mod kernels;
pub mod libs;
mod memory;
mod stream;
mod transfer;

use crate::backend::{
    Backend, BackendKind, Component, Device, DeviceInfo, GemmWorkload, LaunchWorkload,
    StreamWorkload, Timed, TransferWorkload,
};
use crate::bench::gemm::{GemmDtype, GemmSpec};
use crate::bench::stream::StreamSpec;
use crate::bench::transfer::TransferSpec;
use crate::error::{Error, Result};
use cudarc::driver::sys::CUdevice_attribute as Attr;
use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaContext, CudaEvent, CudaFunction, CudaStream, DriverError, LaunchConfig};
use cudarc::nvrtc::Ptx;
use kernels::Target;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

pub(crate) const NAME: &str = "cuda";

pub(crate) fn driver_err(what: &str) -> impl Fn(DriverError) -> Error + '_ {
    move |e| Error::backend(NAME, format!("{what}: {e:?}"))
}

/// Device-side timing: two events with timing enabled, recorded on a stream around the work, so
/// a sample is GPU time and never includes host launch overhead or synchronisation.
pub(crate) struct EventTimer {
    pub(crate) start: CudaEvent,
    end: CudaEvent,
}

impl EventTimer {
    pub(crate) fn new(ctx: &Arc<CudaContext>) -> Result<EventTimer> {
        // `None` would create events with timing disabled; ask for timing explicitly.
        let event = || {
            ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(driver_err("new event"))
        };
        Ok(EventTimer {
            start: event()?,
            end: event()?,
        })
    }

    /// Mark the start of the timed work on `stream`.
    pub(crate) fn begin(&self, stream: &CudaStream) -> Result<()> {
        self.start
            .record(stream)
            .map_err(driver_err("record start"))
    }

    /// Mark the end on `stream` and wait for it; seconds between the marks. An asynchronous fault
    /// in the timed work surfaces here, named by `what`.
    pub(crate) fn finish(&self, stream: &CudaStream, what: &str) -> Result<f64> {
        self.end.record(stream).map_err(driver_err("record end"))?;
        let ms = self
            .start
            .elapsed_ms(&self.end)
            .map_err(driver_err(&format!("{what} (asynchronous error)")))?;
        Ok(ms as f64 / 1e3)
    }
}

/// The CUDA backend: the devices found and the libraries in use.
pub struct CudaBackend {
    devices: Vec<DeviceInfo>,
    components: Vec<Component>,
}

impl CudaBackend {
    /// Bring the backend up, or say in one sentence what is missing: no driver, no device, or a
    /// missing NVRTC/cuBLAS/cuBLASLt library.
    pub fn probe() -> std::result::Result<CudaBackend, String> {
        if let Some(why) = libs::missing_library() {
            return Err(why);
        }
        cudarc::driver::result::init()
            .map_err(|e| format!("the CUDA driver is installed but cuInit failed ({e:?})"))?;
        let count = CudaContext::device_count()
            .map_err(|e| format!("cannot count CUDA devices ({e:?})"))?;
        if count <= 0 {
            return Err("the CUDA driver found no device".into());
        }
        let driver_version = libs::driver_version().ok();
        let mut devices = Vec::new();
        for index in 0..count as usize {
            devices.push(describe(index, driver_version.clone())?);
        }
        Ok(CudaBackend {
            devices,
            components: libs::report(),
        })
    }
}

/// Identity and capabilities of device `index` (opens and releases its primary context).
fn describe(
    index: usize,
    driver_version: Option<String>,
) -> std::result::Result<DeviceInfo, String> {
    let ctx = CudaContext::new(index)
        .map_err(|e| format!("cannot create a context on device {index} ({e:?})"))?;
    let attr = |a: Attr| ctx.attribute(a).ok();
    let (major, minor) = ctx
        .compute_capability()
        .map_err(|e| format!("device {index}: no compute capability ({e:?})"))?;
    let pci_bus_id = match (
        attr(Attr::CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID),
        attr(Attr::CU_DEVICE_ATTRIBUTE_PCI_BUS_ID),
        attr(Attr::CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID),
    ) {
        (Some(d), Some(b), Some(v)) => Some(format!("{d:08x}:{b:02x}:{v:02x}.0")),
        _ => None,
    };
    Ok(DeviceInfo {
        index,
        name: ctx.name().unwrap_or_else(|_| "unknown NVIDIA GPU".into()),
        uuid: ctx.uuid().ok().map(|u| format_uuid(&u.bytes)),
        sku: None,
        compute_capability: Some(format!("{major}.{minor}")),
        sm_count: attr(Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT).map(|v| v as u32),
        memory_bytes: ctx.total_mem().map(|v| v as u64).unwrap_or(0),
        driver_version,
        pci_bus_id,
        threads: None,
        last_level_cache_bytes: attr(Attr::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE).map(|v| v as u64),
    })
}

/// `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as nvidia-smi prints it.
fn format_uuid(bytes: &[std::ffi::c_char; 16]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{:02x}", *b as u8)).collect();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        hex[0..4].concat(),
        hex[4..6].concat(),
        hex[6..8].concat(),
        hex[8..10].concat(),
        hex[10..16].concat()
    )
}

impl Backend for CudaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    fn components(&self) -> Vec<Component> {
        self.components.clone()
    }

    fn open(&self, index: usize) -> Result<Box<dyn Device>> {
        let info = self.devices.get(index).cloned().ok_or_else(|| {
            Error::Usage(format!(
                "CUDA device {index} does not exist ({} found)",
                self.devices.len()
            ))
        })?;
        Ok(Box::new(CudaDevice::open(info)?))
    }
}

/// The kernels of `kernels/`, loaded into one context, and how they were built.
pub(crate) struct Kernels {
    functions: HashMap<&'static str, CudaFunction>,
    /// "cubin sm_90 (NVRTC 13.0)" or "PTX compute_90, JIT by the driver (NVRTC 12.4)".
    pub path: String,
}

impl Kernels {
    pub fn get(&self, name: &str) -> Result<&CudaFunction> {
        self.functions.get(name).ok_or_else(|| {
            Error::backend(NAME, format!("kernel {name} is not loaded on this device"))
        })
    }
}

fn load_kernels(ctx: &Arc<CudaContext>, major: u32, minor: u32) -> Result<Kernels> {
    let env = |e: String| Error::Environment(e);
    let nvrtc = kernels::nvrtc_version().map_err(env)?;
    let supported = kernels::supported_archs().map_err(env)?;
    let preferred = kernels::target_for(major, minor, &supported).ok_or_else(|| {
        Error::Environment(format!(
            "NVRTC {}.{} cannot compile for sm_{major}{minor} or any older arch",
            nvrtc.0, nvrtc.1
        ))
    })?;
    // PTX for the same arch, in case the driver rejects the cubin.
    let fallback = Target::Ptx { major, minor };
    let xy = major * 10 + minor;
    let mut functions = HashMap::new();
    let mut used = preferred;
    for source in kernels::ALL {
        let mut errors = Vec::new();
        let mut module = None;
        for target in [preferred, fallback] {
            let compiled = match kernels::compile_cached(&source, target) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let image = if target.is_cubin() {
                Ptx::from_binary(compiled.image.to_vec())
            } else {
                Ptx::from_src(String::from_utf8_lossy(&compiled.image).into_owned())
            };
            match ctx.load_module(image) {
                Ok(m) => {
                    if !target.is_cubin() {
                        used = target;
                    }
                    module = Some(m);
                    break;
                }
                Err(e) => errors.push(format!(
                    "loading {} for {}: {e:?}",
                    source.name,
                    target.arch()
                )),
            }
        }
        let module = module.ok_or_else(|| {
            Error::Environment(format!(
                "kernels/{}.cu could not be built and loaded: {}",
                source.name,
                errors.join("; ")
            ))
        })?;
        for name in kernels::functions_for(&source, xy) {
            let f = module
                .load_function(name)
                .map_err(driver_err(&format!("kernel {name}")))?;
            functions.insert(name, f);
        }
    }
    let path = if used.is_cubin() {
        format!("cubin {} (NVRTC {}.{})", used.arch(), nvrtc.0, nvrtc.1)
    } else {
        format!(
            "PTX {}, JIT by the driver (NVRTC {}.{})",
            used.arch(),
            nvrtc.0,
            nvrtc.1
        )
    };
    Ok(Kernels { functions, path })
}

/// One GPU, opened on the thread that measures it.
pub struct CudaDevice {
    info: DeviceInfo,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    kernels: Kernels,
    compute_capability: (u32, u32),
    sm_count: u32,
}

impl CudaDevice {
    fn open(info: DeviceInfo) -> Result<CudaDevice> {
        let ctx = CudaContext::new(info.index).map_err(driver_err("cannot create a context"))?;
        ctx.bind_to_thread().map_err(driver_err("bind_to_thread"))?;
        // SAFETY: every workload orders its work on its own stream(s) and synchronises before
        // buffers are read on the host or freed; bidirectional copies join their two streams with
        // explicit events. Nothing relies on cudarc's automatic cross-stream events.
        unsafe { ctx.disable_event_tracking() };
        let (major, minor) = ctx
            .compute_capability()
            .map_err(driver_err("compute capability"))?;
        let compute_capability = (major.max(0) as u32, minor.max(0) as u32);
        let kernels = load_kernels(&ctx, compute_capability.0, compute_capability.1)?;
        let stream = ctx.new_stream().map_err(driver_err("new stream"))?;
        let sm_count = info.sm_count.unwrap_or(1).max(1);
        Ok(CudaDevice {
            info,
            ctx,
            stream,
            kernels,
            compute_capability,
            sm_count,
        })
    }

    /// Blocks for grid-stride kernels: enough resident threads to saturate memory.
    fn grid_blocks(&self) -> u32 {
        self.sm_count * 8
    }

    fn launch_config(&self, blocks: u32) -> LaunchConfig {
        LaunchConfig {
            grid_dim: (blocks.max(1), 1, 1),
            block_dim: (kernels::REDUCTION_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        }
    }
}

impl Device for CudaDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn gemm_dtypes(&self) -> Vec<GemmDtype> {
        let (major, minor) = self.compute_capability;
        let mut dtypes = vec![
            GemmDtype::Fp64,
            GemmDtype::Fp32,
            GemmDtype::Tf32,
            GemmDtype::Fp16,
            GemmDtype::Bf16,
        ];
        // FP8 tensor cores (and cuBLASLt's E4M3 kernels) start with Ada, sm_89.
        if major * 10 + minor >= 89 {
            dtypes.push(GemmDtype::Fp8E4m3);
        }
        dtypes
    }

    fn gemm(&mut self, spec: &GemmSpec, seed: u64) -> Result<Box<dyn GemmWorkload + '_>> {
        if !self.gemm_dtypes().contains(&spec.dtype) {
            return Err(Error::Unsupported(format!(
                "{} GEMM on sm_{}{}",
                spec.dtype, self.compute_capability.0, self.compute_capability.1
            )));
        }
        Ok(Box::new(gemm::CudaGemm::new(self, *spec, seed)?))
    }

    fn stream(&mut self, spec: &StreamSpec) -> Result<Box<dyn StreamWorkload + '_>> {
        Ok(Box::new(stream::CudaStreamBench::new(self, spec.elements)?))
    }

    fn free_memory_bytes(&self) -> Option<u64> {
        self.ctx.mem_get_info().ok().map(|(free, _)| free as u64)
    }

    fn transfer(&mut self, spec: &TransferSpec) -> Result<Box<dyn TransferWorkload + '_>> {
        Ok(Box::new(transfer::CudaTransfer::new(self, *spec)?))
    }

    fn launch(&mut self) -> Result<Box<dyn LaunchWorkload + '_>> {
        Ok(Box::new(EmptyLaunch {
            function: self.kernels.get("empty_kernel")?.clone(),
            stream: self.stream.clone(),
            path: self.kernels.path.clone(),
        }))
    }
}

struct EmptyLaunch {
    function: CudaFunction,
    stream: Arc<CudaStream>,
    path: String,
}

impl Timed for EmptyLaunch {
    fn run_timed(&mut self, iterations: u32) -> Result<f64> {
        let config = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (1, 1, 1),
            shared_mem_bytes: 0,
        };
        // Start from an idle stream so earlier work is not counted.
        self.stream
            .synchronize()
            .map_err(driver_err("synchronize"))?;
        let start = Instant::now();
        for _ in 0..iterations {
            let mut builder = self.stream.launch_builder(&self.function);
            // SAFETY: empty_kernel takes no arguments and touches no memory.
            unsafe { builder.launch(config) }.map_err(driver_err("launch empty_kernel"))?;
        }
        self.stream
            .synchronize()
            .map_err(driver_err("synchronize"))?;
        Ok(start.elapsed().as_secs_f64())
    }
}

impl LaunchWorkload for EmptyLaunch {
    fn implementation(&self) -> String {
        format!(
            "empty_kernel<<<1,1>>> launched back to back, host wall clock until the stream drains; {}",
            self.path
        )
    }
}

/// Explain why CUDA cannot be used here, for `gpuaudit info` and tests. `None` when it can.
pub fn unavailable_reason() -> Option<String> {
    CudaBackend::probe().err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_print_like_nvidia_smi() {
        let bytes: [std::ffi::c_char; 16] = std::array::from_fn(|i| i as std::ffi::c_char);
        assert_eq!(
            format_uuid(&bytes),
            "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f"
        );
    }

    /// On a machine without a driver (CI, this development machine), probing gives a clear reason
    /// and never panics.
    #[test]
    fn probing_without_a_driver_explains_and_does_not_panic() {
        if libs::driver_present() {
            eprintln!("skipped: a CUDA driver is present on this machine");
            return;
        }
        let why = CudaBackend::probe().err().expect("no driver, no backend");
        assert!(why.contains("no CUDA driver"), "{why}");
        let report = libs::report();
        assert!(
            report[0]
                .problem
                .as_deref()
                .is_some_and(|p| p.contains("no NVIDIA driver"))
        );
    }
}
