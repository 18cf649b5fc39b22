//! Shortfall attribution: for a target that fails or is inconclusive, the causes the telemetry
//! and health findings support, each with its evidence. Pure, so the rules are tested on
//! scripted traces.
//!
//! Rules (documented in docs/telemetry.md): a clock-event reason counts when it was active in at
//! least [`REASON_SHARE`] of the timed samples; "clocks below base" when the mean SM clock is
//! more than [`BELOW_BASE`] under the base clock; PCIe downtraining and ECC/row-remap problems
//! when the health findings of the device say so. Nothing supported: "no cause visible".

use super::health::{Finding, FindingKind};
use super::{ClockReason, TelemetrySummary};
use crate::contract::verdict::{Status, TargetVerdict};
use serde::{Deserialize, Serialize};

/// A reason active in at least this share of samples is a cause; rarer blips are not.
pub const REASON_SHARE: f64 = 0.10;
/// Mean SM clock more than this fraction under base counts as "clocks below base".
pub const BELOW_BASE: f64 = 0.03;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    PowerCap,
    ThermalSlowdown,
    HwSlowdown,
    PcieDowntraining,
    EccErrors,
    ClocksBelowBase,
    NoCauseVisible,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    pub cause: CauseKind,
    pub evidence: String,
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// Causes for one target verdict. `telemetry`: the summaries of the measurements the target
/// was computed from (one per device); `findings`: the health findings of those devices.
pub fn attribute(
    verdict: &TargetVerdict,
    telemetry: &[&TelemetrySummary],
    findings: &[&Finding],
) -> Vec<Cause> {
    if verdict.status == Status::Pass {
        return Vec::new();
    }
    let mut causes = Vec::new();
    let mut add = |cause, evidence: String| causes.push(Cause { cause, evidence });
    for t in telemetry.iter().filter(|t| t.unavailable.is_none()) {
        let power = t.any_share(&[ClockReason::SwPowerCap, ClockReason::HwPowerBrake]);
        if power >= REASON_SHARE {
            let watts = t
                .mean_power_w
                .map(|w| format!("; mean power {w:.0} W"))
                .unwrap_or_default();
            add(
                CauseKind::PowerCap,
                format!("power cap active in {} of samples{watts}", pct(power)),
            );
        }
        let thermal = t.any_share(&[
            ClockReason::SwThermalSlowdown,
            ClockReason::HwThermalSlowdown,
        ]);
        if thermal >= REASON_SHARE {
            let temp = t
                .max_temperature_c
                .map(|c| format!("; max temperature {c:.0} °C"))
                .unwrap_or_default();
            add(
                CauseKind::ThermalSlowdown,
                format!("thermal slowdown in {} of samples{temp}", pct(thermal)),
            );
        }
        let hw = t.share(ClockReason::HwSlowdown);
        if hw >= REASON_SHARE {
            add(
                CauseKind::HwSlowdown,
                format!("HW slowdown in {} of samples", pct(hw)),
            );
        }
        if let (Some(mean), Some(base)) = (t.mean_sm_clock_mhz, t.base_sm_clock_mhz)
            && mean < base * (1.0 - BELOW_BASE)
        {
            let min = t
                .min_sm_clock_mhz
                .map(|m| format!(" (min {m:.0})"))
                .unwrap_or_default();
            add(
                CauseKind::ClocksBelowBase,
                format!("mean SM clock {mean:.0} MHz{min}, base {base:.0} MHz"),
            );
        }
    }
    for f in findings {
        let kind = match f.kind {
            FindingKind::PcieDowntrained => CauseKind::PcieDowntraining,
            FindingKind::EccUncorrected
            | FindingKind::EccCorrectedDuringRun
            | FindingKind::RetiredPages
            | FindingKind::RowRemapPending
            | FindingKind::RowRemapFailed => CauseKind::EccErrors,
            _ => continue,
        };
        add(kind, f.message.clone());
    }
    if causes.is_empty() {
        let evidence = match telemetry.iter().find_map(|t| t.unavailable.as_ref()) {
            Some(why) if telemetry.iter().all(|t| t.unavailable.is_some()) => {
                format!("no telemetry to explain it ({why})")
            }
            _ if telemetry.is_empty() => "no telemetry was recorded for this measurement".into(),
            _ => "no throttling, clock deficit or health problem in the telemetry".into(),
        };
        causes.push(Cause {
            cause: CauseKind::NoCauseVisible,
            evidence,
        });
    }
    causes
}

/// Fill `causes` on every failed or inconclusive target of `verdict` from `result`.
pub fn attach(verdict: &mut crate::contract::Verdict, result: &crate::result::RunResult) {
    for t in &mut verdict.targets {
        let devices: Vec<usize> = match t.device {
            Some(d) => vec![d],
            None => result.devices.iter().map(|d| d.index).collect(),
        };
        let telemetry: Vec<&TelemetrySummary> = devices
            .iter()
            .filter_map(|&d| {
                result
                    .measurements
                    .iter()
                    .rfind(|m| m.device == d && m.metric == t.measurement)
                    .and_then(|m| m.telemetry.as_deref())
            })
            .collect();
        let findings: Vec<&Finding> = result
            .findings
            .iter()
            .filter(|f| f.device.is_none_or(|d| devices.contains(&d)))
            .collect();
        t.causes = attribute(t, &telemetry, &findings);
    }
}

#[cfg(test)]
mod tests {
    use super::super::health::{self, DeviceHealth, HealthSnapshot};
    use super::super::{Sample, summarize};
    use super::*;
    use crate::contract::{Bound, Per};
    use crate::result::Unit;

    fn failing() -> TargetVerdict {
        TargetVerdict {
            metric: "gemm.bf16.tflops".into(),
            measurement: "gemm.bf16.tflops".into(),
            unit: "tflops".into(),
            bound: Bound::Min,
            target: 700.0,
            per: Per::Gpu,
            device: Some(0),
            status: Status::Fail,
            median: Some(640.0),
            ci: Some([635.0, 645.0]),
            ci_coverage: Some(0.95),
            n: 30,
            delivered_fraction: Some(640.0 / 700.0),
            shortfall_usd_per_hour: None,
            shortfall_usd_over_term: None,
            reason: String::new(),
            causes: Vec::new(),
        }
    }

    /// A recorded 100-sample trace of an H100-like GPU with `f` applied to each sample.
    fn trace(f: impl Fn(usize, &mut Sample)) -> TelemetrySummary {
        let samples: Vec<Sample> = (0..100)
            .map(|i| {
                let mut s = Sample {
                    t_s: i as f64 * 0.1,
                    sm_clock_mhz: Some(1980.0),
                    mem_clock_mhz: Some(2619.0),
                    power_w: Some(650.0),
                    energy_j: Some(i as f64 * 65.0),
                    temperature_c: Some(65.0),
                    gpu_util_pct: Some(100.0),
                    ..Sample::default()
                };
                f(i, &mut s);
                s
            })
            .collect();
        summarize(
            "scripted trace",
            Some(1590.0),
            &samples,
            Some(640.0),
            Unit::Tflops,
        )
    }

    fn kinds(c: &[Cause]) -> Vec<CauseKind> {
        c.iter().map(|c| c.cause).collect()
    }

    fn health_findings(f: impl Fn(&mut HealthSnapshot)) -> Vec<Finding> {
        // The same fault before and after, except counters, which rise during the run.
        let mut before = health::tests_support::healthy();
        f(&mut before);
        before.ecc_uncorrected_volatile = Some(0);
        let mut after = health::tests_support::healthy();
        f(&mut after);
        let mut h = DeviceHealth::new(0, None, Ok(before));
        h.set_after(Ok(after));
        health::findings(&h)
    }

    #[test]
    fn power_capped_trace() {
        let t = trace(|i, s| {
            if i % 2 == 0 {
                s.reasons = vec![ClockReason::SwPowerCap];
                s.power_w = Some(700.0);
                s.sm_clock_mhz = Some(1700.0);
            }
        });
        let c = attribute(&failing(), &[&t], &[]);
        assert_eq!(kinds(&c), vec![CauseKind::PowerCap]);
        assert!(
            c[0].evidence
                .starts_with("power cap active in 50% of samples"),
            "{c:?}"
        );
    }

    #[test]
    fn thermally_throttled_trace_with_clocks_below_base() {
        let t = trace(|_, s| {
            s.reasons = vec![
                ClockReason::HwThermalSlowdown,
                ClockReason::SwThermalSlowdown,
            ];
            s.temperature_c = Some(91.0);
            s.sm_clock_mhz = Some(1200.0);
        });
        let c = attribute(&failing(), &[&t], &[]);
        assert_eq!(
            kinds(&c),
            vec![CauseKind::ThermalSlowdown, CauseKind::ClocksBelowBase]
        );
        assert!(c[0].evidence.contains("max temperature 91 °C"), "{c:?}");
    }

    #[test]
    fn rare_blips_are_not_causes() {
        let t = trace(|i, s| {
            if i < 5 {
                s.reasons = vec![ClockReason::HwSlowdown];
            }
        });
        let c = attribute(&failing(), &[&t], &[]);
        assert_eq!(kinds(&c), vec![CauseKind::NoCauseVisible]);
    }

    #[test]
    fn pcie_downtrained_and_ecc_errors_come_from_health() {
        let t = trace(|_, _| {});
        let f = health_findings(|s| {
            s.pcie_gen_current = Some(4);
            s.ecc_uncorrected_volatile = Some(2);
        });
        let refs: Vec<&Finding> = f.iter().collect();
        let c = attribute(&failing(), &[&t], &refs);
        assert_eq!(
            kinds(&c),
            vec![CauseKind::PcieDowntraining, CauseKind::EccErrors]
        );
        assert_eq!(
            c[0].evidence,
            "PCIe link trained at Gen4 x16, maximum Gen5 x16"
        );
    }

    #[test]
    fn healthy_trace_has_no_cause_visible_and_a_pass_has_no_causes() {
        let t = trace(|_, _| {});
        let c = attribute(&failing(), &[&t], &[]);
        assert_eq!(kinds(&c), vec![CauseKind::NoCauseVisible]);
        let mut pass = failing();
        pass.status = Status::Pass;
        assert!(attribute(&pass, &[&t], &[]).is_empty());
        let mut inconclusive = failing();
        inconclusive.status = Status::Inconclusive;
        assert_eq!(attribute(&inconclusive, &[&t], &[]).len(), 1);
    }

    #[test]
    fn missing_telemetry_says_why() {
        let t = TelemetrySummary::unavailable("NVML", "NVML could not be initialised");
        let c = attribute(&failing(), &[&t], &[]);
        assert_eq!(kinds(&c), vec![CauseKind::NoCauseVisible]);
        assert!(
            c[0].evidence.contains("NVML could not be initialised"),
            "{c:?}"
        );
    }
}
