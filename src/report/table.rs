//! The terminal table printed after a run: one row per measurement.

use crate::result::{Measurement, RunResult, Unit};

/// A value with a readable prefix: TFLOPS below 1 are shown as GFLOPS, GB/s above 1000 as TB/s.
pub fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Tflops if value.abs() < 1.0 => format!("{} GFLOPS", sig3(value * 1e3)),
        Unit::Gbps if value.abs() >= 1000.0 => format!("{} TB/s", sig3(value / 1e3)),
        _ => format!("{} {}", sig3(value), unit.symbol()),
    }
}

/// Three significant digits without scientific notation (values here are 1e-3..1e6).
fn sig3(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn shape_text(m: &Measurement) -> String {
    match (m.bench.as_str(), m.shape.as_slice()) {
        ("gemm", [a, b, c]) if a == b && b == c => format!("{a}³"),
        ("gemm", [a, b, c]) => format!("{a}×{b}×{c}"),
        ("stream", [elements]) => format!("{} MiB", (elements * 8) >> 20),
        (_, [bytes]) => format!("{} MiB", bytes >> 20),
        _ => String::new(),
    }
}

/// Rows of cells for a result; the first row is the header.
pub fn rows(result: &RunResult) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "device".to_string(),
        "benchmark".into(),
        "size".into(),
        "median".into(),
        "95% CI".into(),
        "±".into(),
        "n".into(),
        "of peak".into(),
        "check".into(),
    ]];
    let prefix = match result.backend {
        crate::backend::BackendKind::Cpu => "cpu",
        crate::backend::BackendKind::Cuda => "gpu",
    };
    for m in &result.measurements {
        let (median, ci, pm, n) = match &m.summary {
            Some(s) => (
                format_value(s.median, m.unit),
                format!(
                    "{} – {}",
                    sig3(s.ci[0] * scale(s.median, m.unit)),
                    sig3(s.ci[1] * scale(s.median, m.unit))
                ),
                format!("{:.1}%", s.relative_half_width() * 100.0),
                format!(
                    "{}{}",
                    s.n,
                    match m.stop_reason {
                        Some(crate::stats::StopReason::PrecisionReached) | None => "",
                        Some(crate::stats::StopReason::TimeBudget) => " (budget)",
                        Some(crate::stats::StopReason::SampleLimit) => " (cap)",
                        Some(crate::stats::StopReason::Interrupted) => " (interrupted)",
                    }
                ),
            ),
            None => ("—".into(), "—".into(), "—".into(), "0".into()),
        };
        rows.push(vec![
            format!("{prefix}{}", m.device),
            format!("{} {}", m.bench, m.variant),
            shape_text(m),
            median,
            ci,
            pm,
            n,
            m.fraction_of_peak
                .map(|f| format!("{:.0}%", f * 100.0))
                .unwrap_or_else(|| "—".into()),
            if m.correct {
                "ok".into()
            } else {
                "WRONG".into()
            },
        ]);
    }
    rows
}

/// The factor `format_value` applied to the median, so CI bounds print in the same prefix.
fn scale(median: f64, unit: Unit) -> f64 {
    match unit {
        Unit::Tflops if median.abs() < 1.0 => 1e3,
        Unit::Gbps if median.abs() >= 1000.0 => 1e-3,
        _ => 1.0,
    }
}

/// Lay out rows with columns padded to their widest cell.
pub fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_get_readable_prefixes() {
        assert_eq!(format_value(0.1462, Unit::Tflops), "146 GFLOPS");
        assert_eq!(format_value(791.24, Unit::Tflops), "791 TFLOPS");
        assert_eq!(format_value(2970.0, Unit::Gbps), "2.97 TB/s");
        assert_eq!(format_value(19.87, Unit::Gbps), "19.9 GB/s");
        assert_eq!(format_value(2.345, Unit::Us), "2.35 µs");
    }

    #[test]
    fn render_pads_columns() {
        let rows = vec![
            vec!["a".to_string(), "bb".into()],
            vec!["ccc".to_string(), "d".into()],
        ];
        assert_eq!(render(&rows), "a    bb\nccc  d\n");
    }
}
