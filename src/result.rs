//! The published result file (schema `gpuaudit.result/v1`): wire types, atomic writing, and
//! loading with clear errors.
//!
//! A result file is evidence: it is rewritten atomically (temporary file in the same folder, then
//! rename) after every completed benchmark, so a crash, a GPU fault or Ctrl-C later in the run
//! leaves a valid file holding everything measured so far, marked `"complete": false`.

use crate::backend::{BackendKind, Component, DeviceInfo};
use crate::error::{Error, Result};
use crate::stats::{StopReason, Summary};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const SCHEMA: &str = "gpuaudit.result/v1";

/// Unit of a measurement. Throughput units use decimal prefixes (1 TFLOPS = 1e12 FLOP/s,
/// 1 GB/s = 1e9 B/s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Tflops,
    Gbps,
    /// Microseconds per operation (latency; lower is better).
    Us,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Tflops => "tflops",
            Unit::Gbps => "gbps",
            Unit::Us => "us",
        }
    }

    /// Symbol for tables.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Tflops => "TFLOPS",
            Unit::Gbps => "GB/s",
            Unit::Us => "µs",
        }
    }

    pub fn higher_is_better(self) -> bool {
        !matches!(self, Unit::Us)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
    /// Commit the binary was built from, when the build could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
}

impl Tool {
    pub fn this() -> Tool {
        Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            git_commit: option_env!("GPUAUDIT_GIT_COMMIT")
                .filter(|c| !c.is_empty())
                .map(String::from),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HostInfo {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpu_cores: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_cores: Option<usize>,
    pub memory_bytes: u64,
}

/// How the run was configured, so a reader can judge and reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    pub suite: String,
    /// Target relative half-width of each median's CI.
    pub precision: f64,
    pub confidence: f64,
    /// Sampling budget per benchmark, seconds.
    pub max_time_s: f64,
    /// Seed of the counter RNG that generated every operand.
    pub seed: u64,
    pub benches: Vec<String>,
}

/// One measured benchmark on one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub device: usize,
    pub bench: String,
    pub variant: String,
    /// Name used by contracts: `<bench>.<variant>.<unit>`.
    pub metric: String,
    pub unit: Unit,
    /// GEMM: [m, n, k]; STREAM: [elements per array]; transfers: [bytes].
    pub shape: Vec<u64>,
    /// Library path and compute type that did the work.
    pub implementation: String,
    /// FLOPs (GEMM), bytes (STREAM, transfers) or launches per iteration, by the documented
    /// convention.
    pub work_per_iteration: f64,
    pub iterations_per_sample: u32,
    /// Absent when no timing counted (wrong results, or interrupted before the first sample).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// Every sample, in the unit, in the order taken.
    pub samples: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    /// Whether the output passed its correctness check before and after timing.
    pub correct: bool,
    pub max_rel_error: f64,
    /// What was checked and how it came out.
    pub check: String,
    /// Dense datasheet peak for this device and variant, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction_of_peak: Option<f64>,
    pub duration_s: f64,
    /// Clocks, power, temperature and throttle reasons over the timed samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<Box<crate::telemetry::TelemetrySummary>>,
    /// Start and end of the timed sampling loop, so telemetry can be cut to it (not published).
    #[serde(skip)]
    pub timed_window: Option<(std::time::Instant, std::time::Instant)>,
}

impl Measurement {
    pub fn new(
        device: usize,
        bench: &str,
        variant: &str,
        unit: Unit,
        shape: Vec<u64>,
        implementation: String,
        work_per_iteration: f64,
    ) -> Measurement {
        Measurement {
            device,
            bench: bench.into(),
            variant: variant.into(),
            metric: format!("{bench}.{variant}.{}", unit.name()),
            unit,
            shape,
            implementation,
            work_per_iteration,
            iterations_per_sample: 0,
            summary: None,
            samples: Vec::new(),
            stop_reason: None,
            correct: true,
            max_rel_error: 0.0,
            check: String::new(),
            peak: None,
            fraction_of_peak: None,
            duration_s: 0.0,
            telemetry: None,
            timed_window: None,
        }
    }

    pub fn median(&self) -> Option<f64> {
        self.summary.as_ref().map(|s| s.median)
    }
}

/// A benchmark that was planned but not run, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<usize>,
    pub bench: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub schema: String,
    pub tool: Tool,
    /// False while the run is in progress, or if it was interrupted or failed part-way.
    pub complete: bool,
    #[serde(default)]
    pub interrupted: bool,
    /// RFC 3339, UTC.
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The command line as given.
    pub command: Vec<String>,
    pub settings: RunSettings,
    pub host: HostInfo,
    pub backend: BackendKind,
    /// Why this backend was chosen (e.g. "no CUDA driver found; using the CPU backend").
    pub backend_reason: String,
    #[serde(default)]
    pub components: Vec<Component>,
    pub devices: Vec<DeviceInfo>,
    pub measurements: Vec<Measurement>,
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// Errors that stopped part of the run (a device that failed, a library call that failed).
    #[serde(default)]
    pub errors: Vec<String>,
    /// The judgement against a contract, when one was given (`run --contract`, `check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<crate::contract::Verdict>,
    /// GPU health before and after the run (NVML); empty on the CPU backend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<crate::telemetry::health::DeviceHealth>,
    /// Health and sustained-mode findings, with severities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<crate::telemetry::health::Finding>,
    /// The window time series of `run --duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sustained: Option<crate::telemetry::sustained::Sustained>,
    /// What produced this result (binary and kernel hashes, libraries, device and instance
    /// identities); absent in files written before it existed. See `crate::evidence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<crate::evidence::Provenance>,
}

impl RunResult {
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::Usage(format!("cannot serialise the result: {e}")))
    }

    /// Write atomically; see the module docs.
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        let mut json = self.to_json()?;
        json.push('\n');
        write_atomic(path, json.as_bytes())
    }

    /// Load and validate a result file: JSON syntax (with line and column), schema version, then
    /// fields. Every error names the file and says what is wrong.
    pub fn load(path: &Path) -> Result<RunResult> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse result JSON; `origin` names where it came from in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<RunResult> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            let what = if e.is_eof() {
                "truncated (ends before the JSON does)"
            } else {
                "not valid JSON"
            };
            Error::Usage(format!(
                "{origin}: {what} at line {}, column {}: {e}",
                e.line(),
                e.column()
            ))
        })?;
        match value.get("schema").and_then(|s| s.as_str()) {
            Some(SCHEMA) => {}
            Some(other) => {
                return Err(Error::Usage(format!(
                    "{origin}: schema is \"{other}\"; this gpuaudit reads \"{SCHEMA}\""
                )));
            }
            None => {
                return Err(Error::Usage(format!(
                    "{origin}: no \"schema\" field; not a gpuaudit result (expected \"{SCHEMA}\")"
                )));
            }
        }
        serde_json::from_value(value)
            .map_err(|e| Error::Usage(format!("{origin}: invalid result: {e}")))
    }
}

/// Write `bytes` to `path` atomically: a temporary file in the same folder, flushed to disk, then
/// renamed over the target. Readers see the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] for content produced by a writer (streamed, so a report of hundreds of MB
/// need not sit in memory as one string).
pub fn write_atomic_with(
    path: &Path,
    produce: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temp_path_beside(path);
    let write = || -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        produce(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// A temporary file name in the same folder as `path` (so a rename onto it is atomic), hidden
/// and unique to this process: `.<name>.tmp-<pid>`.
pub fn temp_path_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gpuaudit".into());
    parent_dir(path).join(format!(".{name}.tmp-{}", std::process::id()))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Check, before any measuring starts, that `path` can be written: its folder exists (or can be
/// created) and accepts a file. Catches a typo'd or read-only path before minutes of GPU time.
pub fn ensure_writable(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "--json {}: is a directory; give a file path such as {}/result.json",
            path.display(),
            path.display()
        )));
    }
    let dir = parent_dir(path);
    std::fs::create_dir_all(&dir).map_err(|e| {
        Error::Usage(format!(
            "--json {}: cannot create folder {}: {e}",
            path.display(),
            dir.display()
        ))
    })?;
    let probe = dir.join(format!(".gpuaudit-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| {
        Error::Usage(format!(
            "--json {}: folder {} is not writable: {e}",
            path.display(),
            dir.display()
        ))
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Where a result goes when its intended path cannot be written at the end: the system's
/// temporary folder, with a name that cannot clash.
pub fn fallback_path(hostname: &str, stamp: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "gpuaudit-{}-{}-{}.json",
        sanitize(hostname),
        sanitize(stamp),
        std::process::id()
    ))
}

/// Keep file names portable: letters, digits, '-', '_' and '.'.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_result() -> RunResult {
        let mut m = Measurement::new(
            0,
            "gemm",
            "bf16",
            Unit::Tflops,
            vec![8192, 8192, 8192],
            "cublaslt bf16 (compute 32F)".into(),
            2.0 * 8192f64.powi(3),
        );
        m.samples = vec![790.0, 791.0, 792.0, 789.0, 790.5, 791.5];
        m.summary = Summary::of(&m.samples, 0.95);
        m.stop_reason = Some(StopReason::PrecisionReached);
        RunResult {
            schema: SCHEMA.into(),
            tool: Tool::this(),
            complete: true,
            interrupted: false,
            started_at: "2026-11-28T10:00:00Z".into(),
            finished_at: Some("2026-11-28T10:01:00Z".into()),
            command: vec!["gpuaudit".into(), "run".into()],
            settings: RunSettings {
                suite: "standard".into(),
                precision: 0.01,
                confidence: 0.95,
                max_time_s: 20.0,
                seed: 7,
                benches: vec!["gemm".into()],
            },
            host: HostInfo::default(),
            backend: BackendKind::Cuda,
            backend_reason: "test".into(),
            components: vec![],
            devices: vec![DeviceInfo::default()],
            measurements: vec![m],
            skipped: vec![],
            errors: vec![],
            verdict: None,
            health: vec![],
            findings: vec![],
            sustained: None,
            provenance: None,
        }
    }

    #[test]
    fn round_trips_through_json_with_flattened_summary() {
        let r = sample_result();
        let json = r.to_json().expect("serialises");
        let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        let m = &v["measurements"][0];
        assert_eq!(m["metric"], "gemm.bf16.tflops");
        assert_eq!(m["median"], 790.75);
        assert!(m["ci"].is_array());
        let back = RunResult::parse(&json, "test").expect("parses");
        assert_eq!(back, r);
    }

    #[test]
    fn a_measurement_without_timing_round_trips() {
        let mut r = sample_result();
        r.measurements[0].summary = None;
        r.measurements[0].samples.clear();
        r.measurements[0].correct = false;
        let json = r.to_json().expect("serialises");
        assert!(!json.contains("\"median\""));
        let back = RunResult::parse(&json, "test").expect("parses");
        assert_eq!(back.measurements[0].summary, None);
    }

    #[test]
    fn load_errors_name_file_and_reason() {
        let json = sample_result().to_json().expect("serialises");
        let truncated = &json[..json.len() / 2];
        let e = RunResult::parse(truncated, "r.json").expect_err("truncated");
        assert!(e.to_string().starts_with("r.json: truncated"), "{e}");
        let other = json.replace(SCHEMA, "gpuaudit.result/v9");
        let e = RunResult::parse(&other, "r.json").expect_err("schema");
        assert!(e.to_string().contains("gpuaudit.result/v9"), "{e}");
        let e = RunResult::parse("{\"a\": 1}", "x.json").expect_err("no schema");
        assert!(e.to_string().contains("no \"schema\" field"), "{e}");
        let e = RunResult::parse("[1, 2", "y.json").expect_err("bad");
        assert_eq!(e.exit_code(), crate::error::exit_code::USAGE);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.json");
        let mut r = sample_result();
        r.write_atomic(&path).expect("first write");
        r.complete = false;
        r.write_atomic(&path).expect("second write");
        let back = RunResult::load(&path).expect("loads");
        assert!(!back.complete);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("readable")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn ensure_writable_rejects_directories_and_unwritable_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(ensure_writable(dir.path()).is_err());
        assert!(ensure_writable(&dir.path().join("new/sub/r.json")).is_ok());
        // A path under a regular file can never be created.
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").expect("write");
        let e = ensure_writable(&file.join("r.json")).expect_err("under a file");
        assert_eq!(e.exit_code(), crate::error::exit_code::USAGE);
    }
}
