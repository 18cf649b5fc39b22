//! The fleet report: per-metric distributions, per-device and per-node findings, outliers,
//! stragglers, and the fleet's price-performance in dollars.
//!
//! Dollar conventions (extending `docs/contracts.md` to many instances):
//! - Each result is one instance, judged by `contract::judge`; its headline shortfall ($/h) is the
//!   largest over the targets. A node measured several times keeps its largest.
//! - Fleet shortfall $/h = the sum over nodes; over the term = × the contract's remaining hours.
//! - Contracted GPU-hours per hour = the devices measured; delivered = contracted − shortfall ÷
//!   price per GPU-hour. The shortfall is price × (1 − delivered fraction), so this is the sum of
//!   the missing fractions, in GPU units.
//! - Return to the provider: a node when two or more of its GPUs fail the contract or a
//!   per-instance target fails (a node-level cause is likely: cooling, power, the wrong SKU); a
//!   GPU when it fails on a node not returned as a whole.

use super::outliers::{RobustScale, is_straggler, sibling_medians};
use super::{BadFile, BadKind, Fleet, gpu_target_lines};
use crate::contract::Contract;
use crate::contract::verdict::Status;
use crate::stats::percentile_sorted;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::SystemTime;

pub const FLEET_SCHEMA: &str = "gpuaudit.fleet/v1";

impl DeviceReport {
    pub fn value(&self, metric: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(m, _)| &**m == metric)
            .map(|&(_, v)| v)
    }
}

/// `[(name, value)]` in memory, `{"name": value}` in JSON.
mod metric_map {
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    pub fn serialize<S: Serializer>(v: &[(Arc<str>, f64)], s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(v.len()))?;
        for (k, x) in v {
            map.serialize_entry(&**k, x)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(Arc<str>, f64)>, D::Error> {
        let map = BTreeMap::<String, f64>::deserialize(d)?;
        Ok(map.into_iter().map(|(k, v)| (Arc::from(k), v)).collect())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputCounts {
    /// Results counted (distinct runs).
    pub results: usize,
    /// Results not counted, by reason.
    pub bad: usize,
    pub unreadable: usize,
    pub truncated: usize,
    pub malformed: usize,
    pub unknown_schema: usize,
    pub invalid: usize,
    pub duplicate: usize,
    /// Not signed by a trusted key (`--trusted-keys`).
    #[serde(default)]
    pub untrusted: usize,
    pub nodes: usize,
    pub devices: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricStats {
    pub metric: String,
    pub unit: String,
    pub higher_is_better: bool,
    /// Devices with a value (one per device: its worst run).
    pub count: usize,
    pub mean: f64,
    pub min: f64,
    pub p1: f64,
    pub p5: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    /// Median absolute deviation (unscaled), for the modified z-score.
    pub mad: f64,
    /// The contract's per-GPU target on this metric, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Every device's value, only kept in memory for the HTML histogram.
    #[serde(skip)]
    pub values: Vec<f64>,
}

/// Why a device or node was flagged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub node: String,
    pub device: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub metric: String,
    pub value: f64,
    /// Fleet median (outliers) or the siblings' median (stragglers).
    pub reference: f64,
    /// Modified z-score (outliers) or value ÷ reference (stragglers).
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceReport {
    /// Shared with the node and the other devices (memory: see the module docs of `fleet`).
    pub node: Arc<str>,
    pub device: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub name: Arc<str>,
    pub runs: u32,
    /// Metric → value (median of the run; the worst run when there were several). A JSON
    /// object; in memory a short list whose names are shared by every device.
    #[serde(with = "metric_map")]
    pub values: Vec<(Arc<str>, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    pub shortfall_usd_per_hour: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribution: Vec<String>,
    /// `fleet_outlier:<metric>`, `straggler:<metric>`, `below_contract`, `wrong_results`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    pub node: String,
    pub runs: u32,
    pub devices: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<bool>,
    pub failing_devices: usize,
    pub shortfall_usd_per_hour: f64,
    /// Every GPU is within 10% of its best sibling on every metric: gpu-fryer's relative rule
    /// would pass this node whatever the contract says.
    pub passes_relative_rule: bool,
    /// Fails the contract on every GPU while passing the relative rule: slow as a whole.
    pub uniformly_slow: bool,
    pub stragglers: usize,
    pub incomplete_runs: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    pub returned: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetContract {
    pub file: String,
    pub provider: String,
    pub instance_type: String,
    pub usd_per_instance_hour: f64,
    pub usd_per_device_hour: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term_remaining_hours: Option<f64>,
    pub confidence: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetPrice {
    /// Devices measured: GPU-hours (or CPU-instance-hours) contracted per hour.
    pub contracted_device_hours_per_hour: f64,
    pub delivered_device_hours_per_hour: f64,
    pub delivered_fraction: f64,
    /// What the measured devices cost per hour.
    pub contracted_usd_per_hour: f64,
    pub shortfall_usd_per_hour: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contracted_device_hours_over_term: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_device_hours_over_term: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortfall_usd_over_term: Option<f64>,
    /// Shortfall of the nodes and GPUs on the return list ($/h).
    pub returned_shortfall_usd_per_hour: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuRef {
    pub node: String,
    pub device: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub shortfall_usd_per_hour: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetReport {
    pub schema: String,
    pub generated_at: String,
    pub inputs: InputCounts,
    pub bad_files: Vec<BadFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<FleetContract>,
    /// Worst node status; absent without a contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overall: Option<Status>,
    /// Every node accepted by the contract; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<bool>,
    pub wrong_results: bool,
    pub metrics: Vec<MetricStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_performance: Option<FleetPrice>,
    pub return_nodes: Vec<String>,
    pub return_gpus: Vec<GpuRef>,
    pub outliers: Vec<Flag>,
    pub stragglers: Vec<Flag>,
    pub nodes: Vec<NodeReport>,
    pub devices: Vec<DeviceReport>,
}

/// Turn the fold into the report. Nodes are sorted by name, devices by node then index.
impl FleetReport {
    /// Nodes whose every GPU is below the contract: the case a relative rule lets through.
    pub fn uniformly_slow_nodes(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.uniformly_slow)
            .map(|n| n.node.as_str())
            .collect()
    }
}

pub fn build_report(fleet: Fleet, contract: Option<&Contract>, now: SystemTime) -> FleetReport {
    let Fleet {
        metrics: infos,
        nodes,
        devices,
        bad,
        results,
        metric_index,
        node_index,
        device_index,
        seen,
        origins,
        names,
    } = fleet;
    // The lookup tables only served the fold; at 800,000 devices they hold ~200 MB of keys that
    // the report does not need.
    drop((metric_index, node_index, device_index, seen, origins, names));
    let targets = contract.map(gpu_target_lines).unwrap_or_default();

    // Distributions, one value per device.
    let mut scales = Vec::with_capacity(infos.len());
    let mut metrics = Vec::with_capacity(infos.len());
    for (id, info) in infos.iter().enumerate() {
        let mut values: Vec<f64> = devices.iter().filter_map(|d| d.value(id as u16)).collect();
        values.sort_by(f64::total_cmp);
        let scale = RobustScale::of(&values);
        scales.push(scale);
        let q = |p: f64| percentile_sorted(&values, p);
        let count = values.len();
        metrics.push(MetricStats {
            metric: info.name.clone(),
            unit: info.unit.name().into(),
            higher_is_better: info.unit.higher_is_better(),
            count,
            mean: values.iter().sum::<f64>() / count.max(1) as f64,
            min: values.first().copied().unwrap_or(f64::NAN),
            p1: q(0.01),
            p5: q(0.05),
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
            max: values.last().copied().unwrap_or(f64::NAN),
            mad: crate::stats::mad(&values),
            target: targets
                .iter()
                .rev()
                .find(|(m, _)| *m == info.name)
                .map(|&(_, v)| v),
            values,
        });
    }

    let mut device_flags: Vec<Vec<String>> = vec![Vec::new(); devices.len()];
    let mut outliers = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        for &(m, v) in &d.values {
            let info = &infos[m as usize];
            if let Some(s) = scales[m as usize]
                && s.is_low_outlier(v, info.unit.higher_is_better())
            {
                device_flags[i].push(format!("fleet_outlier:{}", info.name));
                outliers.push(Flag {
                    node: nodes[d.node as usize].name.to_string(),
                    device: d.index,
                    uuid: d.uuid.clone(),
                    metric: info.name.clone(),
                    value: v,
                    reference: s.median,
                    score: s.z(v),
                });
            }
        }
    }

    // Stragglers and gpu-fryer's relative rule, node by node.
    let mut stragglers = Vec::new();
    let mut relative_pass = vec![true; nodes.len()];
    let mut node_stragglers = vec![0usize; nodes.len()];
    for (n, node) in nodes.iter().enumerate() {
        for (m, info) in infos.iter().enumerate() {
            let members: Vec<(u32, f64)> = node
                .devices
                .iter()
                .filter_map(|&d| devices[d as usize].value(m as u16).map(|v| (d, v)))
                .collect();
            let values: Vec<f64> = members.iter().map(|&(_, v)| v).collect();
            let hib = info.unit.higher_is_better();
            let best = if hib {
                values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            } else {
                values.iter().copied().fold(f64::INFINITY, f64::min)
            };
            for (&(d, v), sib) in members.iter().zip(sibling_medians(&values)) {
                // gpu-fryer: every GPU within 10% of the node's best.
                if is_straggler(v, best, hib) {
                    relative_pass[n] = false;
                }
                if let Some(sib) = sib
                    && is_straggler(v, sib, hib)
                {
                    node_stragglers[n] += 1;
                    let dev = &devices[d as usize];
                    device_flags[d as usize].push(format!("straggler:{}", info.name));
                    stragglers.push(Flag {
                        node: node.name.to_string(),
                        device: dev.index,
                        uuid: dev.uuid.clone(),
                        metric: info.name.clone(),
                        value: v,
                        reference: sib,
                        score: v / sib,
                    });
                }
            }
        }
    }

    let mut node_reports: Vec<NodeReport> = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| {
            let failing = node
                .devices
                .iter()
                .filter(|&&d| devices[d as usize].status == Some(Status::Fail))
                .count();
            let all_fail = failing > 0 && failing == node.devices.len();
            let returned = failing >= 2 || node.instance_target_failed;
            NodeReport {
                node: node.name.to_string(),
                runs: node.runs,
                devices: node.devices.len(),
                status: node.status,
                accepted: node.accepted,
                failing_devices: failing,
                shortfall_usd_per_hour: node.shortfall_usd_per_hour,
                passes_relative_rule: relative_pass[n],
                uniformly_slow: all_fail && relative_pass[n] && node.devices.len() > 1,
                stragglers: node_stragglers[n],
                incomplete_runs: node.incomplete_runs,
                reasons: node.instance_reasons.clone(),
                returned,
            }
        })
        .collect();

    let metric_names: Vec<Arc<str>> = infos.iter().map(|i| Arc::from(i.name.as_str())).collect();
    let mut device_reports: Vec<DeviceReport> = devices
        .into_iter()
        .zip(device_flags)
        .map(|(d, mut flags)| {
            if d.status == Some(Status::Fail) {
                flags.push("below_contract".into());
            }
            if d.wrong_results {
                flags.push("wrong_results".into());
            }
            DeviceReport {
                node: nodes[d.node as usize].name.clone(),
                device: d.index,
                uuid: d.uuid,
                name: d.name,
                runs: d.runs,
                values: d
                    .values
                    .iter()
                    .map(|&(m, v)| (metric_names[m as usize].clone(), v))
                    .collect(),
                status: d.status,
                reasons: d.reasons,
                shortfall_usd_per_hour: d.shortfall_usd_per_hour,
                attribution: d.attribution,
                flags,
            }
        })
        .collect();
    node_reports.sort_by(|a, b| a.node.cmp(&b.node));
    device_reports.sort_by(|a, b| (&a.node, a.device).cmp(&(&b.node, b.device)));

    let returned_nodes: std::collections::HashSet<&str> = node_reports
        .iter()
        .filter(|n| n.returned)
        .map(|n| n.node.as_str())
        .collect();
    let return_nodes: Vec<String> = returned_nodes.iter().map(|s| s.to_string()).collect();
    let mut return_nodes = return_nodes;
    return_nodes.sort();
    let return_gpus: Vec<GpuRef> = device_reports
        .iter()
        .filter(|d| d.status == Some(Status::Fail) && !returned_nodes.contains(&*d.node))
        .map(|d| GpuRef {
            node: d.node.to_string(),
            device: d.device,
            uuid: d.uuid.clone(),
            shortfall_usd_per_hour: d.shortfall_usd_per_hour,
        })
        .collect();

    let remaining = contract.and_then(|c| c.term.remaining_hours(now));
    let price_performance = contract.map(|c| {
        let price = c.usd_per_device_hour();
        let contracted = device_reports.len() as f64;
        let shortfall: f64 = node_reports.iter().map(|n| n.shortfall_usd_per_hour).sum();
        let delivered = (contracted - shortfall / price).max(0.0);
        let returned_shortfall = node_reports
            .iter()
            .filter(|n| n.returned)
            .map(|n| n.shortfall_usd_per_hour)
            .sum::<f64>()
            + return_gpus
                .iter()
                .map(|g| g.shortfall_usd_per_hour)
                .sum::<f64>();
        FleetPrice {
            contracted_device_hours_per_hour: contracted,
            delivered_device_hours_per_hour: delivered,
            delivered_fraction: if contracted > 0.0 {
                delivered / contracted
            } else {
                f64::NAN
            },
            contracted_usd_per_hour: contracted * price,
            shortfall_usd_per_hour: shortfall,
            contracted_device_hours_over_term: remaining.map(|h| contracted * h),
            delivered_device_hours_over_term: remaining.map(|h| delivered * h),
            shortfall_usd_over_term: remaining.map(|h| shortfall * h),
            returned_shortfall_usd_per_hour: returned_shortfall,
        }
    });

    let overall = contract.map(|_| {
        node_reports
            .iter()
            .filter_map(|n| n.status)
            .fold(Status::Pass, super::worse)
    });
    let accepted = contract.map(|_| node_reports.iter().all(|n| n.accepted != Some(false)));
    let count = |k: BadKind| bad.iter().filter(|b| b.kind == k).count();
    FleetReport {
        schema: FLEET_SCHEMA.into(),
        generated_at: humantime::format_rfc3339_seconds(now).to_string(),
        inputs: InputCounts {
            results,
            bad: bad.len(),
            unreadable: count(BadKind::Unreadable),
            truncated: count(BadKind::Truncated),
            malformed: count(BadKind::Malformed),
            unknown_schema: count(BadKind::UnknownSchema),
            invalid: count(BadKind::Invalid),
            duplicate: count(BadKind::Duplicate),
            untrusted: count(BadKind::Untrusted),
            nodes: node_reports.len(),
            devices: device_reports.len(),
        },
        bad_files: bad,
        contract: contract.map(|c| FleetContract {
            file: c.origin.clone(),
            provider: c.provider.clone(),
            instance_type: c.instance_type.clone(),
            usd_per_instance_hour: c.usd_per_instance_hour,
            usd_per_device_hour: c.usd_per_device_hour(),
            term_remaining_hours: remaining,
            confidence: c.confidence,
        }),
        overall,
        accepted,
        wrong_results: device_reports
            .iter()
            .any(|d| d.flags.iter().any(|f| f == "wrong_results")),
        metrics,
        price_performance,
        return_nodes,
        return_gpus,
        outliers,
        stragglers,
        nodes: node_reports,
        devices: device_reports,
    }
}
