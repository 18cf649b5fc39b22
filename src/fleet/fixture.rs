//! Synthetic result files for the fleet tests and the scale benchmark: valid
//! `gpuaudit.result/v1` JSON with chosen medians, built from the library's own types so they
//! cannot drift from the schema. Not measurements; never publish them as such.

use crate::backend::{BackendKind, DeviceInfo};
use crate::result::{HostInfo, Measurement, RunResult, RunSettings, SCHEMA, Tool, Unit};
use crate::stats::Summary;

/// One planted GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedGpu {
    pub uuid: String,
    /// (bench, variant, unit, median).
    pub values: Vec<(&'static str, &'static str, Unit, f64)>,
    /// A thermally throttled GPU: its measurements carry telemetry with thermal slowdown in 80%
    /// of samples at 91 °C, which the contract verdict attributes as the cause of a shortfall.
    pub throttled: bool,
}

/// Samples with the given median and a ±0.1% spread: odd count, symmetric, so the median is
/// exact and every 95% interval is far narrower than the gaps the tests plant.
pub fn samples_around(median: f64, n: usize) -> Vec<f64> {
    let n = n.max(1) | 1;
    let half = (n / 2) as f64;
    (0..n)
        .map(|i| median * (1.0 + 0.001 * (i as f64 - half) / half.max(1.0)))
        .collect()
}

/// A complete CUDA-backend result for `host` with `gpus` (H100 SXM by default name), as JSON.
pub fn gpu_result_json(
    host: &str,
    started_at: &str,
    sku: &str,
    gpus: &[PlantedGpu],
    samples: usize,
) -> String {
    let devices = gpus
        .iter()
        .enumerate()
        .map(|(i, g)| DeviceInfo {
            index: i,
            name: "NVIDIA H100 80GB HBM3".into(),
            uuid: Some(g.uuid.clone()),
            sku: Some(sku.into()),
            compute_capability: Some("9.0".into()),
            sm_count: Some(132),
            memory_bytes: 85_520_809_984,
            driver_version: Some("570.00".into()),
            pci_bus_id: Some(format!("0000:{:02x}:00.0", 0x18 + i)),
            threads: None,
            last_level_cache_bytes: Some(52_428_800),
        })
        .collect();
    let mut measurements = Vec::new();
    for (i, g) in gpus.iter().enumerate() {
        for &(bench, variant, unit, median) in &g.values {
            let mut m =
                Measurement::new(i, bench, variant, unit, vec![8192], "fixture".into(), 1.0);
            m.samples = samples_around(median, samples);
            m.summary = Summary::of(&m.samples, 0.95);
            m.iterations_per_sample = 1;
            m.check = "fixture".into();
            measurements.push(m);
        }
    }
    let result = RunResult {
        schema: SCHEMA.into(),
        tool: Tool::this(),
        complete: true,
        interrupted: false,
        started_at: started_at.into(),
        finished_at: Some(started_at.into()),
        command: vec!["gpuaudit".into(), "run".into()],
        settings: RunSettings {
            suite: "fixture".into(),
            precision: 0.01,
            confidence: 0.95,
            max_time_s: 1.0,
            seed: 1,
            benches: vec![],
        },
        host: HostInfo {
            hostname: host.into(),
            os: "linux".into(),
            kernel: "6".into(),
            cpu_model: "fixture".into(),
            cpu_cores: 2,
            physical_cores: None,
            memory_bytes: 1 << 30,
        },
        backend: BackendKind::Cuda,
        backend_reason: "fixture".into(),
        components: vec![],
        devices,
        measurements,
        skipped: vec![],
        errors: vec![],
        verdict: None,
        health: Vec::new(),
        findings: Vec::new(),
        sustained: None,
        provenance: None,
    };
    let mut value = match serde_json::to_value(&result) {
        Ok(v) => v,
        // Serialising our own plain structs cannot fail; keep the fixture total anyway.
        Err(e) => return format!("{{\"error\": \"{e}\"}}"),
    };
    if let Some(ms) = value.get_mut("measurements").and_then(|m| m.as_array_mut()) {
        for m in ms {
            let device = m.get("device").and_then(|d| d.as_u64()).unwrap_or(0) as usize;
            if gpus.get(device).is_some_and(|g| g.throttled) {
                let telemetry = crate::telemetry::TelemetrySummary {
                    source: "nvml".into(),
                    samples: 100,
                    max_temperature_c: Some(91.0),
                    reasons: vec![crate::telemetry::ReasonShare {
                        reason: crate::telemetry::ClockReason::SwThermalSlowdown,
                        share: 0.8,
                    }],
                    ..Default::default()
                };
                m["telemetry"] = serde_json::to_value(&telemetry).unwrap_or_default();
            }
        }
    }
    value.to_string()
}
