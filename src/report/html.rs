//! The fleet report as one self-contained HTML file: inline SVG charts drawn with plotters, a
//! sortable table, no scripts or styles fetched from anywhere (it must open on an air-gapped
//! machine and still mean the same thing in a dispute years later).
//!
//! Why plotters: axes, ticks, label placement and histogram binning are fiddly to get right by
//! hand, and its SVG backend writes plain `<svg>` text with no font files (built with
//! `default-features = false`, so no font rasteriser, bitmap or image codec is compiled in).
//!
//! Charts scale to any fleet size: histograms are binned, and the per-node strip plot shows the
//! flagged nodes first and then healthy ones, at most [`STRIP_NODES`]; the table lists flagged
//! devices first, at most [`TABLE_ROWS`]. The JSON output holds everything.

use crate::contract::verdict::Status;
use crate::fleet::FleetReport;
use crate::fleet::verdict::{DeviceReport, MetricStats};
use plotters::prelude::*;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Nodes in a strip plot: beyond ~60 the columns are too thin to read.
pub const STRIP_NODES: usize = 60;
/// Rows in the table: a browser sorts a few thousand rows instantly, not 800,000.
pub const TABLE_ROWS: usize = 5000;
const HIST_BINS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error("cannot draw the {chart} chart: {message}")]
    Draw { chart: String, message: String },
}

fn draw_err<E: std::fmt::Display>(chart: &str) -> impl Fn(E) -> HtmlError + '_ {
    move |e| HtmlError::Draw {
        chart: chart.to_string(),
        message: e.to_string(),
    }
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Inline SVG in HTML needs no namespace declaration; dropping it keeps the file free of any
/// URL, so "no external reference" can be checked by a plain search.
fn inline_svg(svg: String) -> String {
    svg.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "")
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn usd(v: f64) -> String {
    format!("${v:.2}")
}

/// Histogram of one metric over the fleet, with the contract target and the fleet median.
pub fn histogram_svg(m: &MetricStats) -> Result<String, HtmlError> {
    let err = draw_err(&m.metric);
    let mut lo = m.min;
    let mut hi = m.max;
    if let Some(t) = m.target {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return Ok(String::new());
    }
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.01).max(1e-9);
    let (lo, hi) = (lo - pad, hi + pad);
    let width = (hi - lo) / HIST_BINS as f64;
    let mut counts = [0u32; HIST_BINS];
    for &v in &m.values {
        let b = (((v - lo) / width) as usize).min(HIST_BINS - 1);
        counts[b] += 1;
    }
    let ymax = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{} across {} devices", m.metric, m.count),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(lo..hi, 0u32..(ymax + ymax / 10 + 1))
            .map_err(&err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(m.unit.as_str())
            .y_desc("devices")
            .x_label_formatter(&|v| fmt_num(*v))
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(i, &c)| {
                        let x0 = lo + i as f64 * width;
                        Rectangle::new([(x0, 0), (x0 + width, c)], BLUE.mix(0.55).filled())
                    }),
            )
            .map_err(&err)?;
        chart
            .draw_series(LineSeries::new(
                [(m.p50, 0), (m.p50, ymax)],
                BLACK.mix(0.6).stroke_width(1),
            ))
            .map_err(&err)?
            .label(format!("fleet median {}", fmt_num(m.p50)))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.mix(0.6)));
        if let Some(t) = m.target {
            chart
                .draw_series(LineSeries::new(
                    [(t, 0), (t, ymax + ymax / 10)],
                    RED.stroke_width(2),
                ))
                .map_err(&err)?
                .label(format!("contract {}", fmt_num(t)))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(inline_svg(svg))
}

/// Which nodes a strip plot shows: flagged first (by shortfall, then name), then healthy ones.
fn strip_nodes(report: &FleetReport) -> Vec<&str> {
    let mut flagged: Vec<_> = report
        .nodes
        .iter()
        .filter(|n| n.returned || n.stragglers > 0 || n.status == Some(Status::Fail))
        .collect();
    flagged.sort_by(|a, b| {
        b.shortfall_usd_per_hour
            .total_cmp(&a.shortfall_usd_per_hour)
            .then(a.node.cmp(&b.node))
    });
    let outlier_nodes: std::collections::HashSet<&str> =
        report.outliers.iter().map(|o| o.node.as_str()).collect();
    let mut names: Vec<&str> = flagged.iter().map(|n| n.node.as_str()).collect();
    for n in &report.nodes {
        if names.len() >= STRIP_NODES {
            break;
        }
        if outlier_nodes.contains(n.node.as_str()) && !names.contains(&n.node.as_str()) {
            names.push(&n.node);
        }
    }
    for n in &report.nodes {
        if names.len() >= STRIP_NODES {
            break;
        }
        if !names.contains(&n.node.as_str()) {
            names.push(&n.node);
        }
    }
    names.truncate(STRIP_NODES);
    names.sort();
    names
}

/// Per-node strip plot of one metric: each GPU a point, outliers and stragglers marked.
pub fn strip_svg(
    report: &FleetReport,
    m: &MetricStats,
    by_node: &HashMap<&str, Vec<&DeviceReport>>,
) -> Result<String, HtmlError> {
    let err = draw_err(&m.metric);
    let nodes = strip_nodes(report);
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let mut points = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let devs = by_node.get(node).map(Vec::as_slice).unwrap_or(&[]);
        let k = devs.len().max(1) as f64;
        for (j, d) in devs.iter().enumerate() {
            if let Some(v) = d.value(&m.metric) {
                let outlier = d
                    .flags
                    .iter()
                    .any(|f| f == &format!("fleet_outlier:{}", m.metric));
                let straggler = d
                    .flags
                    .iter()
                    .any(|f| f == &format!("straggler:{}", m.metric));
                // Below the contract on *this* metric, not merely a failing device.
                let below = m
                    .target
                    .is_some_and(|t| if m.higher_is_better { v < t } else { v > t });
                // Spread a node's GPUs across its column so that equal values stay visible.
                let x = i as f64 + 0.5 + (j as f64 - (k - 1.0) / 2.0) * (0.7 / k);
                points.push((x, v, outlier, straggler, below));
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    if points.is_empty() {
        return Ok(String::new());
    }
    if let Some(t) = m.target {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.01).max(1e-9);
    // Room under the lowest point for the legend, so it never hides a GPU.
    let (lo, hi) = (lo - pad - (hi - lo + 2.0 * pad) * 0.45, hi + pad);
    let n = nodes.len() as f64;
    let width = (160 + 22 * nodes.len()).clamp(640, 1300) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{} per node ({} of {} nodes shown)",
                    m.metric,
                    nodes.len(),
                    report.nodes.len()
                ),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(90)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..n, lo..hi)
            .map_err(&err)?;
        let names = nodes.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(nodes.len() * 2 + 1)
            .x_label_formatter(&|x| {
                // Label each column at its centre only.
                let i = x.floor() as usize;
                if (x - (i as f64 + 0.5)).abs() < 1e-6 {
                    names.get(i).map(|s| s.to_string()).unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_label_style(
                ("sans-serif", 11)
                    .into_font()
                    .transform(FontTransform::Rotate90),
            )
            .y_desc(m.unit.as_str())
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()
            .map_err(&err)?;
        if let Some(t) = m.target {
            chart
                .draw_series(LineSeries::new([(0.0, t), (n, t)], RED.stroke_width(2)))
                .map_err(&err)?
                .label(format!("contract {}", fmt_num(t)))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED.stroke_width(2)));
        }
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| !p.2 && !p.3 && !p.4)
                    .map(|&(x, v, ..)| Circle::new((x, v), 3, BLUE.mix(0.7).filled())),
            )
            .map_err(&err)?
            .label("GPU")
            .legend(|(x, y)| Circle::new((x + 8, y), 3, BLUE.mix(0.7).filled()));
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.4)
                    .map(|&(x, v, ..)| Circle::new((x, v), 4, RED.filled())),
            )
            .map_err(&err)?
            .label("below contract")
            .legend(|(x, y)| Circle::new((x + 8, y), 4, RED.filled()));
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.3)
                    .map(|&(x, v, ..)| TriangleMarker::new((x, v), 8, MAGENTA.stroke_width(2))),
            )
            .map_err(&err)?
            .label("straggler (< 90% of siblings)")
            .legend(|(x, y)| TriangleMarker::new((x + 8, y), 8, MAGENTA.stroke_width(2)));
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.2)
                    .map(|&(x, v, ..)| Cross::new((x, v), 6, BLACK.stroke_width(2))),
            )
            .map_err(&err)?
            .label("fleet outlier (modified z < −3.5)")
            .legend(|(x, y)| Cross::new((x + 8, y), 6, BLACK.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(inline_svg(svg))
}

/// Shortfall $/h of the worst nodes, returned ones in red.
pub fn shortfall_svg(report: &FleetReport) -> Result<String, HtmlError> {
    let err = draw_err("shortfall");
    let mut nodes: Vec<_> = report
        .nodes
        .iter()
        .filter(|n| n.shortfall_usd_per_hour > 0.0)
        .collect();
    if nodes.is_empty() {
        return Ok(String::new());
    }
    nodes.sort_by(|a, b| {
        b.shortfall_usd_per_hour
            .total_cmp(&a.shortfall_usd_per_hour)
            .then(a.node.cmp(&b.node))
    });
    nodes.truncate(30);
    let xmax = nodes[0].shortfall_usd_per_hour * 1.15;
    let n = nodes.len() as f64;
    let names: Vec<String> = nodes.iter().map(|n| n.node.clone()).collect();
    let height = (80 + 22 * nodes.len()).max(200) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Shortfall per node ($/h): red = return the node",
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(110)
            .build_cartesian_2d(0f64..xmax, 0f64..n)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(nodes.len() * 2 + 1)
            .y_label_formatter(&|y| {
                // Label each bar at its centre only; the worst node on top.
                let i = y.floor() as usize;
                if (y - (i as f64 + 0.5)).abs() < 1e-6 {
                    names
                        .get(nodes_len_rev(names.len(), i))
                        .cloned()
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc("$ per hour")
            .x_label_formatter(&|v| format!("{v:.2}"))
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(nodes.iter().enumerate().map(|(i, node)| {
                let color = if node.returned {
                    RED
                } else {
                    RGBColor(230, 150, 30)
                };
                let y = nodes_len_rev(nodes.len(), i) as f64;
                Rectangle::new(
                    [(0.0, y + 0.15), (node.shortfall_usd_per_hour, y + 0.85)],
                    color.mix(0.8).filled(),
                )
            }))
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(inline_svg(svg))
}

/// Row `i` from the top of `n` rows, in plotters' bottom-up coordinates (and back).
fn nodes_len_rev(n: usize, i: usize) -> usize {
    n.saturating_sub(1).saturating_sub(i)
}

const STYLE: &str = "
body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;font-size:12px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eee;cursor:pointer;user-select:none}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.fail{color:#b00;font-weight:bold}.pass{color:#070}.inconclusive{color:#a60}
.box{display:inline-block;border:1px solid #ccc;padding:8px 14px;margin:4px 8px 4px 0}
.box b{font-size:20px;display:block}
.charts svg{margin:6px 6px 6px 0;border:1px solid #eee}
";

/// Click a header to sort by it; numbers (data-v) numerically, the rest as text.
const SCRIPT: &str = "
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
      var body=t.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[i],y=b.cells[i];
        var p=parseFloat(x.dataset.v),q=parseFloat(y.dataset.v);
        var c=(!isNaN(p)&&!isNaN(q))?p-q:x.textContent.localeCompare(y.textContent);
        return asc?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
";

fn status_cell(s: Option<Status>) -> String {
    match s {
        Some(s) => format!("<td class=\"{0}\">{0}</td>", s.name()),
        None => "<td>–</td>".into(),
    }
}

fn num_cell(v: f64, text: String) -> String {
    format!("<td class=\"n\" data-v=\"{v}\">{}</td>", esc(&text))
}

/// The whole report.
pub fn render(report: &FleetReport) -> Result<String, HtmlError> {
    let mut h = String::new();
    let title = match &report.contract {
        Some(c) => format!(
            "gpuaudit fleet report: {} {} ({})",
            c.provider, c.instance_type, c.file
        ),
        None => "gpuaudit fleet report".to_string(),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n<p>Generated {} by gpuaudit {}. Schema {}.</p>\n",
        esc(&title),
        esc(&title),
        esc(&report.generated_at),
        env!("CARGO_PKG_VERSION"),
        esc(&report.schema)
    );

    // Headline figures.
    let i = &report.inputs;
    h.push_str("<div>");
    let mut boxes = vec![
        ("nodes", i.nodes.to_string()),
        ("devices", i.devices.to_string()),
        ("results", i.results.to_string()),
        ("bad files", i.bad.to_string()),
    ];
    if let Some(s) = report.overall {
        boxes.push(("verdict", s.name().to_string()));
    }
    if let Some(p) = &report.price_performance {
        boxes.push(("shortfall $/h", usd(p.shortfall_usd_per_hour)));
        if let Some(t) = p.shortfall_usd_over_term {
            boxes.push(("shortfall over term", usd(t)));
        }
        boxes.push((
            "delivered GPU-h per contracted",
            format!("{:.2}%", 100.0 * p.delivered_fraction),
        ));
    }
    boxes.push(("nodes to return", report.return_nodes.len().to_string()));
    boxes.push(("GPUs to return", report.return_gpus.len().to_string()));
    for (k, v) in boxes {
        let _ = write!(h, "<div class=\"box\">{}<b>{}</b></div>", esc(k), esc(&v));
    }
    h.push_str("</div>\n");

    if let (Some(c), Some(p)) = (&report.contract, &report.price_performance) {
        let _ = write!(
            h,
            "<h2>Price-performance</h2><p>At {} per GPU-hour ({} per instance-hour), the {} devices measured cost {} per hour and deliver {} of their {} contracted GPU-hours per hour ({:.2}%). Shortfall: <b>{}/h</b>",
            usd(c.usd_per_device_hour),
            usd(c.usd_per_instance_hour),
            p.contracted_device_hours_per_hour,
            usd(p.contracted_usd_per_hour),
            fmt_num(p.delivered_device_hours_per_hour),
            p.contracted_device_hours_per_hour,
            100.0 * p.delivered_fraction,
            usd(p.shortfall_usd_per_hour),
        );
        if let (Some(t), Some(hours)) = (p.shortfall_usd_over_term, c.term_remaining_hours) {
            let _ = write!(
                h,
                ", <b>{}</b> over the {hours:.0} h left of the term",
                usd(t)
            );
        }
        let _ = writeln!(
            h,
            "; the return list accounts for {}/h.</p>",
            usd(p.returned_shortfall_usd_per_hour)
        );
        h.push_str("<div class=\"charts\">");
        h.push_str(&shortfall_svg(report)?);
        h.push_str("</div>\n");
    }

    // Return list.
    h.push_str("<h2>Return to the provider</h2>");
    if report.return_nodes.is_empty() && report.return_gpus.is_empty() {
        h.push_str("<p>Nothing: no device fails the contract (or no contract was given).</p>");
    } else {
        let _ = write!(
            h,
            "<p>Nodes ({}): {}</p><p>GPUs on other nodes ({}): {}</p>",
            report.return_nodes.len(),
            esc(&report.return_nodes.join(", ")),
            report.return_gpus.len(),
            esc(&report
                .return_gpus
                .iter()
                .map(|g| format!(
                    "{} GPU {}{} ({}/h)",
                    g.node,
                    g.device,
                    g.uuid.as_ref().map(|u| format!(" {u}")).unwrap_or_default(),
                    usd(g.shortfall_usd_per_hour)
                ))
                .collect::<Vec<_>>()
                .join("; "))
        );
    }
    let slow = report.uniformly_slow_nodes();
    if !slow.is_empty() {
        let _ = write!(
            h,
            "<p><b>Uniformly slow</b> (every GPU below the contract, all within 10% of each other, so a relative check such as gpu-fryer's passes them): {}</p>",
            esc(&slow.join(", "))
        );
    }

    // Distributions.
    h.push_str("<h2>Metrics across the fleet</h2><table class=\"sortable\"><thead><tr><th>metric</th><th>unit</th><th>count</th><th>mean</th><th>min</th><th>p1</th><th>p5</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>contract</th></tr></thead><tbody>");
    for m in &report.metrics {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td>",
            esc(&m.metric),
            esc(&m.unit)
        );
        h.push_str(&num_cell(m.count as f64, m.count.to_string()));
        for v in [m.mean, m.min, m.p1, m.p5, m.p50, m.p95, m.p99, m.max] {
            h.push_str(&num_cell(v, fmt_num(v)));
        }
        match m.target {
            Some(t) => h.push_str(&num_cell(t, fmt_num(t))),
            None => h.push_str("<td>–</td>"),
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>\n<div class=\"charts\">");
    let mut by_node: HashMap<&str, Vec<&DeviceReport>> = HashMap::new();
    for d in &report.devices {
        by_node.entry(&*d.node).or_default().push(d);
    }
    for m in &report.metrics {
        h.push_str(&histogram_svg(m)?);
        h.push_str(&strip_svg(report, m, &by_node)?);
    }
    h.push_str("</div>\n");

    // Devices table, flagged first.
    let metric_names: Vec<&str> = report.metrics.iter().map(|m| m.metric.as_str()).collect();
    let mut rows: Vec<&DeviceReport> = report.devices.iter().collect();
    let rank = |d: &DeviceReport| {
        (
            match d.status {
                Some(Status::Fail) => 0,
                Some(Status::Inconclusive) => 1,
                _ if !d.flags.is_empty() => 2,
                _ => 3,
            },
            -d.shortfall_usd_per_hour,
        )
    };
    rows.sort_by(|a, b| {
        let (ra, sa) = rank(a);
        let (rb, sb) = rank(b);
        ra.cmp(&rb).then(sa.total_cmp(&sb))
    });
    let shown = rows.len().min(TABLE_ROWS);
    let _ = write!(
        h,
        "<h2>Devices</h2><p>{} of {} devices, flagged first; click a header to sort. The JSON output lists every device.</p><table class=\"sortable\"><thead><tr><th>node</th><th>GPU</th><th>UUID</th><th>status</th>",
        shown,
        rows.len()
    );
    for m in &metric_names {
        let _ = write!(h, "<th>{}</th>", esc(m));
    }
    h.push_str("<th>shortfall $/h</th><th>flags</th><th>attribution</th><th>reasons</th></tr></thead><tbody>");
    for d in rows.iter().take(shown) {
        let _ = write!(
            h,
            "<tr><td>{}</td>{}<td>{}</td>{}",
            esc(&d.node),
            num_cell(d.device as f64, d.device.to_string()),
            esc(d.uuid.as_deref().unwrap_or("")),
            status_cell(d.status)
        );
        for m in &metric_names {
            match d.value(m) {
                Some(v) => h.push_str(&num_cell(v, fmt_num(v))),
                None => h.push_str("<td></td>"),
            }
        }
        h.push_str(&num_cell(
            d.shortfall_usd_per_hour,
            usd(d.shortfall_usd_per_hour),
        ));
        let _ = write!(
            h,
            "<td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&d.flags.join(" ")),
            esc(&d.attribution.join("; ")),
            esc(&d.reasons.join("; "))
        );
    }
    h.push_str("</tbody></table>\n");

    // Bad files.
    let _ = write!(h, "<h2>Files not counted ({})</h2>", report.bad_files.len());
    if !report.bad_files.is_empty() {
        h.push_str("<table class=\"sortable\"><thead><tr><th>file</th><th>kind</th><th>reason</th></tr></thead><tbody>");
        for b in report.bad_files.iter().take(TABLE_ROWS) {
            let kind = serde_json::to_value(b.kind)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&b.origin),
                esc(&kind),
                esc(&b.reason)
            );
        }
        h.push_str("</tbody></table>");
    }
    let _ = write!(h, "\n<script>{SCRIPT}</script>\n</body></html>\n");
    Ok(h)
}
