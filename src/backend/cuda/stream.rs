//! STREAM on a GPU: BabelStream's kernels from `kernels/stream.cu`, timed with CUDA events.

use super::memory::{alloc, ensure_fits, free_bytes};
use super::{CudaDevice, EventTimer, driver_err};
use crate::backend::StreamWorkload;
use crate::bench::stream::{SCALAR, START_VALUES, StreamOp};
use crate::error::{Error, Result};
use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use std::collections::HashMap;
use std::sync::Arc;

pub struct CudaStreamBench {
    stream: Arc<CudaStream>,
    a: CudaSlice<f64>,
    b: CudaSlice<f64>,
    c: CudaSlice<f64>,
    /// Per-block partial sums of the latest dot.
    dot_partial: CudaSlice<f64>,
    /// Per-block partial maxima of the latest deviation check (apart, so a check never
    /// overwrites the dot being checked).
    dev_partial: CudaSlice<f64>,
    functions: HashMap<&'static str, CudaFunction>,
    config: LaunchConfig,
    blocks: u32,
    elements: usize,
    timer: EventTimer,
    path: String,
}

impl CudaStreamBench {
    pub fn new(device: &CudaDevice, elements: usize) -> Result<CudaStreamBench> {
        if elements == 0 {
            return Err(Error::Usage(
                "STREAM arrays need at least one element".into(),
            ));
        }
        let bytes = 3 * elements as u64 * 8;
        ensure_fits(bytes, free_bytes(&device.ctx)?, "STREAM arrays a, b, c")?;
        let stream = device.stream.clone();
        let blocks = device.grid_blocks();
        let config = device.launch_config(blocks);
        let mut functions = HashMap::new();
        for name in [
            "stream_fill",
            "stream_copy",
            "stream_scale",
            "stream_add",
            "stream_triad",
            "stream_dot",
            "stream_max_dev",
        ] {
            functions.insert(name, device.kernels.get(name)?.clone());
        }
        let s = CudaStreamBench {
            a: alloc(&stream, elements, "STREAM array a")?,
            b: alloc(&stream, elements, "STREAM array b")?,
            c: alloc(&stream, elements, "STREAM array c")?,
            dot_partial: alloc(&stream, blocks as usize, "dot partial sums")?,
            dev_partial: alloc(&stream, blocks as usize, "check partial maxima")?,
            functions,
            config,
            blocks,
            elements,
            timer: EventTimer::new(&device.ctx)?,
            path: device.kernels.path.clone(),
            stream,
        };
        let n = elements as u64;
        let fill = s.function("stream_fill")?;
        for (array, value) in [
            (&s.a, START_VALUES[0]),
            (&s.b, START_VALUES[1]),
            (&s.c, START_VALUES[2]),
        ] {
            launch_kernel!(&s.stream, fill, s.config; array, &value, &n)?;
        }
        s.stream.synchronize().map_err(driver_err("STREAM fill"))?;
        Ok(s)
    }

    fn function(&self, name: &str) -> Result<&CudaFunction> {
        self.functions
            .get(name)
            .ok_or_else(|| Error::backend(super::NAME, format!("{name} not loaded")))
    }

    fn enqueue(&self, op: StreamOp) -> Result<()> {
        let n = self.elements as u64;
        let s = SCALAR;
        let (a, b, c) = (&self.a, &self.b, &self.c);
        match op {
            StreamOp::Copy => {
                launch_kernel!(&self.stream, self.function("stream_copy")?, self.config; a, c, &n)
            }
            StreamOp::Scale => {
                launch_kernel!(&self.stream, self.function("stream_scale")?, self.config; b, c, &s, &n)
            }
            StreamOp::Add => {
                launch_kernel!(&self.stream, self.function("stream_add")?, self.config; a, b, c, &n)
            }
            StreamOp::Triad => {
                launch_kernel!(&self.stream, self.function("stream_triad")?, self.config; a, b, c, &s, &n)
            }
            StreamOp::Dot => {
                launch_kernel!(&self.stream, self.function("stream_dot")?, self.config; a, b, &self.dot_partial, &n)
            }
        }
    }
}

impl StreamWorkload for CudaStreamBench {
    fn implementation(&self) -> String {
        format!(
            "NVRTC kernels, 16-byte double2 grid-stride, {}×{} threads; {}",
            self.blocks,
            super::kernels::REDUCTION_BLOCK,
            self.path
        )
    }

    fn run_timed(&mut self, op: StreamOp, iterations: u32) -> Result<f64> {
        self.timer.begin(&self.stream)?;
        for _ in 0..iterations {
            self.enqueue(op)?;
        }
        self.timer.finish(&self.stream, "STREAM")
    }

    fn max_deviation(&mut self, expected: [f64; 3]) -> Result<[f64; 3]> {
        let n = self.elements as u64;
        let mut out = [0.0; 3];
        for (slot, (array, value)) in out
            .iter_mut()
            .zip([&self.a, &self.b, &self.c].into_iter().zip(expected))
        {
            launch_kernel!(&self.stream, self.function("stream_max_dev")?, self.config; array, &value, &self.dev_partial, &n)?;
            let partial = self
                .stream
                .clone_dtoh(&self.dev_partial)
                .map_err(driver_err("copy check partials"))?;
            self.stream.synchronize().map_err(driver_err("check"))?;
            *slot =
                partial.into_iter().fold(
                    0.0,
                    |w, d| {
                        if d.is_nan() { f64::INFINITY } else { w.max(d) }
                    },
                );
        }
        Ok(out)
    }

    fn last_dot(&mut self) -> Result<f64> {
        let partial = self
            .stream
            .clone_dtoh(&self.dot_partial)
            .map_err(driver_err("copy dot partials"))?;
        self.stream.synchronize().map_err(driver_err("dot"))?;
        Ok(partial.iter().sum())
    }
}
