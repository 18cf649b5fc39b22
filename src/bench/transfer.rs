//! Transfers: host↔device and device↔device copy bandwidth.
//!
//! Byte counting follows nvbandwidth and the field's convention: a copy of N bytes counts N bytes
//! (once per direction, not read plus write), GB = 1e9 bytes. The bidirectional test runs an H2D
//! and a D2H copy of N bytes each at the same time on two streams and counts 2·N. Sources hold
//! random data (never zeros, which some links compress), and every destination byte is compared
//! with its source before and after timing.

use super::{BenchContext, Phase, finish, sample};
use crate::backend::Device;
use crate::error::Result;
use crate::result::{Measurement, Unit};
use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// Host to device from pinned (page-locked) memory.
    H2d,
    /// Device to host into pinned memory that is not write-combined (the host reads it back).
    D2h,
    /// Device to device, within one GPU's memory.
    D2d,
    /// H2D and D2H at once, on two streams, both from/to pinned memory.
    Bidir,
    /// Host to device from ordinary pageable memory (staged by the driver).
    H2dPageable,
}

impl TransferKind {
    pub const ALL: [TransferKind; 5] = [
        TransferKind::H2d,
        TransferKind::D2h,
        TransferKind::D2d,
        TransferKind::Bidir,
        TransferKind::H2dPageable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TransferKind::H2d => "h2d",
            TransferKind::D2h => "d2h",
            TransferKind::D2d => "d2d",
            TransferKind::Bidir => "bidir",
            TransferKind::H2dPageable => "h2d_pageable",
        }
    }

    pub fn parse(name: &str) -> Option<TransferKind> {
        TransferKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferSpec {
    pub kind: TransferKind,
    /// Size of one copy (each direction, for bidir).
    pub bytes: u64,
}

impl TransferSpec {
    /// Bytes one run counts: the buffer once per direction.
    pub fn bytes_counted(&self) -> f64 {
        match self.kind {
            TransferKind::Bidir => 2.0 * self.bytes as f64,
            _ => self.bytes as f64,
        }
    }

    /// Device memory the copy needs (D2D holds two device buffers; bidir one per direction).
    pub fn device_bytes(&self) -> u64 {
        match self.kind {
            TransferKind::D2d | TransferKind::Bidir => 2 * self.bytes,
            _ => self.bytes,
        }
    }
}

/// Measure one transfer on `device`, in the honest order: prepare, copy once and compare,
/// sample, compare again.
pub fn run_transfer(
    device: &mut dyn Device,
    spec: TransferSpec,
    ctx: &mut BenchContext<'_>,
) -> Result<Measurement> {
    let started = Instant::now();
    let label = format!("transfer {} ({} MiB)", spec.kind.name(), spec.bytes >> 20);
    (ctx.progress)(&label, Phase::Preparing);
    let device_index = device.info().index;
    let mut workload = device.transfer(&spec)?;
    let mut m = Measurement::new(
        device_index,
        "transfer",
        spec.kind.name(),
        Unit::Gbps,
        vec![spec.bytes],
        workload.implementation(),
        spec.bytes_counted(),
    );
    (ctx.progress)(&label, Phase::Checking);
    workload.run_timed(1)?;
    if let Some(problem) = workload.check()? {
        m.correct = false;
        m.max_rel_error = f64::INFINITY;
        m.check = format!("before timing: {problem}");
        return Ok(finish(m, None, ctx.sampling.rule.level, started));
    }
    let sampled = sample(
        Some((device_index, &m.metric)),
        &label,
        &mut |iterations| workload.run_timed(iterations),
        Unit::Gbps,
        spec.bytes_counted(),
        ctx,
    )?;
    (ctx.progress)(&label, Phase::Checking);
    let problem = workload.check()?;
    m.correct = problem.is_none();
    m.check = match &problem {
        None => format!(
            "every destination byte equal to its source ({} B per direction), before and after timing",
            spec.bytes
        ),
        Some(p) => format!("after timing: {p}"),
    };
    if problem.is_some() {
        m.max_rel_error = f64::INFINITY;
    }
    let sampled = problem.is_none().then_some(sampled);
    Ok(finish(m, sampled, ctx.sampling.rule.level, started))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_counted_once_per_direction() {
        let one = TransferSpec {
            kind: TransferKind::H2d,
            bytes: 256 << 20,
        };
        assert_eq!(one.bytes_counted(), 268_435_456.0);
        let both = TransferSpec {
            kind: TransferKind::Bidir,
            ..one
        };
        assert_eq!(both.bytes_counted(), 2.0 * 268_435_456.0);
        let d2d = TransferSpec {
            kind: TransferKind::D2d,
            ..one
        };
        assert_eq!(d2d.bytes_counted(), 268_435_456.0);
        assert_eq!(d2d.device_bytes(), 2 * (256 << 20));
    }

    #[test]
    fn names_round_trip() {
        for k in TransferKind::ALL {
            assert_eq!(TransferKind::parse(k.name()), Some(k));
        }
    }
}
