//! Telemetry: why a number is low, and whether it holds.
//!
//! A [`Sampler`] reads the device's clocks, power, energy, temperature and clock-event
//! (throttle) reasons; a [`Recorder`] polls one on its own thread (default every 100 ms) while
//! a benchmark runs, and [`summarize`] reduces the samples that fall inside a measurement's timed
//! region to a [`TelemetrySummary`] for the result. `health` snapshots ECC, PCIe and power-limit
//! state before and after a run; `attribution` ties a contract shortfall to what the telemetry
//! shows; `sustained` runs repeated windows and detects decay. Absence is data: a sampler that
//! cannot start yields a summary saying "unavailable: <why>", never a panic.

pub mod attribution;
pub mod health;
pub mod host;
pub mod nvml;
pub mod sustained;

use crate::result::Unit;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the recorder polls by default: fine enough to see a throttle event that lasts a
/// fraction of a second, coarse enough that polling NVML costs nothing measurable.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The sampler cannot run here at all (no driver, no readable counters).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// One reading failed; the next may succeed.
    #[error("reading failed: {0}")]
    Read(String),
}

/// Why clocks are below their maximum, as NVML's clock-event (throttle) reason bits say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockReason {
    GpuIdle,
    ApplicationsClocks,
    SwPowerCap,
    HwSlowdown,
    SyncBoost,
    SwThermalSlowdown,
    HwThermalSlowdown,
    HwPowerBrake,
    DisplayClocks,
}

impl ClockReason {
    pub fn name(self) -> &'static str {
        match self {
            ClockReason::GpuIdle => "gpu_idle",
            ClockReason::ApplicationsClocks => "applications_clocks",
            ClockReason::SwPowerCap => "sw_power_cap",
            ClockReason::HwSlowdown => "hw_slowdown",
            ClockReason::SyncBoost => "sync_boost",
            ClockReason::SwThermalSlowdown => "sw_thermal_slowdown",
            ClockReason::HwThermalSlowdown => "hw_thermal_slowdown",
            ClockReason::HwPowerBrake => "hw_power_brake",
            ClockReason::DisplayClocks => "display_clocks",
        }
    }
}

/// One reading. Every field is optional: a sampler fills what its source offers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the recorder started (scripted traces set it directly).
    pub t_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_clock_mhz: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_clock_mhz: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_w: Option<f64>,
    /// A monotonically increasing energy counter (NVML total energy, RAPL package energy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_j: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<ClockReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_util_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_util_pct: Option<f64>,
}

/// A source of readings for one device. `Send` so the recorder can poll it on its own thread.
pub trait Sampler: Send {
    /// What is read, e.g. "NVML 570.86 (GPU-…)" or "sysinfo CPU frequency; RAPL unavailable: …".
    fn source(&self) -> String;
    /// The clock the device is sold at (GPU base / default applications clock, CPU base
    /// frequency), when the source says; "clocks below base" is judged against it.
    fn base_sm_clock_mhz(&self) -> Option<f64> {
        None
    }
    fn sample(&mut self) -> Result<Sample, TelemetryError>;
}

/// One clock-event reason and the share of samples it was active in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonShare {
    pub reason: ClockReason,
    /// Fraction of samples (0–1) with this reason set.
    pub share: f64,
}

/// Telemetry over one measurement's timed samples, as published in the result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TelemetrySummary {
    pub source: String,
    /// "unavailable: <why>" when nothing could be read; the other fields are then absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    pub samples: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_sm_clock_mhz: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_sm_clock_mhz: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_sm_clock_mhz: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_mem_clock_mhz: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_temperature_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_power_w: Option<f64>,
    /// From the energy counter's difference when there is one, else mean power × duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_j: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_gpu_util_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<ReasonShare>,
    /// Median throughput per mean watt: TFLOPS/W for GEMM, GB/s per W for bandwidth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf_per_watt: Option<f64>,
    /// `tflops_per_w` or `gbps_per_w`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf_per_watt_unit: Option<String>,
}

impl TelemetrySummary {
    pub fn unavailable(source: &str, why: &str) -> TelemetrySummary {
        TelemetrySummary {
            source: source.into(),
            unavailable: Some(format!("unavailable: {why}")),
            ..TelemetrySummary::default()
        }
    }

    /// Share of samples (0–1) in which `reason` was set; 0 when never seen.
    pub fn share(&self, reason: ClockReason) -> f64 {
        self.reasons
            .iter()
            .find(|r| r.reason == reason)
            .map_or(0.0, |r| r.share)
    }

    /// Share of samples in which any of `reasons` was set (not the sum: one sample can carry
    /// several bits).
    pub fn any_share(&self, reasons: &[ClockReason]) -> f64 {
        reasons.iter().map(|&r| self.share(r)).fold(0.0, f64::max)
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Reduce `samples` to a summary. `median` (in `unit`) gives performance per watt.
pub fn summarize(
    source: &str,
    base_sm_clock_mhz: Option<f64>,
    samples: &[Sample],
    median: Option<f64>,
    unit: Unit,
) -> TelemetrySummary {
    if samples.is_empty() {
        return TelemetrySummary::unavailable(source, "no sample fell inside the timed region");
    }
    let sm: Vec<f64> = samples.iter().filter_map(|s| s.sm_clock_mhz).collect();
    let mean_power_w = mean(samples.iter().filter_map(|s| s.power_w));
    let counters: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| s.energy_j.map(|e| (s.t_s, e)))
        .collect();
    let span_s = samples.last().map_or(0.0, |l| l.t_s) - samples[0].t_s;
    let energy_j = match (counters.first(), counters.last()) {
        (Some(a), Some(b)) if counters.len() >= 2 && b.1 >= a.1 => Some(b.1 - a.1),
        _ => mean_power_w.map(|p| p * span_s).filter(|_| span_s > 0.0),
    };
    // Mean power from the counter when no instantaneous power is read (RAPL).
    let mean_power_w = mean_power_w.or_else(|| {
        let (a, b) = (counters.first()?, counters.last()?);
        (b.0 > a.0 && b.1 >= a.1).then(|| (b.1 - a.1) / (b.0 - a.0))
    });
    let mut reasons: Vec<ReasonShare> = Vec::new();
    let mut seen: Vec<ClockReason> = samples
        .iter()
        .flat_map(|s| s.reasons.iter().copied())
        .collect();
    seen.sort();
    seen.dedup();
    for reason in seen {
        let n = samples
            .iter()
            .filter(|s| s.reasons.contains(&reason))
            .count();
        reasons.push(ReasonShare {
            reason,
            share: n as f64 / samples.len() as f64,
        });
    }
    let (perf_per_watt, perf_per_watt_unit) = match (median, mean_power_w, unit) {
        (Some(m), Some(w), Unit::Tflops) if w > 0.0 => (Some(m / w), Some("tflops_per_w")),
        (Some(m), Some(w), Unit::Gbps) if w > 0.0 => (Some(m / w), Some("gbps_per_w")),
        _ => (None, None),
    };
    TelemetrySummary {
        source: source.into(),
        unavailable: None,
        samples: samples.len(),
        mean_sm_clock_mhz: mean(sm.iter().copied()),
        min_sm_clock_mhz: sm.iter().copied().reduce(f64::min),
        base_sm_clock_mhz,
        mean_mem_clock_mhz: mean(samples.iter().filter_map(|s| s.mem_clock_mhz)),
        max_temperature_c: samples
            .iter()
            .filter_map(|s| s.temperature_c)
            .reduce(f64::max),
        mean_power_w,
        energy_j,
        mean_gpu_util_pct: mean(samples.iter().filter_map(|s| s.gpu_util_pct)),
        reasons,
        perf_per_watt,
        perf_per_watt_unit: perf_per_watt_unit.map(String::from),
    }
}

/// A sampled reading with the instant it was taken, so a measurement can pick the readings
/// inside its own timed region.
#[derive(Debug, Clone)]
struct Stamped {
    at: Instant,
    sample: Sample,
}

/// Polls a [`Sampler`] on its own thread until stopped. The readings are shared so that a
/// measurement finished mid-run (one STREAM op of several) can be summarised at once.
pub struct Recorder {
    source: String,
    base_sm_clock_mhz: Option<f64>,
    stop: Arc<AtomicBool>,
    readings: Arc<Mutex<Vec<Stamped>>>,
    errors: Arc<Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<Box<dyn Sampler>>>,
}

impl Recorder {
    /// Start polling `sampler` every `interval`.
    pub fn start(mut sampler: Box<dyn Sampler>, interval: Duration) -> Recorder {
        let source = sampler.source();
        let base_sm_clock_mhz = sampler.base_sm_clock_mhz();
        let stop = Arc::new(AtomicBool::new(false));
        let readings = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(None));
        let (stop2, readings2, errors2) = (stop.clone(), readings.clone(), errors.clone());
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let at = Instant::now();
                match sampler.sample() {
                    Ok(mut sample) => {
                        sample.t_s = at.duration_since(started).as_secs_f64();
                        if let Ok(mut r) = readings2.lock() {
                            r.push(Stamped { at, sample });
                        }
                    }
                    Err(e) => {
                        if let Ok(mut slot) = errors2.lock() {
                            *slot = Some(e.to_string());
                        }
                    }
                }
                // Sleep in short steps so stop() returns promptly.
                let next = at + interval;
                while !stop2.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now >= next {
                        break;
                    }
                    std::thread::sleep((next - now).min(Duration::from_millis(20)));
                }
            }
            sampler
        });
        Recorder {
            source,
            base_sm_clock_mhz,
            stop,
            readings,
            errors,
            thread: Some(thread),
        }
    }

    /// Summary of the readings taken within `[from, to]`.
    pub fn summarize(
        &self,
        from: Instant,
        to: Instant,
        median: Option<f64>,
        unit: Unit,
    ) -> TelemetrySummary {
        let samples: Vec<Sample> = match self.readings.lock() {
            Ok(r) => r
                .iter()
                .filter(|s| s.at >= from && s.at <= to)
                .map(|s| s.sample.clone())
                .collect(),
            Err(_) => Vec::new(),
        };
        if samples.is_empty()
            && let Ok(Some(e)) = self.errors.lock().as_deref()
        {
            return TelemetrySummary::unavailable(&self.source, e);
        }
        summarize(&self.source, self.base_sm_clock_mhz, &samples, median, unit)
    }

    /// Stop polling and give the sampler back for the next benchmark.
    pub fn stop(mut self) -> Option<Box<dyn Sampler>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The sampler for one device of a backend: NVML joined by UUID for CUDA, the host sampler for
/// the CPU. The error says why none is available.
pub fn sampler_for(
    kind: crate::backend::BackendKind,
    device: &crate::backend::DeviceInfo,
) -> Result<Box<dyn Sampler>, TelemetryError> {
    match kind {
        crate::backend::BackendKind::Cpu => Ok(Box::new(host::HostSampler::new())),
        crate::backend::BackendKind::Cuda => {
            let uuid = device.uuid.as_deref().ok_or_else(|| {
                TelemetryError::Unavailable(
                    "the CUDA backend reported no UUID to join NVML on".into(),
                )
            })?;
            let nvml = nvml::open()?;
            Ok(Box::new(nvml::NvmlSampler::new(nvml, uuid)?))
        }
    }
}

/// A sampler that replays a recorded trace: the tests' stand-in for a GPU.
pub struct Scripted {
    pub trace: Vec<Sample>,
    pub next: usize,
    pub base_sm_clock_mhz: Option<f64>,
}

impl Sampler for Scripted {
    fn source(&self) -> String {
        "scripted trace".into()
    }
    fn base_sm_clock_mhz(&self) -> Option<f64> {
        self.base_sm_clock_mhz
    }
    fn sample(&mut self) -> Result<Sample, TelemetryError> {
        let s = self
            .trace
            .get(self.next)
            .or(self.trace.last())
            .cloned()
            .ok_or_else(|| TelemetryError::Read("empty trace".into()))?;
        self.next += 1;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(n: usize, f: impl Fn(usize) -> Sample) -> Vec<Sample> {
        (0..n).map(f).collect()
    }

    #[test]
    fn summary_takes_means_minimum_shares_and_energy_from_the_counter() {
        let t = trace(10, |i| Sample {
            t_s: i as f64 * 0.1,
            sm_clock_mhz: Some(if i < 5 { 1980.0 } else { 1500.0 }),
            power_w: Some(700.0),
            energy_j: Some(1000.0 + 70.0 * i as f64),
            temperature_c: Some(60.0 + i as f64),
            reasons: if i >= 5 {
                vec![ClockReason::SwPowerCap]
            } else {
                vec![]
            },
            ..Sample::default()
        });
        let s = summarize("t", Some(1590.0), &t, Some(700.0), Unit::Tflops);
        assert_eq!(s.samples, 10);
        assert_eq!(s.mean_sm_clock_mhz, Some(1740.0));
        assert_eq!(s.min_sm_clock_mhz, Some(1500.0));
        assert_eq!(s.max_temperature_c, Some(69.0));
        assert_eq!(s.energy_j, Some(630.0));
        assert_eq!(s.share(ClockReason::SwPowerCap), 0.5);
        assert_eq!(s.perf_per_watt, Some(1.0));
        assert_eq!(s.perf_per_watt_unit.as_deref(), Some("tflops_per_w"));
    }

    #[test]
    fn no_samples_is_unavailable_not_zero() {
        let s = summarize("t", None, &[], Some(1.0), Unit::Gbps);
        assert!(
            s.unavailable
                .as_deref()
                .is_some_and(|u| u.starts_with("unavailable: "))
        );
        assert_eq!(s.mean_power_w, None);
    }

    #[test]
    fn recorder_collects_readings_inside_a_window() {
        let sampler = Scripted {
            trace: vec![Sample {
                sm_clock_mhz: Some(1000.0),
                ..Sample::default()
            }],
            next: 0,
            base_sm_clock_mhz: None,
        };
        let from = Instant::now();
        let r = Recorder::start(Box::new(sampler), Duration::from_millis(5));
        std::thread::sleep(Duration::from_millis(60));
        let s = r.summarize(from, Instant::now(), None, Unit::Gbps);
        assert!(s.samples >= 3, "{s:?}");
        assert_eq!(s.mean_sm_clock_mhz, Some(1000.0));
        assert!(r.stop().is_some());
    }
}
