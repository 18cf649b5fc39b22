//! Progress on the terminal while a run measures: one live line per device (indicatif) when
//! standard error is a terminal, one plain line per finished benchmark otherwise (logs, CI), and
//! nothing with `--quiet`.

use super::table::format_value;
use crate::bench::Phase;
use crate::run::{Event, Observer};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Live bars on a terminal.
    Live,
    /// One line per finished benchmark on standard error.
    Lines,
    Silent,
}

pub struct Progress {
    mode: ProgressMode,
    multi: MultiProgress,
    bars: BTreeMap<usize, ProgressBar>,
    device_prefix: &'static str,
}

impl Progress {
    pub fn new(mode: ProgressMode, device_prefix: &'static str) -> Progress {
        let multi = MultiProgress::with_draw_target(match mode {
            ProgressMode::Live => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        });
        Progress {
            mode,
            multi,
            bars: BTreeMap::new(),
            device_prefix,
        }
    }

    fn bar(&mut self, device: usize) -> &ProgressBar {
        let prefix = format!("{}{device}", self.device_prefix);
        let multi = &self.multi;
        self.bars.entry(device).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:>5} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(prefix);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        })
    }

    /// Print a line above the live bars (or plainly when there are none).
    fn line(&self, text: &str) {
        match self.mode {
            ProgressMode::Live => {
                let _ = self.multi.println(text);
            }
            ProgressMode::Lines => eprintln!("{text}"),
            ProgressMode::Silent => {}
        }
    }

    pub fn finish(&mut self) {
        for bar in self.bars.values() {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

impl Observer for Progress {
    fn event(&mut self, event: &Event) {
        if self.mode == ProgressMode::Silent {
            return;
        }
        let prefix = self.device_prefix;
        match event {
            Event::Started {
                device, planned, ..
            } => {
                self.line(&format!(
                    "{prefix}{device}: {planned} benchmark group(s) planned"
                ));
            }
            Event::Progress {
                device,
                label,
                phase,
            } => {
                if self.mode != ProgressMode::Live {
                    return;
                }
                let message = match phase {
                    Phase::Preparing => format!("{label}: preparing operands"),
                    Phase::Checking => format!("{label}: checking results"),
                    Phase::WarmingUp => format!("{label}: warming up"),
                    Phase::Sampling { summary: None, .. } => format!("{label}: sampling"),
                    Phase::Sampling {
                        summary: Some(s),
                        unit,
                    } => format!(
                        "{label}: n={} median {} ±{:.1}%",
                        s.n,
                        format_value(s.median, *unit),
                        s.relative_half_width() * 100.0
                    ),
                };
                self.bar(*device).set_message(message);
            }
            Event::Measured(m) => {
                let value = m
                    .summary
                    .as_ref()
                    .map(|s| {
                        format!(
                            "{} ±{:.1}% (n={})",
                            format_value(s.median, m.unit),
                            s.relative_half_width() * 100.0,
                            s.n
                        )
                    })
                    .unwrap_or_else(|| "no timing".into());
                let status = if m.correct { "" } else { "  WRONG RESULTS" };
                self.line(&format!(
                    "{prefix}{}: {} {}: {value}{status}",
                    m.device, m.bench, m.variant
                ));
            }
            Event::Window(w) => {
                let temperature = w
                    .max_temperature_c
                    .map(|c| format!(", {c:.0} °C"))
                    .unwrap_or_default();
                let power = w
                    .mean_power_w
                    .map(|p| format!(", {p:.0} W"))
                    .unwrap_or_default();
                self.line(&format!(
                    "{prefix}{}: window {} at {:.0} s: {} {}{temperature}{power}",
                    w.device,
                    w.index + 1,
                    w.started_s + w.duration_s,
                    w.metric,
                    format_value(w.median, w.unit),
                ));
            }
            Event::Failed { device, message } => {
                self.line(&format!("{prefix}{device}: error: {message}"));
            }
            Event::Finished { device } => {
                if let Some(bar) = self.bars.get(device) {
                    bar.finish_and_clear();
                }
            }
        }
    }
}
