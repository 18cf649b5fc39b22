//! Launch latency: microseconds per launch of an empty kernel (lower is better).
//!
//! The host enqueues launches back to back and the sample is the host's wall-clock time until the
//! stream has drained, divided by the launches: what a framework issuing many small kernels pays
//! per kernel. An empty kernel has no output, so the check is only that every launch succeeded.

use super::{BenchContext, Phase, finish, sample};
use crate::backend::Device;
use crate::error::Result;
use crate::result::{Measurement, Unit};
use std::time::Instant;

pub const VARIANT: &str = "empty_kernel";

pub fn run_launch(device: &mut dyn Device, ctx: &mut BenchContext<'_>) -> Result<Measurement> {
    let started = Instant::now();
    let label = "launch empty_kernel".to_string();
    (ctx.progress)(&label, Phase::Preparing);
    let device_index = device.info().index;
    let mut workload = device.launch()?;
    let mut m = Measurement::new(
        device_index,
        "launch",
        VARIANT,
        Unit::Us,
        vec![1],
        workload.implementation(),
        1.0,
    );
    (ctx.progress)(&label, Phase::Checking);
    workload.run_timed(1)?;
    let sampled = sample(
        Some((device_index, &m.metric)),
        &label,
        &mut |iterations| workload.run_timed(iterations),
        Unit::Us,
        1.0,
        ctx,
    )?;
    m.check =
        "empty kernel: no output; every launch and the final synchronisation succeeded".into();
    Ok(finish(m, Some(sampled), ctx.sampling.rule.level, started))
}
