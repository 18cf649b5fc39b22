//! The verdict table printed by `run --contract` and `check`: one row per device check and per
//! target, then the prices and the overall verdict.

use super::table::{format_value, render};
use crate::contract::verdict::{Status, TargetVerdict, Verdict};
use crate::result::Unit;

/// A value in a target's unit, readable.
fn value(v: f64, unit: &str) -> String {
    match unit {
        "tflops" => format_value(v, Unit::Tflops),
        "gbps" => format_value(v, Unit::Gbps),
        "us" => format_value(v, Unit::Us),
        "usd_per_pflop_hour" => format!("${v:.2}/PFLOP-h"),
        "usd_per_tbps_hour" => format!("${v:.2}/TB/s-h"),
        _ => format!("{v}"),
    }
}

fn bare(v: f64, unit: &str) -> String {
    match unit {
        "usd_per_pflop_hour" | "usd_per_tbps_hour" => format!("{v:.2}"),
        _ => value(v, unit)
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

fn status_cell(s: Status) -> String {
    match s {
        Status::Pass => "pass".into(),
        Status::Fail => "FAIL".into(),
        Status::Inconclusive => "inconclusive".into(),
    }
}

fn target_row(t: &TargetVerdict, prefix: &str) -> Vec<String> {
    let op = match t.bound {
        crate::contract::Bound::Min => "≥",
        crate::contract::Bound::Max => "≤",
    };
    vec![
        t.device
            .map(|d| format!("{prefix}{d}"))
            .unwrap_or_else(|| "instance".into()),
        t.metric.clone(),
        format!("{op} {}", value(t.target, &t.unit)),
        t.median
            .map(|m| value(m, &t.unit))
            .unwrap_or_else(|| "—".into()),
        t.ci.map(|[lo, hi]| format!("{} – {}", bare(lo, &t.unit), bare(hi, &t.unit)))
            .unwrap_or_else(|| "—".into()),
        t.delivered_fraction
            .map(|f| format!("{:.1}%", f * 100.0))
            .unwrap_or_else(|| "—".into()),
        t.shortfall_usd_per_hour
            .map(|u| format!("${u:.2}"))
            .unwrap_or_else(|| "—".into()),
        status_cell(t.status),
        if t.status == Status::Pass {
            String::new()
        } else {
            t.reason.clone()
        },
    ]
}

/// The whole verdict as text. `prefix` names devices ("gpu" or "cpu").
pub fn render_verdict(v: &Verdict, prefix: &str) -> String {
    let c = &v.contract;
    let (what, per_gpu) = match (&c.sku, c.gpus_per_instance) {
        (Some(sku), Some(n)) => (
            format!(" ({n}× {sku})"),
            format!(" (${:.4} per GPU-hour)", c.usd_per_device_hour),
        ),
        _ => (String::new(), String::new()),
    };
    let mut out = format!(
        "contract {} — {} {}{what}, ${:.4}/instance-hour{per_gpu}, {:.0}% confidence\n",
        c.file,
        c.provider,
        c.instance_type,
        c.usd_per_instance_hour,
        c.confidence * 100.0
    );
    for d in &v.devices {
        if d.status != Status::Pass {
            out += &format!(
                "{prefix}{}: {} — {}\n",
                d.device,
                status_cell(d.status),
                d.detail
            );
        }
    }
    let mut rows = vec![
        [
            "device",
            "target",
            "wanted",
            "median",
            "CI",
            "delivered",
            "short $/h",
            "verdict",
            "why",
        ]
        .map(String::from)
        .to_vec(),
    ];
    rows.extend(v.targets.iter().map(|t| target_row(t, prefix)));
    out += "\n";
    out += &render(&rows);
    // Why a measured target fell short, from the telemetry and health findings
    // (docs/telemetry.md); a target that was not measured has its reason in the table.
    for t in v
        .targets
        .iter()
        .filter(|t| t.status != Status::Pass && t.median.is_some())
    {
        let who = t
            .device
            .map(|d| format!("{prefix}{d}"))
            .unwrap_or_else(|| "instance".into());
        for c in &t.causes {
            let cause = serde_json::to_value(c.cause)
                .ok()
                .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                .unwrap_or_default();
            out += &format!("cause: {who} {}: {cause} — {}\n", t.metric, c.evidence);
        }
    }
    if !v.price_performance.is_empty() {
        let items: Vec<String> = v
            .price_performance
            .iter()
            .map(|p| {
                let unit = if p.metric.starts_with("usd_per_pflop_hour") {
                    "PFLOP-h"
                } else {
                    "TB/s-h"
                };
                let what = p.metric.split('.').nth(1).unwrap_or_default();
                format!("{prefix}{} {what} ${:.2}/{unit}", p.device, p.median)
            })
            .collect();
        out += &format!("\ndelivered price-performance: {}\n", items.join(", "));
    }
    for note in &v.notes {
        out += &format!("note: {note}\n");
    }
    let counts = |s: Status| v.targets.iter().filter(|t| t.status == s).count();
    out += &format!(
        "\nVERDICT: {} — {} pass, {} fail, {} inconclusive (inconclusive counts as {}); shortfall ${:.2}/h per instance{}\n",
        match (v.overall, v.accepted) {
            (Status::Pass, _) => "PASS".to_string(),
            (Status::Fail, _) => "FAIL".to_string(),
            (Status::Inconclusive, true) => "INCONCLUSIVE (accepted)".to_string(),
            (Status::Inconclusive, false) => "INCONCLUSIVE (not accepted)".to_string(),
        },
        counts(Status::Pass),
        counts(Status::Fail),
        counts(Status::Inconclusive),
        c.on_inconclusive,
        v.shortfall_usd_per_hour,
        match (v.shortfall_usd_over_term, c.term_remaining_hours) {
            (Some(usd), Some(h)) => format!(", ${usd:.2} over the {h:.0} h left of the term"),
            _ => String::new(),
        }
    );
    out
}
