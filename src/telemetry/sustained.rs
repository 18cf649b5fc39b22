//! Sustained mode (`run --duration`): repeated GEMM and STREAM windows for the whole duration,
//! a throughput time series with clocks, power and temperature per window, and decay detection.
//!
//! Decay rule: with n windows of one metric, k = min(3, ⌊n/3⌋) (at least 1 once n ≥ 2); the
//! median of the last k window medians is compared with the median of the first k. A drop of
//! more than [`DECAY_THRESHOLD`] (5%) is a `sustained_decay` finding. Medians of k windows, not
//! single windows, so one noisy window neither raises nor hides a decay.

use super::health::{Finding, FindingKind, Severity};
use super::{Recorder, Sampler, TelemetrySummary};
use crate::backend::Device;
use crate::bench::gemm::GemmSpec;
use crate::bench::stream::{StreamOp, StreamSpec};
use crate::bench::{self, BenchContext};
use crate::error::Result;
use crate::result::{Measurement, Unit};
use crate::stats::StopReason;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Relative drop of the last windows below the first that counts as decay.
pub const DECAY_THRESHOLD: f64 = 0.05;
/// Most windows compared at each end.
pub const DECAY_MAX_K: usize = 3;

/// Sampling budget per benchmark in a window: a twentieth of the duration, between 0.5 s and
/// 30 s, so even a short run has a series and a long one is not thousands of windows.
pub fn window_length(duration: Duration) -> Duration {
    (duration / 20).clamp(Duration::from_millis(500), Duration::from_secs(30))
}

/// One benchmark in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub device: usize,
    pub index: usize,
    pub metric: String,
    pub unit: Unit,
    /// Seconds from the start of sustained mode to the start of this window.
    pub started_s: f64,
    pub duration_s: f64,
    pub median: f64,
    pub ci: [f64; 2],
    pub n: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_sm_clock_mhz: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_power_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_temperature_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetrySummary>,
}

/// The outcome of the decay rule on one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decay {
    pub device: usize,
    pub metric: String,
    pub k: usize,
    pub first_median: f64,
    pub last_median: f64,
    /// 1 − last/first for throughput (positive: slower at the end).
    pub drop_fraction: f64,
    pub decayed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sustained {
    pub duration_s: f64,
    pub window_s: f64,
    pub decay_threshold: f64,
    pub windows: Vec<Window>,
    #[serde(default)]
    pub decay: Vec<Decay>,
}

/// The decay rule on one series (window medians in order). `None` with fewer than 2 windows.
/// Returns (k, first, last, drop fraction).
pub fn detect_decay(series: &[f64], higher_is_better: bool) -> Option<(usize, f64, f64, f64)> {
    let n = series.len();
    if n < 2 {
        return None;
    }
    let k = (n / 3).clamp(1, DECAY_MAX_K);
    let first = crate::stats::median(&series[..k]);
    let last = crate::stats::median(&series[n - k..]);
    if first <= 0.0 || last <= 0.0 {
        return None;
    }
    let drop = if higher_is_better {
        1.0 - last / first
    } else {
        1.0 - first / last
    };
    Some((k, first, last, drop))
}

/// Apply the decay rule to every (device, metric) series of `windows`.
pub fn decays(windows: &[Window], threshold: f64) -> Vec<Decay> {
    let mut keys: Vec<(usize, &str, Unit)> = windows
        .iter()
        .map(|w| (w.device, w.metric.as_str(), w.unit))
        .collect();
    keys.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    keys.dedup_by(|a, b| (a.0, a.1) == (b.0, b.1));
    keys.into_iter()
        .filter_map(|(device, metric, unit)| {
            let series: Vec<f64> = windows
                .iter()
                .filter(|w| w.device == device && w.metric == metric)
                .map(|w| w.median)
                .collect();
            let (k, first, last, drop) = detect_decay(&series, unit.higher_is_better())?;
            Some(Decay {
                device,
                metric: metric.into(),
                k,
                first_median: first,
                last_median: last,
                drop_fraction: drop,
                decayed: drop > threshold,
            })
        })
        .collect()
}

/// Findings for the decayed series.
pub fn decay_findings(decays: &[Decay]) -> Vec<Finding> {
    decays
        .iter()
        .filter(|d| d.decayed)
        .map(|d| Finding {
            device: Some(d.device),
            severity: Severity::Warning,
            kind: FindingKind::SustainedDecay,
            message: format!(
                "{}: the last {} window(s) deliver {:.1}% less than the first {} (median {:.4} vs {:.4})",
                d.metric,
                d.k,
                d.drop_fraction * 100.0,
                d.k,
                d.last_median,
                d.first_median
            ),
        })
        .collect()
}

/// What sustained mode runs on a device.
pub struct SustainedPlan {
    pub duration: Duration,
    pub window: Duration,
    pub gemm: Option<GemmSpec>,
    pub stream: Option<StreamSpec>,
}

/// A completed window from a measurement, with the recorder's telemetry over its timed samples.
fn window_of(
    m: &Measurement,
    index: usize,
    started: Instant,
    recorder: Option<&Recorder>,
) -> Option<Window> {
    let s = m.summary.as_ref()?;
    if !m.correct || m.stop_reason == Some(StopReason::Interrupted) {
        return None;
    }
    let (from, to) = m.timed_window?;
    let telemetry = recorder.map(|r| r.summarize(from, to, Some(s.median), m.unit));
    Some(Window {
        device: m.device,
        index,
        metric: m.metric.clone(),
        unit: m.unit,
        started_s: from.saturating_duration_since(started).as_secs_f64(),
        duration_s: to.saturating_duration_since(from).as_secs_f64(),
        median: s.median,
        ci: s.ci,
        n: s.n,
        mean_sm_clock_mhz: telemetry.as_ref().and_then(|t| t.mean_sm_clock_mhz),
        mean_power_w: telemetry.as_ref().and_then(|t| t.mean_power_w),
        max_temperature_c: telemetry.as_ref().and_then(|t| t.max_temperature_c),
        telemetry,
    })
}

/// Run windows until `plan.duration` has passed or `ctx.cancel` is set. Each completed window
/// goes to `emit` at once (the caller rewrites the result file), so an interrupt keeps every
/// completed window; a window cut short by the interrupt is dropped. A wrong answer in a window
/// is returned through `on_wrong` and ends the run on this device.
pub fn run_windows(
    device: &mut dyn Device,
    plan: &SustainedPlan,
    ctx: &mut BenchContext<'_>,
    mut sampler: Option<Box<dyn Sampler>>,
    emit: &mut dyn FnMut(Window),
    on_wrong: &mut dyn FnMut(Measurement),
) -> Result<()> {
    let started = Instant::now();
    ctx.sampling.rule.budget = plan.window;
    let mut index = 0;
    while started.elapsed() < plan.duration && !ctx.cancelled() {
        let recorder = sampler
            .take()
            .map(|s| Recorder::start(s, super::DEFAULT_INTERVAL));
        let mut measured = Vec::new();
        let outcome = (|| -> Result<()> {
            if let Some(spec) = plan.gemm {
                measured.push(bench::run_gemm(device, spec, ctx)?);
            }
            if let Some(spec) = plan.stream
                && !ctx.cancelled()
            {
                bench::run_stream(device, spec, &[StreamOp::Triad], ctx, &mut |m| {
                    measured.push(m)
                })?;
            }
            Ok(())
        })();
        let mut wrong = false;
        for m in measured {
            if !m.correct {
                wrong = true;
                on_wrong(m);
            } else if let Some(w) = window_of(&m, index, started, recorder.as_ref()) {
                emit(w);
            }
        }
        sampler = recorder.and_then(Recorder::stop);
        outcome?;
        if wrong {
            break;
        }
        index += 1;
        // The device is warm after the first window: warming up again would only hide the
        // steady state the series is meant to show.
        ctx.sampling.warmup = Duration::ZERO;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(series: &[f64]) -> Vec<Window> {
        series
            .iter()
            .enumerate()
            .map(|(i, &median)| Window {
                device: 0,
                index: i,
                metric: "gemm.bf16.tflops".into(),
                unit: Unit::Tflops,
                started_s: i as f64 * 60.0,
                duration_s: 60.0,
                median,
                ci: [median * 0.99, median * 1.01],
                n: 30,
                mean_sm_clock_mhz: None,
                mean_power_w: None,
                max_temperature_c: None,
                telemetry: None,
            })
            .collect()
    }

    #[test]
    fn a_decaying_series_is_found() {
        // Throughput falls 700 → 600 as the GPU heats up.
        let series: Vec<f64> = (0..12).map(|i| 700.0 - i as f64 * 9.0).collect();
        let d = decays(&windows(&series), DECAY_THRESHOLD);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].k, 3);
        assert!(d[0].decayed, "{d:?}");
        assert!((d[0].first_median - 691.0).abs() < 1e-9);
        let f = decay_findings(&d);
        assert_eq!(f[0].kind, FindingKind::SustainedDecay);
        assert!(
            f[0].message.contains("less than the first 3"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn flat_and_noisy_flat_series_are_not_decay() {
        let flat = vec![700.0; 10];
        assert!(!decays(&windows(&flat), DECAY_THRESHOLD)[0].decayed);
        // ±4% noise, including one very low window at the end: medians of 3 absorb it.
        let noisy = [
            700.0, 672.0, 728.0, 690.0, 715.0, 685.0, 705.0, 725.0, 600.0, 700.0,
        ];
        let d = decays(&windows(&noisy), DECAY_THRESHOLD);
        assert!(!d[0].decayed, "{d:?}");
        assert!(decay_findings(&d).is_empty());
    }

    #[test]
    fn too_few_windows_decide_nothing_and_latency_decay_is_mirrored() {
        assert_eq!(detect_decay(&[700.0], true), None);
        let (k, _, _, drop) = detect_decay(&[10.0, 12.0], false).expect("two windows");
        assert_eq!(k, 1);
        assert!(
            drop > 0.1,
            "latency rising from 10 to 12 µs is a decay: {drop}"
        );
    }

    #[test]
    fn window_length_scales_with_duration() {
        assert_eq!(
            window_length(Duration::from_secs(3)),
            Duration::from_millis(500)
        );
        assert_eq!(
            window_length(Duration::from_secs(600)),
            Duration::from_secs(30)
        );
        assert_eq!(
            window_length(Duration::from_secs(200)),
            Duration::from_secs(10)
        );
    }
}
