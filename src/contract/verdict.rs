//! Judging a result against a contract: a pass / fail / inconclusive verdict per device and per
//! target at the contract's confidence, price-performance, and the shortfall in dollars.
//!
//! The rule (documented in `docs/contracts.md`): the median's distribution-free confidence
//! interval is recomputed from the raw samples at the contract's level. For a `min` target,
//! `pass` when the lower bound ≥ target, `fail` when the upper bound < target; mirrored for
//! `max`; anything else is `inconclusive`. Per-instance targets aggregate devices (sum of medians
//! for throughput, the worst device for latency) with each device's interval at the Bonferroni
//! level 1 − (1 − c)/k, so that by the union bound all k intervals, and hence the aggregate
//! interval, hold together with probability ≥ c.

use super::{Bound, Contract, Instance, OnInconclusive, Per, Target, TargetKind};
use crate::backend::BackendKind;
use crate::result::{Measurement, RunResult};
use crate::specs::{self, Detection};
use crate::stats::{median_ci_bounds, percentile_sorted};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Inconclusive,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Inconclusive => "inconclusive",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What was judged against: the contract's terms as read, and the derived prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractSummary {
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub provider: String,
    pub instance_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus_per_instance: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<u32>,
    pub usd_per_instance_hour: f64,
    /// A GPU's share of the instance price; the whole price for a CPU instance.
    pub usd_per_device_hour: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_as_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_source: Option<String>,
    pub confidence: f64,
    pub on_inconclusive: String,
    /// Hours of the term left when judged; absent when the contract states no term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term_remaining_hours: Option<f64>,
    pub judged_at: String,
}

/// Whether each device is the hardware the contract names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceVerdict {
    pub device: usize,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku_detected: Option<String>,
    pub status: Status,
    pub detail: String,
}

/// One target judged on one device (`per = "gpu"`) or on the instance (`device` absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetVerdict {
    /// As written in the contract.
    pub metric: String,
    /// The measurement it is computed from.
    pub measurement: String,
    pub unit: String,
    pub bound: Bound,
    pub target: f64,
    pub per: Per,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<usize>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median: Option<f64>,
    /// Interval of the (aggregate) median, in the target's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<[f64; 2]>,
    /// Coverage the interval actually has (≥ the contract's confidence when decided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_coverage: Option<f64>,
    pub n: usize,
    /// median / target for `min`, target / median for `max` (below 1: short of the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_fraction: Option<f64>,
    /// Pro-rata value of the missing fraction; absent for latency targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortfall_usd_per_hour: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortfall_usd_over_term: Option<f64>,
    pub reason: String,
    /// For a failed or inconclusive target: the causes the telemetry supports, with evidence
    /// (`crate::telemetry::attribution`); empty for a pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<crate::telemetry::attribution::Cause>,
}

/// Delivered price-performance of one device, whether or not a target asks for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricePerformance {
    pub device: usize,
    /// `usd_per_pflop_hour.<dtype>` or `usd_per_tbps_hour.<op>`.
    pub metric: String,
    pub median: f64,
    pub ci: [f64; 2],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub contract: ContractSummary,
    /// `fail` if any device or target failed, else `inconclusive` if any was undecided.
    pub overall: Status,
    /// Whether the run counts as delivering the contract, after `on_inconclusive`.
    pub accepted: bool,
    pub devices: Vec<DeviceVerdict>,
    pub targets: Vec<TargetVerdict>,
    pub price_performance: Vec<PricePerformance>,
    /// The largest per-instance shortfall over the targets (not their sum: one missing
    /// resource is not paid for twice).
    pub shortfall_usd_per_hour: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortfall_usd_over_term: Option<f64>,
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Median and its confidence interval from raw samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub median: f64,
    pub ci: [f64; 2],
    pub coverage: f64,
    pub n: usize,
}

impl Estimate {
    /// Order-statistic interval at `level` (see `stats`); `None` without usable samples.
    pub fn of(samples: &[f64], level: f64) -> Option<Estimate> {
        if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (lo, hi, coverage) = median_ci_bounds(sorted.len(), level);
        Some(Estimate {
            median: percentile_sorted(&sorted, 0.5),
            ci: [sorted[lo], sorted[hi]],
            coverage,
            n: sorted.len(),
        })
    }

    /// Through a strictly decreasing map (throughput → $ per unit-hour): bounds swap.
    fn map_decreasing(self, f: impl Fn(f64) -> f64) -> Estimate {
        Estimate {
            median: f(self.median),
            ci: [f(self.ci[1]), f(self.ci[0])],
            ..self
        }
    }
}

/// Decide one bound against a target. `level` is the confidence the interval must have.
pub fn decide(e: &Estimate, bound: Bound, target: f64, level: f64) -> (Status, String) {
    if e.coverage < level {
        return (
            Status::Inconclusive,
            format!(
                "{} samples give at most {:.1}% confidence; {:.1}% needs more",
                e.n,
                e.coverage * 100.0,
                level * 100.0
            ),
        );
    }
    let [lo, hi] = e.ci;
    match bound {
        Bound::Min if lo >= target => (Status::Pass, "interval at or above the target".into()),
        Bound::Min if hi < target => (Status::Fail, "interval entirely below the target".into()),
        Bound::Max if hi <= target => (Status::Pass, "interval at or below the target".into()),
        Bound::Max if lo > target => (Status::Fail, "interval entirely above the target".into()),
        _ => (
            Status::Inconclusive,
            "the target lies inside the interval; more samples may decide".into(),
        ),
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The measurement a target uses on a device: the last one of that metric.
fn measurement<'a>(result: &'a RunResult, device: usize, metric: &str) -> Option<&'a Measurement> {
    result
        .measurements
        .iter()
        .rfind(|m| m.device == device && m.metric == metric)
}

/// A device's estimate of `metric` at `level`, or the status and reason why there is none.
fn device_estimate(
    result: &RunResult,
    device: usize,
    metric: &str,
    level: f64,
) -> Result<Estimate, (Status, String)> {
    let m = measurement(result, device, metric)
        .ok_or_else(|| (Status::Inconclusive, format!("{metric} was not measured")))?;
    if !m.correct {
        return Err((
            Status::Fail,
            format!("WRONG RESULTS, timings discarded: {}", m.check),
        ));
    }
    Estimate::of(&m.samples, level)
        .ok_or_else(|| (Status::Inconclusive, "no timed samples".to_string()))
}

impl Contract {
    /// Judge one target on one device's samples: what `run` asks after each sample to decide
    /// whether sampling must continue.
    fn judge_device_samples(&self, target: &Target, samples: &[f64]) -> Status {
        match Estimate::of(samples, self.confidence) {
            None => Status::Inconclusive,
            Some(e) => {
                let e = self.to_target_unit(target, e, self.usd_per_device_hour());
                decide(&e, target.bound, target.value, self.confidence).0
            }
        }
    }

    /// True while some per-GPU target on `metric` is undecided at `samples`. Per-instance
    /// targets need every device and are judged at the end.
    pub fn undecided(&self, metric: &str, samples: &[f64]) -> bool {
        self.targets.iter().any(|t| {
            t.per == Per::Gpu
                && t.kind.source_metric() == metric
                && self.judge_device_samples(t, samples) == Status::Inconclusive
        })
    }

    /// Convert a throughput estimate into the target's unit (identity for measured metrics).
    fn to_target_unit(&self, target: &Target, e: Estimate, usd_per_hour: f64) -> Estimate {
        match target.kind {
            TargetKind::Measured { .. } => e,
            // $ per PFLOP-hour = $/h ÷ (TFLOPS / 1000); $ per TB/s-hour = $/h ÷ (GB/s / 1000).
            TargetKind::UsdPerPflopHour { .. } | TargetKind::UsdPerTbpsHour { .. } => {
                e.map_decreasing(|x| usd_per_hour / (x / 1000.0))
            }
        }
    }
}

impl crate::bench::Decision for Contract {
    fn undecided(&self, _device: usize, metric: &str, samples: &[f64]) -> bool {
        Contract::undecided(self, metric, samples)
    }
}

/// Delivered fraction and pro-rata shortfall ($/h) of an estimate against a target, when priced
/// at `usd_per_hour` (a GPU's share, or the instance).
fn shortfall(target: &Target, median: f64, usd_per_hour: f64) -> (Option<f64>, Option<f64>) {
    if median <= 0.0 {
        return (None, None);
    }
    let fraction = match target.bound {
        Bound::Min => median / target.value,
        Bound::Max => target.value / median,
    };
    let is_latency =
        matches!(&target.kind, TargetKind::Measured { metric } if metric.ends_with(".us"));
    let usd = if is_latency {
        None // a slow launch has no pro-rata dollar value
    } else {
        Some(usd_per_hour * (1.0 - fraction).max(0.0))
    };
    (Some(fraction), usd)
}

/// Judge `result` against `contract` at time `now` (for the term still to run).
pub fn judge(contract: &Contract, result: &RunResult, now: SystemTime) -> Verdict {
    let level = contract.confidence;
    let remaining = contract.term.remaining_hours(now);
    let device_price = contract.usd_per_device_hour();
    let mut notes = Vec::new();

    // Is each device the hardware that was bought?
    let devices: Vec<DeviceVerdict> = result
        .devices
        .iter()
        .map(|d| {
            let (sku_detected, status, detail) = match (&contract.instance, result.backend) {
                (Instance::Gpu { sku, .. }, BackendKind::Cuda) => {
                    let detected = match &d.sku {
                        Some(id) => specs::find(id).map(Detection::Known).unwrap_or_else(|| {
                            Detection::Unknown(format!("SKU \"{id}\" is not in the datasheet data"))
                        }),
                        None => specs::detect_device(d),
                    };
                    match detected {
                        Detection::Known(found) if found.id == sku.id => (
                            Some(found.id.clone()),
                            Status::Pass,
                            format!("is a {}", found.name),
                        ),
                        Detection::Known(found) => (
                            Some(found.id.clone()),
                            Status::Fail,
                            format!("is a {}, but the contract is for {}", found.name, sku.name),
                        ),
                        Detection::Unknown(why) => {
                            (None, Status::Inconclusive, format!("SKU unknown: {why}"))
                        }
                    }
                }
                (Instance::Gpu { sku, .. }, BackendKind::Cpu) => (
                    None,
                    Status::Fail,
                    format!(
                        "measured on the CPU backend; the contract is for {} GPUs",
                        sku.name
                    ),
                ),
                (Instance::Cpu { .. }, BackendKind::Cuda) => (
                    None,
                    Status::Fail,
                    "a GPU was measured; the contract is for a CPU instance".into(),
                ),
                (Instance::Cpu { .. }, BackendKind::Cpu) => (
                    None,
                    Status::Pass,
                    "CPU instance (no datasheet check for CPUs)".into(),
                ),
            };
            DeviceVerdict {
                device: d.index,
                name: d.name.clone(),
                sku_detected,
                status,
                detail,
            }
        })
        .collect();

    let device_indices: Vec<usize> = result.devices.iter().map(|d| d.index).collect();
    let complete_instance = match contract.devices_per_instance() {
        Some(want) if device_indices.len() < want => {
            notes.push(format!(
                "the result holds {} of the instance's {want} GPUs: per-instance targets cannot be decided, and the instance shortfall counts only the GPUs measured",
                device_indices.len()
            ));
            false
        }
        Some(want) if device_indices.len() > want => {
            notes.push(format!(
                "the result holds {} GPUs; the contract says {want} per instance",
                device_indices.len()
            ));
            true
        }
        _ => true,
    };

    let mut targets = Vec::new();
    // Per target: the instance's shortfall, for the overall figure.
    let mut instance_shortfalls = Vec::new();
    for t in &contract.targets {
        let base = |device: Option<usize>| TargetVerdict {
            metric: t.name.clone(),
            measurement: t.kind.source_metric().to_string(),
            unit: t.kind.unit_name().to_string(),
            bound: t.bound,
            target: t.value,
            per: t.per,
            device,
            status: Status::Inconclusive,
            median: None,
            ci: None,
            ci_coverage: None,
            n: 0,
            delivered_fraction: None,
            shortfall_usd_per_hour: None,
            shortfall_usd_over_term: None,
            reason: String::new(),
            causes: Vec::new(),
        };
        let fill = |mut v: TargetVerdict, e: Estimate, usd_per_hour: f64, level: f64| {
            let (status, reason) = decide(&e, t.bound, t.value, level);
            let (fraction, usd) = shortfall(t, e.median, usd_per_hour);
            v.status = status;
            v.reason = reason;
            v.median = Some(e.median);
            v.ci = Some(e.ci);
            v.ci_coverage = Some(e.coverage);
            v.n = e.n;
            v.delivered_fraction = fraction;
            v.shortfall_usd_per_hour = usd;
            v.shortfall_usd_over_term = usd.and_then(|u| remaining.map(|h| u * h));
            v
        };
        match t.per {
            Per::Gpu => {
                let mut sum = 0.0;
                for &d in &device_indices {
                    let v = match device_estimate(result, d, t.kind.source_metric(), level) {
                        Ok(e) => {
                            let e = contract.to_target_unit(t, e, device_price);
                            fill(base(Some(d)), e, device_price, level)
                        }
                        Err((status, reason)) => TargetVerdict {
                            status,
                            reason,
                            ..base(Some(d))
                        },
                    };
                    sum += v.shortfall_usd_per_hour.unwrap_or(0.0);
                    targets.push(v);
                }
                instance_shortfalls.push(sum);
            }
            Per::Instance => {
                let k = device_indices.len().max(1);
                let each_level = 1.0 - (1.0 - level) / k as f64;
                let estimates: Result<Vec<Estimate>, (Status, String)> = device_indices
                    .iter()
                    .map(|&d| device_estimate(result, d, t.kind.source_metric(), each_level))
                    .collect();
                let v = match estimates {
                    _ if !complete_instance => TargetVerdict {
                        reason: "not every GPU of the instance was measured".into(),
                        ..base(None)
                    },
                    Err((status, reason)) => TargetVerdict {
                        status,
                        reason,
                        ..base(None)
                    },
                    Ok(es) if es.is_empty() => TargetVerdict {
                        reason: "no devices measured".into(),
                        ..base(None)
                    },
                    Ok(es) => {
                        let latency = t.kind.source_metric().ends_with(".us");
                        let combine =
                            |f: fn(f64, f64) -> f64, get: &dyn Fn(&Estimate) -> f64, init: f64| {
                                es.iter().map(get).fold(init, f)
                            };
                        let (op, init): (fn(f64, f64) -> f64, f64) = if latency {
                            (f64::max, f64::NEG_INFINITY)
                        } else {
                            (|a, b| a + b, 0.0)
                        };
                        let agg = Estimate {
                            median: combine(op, &|e| e.median, init),
                            ci: [
                                combine(op, &|e| e.ci[0], init),
                                combine(op, &|e| e.ci[1], init),
                            ],
                            // Union bound over the k intervals.
                            coverage: (1.0 - es.iter().map(|e| 1.0 - e.coverage).sum::<f64>())
                                .max(0.0),
                            n: es.iter().map(|e| e.n).min().unwrap_or(0),
                        };
                        let price = contract.usd_per_instance_hour;
                        let agg = contract.to_target_unit(t, agg, price);
                        fill(base(None), agg, price, level)
                    }
                };
                instance_shortfalls.push(v.shortfall_usd_per_hour.unwrap_or(0.0));
                targets.push(v);
            }
        }
    }

    // Delivered price-performance of every GEMM and STREAM measurement.
    let mut price_performance = Vec::new();
    for m in &result.measurements {
        let name = match m.bench.as_str() {
            "gemm" => format!("usd_per_pflop_hour.{}", m.variant),
            "stream" => format!("usd_per_tbps_hour.{}", m.variant),
            _ => continue,
        };
        if !m.correct {
            continue;
        }
        if let Some(e) = Estimate::of(&m.samples, level) {
            let e = e.map_decreasing(|x| device_price / (x / 1000.0));
            price_performance.push(PricePerformance {
                device: m.device,
                metric: name,
                median: e.median,
                ci: e.ci,
            });
        }
    }

    let statuses = devices
        .iter()
        .map(|d| d.status)
        .chain(targets.iter().map(|t| t.status));
    let overall = statuses.fold(Status::Pass, |acc, s| match (acc, s) {
        (Status::Fail, _) | (_, Status::Fail) => Status::Fail,
        (Status::Inconclusive, _) | (_, Status::Inconclusive) => Status::Inconclusive,
        _ => Status::Pass,
    });
    let accepted = match overall {
        Status::Pass => true,
        Status::Fail => false,
        Status::Inconclusive => contract.on_inconclusive == OnInconclusive::Pass,
    };
    let shortfall_usd_per_hour = instance_shortfalls.iter().copied().fold(0.0, f64::max);

    let (sku, gpus, vcpus) = match contract.instance {
        Instance::Gpu { sku, gpus } => (Some(sku.id.clone()), Some(gpus), None),
        Instance::Cpu { vcpus } => (None, None, vcpus),
    };
    let mut verdict = Verdict {
        contract: ContractSummary {
            file: contract.origin.clone(),
            name: contract.name.clone(),
            provider: contract.provider.clone(),
            instance_type: contract.instance_type.clone(),
            sku,
            gpus_per_instance: gpus,
            vcpus,
            usd_per_instance_hour: contract.usd_per_instance_hour,
            usd_per_device_hour: device_price,
            price_as_of: contract.price_as_of.clone(),
            price_source: contract.price_source.clone(),
            confidence: level,
            on_inconclusive: match contract.on_inconclusive {
                OnInconclusive::Pass => "pass".into(),
                OnInconclusive::Fail => "fail".into(),
            },
            term_remaining_hours: remaining,
            judged_at: rfc3339(now),
        },
        overall,
        accepted,
        devices,
        targets,
        price_performance,
        shortfall_usd_per_hour,
        shortfall_usd_over_term: remaining.map(|h| shortfall_usd_per_hour * h),
        notes,
    };
    crate::telemetry::attribution::attach(&mut verdict, result);
    verdict
}
