//! Contracts: what was bought (SKU, GPUs, price, term) and what it must deliver (targets per
//! metric, price-performance targets), read from TOML and validated before anything is measured.
//!
//! Every validation error is one line naming the file, the line and column (from the TOML
//! parser's spans), the field, the reason and what is allowed; `docs/contracts.md` documents the
//! format with a commented example. Judging results against a contract is in [`verdict`].

pub mod verdict;

use crate::bench::gemm::GemmDtype;
use crate::bench::stream::StreamOp;
use crate::error::{Error, Result};
use crate::specs::{self, Sku};
use serde::Deserialize;
use std::ops::Range;
use std::path::Path;
use std::time::SystemTime;
use toml::Spanned;

pub use verdict::{Verdict, judge};

/// Version tag a contract may carry in `schema`.
pub const SCHEMA: &str = "gpuaudit.contract/v1";

/// Transfer variants a contract may name (the CUDA backend measures them).
const TRANSFER_VARIANTS: [&str; 6] = ["h2d", "d2h", "d2d", "bidir", "p2p", "h2d_pageable"];

/// Which side of the target a measurement must be on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Delivered must be at least the target (throughput).
    Min,
    /// Delivered must be at most the target (latency, price-performance).
    Max,
}

/// Whether a target applies to each GPU or to the instance as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Gpu,
    Instance,
}

/// What an inconclusive target counts as when deciding the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInconclusive {
    /// Benefit of the doubt to the provider: inconclusive targets do not fail the run.
    Pass,
    /// The provider must prove delivery: inconclusive targets fail the run (exit 1).
    Fail,
}

/// What a target measures.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetKind {
    /// A measured metric, `<bench>.<variant>.<unit>` in canonical units.
    Measured { metric: String },
    /// Delivered $ per PFLOP-hour of a GEMM dtype (from `gemm.<dtype>.tflops`).
    UsdPerPflopHour { metric: String },
    /// Delivered $ per TB/s-hour of a STREAM op (from `stream.<op>.gbps`).
    UsdPerTbpsHour { metric: String },
}

impl TargetKind {
    /// The measurement metric this target is computed from.
    pub fn source_metric(&self) -> &str {
        match self {
            TargetKind::Measured { metric }
            | TargetKind::UsdPerPflopHour { metric }
            | TargetKind::UsdPerTbpsHour { metric } => metric,
        }
    }

    /// Unit of the target value as judged.
    pub fn unit_name(&self) -> &'static str {
        match self {
            TargetKind::Measured { metric } => {
                if metric.ends_with(".us") {
                    "us"
                } else if metric.ends_with(".gbps") {
                    "gbps"
                } else {
                    "tflops"
                }
            }
            TargetKind::UsdPerPflopHour { .. } => "usd_per_pflop_hour",
            TargetKind::UsdPerTbpsHour { .. } => "usd_per_tbps_hour",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The metric as written in the contract (e.g. `gemm.fp64.gflops`).
    pub name: String,
    pub kind: TargetKind,
    pub bound: Bound,
    /// In the canonical unit of `kind` (GFLOPS targets are converted to TFLOPS).
    pub value: f64,
    pub per: Per,
    /// Line in the contract file, for messages.
    pub line: usize,
}

/// GPU instance or CPU instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Instance {
    Gpu { sku: &'static Sku, gpus: u32 },
    Cpu { vcpus: Option<u32> },
}

/// The contract's term, for the shortfall over what remains of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Term {
    Unstated,
    Hours(f64),
    Dates { start: SystemTime, end: SystemTime },
}

impl Term {
    /// Hours left at `now`: the whole term when given in hours (its start is unknown), `end −
    /// max(now, start)` when given by dates (0 once it is over).
    pub fn remaining_hours(&self, now: SystemTime) -> Option<f64> {
        match *self {
            Term::Unstated => None,
            Term::Hours(h) => Some(h),
            Term::Dates { start, end } => {
                let from = now.max(start);
                Some(
                    end.duration_since(from)
                        .map(|d| d.as_secs_f64() / 3600.0)
                        .unwrap_or(0.0),
                )
            }
        }
    }
}

/// A validated contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// Where it was read from (file path), for messages and the verdict.
    pub origin: String,
    pub name: Option<String>,
    pub provider: String,
    pub instance_type: String,
    pub instance: Instance,
    pub usd_per_instance_hour: f64,
    pub price_as_of: Option<String>,
    pub price_source: Option<String>,
    pub term: Term,
    pub confidence: f64,
    pub on_inconclusive: OnInconclusive,
    pub targets: Vec<Target>,
}

impl Contract {
    /// Price of one measured device per hour: a GPU's share of the instance, or the whole
    /// instance for a CPU instance (the CPU backend measures the host as one device).
    pub fn usd_per_device_hour(&self) -> f64 {
        match self.instance {
            Instance::Gpu { gpus, .. } => self.usd_per_instance_hour / gpus as f64,
            Instance::Cpu { .. } => self.usd_per_instance_hour,
        }
    }

    pub fn devices_per_instance(&self) -> Option<usize> {
        match self.instance {
            Instance::Gpu { gpus, .. } => Some(gpus as usize),
            Instance::Cpu { .. } => None,
        }
    }

    pub fn sku(&self) -> Option<&'static Sku> {
        match self.instance {
            Instance::Gpu { sku, .. } => Some(sku),
            Instance::Cpu { .. } => None,
        }
    }

    /// Read and validate a contract file.
    pub fn load(path: &Path) -> Result<Contract> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Contract::parse(&text, &path.display().to_string())
    }

    /// Parse and validate contract TOML; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Contract> {
        let raw: RawContract = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!("{}: ", Locator { text }.at(s)))
                .unwrap_or_default();
            Error::Usage(format!(
                "{origin}: {at}{}",
                e.message().trim_end().replace('\n', "; ")
            ))
        })?;
        Validator {
            origin,
            loc: Locator { text },
        }
        .contract(raw)
    }
}

// ---------------------------------------------------------------------------------------------
// The file format as read; every field keeps its span so errors can point at it.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContract {
    schema: Option<Spanned<String>>,
    name: Option<String>,
    provider: Option<Spanned<String>>,
    instance_type: Option<Spanned<String>>,
    sku: Option<Spanned<String>>,
    gpus_per_instance: Option<Spanned<i64>>,
    vcpus: Option<Spanned<i64>>,
    price: Option<Spanned<RawPrice>>,
    term: Option<Spanned<RawTerm>>,
    confidence: Option<Spanned<f64>>,
    on_inconclusive: Option<Spanned<String>>,
    #[serde(default)]
    target: Vec<Spanned<RawTarget>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    usd_per_instance_hour: Option<Spanned<f64>>,
    usd_per_gpu_hour: Option<Spanned<f64>>,
    usd_per_vcpu_hour: Option<Spanned<f64>>,
    as_of: Option<String>,
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerm {
    hours: Option<Spanned<f64>>,
    start: Option<Spanned<toml::Value>>,
    end: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    metric: Option<Spanned<String>>,
    min: Option<Spanned<f64>>,
    max: Option<Spanned<f64>>,
    per: Option<Spanned<String>>,
    #[serde(default, rename = "note")]
    _note: Option<String>,
}

struct Locator<'a> {
    text: &'a str,
}

impl Locator<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        (line, column)
    }

    fn at(&self, span: Range<usize>) -> String {
        let (l, c) = self.line_col(span.start);
        format!("line {l}, column {c}")
    }
}

/// Every metric a contract may name, for error messages.
pub fn valid_metrics() -> Vec<String> {
    let mut v: Vec<String> = GemmDtype::ALL
        .iter()
        .map(|d| format!("gemm.{}.tflops", d.name()))
        .collect();
    v.extend(
        StreamOp::ALL
            .iter()
            .map(|o| format!("stream.{}.gbps", o.name())),
    );
    v.extend(
        TRANSFER_VARIANTS
            .iter()
            .map(|t| format!("transfer.{t}.gbps")),
    );
    v.push("launch.empty_kernel.us".into());
    v.push("gemm.<dtype>.gflops (= tflops × 1000)".into());
    v.extend(
        GemmDtype::ALL
            .iter()
            .map(|d| format!("usd_per_pflop_hour.{}", d.name())),
    );
    v.extend(
        StreamOp::ALL
            .iter()
            .map(|o| format!("usd_per_tbps_hour.{}", o.name())),
    );
    v
}

/// Resolve a metric name into what it measures and the factor converting a target written in
/// its unit to the canonical one.
fn resolve_metric(name: &str) -> Option<(TargetKind, f64)> {
    let gemm = |d: &str| GemmDtype::parse(d).is_some();
    let stream = |o: &str| StreamOp::ALL.iter().any(|x| x.name() == o);
    let parts: Vec<&str> = name.split('.').collect();
    let measured = |m: String| TargetKind::Measured { metric: m };
    match parts.as_slice() {
        ["gemm", d, "tflops"] if gemm(d) => Some((measured(name.into()), 1.0)),
        ["gemm", d, "gflops"] if gemm(d) => Some((measured(format!("gemm.{d}.tflops")), 1e-3)),
        ["stream", o, "gbps"] if stream(o) => Some((measured(name.into()), 1.0)),
        ["transfer", t, "gbps"] if TRANSFER_VARIANTS.contains(t) => {
            Some((measured(name.into()), 1.0))
        }
        ["launch", "empty_kernel", "us"] => Some((measured(name.into()), 1.0)),
        ["usd_per_pflop_hour", d] if gemm(d) => Some((
            TargetKind::UsdPerPflopHour {
                metric: format!("gemm.{d}.tflops"),
            },
            1.0,
        )),
        ["usd_per_tbps_hour", o] if stream(o) => Some((
            TargetKind::UsdPerTbpsHour {
                metric: format!("stream.{o}.gbps"),
            },
            1.0,
        )),
        _ => None,
    }
}

struct Validator<'a> {
    origin: &'a str,
    loc: Locator<'a>,
}

impl Validator<'_> {
    fn err(
        &self,
        span: Option<Range<usize>>,
        field: &str,
        reason: impl std::fmt::Display,
    ) -> Error {
        let at = span
            .map(|s| format!("{}: ", self.loc.at(s)))
            .unwrap_or_default();
        Error::Usage(format!("{}: {at}{field}: {reason}", self.origin))
    }

    /// A positive, finite number (prices, targets, hours).
    fn positive(&self, v: &Spanned<f64>, field: &str, what: &str) -> Result<f64> {
        let x = *v.get_ref();
        if x.is_finite() && x > 0.0 {
            Ok(x)
        } else {
            Err(self.err(
                Some(v.span()),
                field,
                format!("{x} is not allowed; {what} must be a finite number greater than 0"),
            ))
        }
    }

    fn required<'b, T>(
        &self,
        v: &'b Option<Spanned<T>>,
        field: &str,
        what: &str,
    ) -> Result<&'b Spanned<T>> {
        v.as_ref()
            .ok_or_else(|| self.err(None, field, format!("missing; {what}")))
    }

    fn contract(&self, raw: RawContract) -> Result<Contract> {
        if let Some(s) = &raw.schema
            && s.get_ref() != SCHEMA
        {
            return Err(self.err(
                Some(s.span()),
                "schema",
                format!(
                    "\"{}\" is not supported; this gpuaudit reads \"{SCHEMA}\"",
                    s.get_ref()
                ),
            ));
        }
        let provider = self
            .required(
                &raw.provider,
                "provider",
                "name the provider, e.g. provider = \"aws\"",
            )?
            .get_ref()
            .clone();
        let instance_type = self
            .required(
                &raw.instance_type,
                "instance_type",
                "name the instance type, e.g. instance_type = \"p5.48xlarge\"",
            )?
            .get_ref()
            .clone();

        let instance = match (&raw.sku, &raw.vcpus) {
            (Some(_), Some(v)) => {
                return Err(self.err(
                    Some(v.span()),
                    "vcpus",
                    "a contract is for a GPU instance (sku, gpus_per_instance) or a CPU instance (vcpus), not both",
                ));
            }
            (Some(sku), None) => {
                let found = specs::find(sku.get_ref()).ok_or_else(|| {
                    self.err(
                        Some(sku.span()),
                        "sku",
                        format!(
                            "\"{}\" is not in the datasheet data; known SKUs: {} (see gpuaudit specs)",
                            sku.get_ref(),
                            specs::known_ids()
                        ),
                    )
                })?;
                let gpus = self.required(
                    &raw.gpus_per_instance,
                    "gpus_per_instance",
                    "a GPU contract states how many GPUs an instance has, e.g. gpus_per_instance = 8",
                )?;
                let n = *gpus.get_ref();
                if !(1..=1024).contains(&n) {
                    return Err(self.err(
                        Some(gpus.span()),
                        "gpus_per_instance",
                        format!("{n} is not allowed; give a whole number from 1 to 1024"),
                    ));
                }
                Instance::Gpu {
                    sku: found,
                    gpus: n as u32,
                }
            }
            (None, vcpus) => {
                if let Some(g) = &raw.gpus_per_instance {
                    return Err(self.err(
                        Some(g.span()),
                        "gpus_per_instance",
                        "a GPU contract needs sku too (see gpuaudit specs); a CPU contract gives vcpus instead",
                    ));
                }
                let vcpus = match vcpus {
                    Some(v) if (1..=100_000).contains(v.get_ref()) => Some(*v.get_ref() as u32),
                    Some(v) => {
                        return Err(self.err(
                            Some(v.span()),
                            "vcpus",
                            format!(
                                "{} is not allowed; give a whole number from 1 upwards",
                                v.get_ref()
                            ),
                        ));
                    }
                    None => None,
                };
                Instance::Cpu { vcpus }
            }
        };

        let price = self.required(
            &raw.price,
            "price",
            "add a [price] table with usd_per_instance_hour (or usd_per_gpu_hour, or usd_per_vcpu_hour with vcpus)",
        )?;
        let p = price.get_ref();
        let given: Vec<&str> = [
            ("usd_per_instance_hour", p.usd_per_instance_hour.is_some()),
            ("usd_per_gpu_hour", p.usd_per_gpu_hour.is_some()),
            ("usd_per_vcpu_hour", p.usd_per_vcpu_hour.is_some()),
        ]
        .iter()
        .filter(|(_, g)| *g)
        .map(|(n, _)| *n)
        .collect();
        if given.len() != 1 {
            return Err(self.err(
                Some(price.span()),
                "price",
                format!(
                    "give exactly one of usd_per_instance_hour, usd_per_gpu_hour (GPU instances), usd_per_vcpu_hour (CPU instances, with vcpus); found {}",
                    if given.is_empty() { "none".to_string() } else { given.join(" and ") }
                ),
            ));
        }
        let usd_per_instance_hour = if let Some(v) = &p.usd_per_instance_hour {
            self.positive(v, "price.usd_per_instance_hour", "a price")?
        } else if let Some(v) = &p.usd_per_gpu_hour {
            let per_gpu = self.positive(v, "price.usd_per_gpu_hour", "a price")?;
            match instance {
                Instance::Gpu { gpus, .. } => per_gpu * gpus as f64,
                Instance::Cpu { .. } => {
                    return Err(self.err(
                        Some(v.span()),
                        "price.usd_per_gpu_hour",
                        "a CPU contract has no GPUs; use usd_per_instance_hour or usd_per_vcpu_hour",
                    ));
                }
            }
        } else if let Some(v) = &p.usd_per_vcpu_hour {
            let per_vcpu = self.positive(v, "price.usd_per_vcpu_hour", "a price")?;
            match instance {
                Instance::Cpu { vcpus: Some(n) } => per_vcpu * n as f64,
                _ => {
                    return Err(self.err(
                        Some(v.span()),
                        "price.usd_per_vcpu_hour",
                        "needs vcpus (the instance's vCPU count) in a CPU contract",
                    ));
                }
            }
        } else {
            // Not reached: exactly one price field was required above.
            return Err(self.err(Some(price.span()), "price", "no price given"));
        };

        let term = match &raw.term {
            None => Term::Unstated,
            Some(t) => self.term(t)?,
        };

        let confidence = match &raw.confidence {
            None => 0.95,
            Some(c) => {
                let x = *c.get_ref();
                if x > 0.5 && x < 1.0 {
                    x
                } else {
                    return Err(self.err(
                        Some(c.span()),
                        "confidence",
                        format!(
                            "{x} is not allowed; give a level strictly between 0.5 and 1, e.g. 0.95"
                        ),
                    ));
                }
            }
        };
        let on_inconclusive = match &raw.on_inconclusive {
            None => OnInconclusive::Fail,
            Some(s) => match s.get_ref().as_str() {
                "pass" => OnInconclusive::Pass,
                "fail" => OnInconclusive::Fail,
                other => {
                    return Err(self.err(
                        Some(s.span()),
                        "on_inconclusive",
                        format!("\"{other}\" is not allowed; use \"pass\" or \"fail\""),
                    ));
                }
            },
        };

        let mut targets = Vec::new();
        for (i, t) in raw.target.iter().enumerate() {
            targets.push(self.target(i, t, &instance, usd_per_instance_hour)?);
        }
        if targets.is_empty() {
            return Err(self.err(
                None,
                "target",
                "no targets; add at least one [[target]] with metric and min or max",
            ));
        }

        Ok(Contract {
            origin: self.origin.to_string(),
            name: raw.name,
            provider,
            instance_type,
            instance,
            usd_per_instance_hour,
            price_as_of: p.as_of.clone(),
            price_source: p.source.clone(),
            term,
            confidence,
            on_inconclusive,
            targets,
        })
    }

    fn date(&self, v: &Spanned<toml::Value>, field: &str) -> Result<SystemTime> {
        let text = match v.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Datetime(d) => d.to_string(),
            other => {
                return Err(self.err(
                    Some(v.span()),
                    field,
                    format!("{other} is not a date; use e.g. 2026-01-01 or 2026-01-01T00:00:00Z"),
                ));
            }
        };
        // A bare date means midnight UTC.
        let full = if text.len() == 10 {
            format!("{text}T00:00:00Z")
        } else {
            text.clone()
        };
        humantime::parse_rfc3339_weak(full.trim_end_matches('Z')).map_err(|e| {
            self.err(
                Some(v.span()),
                field,
                format!("cannot read \"{text}\" as a UTC date ({e}); use e.g. 2026-01-01 or 2026-01-01T00:00:00Z"),
            )
        })
    }

    fn term(&self, t: &Spanned<RawTerm>) -> Result<Term> {
        let raw = t.get_ref();
        match (&raw.hours, &raw.start, &raw.end) {
            (Some(h), None, None) => Ok(Term::Hours(self.positive(h, "term.hours", "the term")?)),
            (None, Some(s), Some(e)) => {
                let start = self.date(s, "term.start")?;
                let end = self.date(e, "term.end")?;
                if end <= start {
                    return Err(self.err(Some(e.span()), "term.end", "must be after term.start"));
                }
                Ok(Term::Dates { start, end })
            }
            _ => Err(self.err(
                Some(t.span()),
                "term",
                "give either hours, or both start and end (UTC dates)",
            )),
        }
    }

    fn target(
        &self,
        index: usize,
        t: &Spanned<RawTarget>,
        instance: &Instance,
        usd_per_instance_hour: f64,
    ) -> Result<Target> {
        let raw = t.get_ref();
        let field = |name: &str| format!("target[{index}].{name}");
        let line = self.loc.line_col(t.span().start).0;
        let metric = raw.metric.as_ref().ok_or_else(|| {
            self.err(
                Some(t.span()),
                &field("metric"),
                "missing; name a metric such as gemm.bf16.tflops",
            )
        })?;
        let name = metric.get_ref().clone();
        let (kind, scale) = resolve_metric(&name).ok_or_else(|| {
            self.err(
                Some(metric.span()),
                &field("metric"),
                format!(
                    "unknown metric \"{name}\"; valid metrics: {}",
                    valid_metrics().join(", ")
                ),
            )
        })?;
        let lower_is_better = match &kind {
            TargetKind::Measured { metric } => metric.ends_with(".us"),
            _ => true,
        };
        let (bound, value_spanned) = match (&raw.min, &raw.max) {
            (Some(v), None) => (Bound::Min, v),
            (None, Some(v)) => (Bound::Max, v),
            (None, None) => {
                return Err(self.err(
                    Some(t.span()),
                    &field("min"),
                    format!(
                        "min and max are both missing; give {} for {name}",
                        if lower_is_better { "max" } else { "min" }
                    ),
                ));
            }
            (Some(_), Some(v)) => {
                return Err(self.err(Some(v.span()), &field("max"), "give min or max, not both"));
            }
        };
        let wanted = if lower_is_better {
            Bound::Max
        } else {
            Bound::Min
        };
        if bound != wanted {
            let (given, allowed, why) = if lower_is_better {
                ("min", "max", "lower is better")
            } else {
                ("max", "min", "higher is better")
            };
            return Err(self.err(
                Some(value_spanned.span()),
                &field(given),
                format!("{name}: {why}, so the target is a {allowed}, not a {given}"),
            ));
        }
        let value = self.positive(value_spanned, &field(given_name(bound)), "a target")? * scale;

        let per = match (&raw.per, instance) {
            (None, Instance::Gpu { .. }) => Per::Gpu,
            (None, Instance::Cpu { .. }) => Per::Instance,
            (Some(p), _) => match (p.get_ref().as_str(), instance) {
                ("gpu", Instance::Gpu { .. }) => Per::Gpu,
                ("instance", _) => Per::Instance,
                (other, Instance::Gpu { .. }) => {
                    return Err(self.err(
                        Some(p.span()),
                        &field("per"),
                        format!("\"{other}\" is not allowed; use \"gpu\" or \"instance\""),
                    ));
                }
                (other, Instance::Cpu { .. }) => {
                    return Err(self.err(
                        Some(p.span()),
                        &field("per"),
                        format!("\"{other}\" is not allowed in a CPU contract; use \"instance\""),
                    ));
                }
            },
        };

        if let Instance::Gpu { sku, gpus } = instance {
            self.check_against_datasheet(
                sku,
                *gpus,
                &kind,
                &name,
                value,
                per,
                usd_per_instance_hour,
                value_spanned.span(),
                &field(given_name(bound)),
            )?;
        }
        Ok(Target {
            name,
            kind,
            bound,
            value,
            per,
            line,
        })
    }

    /// Reject targets no such GPU can meet: above the dense datasheet peak, or equal to the
    /// printed sparse figure (a sparse/dense mix-up). Price-performance targets are checked
    /// through the throughput they imply at the contract's price.
    #[allow(clippy::too_many_arguments)]
    fn check_against_datasheet(
        &self,
        sku: &Sku,
        gpus: u32,
        kind: &TargetKind,
        name: &str,
        value: f64,
        per: Per,
        usd_per_instance_hour: f64,
        span: Range<usize>,
        field: &str,
    ) -> Result<()> {
        let count = match per {
            Per::Gpu => 1.0,
            Per::Instance => gpus as f64,
        };
        let metric = kind.source_metric();
        // Throughput the target asks for, per GPU, in the metric's unit.
        let (asked, how) = match kind {
            TargetKind::Measured { .. } => {
                if metric.ends_with(".us") || metric.starts_with("transfer.") {
                    return Ok(()); // no datasheet counterpart
                }
                (value / count, String::new())
            }
            TargetKind::UsdPerPflopHour { .. } | TargetKind::UsdPerTbpsHour { .. } => {
                // $/unit-hour = price / (throughput / 1000) ⇒ throughput = 1000 · price / target.
                let price = usd_per_instance_hour / gpus as f64;
                (
                    1000.0 * price / value,
                    format!(
                        " (at ${price:.4} per GPU-hour it implies {:.1} per GPU)",
                        1000.0 * price / value
                    ),
                )
            }
        };
        let Some(peak) = sku.peak(metric) else {
            return Err(self.err(
                Some(span),
                field,
                format!(
                    "{name}: the {} datasheet has no {metric} figure (not supported by this GPU); see gpuaudit specs {}",
                    sku.name, sku.id
                ),
            ));
        };
        if let Some(sparse) = sku.sparse(metric)
            && (asked / sparse - 1.0).abs() <= 0.005
        {
            return Err(self.err(
                Some(span),
                field,
                format!(
                    "{name} = {value}{how} equals the {} figure NVIDIA prints WITH 2:4 SPARSITY ({sparse}); dense GEMM peaks at {peak}: the contract mixes up sparse and dense figures",
                    sku.name
                ),
            ));
        }
        if asked > peak * (1.0 + 1e-9) {
            return Err(self.err(
                Some(span),
                field,
                format!(
                    "{name} = {value}{how} is above the dense datasheet peak of the {} ({peak} per GPU); no such GPU can deliver it",
                    sku.name
                ),
            ));
        }
        Ok(())
    }
}

fn given_name(bound: Bound) -> &'static str {
    match bound {
        Bound::Min => "min",
        Bound::Max => "max",
    }
}

#[cfg(test)]
mod tests;
