//! `gpuaudit run`: plan the benchmarks for each device, measure every device concurrently (one
//! thread each), and keep the result file current after every completed benchmark.

use crate::backend::{Backend, BackendChoice, DeviceInfo, Selected};
use crate::bench::gemm::{GemmDtype, GemmSpec};
use crate::bench::stream::{StreamOp, StreamSpec};
use crate::bench::transfer::{TransferKind, TransferSpec};
use crate::bench::{self, BenchContext, Family, Phase, SamplingSettings};
use crate::error::{Error, Result};
use crate::result::{self, Measurement, RunResult, RunSettings, Skipped, Tool};
use crate::stats::StoppingRule;
use crate::telemetry::{self, Recorder, TelemetrySummary, health};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// A smoke test: small sizes, ~2 s per benchmark; about 30 s on a 2-core machine.
    Quick,
    /// The default: sizes that fill the device, ~10–20 s per benchmark.
    Standard,
    /// Larger budgets (60 s per benchmark) for the tightest intervals.
    Full,
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::Quick => "quick",
            Suite::Standard => "standard",
            Suite::Full => "full",
        }
    }
}

/// One benchmark (or variant) the user selected: `gemm`, or `gemm.bf16`, `stream.triad`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchSelection {
    pub family: Family,
    pub variant: Option<String>,
}

impl BenchSelection {
    /// Parse `family` or `family.variant`, checking both against what exists.
    pub fn parse(text: &str) -> std::result::Result<BenchSelection, String> {
        let (family_name, variant) = match text.split_once('.') {
            Some((f, v)) => (f, Some(v)),
            None => (text, None),
        };
        let family = Family::parse(family_name).ok_or_else(|| {
            format!(
                "unknown benchmark '{family_name}'; choose from {}",
                Family::ALL.map(|f| f.name()).join(", ")
            )
        })?;
        if let Some(v) = variant {
            let known: Vec<&str> = match family {
                Family::Gemm => GemmDtype::ALL.iter().map(|d| d.name()).collect(),
                Family::Stream => StreamOp::ALL.iter().map(|o| o.name()).collect(),
                Family::Transfer => vec!["h2d", "d2h", "d2d", "bidir", "h2d_pageable"],
                Family::Launch => vec!["empty_kernel"],
            };
            if !known.contains(&v) {
                return Err(format!(
                    "unknown {family_name} variant '{v}'; choose from {}",
                    known.join(", ")
                ));
            }
        }
        Ok(BenchSelection {
            family,
            variant: variant.map(String::from),
        })
    }

    fn wants(selections: &[BenchSelection], family: Family, variant: &str) -> bool {
        selections
            .iter()
            .any(|s| s.family == family && s.variant.as_deref().is_none_or(|v| v == variant))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeviceSelection {
    All,
    List(Vec<usize>),
}

/// Everything `run` needs, validated (the CLI builds it; tests build it directly).
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub backend: BackendChoice,
    pub devices: DeviceSelection,
    pub suite: Suite,
    /// Empty: every family the backend offers.
    pub benches: Vec<BenchSelection>,
    /// Empty: every GEMM dtype the device offers.
    pub dtypes: Vec<GemmDtype>,
    pub precision: f64,
    pub confidence: f64,
    /// Overrides the suite's per-benchmark sampling budget.
    pub max_time: Option<Duration>,
    /// `None`: `results/<host>-<time>.json`; `Some("-")`: standard output only.
    pub json: Option<PathBuf>,
    pub seed: Option<u64>,
    pub command: Vec<String>,
    /// Judge the result against this contract (and keep sampling undecided targets).
    pub contract: Option<crate::contract::Contract>,
    /// Sustained mode: repeat GEMM and STREAM windows for this long instead of the suite.
    pub duration: Option<Duration>,
    /// Sign the final result with this key (loaded before measuring, so a bad key fails fast).
    pub signer: Option<crate::evidence::Signer>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            backend: BackendChoice::Auto,
            devices: DeviceSelection::All,
            suite: Suite::Standard,
            benches: Vec::new(),
            dtypes: Vec::new(),
            precision: 0.01,
            confidence: 0.95,
            max_time: None,
            json: None,
            seed: None,
            command: Vec::new(),
            contract: None,
            duration: None,
            signer: None,
        }
    }
}

/// One planned benchmark on one device.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanItem {
    Gemm(GemmSpec),
    /// Several shapes of one dtype; the best is reported as `gemm_max.<dtype>` (GPU, full suite).
    GemmSweep(Vec<GemmSpec>),
    Stream {
        spec: StreamSpec,
        ops: Vec<StreamOp>,
    },
    Transfer(TransferSpec),
    Launch,
}

impl PlanItem {
    pub fn family(&self) -> Family {
        match self {
            PlanItem::Gemm(_) | PlanItem::GemmSweep(_) => Family::Gemm,
            PlanItem::Stream { .. } => Family::Stream,
            PlanItem::Transfer(_) => Family::Transfer,
            PlanItem::Launch => Family::Launch,
        }
    }
}

/// Shapes of the full suite's GPU sweep (m, n, k): squares around the headline size plus
/// k-heavy and k-light shapes, the kinds of shapes training and inference run.
pub const GPU_SWEEP_SHAPES: [(usize, usize, usize); 7] = [
    (2048, 2048, 2048),
    (4096, 4096, 4096),
    (6144, 6144, 6144),
    (8192, 8192, 8192),
    (12288, 12288, 12288),
    (8192, 8192, 16384),
    (16384, 16384, 4096),
];

/// Bytes per copy for transfers: 256 MiB (large enough that per-copy overhead is negligible), or
/// 64 MiB in the quick suite.
fn transfer_bytes(suite: Suite) -> u64 {
    match suite {
        Suite::Quick => 64 << 20,
        _ => 256 << 20,
    }
}

/// Sampling budget per benchmark for a suite and family.
pub fn budget(suite: Suite, family: Family) -> Duration {
    let seconds = match (suite, family) {
        (Suite::Quick, _) => 2,
        (Suite::Standard, Family::Gemm) => 20,
        (Suite::Standard, _) => 8,
        (Suite::Full, _) => 60,
    };
    Duration::from_secs(seconds)
}

/// GEMM size per suite, backend and dtype. CPU sizes fill the cores for a fraction of a second
/// per product; GPU sizes follow the field's convention (8192³, mamf-finder's headline shape).
fn gemm_size(suite: Suite, device: &DeviceInfo, dtype: GemmDtype) -> usize {
    let is_cpu = device.threads.is_some();
    match (is_cpu, suite, dtype) {
        (true, Suite::Quick, _) => 2048,
        (true, Suite::Standard, GemmDtype::Fp64) => 3072,
        (true, _, _) => 4096,
        (false, Suite::Quick, _) => 4096,
        (false, _, _) => 8192,
    }
}

/// STREAM array size: ≥ 4× the last-level cache (assume 32 MiB when unknown), and in the
/// standard and full suites ≥ 256 MiB per array (≥ 1 GiB in all on GPUs).
fn stream_spec(suite: Suite, device: &DeviceInfo) -> StreamSpec {
    let cache = device.last_level_cache_bytes.unwrap_or(32 << 20);
    let is_cpu = device.threads.is_some();
    let min_array: u64 = match (suite, is_cpu) {
        (Suite::Quick, _) => 32 << 20,
        (_, true) => 256 << 20,
        (_, false) => 512 << 20,
    };
    StreamSpec::sized_for_cache(cache, 4, min_array)
}

/// The benchmarks to run on one device, and those selected but not available there.
///
/// `free_memory` (bytes free on the device, when the backend knows) sizes GPU buffers: a STREAM
/// plan that would not fit is skipped with the bytes asked for and free.
pub fn plan(
    config: &RunConfig,
    backend: &dyn Backend,
    device: &DeviceInfo,
    gemm_dtypes: &[GemmDtype],
    free_memory: Option<u64>,
) -> (Vec<PlanItem>, Vec<Skipped>) {
    let is_gpu = backend.kind() == crate::backend::BackendKind::Cuda;
    let selections: Vec<BenchSelection> = if config.benches.is_empty() {
        Family::ALL
            .iter()
            .map(|&family| BenchSelection {
                family,
                variant: None,
            })
            .collect()
    } else {
        config.benches.clone()
    };
    let explicit = !config.benches.is_empty();
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    let skip = |skipped: &mut Vec<Skipped>, bench: String, reason: String| {
        skipped.push(Skipped {
            device: Some(device.index),
            bench,
            reason,
        })
    };

    for dtype in GemmDtype::ALL {
        let selected = BenchSelection::wants(&selections, Family::Gemm, dtype.name())
            && (config.dtypes.is_empty() || config.dtypes.contains(&dtype));
        if !selected {
            continue;
        }
        if gemm_dtypes.contains(&dtype) {
            items.push(PlanItem::Gemm(GemmSpec::square(
                dtype,
                gemm_size(config.suite, device, dtype),
            )));
            if is_gpu && config.suite == Suite::Full {
                items.push(PlanItem::GemmSweep(
                    GPU_SWEEP_SHAPES
                        .iter()
                        .map(|&(m, n, k)| GemmSpec { dtype, m, n, k })
                        .collect(),
                ));
            }
        } else if explicit || !config.dtypes.is_empty() {
            skip(
                &mut skipped,
                format!("gemm.{dtype}"),
                format!(
                    "not offered by the {} backend on this device",
                    backend.kind()
                ),
            );
        }
    }

    let ops: Vec<StreamOp> = StreamOp::ALL
        .into_iter()
        .filter(|op| BenchSelection::wants(&selections, Family::Stream, op.name()))
        .collect();
    if !ops.is_empty() {
        let spec = stream_spec(config.suite, device);
        let needed = 3 * spec.array_bytes();
        match free_memory {
            // Half of what is free: the rest is headroom for the context and libraries.
            Some(free) if needed > free / 2 => skip(
                &mut skipped,
                "stream".into(),
                format!(
                    "3 arrays of {} MiB ({} MiB) asked for, but only {} MiB of device memory is free",
                    spec.array_bytes() >> 20,
                    needed >> 20,
                    free >> 20
                ),
            ),
            _ => items.push(PlanItem::Stream { spec, ops }),
        }
    }

    if is_gpu {
        for kind in TransferKind::ALL {
            if BenchSelection::wants(&selections, Family::Transfer, kind.name()) {
                items.push(PlanItem::Transfer(TransferSpec {
                    kind,
                    bytes: transfer_bytes(config.suite),
                }));
            }
        }
        if BenchSelection::wants(&selections, Family::Launch, crate::bench::launch::VARIANT) {
            items.push(PlanItem::Launch);
        }
    }

    for family in [Family::Transfer, Family::Launch] {
        if !is_gpu && selections.iter().any(|s| s.family == family) && explicit {
            skip(
                &mut skipped,
                family.name().into(),
                format!("not available on the {} backend", backend.kind()),
            );
        }
    }
    (items, skipped)
}

/// What a running benchmark tells the display.
// A few events per second cross the channel; boxing the measurement would save nothing real.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        device: usize,
        planned: usize,
        skipped: Vec<Skipped>,
    },
    Progress {
        device: usize,
        label: String,
        phase: Phase,
    },
    Measured(Measurement),
    /// A completed sustained-mode window.
    Window(Box<telemetry::sustained::Window>),
    Failed {
        device: usize,
        message: String,
    },
    Finished {
        device: usize,
    },
}

/// Receives events on the main thread: progress bars, log lines, or nothing (tests).
pub trait Observer {
    fn event(&mut self, event: &Event);
}

/// A run's outcome: the result, where it was written, and what the exit code should reflect.
pub struct Outcome {
    pub result: RunResult,
    /// Where the result was written; `None` for `--json -`.
    pub path: Option<PathBuf>,
    /// The intended path could not be written at the end and this fallback was used.
    pub fallback_used: bool,
    pub wrong_results: bool,
    /// One line per GPU whose datasheet SKU is unknown (no peak, no SKU check).
    pub sku_notes: Vec<String>,
    /// The final result JSON exactly as written (signed when a signer was given).
    pub json: String,
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// `results/<hostname>-<UTC time>.json`, with the time compacted for file names.
pub fn default_result_path(hostname: &str, started_at: &str) -> PathBuf {
    let stamp: String = started_at
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    Path::new("results").join(format!("{}-{}.json", result::sanitize(hostname), stamp))
}

fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    crate::rng::mix64(nanos ^ ((std::process::id() as u64) << 32))
}

/// Resolve where the result goes and check it is writable before any measuring.
pub fn resolve_output(
    config: &RunConfig,
    hostname: &str,
    started_at: &str,
) -> Result<Option<PathBuf>> {
    let path = match &config.json {
        Some(p) if p.as_os_str() == "-" => return Ok(None),
        Some(p) => p.clone(),
        None => default_result_path(hostname, started_at),
    };
    result::ensure_writable(&path)?;
    Ok(Some(path))
}

/// Run the configured benchmarks on every selected device of `selected.backend`.
pub fn run(
    config: &RunConfig,
    selected: Selected,
    observer: &mut dyn Observer,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    let started_at = now_rfc3339();
    let host = crate::host::collect();
    let path = resolve_output(config, &host.hostname, &started_at)?;
    let backend = selected.backend.as_ref();

    let device_indices: Vec<usize> = match &config.devices {
        DeviceSelection::All => backend.devices().iter().map(|d| d.index).collect(),
        DeviceSelection::List(list) => {
            let available = backend.devices().len();
            if let Some(bad) = list.iter().find(|&&i| i >= available) {
                return Err(Error::Usage(format!(
                    "--devices: device {bad} does not exist; the {} backend has {available} device(s) (0..{})",
                    backend.kind(),
                    available.saturating_sub(1)
                )));
            }
            list.clone()
        }
    };
    if device_indices.is_empty() {
        return Err(Error::Environment(format!(
            "the {} backend found no devices to measure",
            backend.kind()
        )));
    }

    let seed = config.seed.unwrap_or_else(fresh_seed);
    let sampling_for = |family: Family| SamplingSettings {
        rule: StoppingRule {
            precision: config.precision,
            level: config.confidence,
            budget: config
                .max_time
                .unwrap_or_else(|| budget(config.suite, family)),
            ..StoppingRule::default()
        },
        warmup: match config.suite {
            Suite::Quick => Duration::from_millis(200),
            _ => Duration::from_millis(1000),
        },
        ..SamplingSettings::default()
    };

    let devices: Vec<DeviceInfo> = device_indices
        .iter()
        .filter_map(|&i| backend.devices().get(i).cloned())
        .collect();
    // Before measuring: the instance lookup may take up to a second on a cloud instance.
    let provenance = crate::evidence::provenance::collect(backend, &devices);
    let mut result = RunResult {
        schema: result::SCHEMA.into(),
        tool: Tool::this(),
        complete: false,
        interrupted: false,
        started_at: started_at.clone(),
        finished_at: None,
        command: config.command.clone(),
        settings: RunSettings {
            suite: config.suite.name().into(),
            precision: config.precision,
            confidence: config.confidence,
            max_time_s: config
                .max_time
                .unwrap_or_else(|| budget(config.suite, Family::Gemm))
                .as_secs_f64(),
            seed,
            benches: if config.benches.is_empty() {
                vec!["all".into()]
            } else {
                config
                    .benches
                    .iter()
                    .map(|b| match &b.variant {
                        Some(v) => format!("{}.{v}", b.family.name()),
                        None => b.family.name().into(),
                    })
                    .collect()
            },
        },
        host,
        backend: backend.kind(),
        backend_reason: selected.reason.clone(),
        components: backend.components(),
        devices,
        measurements: Vec::new(),
        skipped: Vec::new(),
        errors: Vec::new(),
        verdict: None,
        health: Vec::new(),
        findings: Vec::new(),
        sustained: config.duration.map(|d| telemetry::sustained::Sustained {
            duration_s: d.as_secs_f64(),
            window_s: telemetry::sustained::window_length(d).as_secs_f64(),
            decay_threshold: telemetry::sustained::DECAY_THRESHOLD,
            windows: Vec::new(),
            decay: Vec::new(),
        }),
        provenance: Some(provenance),
    };
    // GPU health before any load; NVML is opened once for every device (joined by UUID).
    let nvml = match backend.kind() {
        crate::backend::BackendKind::Cuda => Some(telemetry::nvml::open()),
        crate::backend::BackendKind::Cpu => None,
    };
    let snapshot = |d: &DeviceInfo| -> std::result::Result<_, telemetry::TelemetryError> {
        let nvml = match &nvml {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(telemetry::TelemetryError::Unavailable(e.to_string())),
            None => return Err(telemetry::TelemetryError::Unavailable("not a GPU".into())),
        };
        let uuid = d.uuid.as_deref().ok_or_else(|| {
            telemetry::TelemetryError::Unavailable("no UUID to join NVML on".into())
        })?;
        health::snapshot(nvml, uuid, now_rfc3339())
    };
    if nvml.is_some() {
        result.health = result
            .devices
            .iter()
            .map(|d| health::DeviceHealth::new(d.index, d.uuid.clone(), snapshot(d)))
            .collect();
    }
    let save = |result: &RunResult| -> Result<()> {
        match &path {
            Some(p) => result.write_atomic(p),
            None => Ok(()),
        }
    };
    // Write at once: a file that says "incomplete" is better evidence than no file.
    save(&result)?;

    let (tx, rx) = mpsc::channel::<Event>();
    let mut wrong_results = false;
    std::thread::scope(|scope| {
        for &index in &device_indices {
            let tx = tx.clone();
            let sampling_for = &sampling_for;
            scope.spawn(move || {
                measure_device(config, backend, index, seed, sampling_for, cancel, &tx);
                let _ = tx.send(Event::Finished { device: index });
            });
        }
        drop(tx);
        for event in rx {
            observer.event(&event);
            match event {
                Event::Measured(m) => {
                    wrong_results |= !m.correct;
                    result.measurements.push(m);
                    if let Err(e) = save(&result) {
                        result
                            .errors
                            .push(format!("intermediate write failed: {e}"));
                    }
                }
                Event::Window(w) => {
                    if let Some(s) = result.sustained.as_mut() {
                        s.windows.push(*w);
                    }
                    if let Err(e) = save(&result) {
                        result
                            .errors
                            .push(format!("intermediate write failed: {e}"));
                    }
                }
                Event::Failed { device, message } => {
                    result.errors.push(format!("device {device}: {message}"))
                }
                Event::Started { skipped, .. } => result.skipped.extend(skipped),
                Event::Progress { .. } | Event::Finished { .. } => {}
            }
        }
    });
    result.interrupted = cancel.load(std::sync::atomic::Ordering::Relaxed);
    result.complete = !result.interrupted && result.errors.is_empty();
    result.finished_at = Some(now_rfc3339());
    // Health after the load (while clocks and link are still up), then the findings, which the
    // verdict's shortfall attribution reads.
    let devices = result.devices.clone();
    for h in &mut result.health {
        if let Some(d) = devices.iter().find(|d| d.index == h.device) {
            h.set_after(snapshot(d));
        }
    }
    result.findings = result.health.iter().flat_map(health::findings).collect();
    if let Some(s) = result.sustained.as_mut() {
        s.decay = telemetry::sustained::decays(&s.windows, s.decay_threshold);
        result
            .findings
            .extend(telemetry::sustained::decay_findings(&s.decay));
    }
    // Datasheet peaks, and the verdict when a contract was given, go into the final file.
    let sku_notes = crate::specs::annotate(&mut result);
    if let Some(contract) = &config.contract {
        result.verdict = Some(crate::contract::judge(contract, &result, SystemTime::now()));
    }

    // Only the final file is signed: intermediate writes are `complete: false` and unsigned.
    let render = |result: &RunResult| -> Result<String> {
        let mut text = match &config.signer {
            Some(signer) => signer.sign_result(result)?,
            None => result.to_json()?,
        };
        text.push('\n');
        Ok(text)
    };
    let mut json = render(&result)?;
    let mut fallback_used = false;
    let written = match &path {
        None => None,
        Some(p) => match result::write_atomic(p, json.as_bytes()) {
            Ok(()) => Some(p.clone()),
            Err(first) => {
                let fallback = result::fallback_path(&result.host.hostname, &result.started_at);
                result
                    .errors
                    .push(format!("{first}; wrote {} instead", fallback.display()));
                json = render(&result)?;
                result::write_atomic(&fallback, json.as_bytes()).map_err(|second| {
                    Error::Usage(format!(
                        "{first}; the fallback {} failed too: {second}",
                        fallback.display()
                    ))
                })?;
                fallback_used = true;
                Some(fallback)
            }
        },
    };
    Ok(Outcome {
        result,
        path: written,
        fallback_used,
        wrong_results,
        sku_notes,
        json,
    })
}

/// Drive one device through its plan, reporting through `tx`. Runs on the device's own thread.
fn measure_device(
    config: &RunConfig,
    backend: &dyn Backend,
    index: usize,
    seed: u64,
    sampling_for: &dyn Fn(Family) -> SamplingSettings,
    cancel: &AtomicBool,
    tx: &mpsc::Sender<Event>,
) {
    let fail = |message: String| {
        let _ = tx.send(Event::Failed {
            device: index,
            message,
        });
    };
    let mut device = match backend.open(index) {
        Ok(d) => d,
        Err(e) => return fail(format!("cannot open: {e}")),
    };
    let info = device.info().clone();
    let (items, skipped) = plan(
        config,
        backend,
        &info,
        &device.gemm_dtypes(),
        device.free_memory_bytes(),
    );
    let _ = tx.send(Event::Started {
        device: index,
        planned: items.len(),
        skipped,
    });
    let (mut sampler, unavailable) = match telemetry::sampler_for(backend.kind(), &info) {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e.to_string())),
    };
    if let Some(duration) = config.duration {
        return sustained_device(
            device.as_mut(),
            &items,
            duration,
            seed,
            sampling_for,
            sampler,
            cancel,
            tx,
        );
    }
    for item in items {
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut progress = |label: &str, phase: Phase| {
            let _ = tx.send(Event::Progress {
                device: index,
                label: label.to_string(),
                phase,
            });
        };
        let mut ctx = BenchContext {
            sampling: sampling_for(item.family()),
            seed,
            cancel,
            progress: &mut progress,
            decision: config.contract.as_ref().map(|c| c as &dyn bench::Decision),
        };
        // Telemetry polls through the whole benchmark; each measurement keeps the readings
        // inside its own timed loop.
        let recorder = sampler
            .take()
            .map(|s| Recorder::start(s, telemetry::DEFAULT_INTERVAL));
        let send = |mut m: Measurement| {
            m.telemetry = match (&recorder, m.timed_window) {
                (Some(r), Some((from, to))) => {
                    Some(Box::new(r.summarize(from, to, m.median(), m.unit)))
                }
                (None, _) => unavailable
                    .as_deref()
                    .map(|why| Box::new(TelemetrySummary::unavailable(backend.kind().name(), why))),
                (Some(_), None) => None,
            };
            let _ = tx.send(Event::Measured(m));
        };
        let outcome = match &item {
            PlanItem::Gemm(spec) => bench::run_gemm(device.as_mut(), *spec, &mut ctx).map(send),
            PlanItem::GemmSweep(specs) => bench::run_gemm_sweep(device.as_mut(), specs, &mut ctx)
                .map(|m| {
                    if let Some(m) = m {
                        send(m);
                    }
                }),
            PlanItem::Stream { spec, ops } => {
                bench::run_stream(device.as_mut(), *spec, ops, &mut ctx, &mut |m| send(m))
            }
            PlanItem::Transfer(spec) => {
                bench::transfer::run_transfer(device.as_mut(), *spec, &mut ctx).map(send)
            }
            PlanItem::Launch => bench::launch::run_launch(device.as_mut(), &mut ctx).map(send),
        };
        sampler = recorder.and_then(Recorder::stop);
        match outcome {
            Ok(()) => {}
            Err(e) => fail(format!("{}: {e}", item.family().name())),
        }
    }
}

/// Sustained mode on one device: one GEMM (bf16 when offered, else the widest-used dtype
/// planned) and STREAM triad per window, for `duration`.
#[allow(clippy::too_many_arguments)]
fn sustained_device(
    device: &mut dyn crate::backend::Device,
    items: &[PlanItem],
    duration: Duration,
    seed: u64,
    sampling_for: &dyn Fn(Family) -> SamplingSettings,
    sampler: Option<Box<dyn telemetry::Sampler>>,
    cancel: &AtomicBool,
    tx: &mpsc::Sender<Event>,
) {
    let index = device.info().index;
    let gemms: Vec<GemmSpec> = items
        .iter()
        .filter_map(|i| match i {
            PlanItem::Gemm(s) => Some(*s),
            _ => None,
        })
        .collect();
    let preference = [
        GemmDtype::Bf16,
        GemmDtype::Fp16,
        GemmDtype::Tf32,
        GemmDtype::Fp32,
    ];
    let gemm = preference
        .iter()
        .find_map(|d| gemms.iter().find(|s| s.dtype == *d).copied())
        .or_else(|| gemms.first().copied());
    let stream = items.iter().find_map(|i| match i {
        PlanItem::Stream { spec, .. } => Some(*spec),
        _ => None,
    });
    let plan = telemetry::sustained::SustainedPlan {
        duration,
        window: telemetry::sustained::window_length(duration),
        gemm,
        stream,
    };
    let mut progress = |label: &str, phase: Phase| {
        let _ = tx.send(Event::Progress {
            device: index,
            label: label.to_string(),
            phase,
        });
    };
    let mut ctx = BenchContext {
        sampling: sampling_for(Family::Gemm),
        seed,
        cancel,
        progress: &mut progress,
        decision: None,
    };
    let outcome = telemetry::sustained::run_windows(
        device,
        &plan,
        &mut ctx,
        sampler,
        &mut |w| {
            let _ = tx.send(Event::Window(Box::new(w)));
        },
        &mut |m| {
            let _ = tx.send(Event::Measured(m));
        },
    );
    if let Err(e) = outcome {
        let _ = tx.send(Event::Failed {
            device: index,
            message: format!("sustained: {e}"),
        });
    }
}
