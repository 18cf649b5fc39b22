//! Fleet aggregation: read thousands of result files, judge each against the contract, and keep
//! one slim record per node and per device.
//!
//! Memory is bounded by the number of devices, not by the samples in the files: each file is
//! parsed, judged (the verdict needs its raw samples) and reduced to a [`FileSummary`] on a rayon
//! worker, then dropped. Files are taken in chunks so that at most one chunk of summaries waits
//! to be folded. Folding is sequential and in input order, so the output, including which of
//! two duplicates is called the duplicate, does not depend on thread timing.
//!
//! Identity: a node is a result's `host.hostname`; a device is (node, GPU UUID), or (node, index)
//! when the backend has no UUID (CPU). Two results holding the same device with the same
//! `started_at` are the same run twice: the second is listed as a duplicate and not counted.
//! Several distinct runs of a device fold conservatively: its worst value per metric, its worst
//! status, its largest shortfall.

pub mod fixture;
pub mod outliers;
pub mod verdict;

use crate::contract::verdict::Status;
use crate::contract::{Contract, Per, TargetKind, judge};
use crate::error::{Error, Result};
use crate::evidence::{PublicKey, verify_text};
use crate::result::{RunResult, SCHEMA, Unit};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

pub use verdict::{FleetReport, build_report};

/// Files parsed per parallel batch: large enough to keep every core busy, small enough that the
/// batch's summaries are a rounding error next to the per-device records.
const CHUNK: usize = 2048;

/// Where results come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// One result file.
    File(PathBuf),
    /// A file of JSON lines, one result per line (`.jsonl`).
    Lines(PathBuf),
}

/// Why a result was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadKind {
    Unreadable,
    Truncated,
    Malformed,
    UnknownSchema,
    Invalid,
    Duplicate,
    /// Not signed by a key given with `--trusted-keys` (unsigned, other key, or changed).
    Untrusted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BadFile {
    pub origin: String,
    pub kind: BadKind,
    pub reason: String,
}

/// One device of one result, reduced to what the fleet needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSummary {
    pub index: usize,
    pub uuid: Option<String>,
    pub name: String,
    /// (metric, unit, median) of every measurement that produced a timing with correct answers.
    pub values: Vec<(String, Unit, f64)>,
    /// Worst of the SKU check and the per-GPU targets; `None` without a contract.
    pub status: Option<Status>,
    /// Why it did not pass: one line per failing or undecided target.
    pub reasons: Vec<String>,
    /// Largest per-GPU target shortfall ($/h), by the contract's "largest, not the sum" rule.
    pub shortfall_usd_per_hour: f64,
    /// Shortfall causes from the measurement telemetry, when the result carries them.
    pub attribution: Vec<String>,
    pub wrong_results: bool,
}

/// One result file, reduced.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSummary {
    pub origin: String,
    pub hostname: String,
    pub started_at: String,
    pub complete: bool,
    pub devices: Vec<DeviceSummary>,
    pub status: Option<Status>,
    pub accepted: Option<bool>,
    /// The verdict's headline shortfall for this instance ($/h).
    pub shortfall_usd_per_hour: f64,
    /// Per-instance targets that did not pass.
    pub instance_reasons: Vec<String>,
    pub instance_target_failed: bool,
}

pub type Outcome = std::result::Result<FileSummary, BadFile>;

/// Expand command-line paths: a file is itself, a folder is every `*.json` / `*.jsonl` below it
/// (sorted), and a last component with `*` or `?` is matched in its folder. `-` (stdin) is handled
/// by the caller. A path that does not exist, or a pattern that matches nothing, is a usage error.
pub fn expand_inputs(args: &[PathBuf]) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for arg in args {
        let text = arg.to_string_lossy();
        let name = arg
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.contains(['*', '?']) {
            let dir = match arg.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if dir.to_string_lossy().contains(['*', '?']) {
                return Err(Error::Usage(format!(
                    "{text}: only the last path component may hold * or ?"
                )));
            }
            let mut matched: Vec<PathBuf> = read_dir_sorted(&dir)?
                .into_iter()
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| wildcard_match(&name, &n.to_string_lossy()))
                })
                .collect();
            if matched.is_empty() {
                return Err(Error::Usage(format!("{text}: no file matches")));
            }
            matched.sort();
            for p in matched {
                push_path(&mut out, p)?;
            }
        } else if arg.exists() {
            push_path(&mut out, arg.clone())?;
        } else {
            return Err(Error::Usage(format!("{text}: no such file or folder")));
        }
    }
    Ok(out)
}

fn push_path(out: &mut Vec<Source>, path: PathBuf) -> Result<()> {
    if path.is_dir() {
        walk(&path, out)
    } else {
        out.push(source_for(path));
        Ok(())
    }
}

fn source_for(path: PathBuf) -> Source {
    if path.extension().is_some_and(|e| e == "jsonl") {
        Source::Lines(path)
    } else {
        Source::File(path)
    }
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    Ok(paths)
}

fn walk(dir: &Path, out: &mut Vec<Source>) -> Result<()> {
    for p in read_dir_sorted(dir)? {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p
            .extension()
            .is_some_and(|e| e == "json" || e == "jsonl")
            // Atomic writers leave `.name.tmp-PID` files; they are not results.
            && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            out.push(source_for(p));
        }
    }
    Ok(())
}

/// `*` any run of characters, `?` one character; everything else literal.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with one backtrack point (the last `*`).
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// Parse one result with the reason it is unusable, if it is.
pub fn parse_result(bytes: &[u8]) -> std::result::Result<RunResult, (BadKind, String)> {
    #[derive(Deserialize)]
    struct SchemaProbe {
        schema: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<RunResult>(bytes) {
        Ok(r) if r.schema == SCHEMA => Ok(r),
        Ok(r) => Err((
            BadKind::UnknownSchema,
            format!(
                "schema is \"{}\"; this gpuaudit reads \"{SCHEMA}\"",
                r.schema
            ),
        )),
        Err(e) => {
            use serde_json::error::Category;
            let at = format!("line {}, column {}", e.line(), e.column());
            match e.classify() {
                Category::Eof => Err((
                    BadKind::Truncated,
                    format!("truncated (ends before the JSON does) at {at}"),
                )),
                Category::Syntax => {
                    Err((BadKind::Malformed, format!("not valid JSON at {at}: {e}")))
                }
                Category::Data | Category::Io => {
                    match serde_json::from_slice::<SchemaProbe>(bytes).map(|p| p.schema) {
                        Ok(Some(serde_json::Value::String(s))) if s == SCHEMA => {
                            Err((BadKind::Invalid, format!("invalid result: {e}")))
                        }
                        Ok(Some(serde_json::Value::String(s))) => Err((
                            BadKind::UnknownSchema,
                            format!("schema is \"{s}\"; this gpuaudit reads \"{SCHEMA}\""),
                        )),
                        _ => Err((
                            BadKind::UnknownSchema,
                            format!(
                                "no \"schema\" string; not a gpuaudit result (expected \"{SCHEMA}\")"
                            ),
                        )),
                    }
                }
            }
        }
    }
}

/// Worse of two statuses: fail, then inconclusive, then pass.
pub fn worse(a: Status, b: Status) -> Status {
    match (a, b) {
        (Status::Fail, _) | (_, Status::Fail) => Status::Fail,
        (Status::Inconclusive, _) | (_, Status::Inconclusive) => Status::Inconclusive,
        _ => Status::Pass,
    }
}

/// Reduce one parsed result (judged against `contract` when given) to its summary.
pub fn summarize(
    result: &RunResult,
    origin: String,
    contract: Option<&Contract>,
    now: SystemTime,
) -> FileSummary {
    let mut attribution: HashMap<usize, Vec<String>> = HashMap::new();
    let verdict = contract.map(|c| judge(c, result, now));
    // The causes the contract verdict attributed from the file's own telemetry (throttle reasons,
    // health findings) for every target a device did not clearly pass.
    if let Some(v) = &verdict {
        for t in v.targets.iter().filter(|t| t.status != Status::Pass) {
            let Some(device) = t.device else { continue };
            for c in &t.causes {
                if c.cause == crate::telemetry::attribution::CauseKind::NoCauseVisible {
                    continue;
                }
                let name = serde_json::to_value(c.cause)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                let text = format!("{name}: {}", c.evidence);
                let list = attribution.entry(device).or_default();
                if !list.contains(&text) {
                    list.push(text);
                }
            }
        }
    }
    let devices = result
        .devices
        .iter()
        .map(|d| {
            let mut values: Vec<(String, Unit, f64)> = Vec::new();
            let mut wrong = false;
            for m in result.measurements.iter().filter(|m| m.device == d.index) {
                wrong |= !m.correct;
                if let (true, Some(median)) = (m.correct, m.median()) {
                    // The last measurement of a metric counts, as in the contract verdict.
                    values.retain(|(name, _, _)| name != &m.metric);
                    values.push((m.metric.clone(), m.unit, median));
                }
            }
            let mut status = None;
            let mut reasons = Vec::new();
            let mut shortfall = 0.0f64;
            if let Some(v) = &verdict {
                let mut s = Status::Pass;
                for dv in v.devices.iter().filter(|dv| dv.device == d.index) {
                    s = worse(s, dv.status);
                    if dv.status != Status::Pass {
                        reasons.push(format!("SKU {}: {}", dv.status, dv.detail));
                    }
                }
                for t in v.targets.iter().filter(|t| t.device == Some(d.index)) {
                    s = worse(s, t.status);
                    if t.status != Status::Pass {
                        reasons.push(format!("{} {}: {}", t.metric, t.status, t.reason));
                    }
                    shortfall = shortfall.max(t.shortfall_usd_per_hour.unwrap_or(0.0));
                }
                status = Some(s);
            }
            DeviceSummary {
                index: d.index,
                uuid: d.uuid.clone(),
                name: d.name.clone(),
                values,
                status,
                reasons,
                shortfall_usd_per_hour: shortfall,
                attribution: attribution.get(&d.index).cloned().unwrap_or_default(),
                wrong_results: wrong,
            }
        })
        .collect();
    let mut instance_reasons = Vec::new();
    let mut instance_target_failed = false;
    if let Some(v) = &verdict {
        for t in v.targets.iter().filter(|t| t.per == Per::Instance) {
            if t.status != Status::Pass {
                instance_reasons.push(format!(
                    "{} (instance) {}: {}",
                    t.metric, t.status, t.reason
                ));
            }
            instance_target_failed |= t.status == Status::Fail;
        }
    }
    FileSummary {
        origin,
        hostname: result.host.hostname.clone(),
        started_at: result.started_at.clone(),
        complete: result.complete,
        devices,
        status: verdict.as_ref().map(|v| v.overall),
        accepted: verdict.as_ref().map(|v| v.accepted),
        shortfall_usd_per_hour: verdict.as_ref().map_or(0.0, |v| v.shortfall_usd_per_hour),
        instance_reasons,
        instance_target_failed,
    }
}

/// How every result of a fleet is admitted and judged.
#[derive(Clone, Copy)]
pub struct Judging<'a> {
    /// Judge each result against this contract.
    pub contract: Option<&'a Contract>,
    /// Count only results signed by one of these keys (`--trusted-keys`); the rest are listed
    /// as untrusted with the reason.
    pub trusted: Option<&'a [PublicKey]>,
    pub now: SystemTime,
}

/// Parse and reduce one result given as bytes.
pub fn process_bytes(bytes: &[u8], origin: String, judging: Judging<'_>) -> Outcome {
    if let Some(keys) = judging.trusted {
        let verified = match std::str::from_utf8(bytes) {
            Ok(text) => verify_text(text, keys).map_err(|e| e.to_string()),
            Err(_) => Err("not UTF-8 text".to_string()),
        };
        if let Err(reason) = verified {
            return Err(BadFile {
                origin,
                kind: BadKind::Untrusted,
                reason: format!("not accepted under --trusted-keys: {reason}"),
            });
        }
    }
    let (contract, now) = (judging.contract, judging.now);
    match parse_result(bytes) {
        Ok(result) => Ok(summarize(&result, origin, contract, now)),
        Err((kind, reason)) => Err(BadFile {
            origin,
            kind,
            reason,
        }),
    }
}

fn process_file(path: &Path, judging: Judging<'_>) -> Outcome {
    let origin = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => process_bytes(&bytes, origin, judging),
        Err(e) => Err(BadFile {
            origin,
            kind: BadKind::Unreadable,
            reason: format!("cannot read: {e}"),
        }),
    }
}

/// A metric seen in the fleet, by index into [`Fleet::metrics`].
#[derive(Debug, Clone, PartialEq)]
pub struct MetricInfo {
    pub name: String,
    pub unit: Unit,
}

/// Folded state of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeAcc {
    pub name: Arc<str>,
    pub runs: u32,
    pub devices: Vec<u32>,
    pub status: Option<Status>,
    pub accepted: Option<bool>,
    pub shortfall_usd_per_hour: f64,
    pub instance_reasons: Vec<String>,
    pub instance_target_failed: bool,
    pub incomplete_runs: u32,
}

/// Folded state of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceAcc {
    pub node: u32,
    pub index: usize,
    pub uuid: Option<String>,
    /// Shared: a fleet has a handful of distinct GPU names, not 800,000.
    pub name: Arc<str>,
    pub runs: u32,
    /// (metric index, worst value over runs).
    pub values: Vec<(u16, f64)>,
    pub status: Option<Status>,
    pub reasons: Vec<String>,
    pub shortfall_usd_per_hour: f64,
    pub attribution: Vec<String>,
    pub wrong_results: bool,
}

impl DeviceAcc {
    pub fn value(&self, metric: u16) -> Option<f64> {
        self.values
            .iter()
            .find(|(m, _)| *m == metric)
            .map(|&(_, v)| v)
    }
}

/// The fold: every good result adds to it, every bad one is listed.
#[derive(Debug, Default)]
pub struct Fleet {
    pub metrics: Vec<MetricInfo>,
    pub(crate) metric_index: HashMap<String, u16>,
    pub nodes: Vec<NodeAcc>,
    pub(crate) node_index: HashMap<String, u32>,
    pub devices: Vec<DeviceAcc>,
    pub(crate) device_index: HashMap<(u32, String), u32>,
    /// "device key @ started_at" → origin of the first result holding it.
    pub(crate) seen: HashMap<String, u32>,
    pub(crate) origins: Vec<String>,
    pub(crate) names: HashMap<String, Arc<str>>,
    pub bad: Vec<BadFile>,
    pub results: usize,
}

/// Reasons kept per device or node: enough to explain, bounded however many runs there are.
const MAX_REASONS: usize = 16;

fn extend_bounded(list: &mut Vec<String>, more: Vec<String>) {
    for r in more {
        if list.len() < MAX_REASONS && !list.contains(&r) {
            list.push(r);
        }
    }
}

impl Fleet {
    pub fn add(&mut self, outcome: Outcome) {
        let f = match outcome {
            Ok(f) => f,
            Err(bad) => {
                self.bad.push(bad);
                return;
            }
        };
        let device_key = |d: &DeviceSummary| match &d.uuid {
            Some(u) => u.clone(),
            None => format!("{}#{}", f.hostname, d.index),
        };
        let run_keys: Vec<String> = f
            .devices
            .iter()
            .map(|d| format!("{}@{}", device_key(d), f.started_at))
            .collect();
        if let Some(first) = run_keys.iter().find_map(|k| self.seen.get(k)) {
            let first = self
                .origins
                .get(*first as usize)
                .cloned()
                .unwrap_or_default();
            self.bad.push(BadFile {
                origin: f.origin,
                kind: BadKind::Duplicate,
                reason: format!(
                    "duplicate of {first}: same device and start time ({})",
                    f.started_at
                ),
            });
            return;
        }
        let origin_id = self.origins.len() as u32;
        self.origins.push(f.origin.clone());
        for k in run_keys {
            self.seen.insert(k, origin_id);
        }
        self.results += 1;

        let node_id = match self.node_index.get(&f.hostname) {
            Some(&id) => id,
            None => {
                let id = self.nodes.len() as u32;
                self.node_index.insert(f.hostname.clone(), id);
                self.nodes.push(NodeAcc {
                    name: Arc::from(f.hostname.as_str()),
                    runs: 0,
                    devices: Vec::new(),
                    status: None,
                    accepted: None,
                    shortfall_usd_per_hour: 0.0,
                    instance_reasons: Vec::new(),
                    instance_target_failed: false,
                    incomplete_runs: 0,
                });
                id
            }
        };
        {
            let node = &mut self.nodes[node_id as usize];
            node.runs += 1;
            node.incomplete_runs += u32::from(!f.complete);
            node.status = merge_status(node.status, f.status);
            node.accepted = match (node.accepted, f.accepted) {
                (Some(a), Some(b)) => Some(a && b),
                (a, b) => a.or(b),
            };
            node.shortfall_usd_per_hour = node.shortfall_usd_per_hour.max(f.shortfall_usd_per_hour);
            node.instance_target_failed |= f.instance_target_failed;
            extend_bounded(&mut node.instance_reasons, f.instance_reasons);
        }

        for d in f.devices {
            let key = (node_id, device_key(&d));
            let dev_id = match self.device_index.get(&key) {
                Some(&id) => id,
                None => {
                    let id = self.devices.len() as u32;
                    self.device_index.insert(key, id);
                    self.nodes[node_id as usize].devices.push(id);
                    let name = self
                        .names
                        .entry(d.name.clone())
                        .or_insert_with(|| Arc::from(d.name.as_str()))
                        .clone();
                    self.devices.push(DeviceAcc {
                        node: node_id,
                        index: d.index,
                        uuid: d.uuid.clone(),
                        name,
                        runs: 0,
                        values: Vec::new(),
                        status: None,
                        reasons: Vec::new(),
                        shortfall_usd_per_hour: 0.0,
                        attribution: Vec::new(),
                        wrong_results: false,
                    });
                    id
                }
            };
            let mut indexed = Vec::with_capacity(d.values.len());
            for (metric, unit, v) in d.values {
                indexed.push((self.metric_id(metric, unit), unit, v));
            }
            let dev = &mut self.devices[dev_id as usize];
            dev.runs += 1;
            for (m, unit, v) in indexed {
                match dev.values.iter_mut().find(|(id, _)| *id == m) {
                    // Several runs: keep the worst, so a GPU that fell short once is seen.
                    Some((_, old)) => {
                        *old = if unit.higher_is_better() {
                            old.min(v)
                        } else {
                            old.max(v)
                        }
                    }
                    None => dev.values.push((m, v)),
                }
            }
            dev.status = merge_status(dev.status, d.status);
            extend_bounded(&mut dev.reasons, d.reasons);
            extend_bounded(&mut dev.attribution, d.attribution);
            dev.shortfall_usd_per_hour = dev.shortfall_usd_per_hour.max(d.shortfall_usd_per_hour);
            dev.wrong_results |= d.wrong_results;
        }
    }

    fn metric_id(&mut self, name: String, unit: Unit) -> u16 {
        if let Some(&id) = self.metric_index.get(&name) {
            return id;
        }
        let id = self.metrics.len() as u16;
        self.metric_index.insert(name.clone(), id);
        self.metrics.push(MetricInfo { name, unit });
        id
    }

    pub fn bad_count(&self, kind: BadKind) -> usize {
        self.bad.iter().filter(|b| b.kind == kind).count()
    }
}

fn merge_status(a: Option<Status>, b: Option<Status>) -> Option<Status> {
    match (a, b) {
        (Some(a), Some(b)) => Some(worse(a, b)),
        (a, b) => a.or(b),
    }
}

/// Read every source (and, when `stdin` is given, its JSON lines) in parallel batches and fold.
pub fn aggregate(
    sources: &[Source],
    stdin: Option<&mut dyn BufRead>,
    judging: Judging<'_>,
) -> Fleet {
    let mut fleet = Fleet::default();
    let mut files: Vec<&Path> = Vec::new();
    let flush = |fleet: &mut Fleet, files: &mut Vec<&Path>| {
        let outcomes: Vec<Outcome> = files.par_iter().map(|p| process_file(p, judging)).collect();
        outcomes.into_iter().for_each(|o| fleet.add(o));
        files.clear();
    };
    for s in sources {
        match s {
            Source::File(p) => {
                files.push(p);
                if files.len() >= CHUNK {
                    flush(&mut fleet, &mut files);
                }
            }
            Source::Lines(p) => {
                flush(&mut fleet, &mut files);
                match std::fs::File::open(p) {
                    Ok(f) => read_lines(
                        &mut std::io::BufReader::new(f),
                        &p.display().to_string(),
                        &mut fleet,
                        judging,
                    ),
                    Err(e) => fleet.add(Err(BadFile {
                        origin: p.display().to_string(),
                        kind: BadKind::Unreadable,
                        reason: format!("cannot read: {e}"),
                    })),
                }
            }
        }
    }
    flush(&mut fleet, &mut files);
    if let Some(input) = stdin {
        read_lines(input, "stdin", &mut fleet, judging);
    }
    fleet
}

/// JSON lines, one result per non-blank line, in parallel batches; origin `NAME:LINE`.
fn read_lines(input: &mut dyn BufRead, name: &str, fleet: &mut Fleet, judging: Judging<'_>) {
    let mut batch: Vec<(usize, String)> = Vec::new();
    let flush = |fleet: &mut Fleet, batch: &mut Vec<(usize, String)>| {
        let outcomes: Vec<Outcome> = batch
            .par_iter()
            .map(|(n, line)| process_bytes(line.as_bytes(), format!("{name}:{n}"), judging))
            .collect();
        outcomes.into_iter().for_each(|o| fleet.add(o));
        batch.clear();
    };
    let mut line_no = 0;
    loop {
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                line_no += 1;
                if !line.trim().is_empty() {
                    batch.push((line_no, line));
                }
                if batch.len() >= CHUNK {
                    flush(fleet, &mut batch);
                }
            }
            Err(e) => {
                line_no += 1;
                fleet.add(Err(BadFile {
                    origin: format!("{name}:{line_no}"),
                    kind: BadKind::Unreadable,
                    reason: format!("cannot read: {e}"),
                }));
                break;
            }
        }
    }
    flush(fleet, &mut batch);
}

/// A contract target's value in its source metric's own unit, for drawing it next to the fleet's
/// values: only plain measured per-GPU targets qualify ($ targets are in another unit).
pub fn gpu_target_lines(contract: &Contract) -> Vec<(String, f64)> {
    contract
        .targets
        .iter()
        .filter(|t| t.per == Per::Gpu)
        .filter_map(|t| match &t.kind {
            TargetKind::Measured { metric } => Some((metric.clone(), t.value)),
            _ => None,
        })
        .collect()
}

/// Write the report atomically, streaming: a fleet of 800,000 devices makes a JSON text of
/// hundreds of MB, which need not sit in memory next to the report it came from.
pub fn write_json(report: &FleetReport, path: &Path) -> Result<()> {
    crate::result::write_atomic_with(path, |w| {
        use std::io::Write;
        serde_json::to_writer_pretty(&mut *w, report).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })
}

/// The terminal summary: counts, distributions, findings, dollars, the return list.
pub fn render_text(r: &FleetReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let i = &r.inputs;
    let _ = writeln!(
        s,
        "fleet: {} results, {} nodes, {} devices; {} not counted",
        i.results, i.nodes, i.devices, i.bad
    );
    for b in r.bad_files.iter().take(20) {
        let _ = writeln!(s, "  not counted: {}: {}", b.origin, b.reason);
    }
    if r.bad_files.len() > 20 {
        let _ = writeln!(s, "  … and {} more (see --json)", r.bad_files.len() - 20);
    }
    for m in &r.metrics {
        let _ = writeln!(
            s,
            "{:<24} n={:<7} mean {:.4} p1 {:.4} p5 {:.4} p50 {:.4} p95 {:.4} p99 {:.4} min {:.4} max {:.4} {}{}",
            m.metric,
            m.count,
            m.mean,
            m.p1,
            m.p5,
            m.p50,
            m.p95,
            m.p99,
            m.min,
            m.max,
            m.unit,
            m.target
                .map(|t| format!(" (contract {t})"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        s,
        "outliers (modified z < -3.5): {}; stragglers (< 90% of siblings): {}",
        r.outliers.len(),
        r.stragglers.len()
    );
    // Lists are cut at LIST entries: a terminal is no place for 10,000 node names (see --json).
    const LIST: usize = 10;
    let more = |n: usize| {
        if n > LIST {
            format!(" … and {} more (see --json)", n - LIST)
        } else {
            String::new()
        }
    };
    let slow = r.uniformly_slow_nodes();
    if !slow.is_empty() {
        let _ = writeln!(
            s,
            "uniformly slow nodes (every GPU below contract; a relative check would pass them): {}: {}{}",
            slow.len(),
            slow[..slow.len().min(LIST)].join(", "),
            more(slow.len())
        );
    }
    if let (Some(o), Some(a)) = (r.overall, r.accepted) {
        let _ = writeln!(s, "verdict: {o} (accepted: {a})");
    }
    if let Some(p) = &r.price_performance {
        let _ = write!(
            s,
            "delivered {:.3} of {} contracted GPU-hours per hour ({:.2}%); shortfall ${:.2}/h",
            p.delivered_device_hours_per_hour,
            p.contracted_device_hours_per_hour,
            100.0 * p.delivered_fraction,
            p.shortfall_usd_per_hour
        );
        if let Some(t) = p.shortfall_usd_over_term {
            let _ = write!(s, ", ${t:.2} over the term");
        }
        let _ = writeln!(s);
    }
    if !r.return_nodes.is_empty() {
        let n = r.return_nodes.len();
        let _ = writeln!(
            s,
            "return nodes: {}{}",
            r.return_nodes[..n.min(LIST)].join(", "),
            more(n)
        );
    }
    if !r.return_gpus.is_empty() {
        let gpus: Vec<String> = r
            .return_gpus
            .iter()
            .take(LIST + 1)
            .map(|g| match &g.uuid {
                Some(u) => format!("{} GPU {} ({u})", g.node, g.device),
                None => format!("{} device {}", g.node, g.device),
            })
            .collect();
        let n = r.return_gpus.len();
        let _ = writeln!(
            s,
            "return GPUs: {}{}",
            gpus[..gpus.len().min(LIST)].join(", "),
            more(n)
        );
    }
    if r.wrong_results {
        let _ = writeln!(
            s,
            "WRONG RESULTS on some devices: see the devices flagged wrong_results"
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.json", "node1.json"));
        assert!(wildcard_match("node?-*.json", "node1-0.json"));
        assert!(!wildcard_match("node?.json", "node12.json"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("*.json", "a.jsonl"));
    }

    #[test]
    fn parse_classifies_bad_input() {
        assert_eq!(
            parse_result(b"{\"schema\": \"gpu").unwrap_err().0,
            BadKind::Truncated
        );
        assert_eq!(parse_result(b"").unwrap_err().0, BadKind::Truncated);
        assert_eq!(parse_result(b"{nope}").unwrap_err().0, BadKind::Malformed);
        assert_eq!(
            parse_result(b"{\"schema\": \"gpuaudit.result/v9\"}")
                .unwrap_err()
                .0,
            BadKind::UnknownSchema
        );
        assert_eq!(
            parse_result(b"[1, 2]").unwrap_err().0,
            BadKind::UnknownSchema
        );
        assert_eq!(
            parse_result(b"{\"schema\": \"gpuaudit.result/v1\"}")
                .unwrap_err()
                .0,
            BadKind::Invalid
        );
    }
}
