//! Benchmark families, written once against the `Backend` traits: what to run, how to check it,
//! how to time it. Every family follows the same honest order:
//!
//! 1. prepare operands (untimed);
//! 2. run once and **check the answer** — a wrong answer ends the benchmark with no timing;
//! 3. warm up, then calibrate iterations per sample so each sample lasts at least
//!    `min_sample` (timer resolution becomes irrelevant);
//! 4. sample until the median's CI is as tight as asked, or the time budget ends;
//! 5. check the answer again, so corruption under sustained load is caught too.

pub mod gemm;
pub mod launch;
pub mod stream;
pub mod transfer;

use crate::backend::{Device, StreamWorkload};
use crate::error::{Error, Result};
use crate::result::{Measurement, Unit};
use crate::stats::{StopReason, StoppingRule, Summary};
use gemm::GemmSpec;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use stream::{ExpectedState, StreamOp, StreamSpec};

/// The benchmark families, as named on the command line and in results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Gemm,
    Stream,
    Transfer,
    Launch,
}

impl Family {
    pub const ALL: [Family; 4] = [
        Family::Gemm,
        Family::Stream,
        Family::Transfer,
        Family::Launch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Gemm => "gemm",
            Family::Stream => "stream",
            Family::Transfer => "transfer",
            Family::Launch => "launch",
        }
    }

    pub fn parse(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// How long and how precisely to sample one benchmark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingSettings {
    pub rule: StoppingRule,
    /// Untimed running before sampling, so clocks, caches and the library's heuristics settle.
    pub warmup: Duration,
    /// Shortest sample; iterations per sample are calibrated up to it.
    pub min_sample: Duration,
}

impl Default for SamplingSettings {
    fn default() -> Self {
        SamplingSettings {
            rule: StoppingRule::default(),
            warmup: Duration::from_millis(500),
            min_sample: Duration::from_millis(10),
        }
    }
}

/// What a benchmark is doing right now, for progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Preparing,
    Checking,
    WarmingUp,
    Sampling {
        summary: Option<Summary>,
        unit: Unit,
    },
}

/// A pending decision on measurements (a contract's targets): while it is open for a metric,
/// sampling continues past the precision stop until decided or out of budget.
pub trait Decision: Sync {
    /// True while the samples so far of `metric` on `device` leave a target undecided.
    fn undecided(&self, device: usize, metric: &str, samples: &[f64]) -> bool;
}

/// Shared by every benchmark of one device: settings, the interrupt flag, the progress sink.
pub struct BenchContext<'a> {
    pub sampling: SamplingSettings,
    pub seed: u64,
    pub cancel: &'a AtomicBool,
    pub progress: &'a mut dyn FnMut(&str, Phase),
    /// Contract targets to decide while sampling; `None` without a contract.
    pub decision: Option<&'a dyn Decision>,
}

impl BenchContext<'_> {
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Convert one sample (elapsed seconds for `iterations` runs) to the reported unit.
pub fn sample_value(unit: Unit, work_per_iteration: f64, iterations: u32, seconds: f64) -> f64 {
    let iterations = iterations as f64;
    match unit {
        Unit::Tflops => work_per_iteration * iterations / seconds / 1e12,
        Unit::Gbps => work_per_iteration * iterations / seconds / 1e9,
        Unit::Us => seconds / iterations * 1e6,
    }
}

/// Result of a sampling loop.
#[derive(Debug, Clone)]
pub struct Sampled {
    pub values: Vec<f64>,
    pub iterations_per_sample: u32,
    pub stop_reason: StopReason,
    /// Start and end of the timed loop (telemetry is cut to it).
    pub timed: (Instant, Instant),
}

/// Warm up, calibrate, and sample `run` (which runs the operation n times and returns elapsed
/// seconds) until the stopping rule says stop. For a named measurement (`subject` =
/// `(device, metric)`), while `ctx.decision` leaves one of its targets undecided, sampling goes on
/// past the precision stop.
pub fn sample(
    subject: Option<(usize, &str)>,
    label: &str,
    run: &mut dyn FnMut(u32) -> Result<f64>,
    unit: Unit,
    work_per_iteration: f64,
    ctx: &mut BenchContext<'_>,
) -> Result<Sampled> {
    let decision = ctx.decision;
    let open = |samples: &[f64]| match (decision, subject) {
        (Some(d), Some((device, metric))) => d.undecided(device, metric, samples),
        _ => false,
    };
    let settings = ctx.sampling;
    (ctx.progress)(label, Phase::WarmingUp);
    let warmup_start = Instant::now();
    let mut per_iteration = run(1)?;
    while warmup_start.elapsed() < settings.warmup && !ctx.cancelled() {
        per_iteration = run(1)?;
    }
    if per_iteration.is_nan() || per_iteration <= 0.0 {
        return Err(Error::backend(
            "timer",
            format!("{label}: the timer reported {per_iteration} s for one run"),
        ));
    }
    // Shave a relative 1e-9 so an exact ratio (10 ms / 1 ms) is not rounded up by float error.
    let wanted = settings.min_sample.as_secs_f64() / per_iteration * (1.0 - 1e-9);
    let iterations = wanted.ceil().clamp(1.0, 1e6) as u32;

    let mut values = Vec::new();
    let start = Instant::now();
    let stop_reason = loop {
        if ctx.cancelled() {
            break StopReason::Interrupted;
        }
        let seconds = run(iterations)?;
        values.push(sample_value(unit, work_per_iteration, iterations, seconds));
        (ctx.progress)(
            label,
            Phase::Sampling {
                summary: Summary::of(&values, settings.rule.level),
                unit,
            },
        );
        if let Some(reason) =
            settings
                .rule
                .should_stop_deciding(&values, start.elapsed(), Some(&open))
        {
            break reason;
        }
    };
    Ok(Sampled {
        values,
        iterations_per_sample: iterations,
        stop_reason,
        timed: (start, Instant::now()),
    })
}

pub(crate) fn finish(
    mut m: Measurement,
    sampled: Option<Sampled>,
    level: f64,
    started: Instant,
) -> Measurement {
    if let Some(s) = sampled {
        m.summary = Summary::of(&s.values, level);
        m.iterations_per_sample = s.iterations_per_sample;
        m.stop_reason = Some(s.stop_reason);
        m.samples = s.values;
        m.timed_window = Some(s.timed);
    }
    m.duration_s = started.elapsed().as_secs_f64();
    m
}

/// Measure one GEMM on `device`.
pub fn run_gemm(
    device: &mut dyn Device,
    spec: GemmSpec,
    ctx: &mut BenchContext<'_>,
) -> Result<Measurement> {
    let started = Instant::now();
    let label = format!("gemm {} {}×{}×{}", spec.dtype, spec.m, spec.n, spec.k);
    (ctx.progress)(&label, Phase::Preparing);
    let device_index = device.info().index;
    let mut workload = device.gemm(&spec, ctx.seed)?;
    let mut m = Measurement::new(
        device_index,
        "gemm",
        spec.dtype.name(),
        Unit::Tflops,
        vec![spec.m as u64, spec.n as u64, spec.k as u64],
        workload.implementation(),
        spec.flops(),
    );

    (ctx.progress)(&label, Phase::Checking);
    workload.run_timed(1)?;
    let before = gemm::verify(spec, ctx.seed, 0, &mut *workload)?;
    m.max_rel_error = before.max_rel_error;
    if !before.passed {
        m.correct = false;
        m.check = format!("before timing: {}", before.describe());
        return Ok(finish(m, None, ctx.sampling.rule.level, started));
    }

    let sampled = sample(
        Some((device_index, &m.metric)),
        &label,
        &mut |iterations| workload.run_timed(iterations),
        Unit::Tflops,
        spec.flops(),
        ctx,
    )?;

    (ctx.progress)(&label, Phase::Checking);
    let after = gemm::verify(spec, ctx.seed, 1, &mut *workload)?;
    m.max_rel_error = before.max_rel_error.max(after.max_rel_error);
    m.correct = after.passed;
    m.check = if after.passed {
        format!(
            "Freivalds (2 vectors) + {} sampled entries, before and after timing; worst residual {:.2}× its bound",
            before.entries_checked,
            before.worst_bound_ratio.max(after.worst_bound_ratio)
        )
    } else {
        format!("after timing: {}", after.describe())
    };
    let sampled = if after.passed { Some(sampled) } else { None };
    Ok(finish(m, sampled, ctx.sampling.rule.level, started))
}

/// Longest sampling per shape of a sweep: the sweep looks for the best shape, and a few seconds
/// per shape pin a median down well enough to rank them.
pub const SWEEP_BUDGET_PER_SHAPE: Duration = Duration::from_secs(5);

/// Measure every shape in `specs` (one dtype) and report the best median as `gemm_max.<dtype>`:
/// the maximum achievable FLOP rate, as mamf-finder reports it. Every shape is verified as in
/// [`run_gemm`]; a wrong result anywhere is reported instead of a best.
pub fn run_gemm_sweep(
    device: &mut dyn Device,
    specs: &[GemmSpec],
    ctx: &mut BenchContext<'_>,
) -> Result<Option<Measurement>> {
    let saved = ctx.sampling;
    ctx.sampling.rule.budget = ctx.sampling.rule.budget.min(SWEEP_BUDGET_PER_SHAPE);
    let mut results = Vec::new();
    for spec in specs {
        if ctx.cancelled() {
            break;
        }
        let measured = run_gemm(device, *spec, ctx);
        match measured {
            Ok(m) => results.push(m),
            Err(e) => {
                ctx.sampling = saved;
                return Err(e);
            }
        }
    }
    ctx.sampling = saved;
    let shapes: Vec<String> = specs
        .iter()
        .map(|s| format!("{}×{}×{}", s.m, s.n, s.k))
        .collect();
    let mut chosen = match results.iter().position(|m| !m.correct) {
        Some(bad) => results.swap_remove(bad),
        None => {
            let best = results
                .iter()
                .enumerate()
                .filter_map(|(i, m)| m.summary.as_ref().map(|s| (i, s.median)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i);
            match best {
                Some(i) => results.swap_remove(i),
                None => return Ok(None),
            }
        }
    };
    chosen.bench = "gemm_max".into();
    chosen.metric = format!("gemm_max.{}.{}", chosen.variant, chosen.unit.name());
    chosen.check = format!(
        "best median of the shapes {} (each checked as for gemm); {}",
        shapes.join(", "),
        chosen.check
    );
    Ok(Some(chosen))
}

/// Check the STREAM arrays against the expected state; `None` when correct, else a description.
fn check_stream(
    workload: &mut dyn StreamWorkload,
    expected: &ExpectedState,
    op: StreamOp,
    elements: usize,
) -> Result<(f64, Option<String>)> {
    let deviations = workload.max_deviation(expected.values)?;
    let dot = if op == StreamOp::Dot {
        Some((workload.last_dot()?, elements))
    } else {
        None
    };
    Ok(stream::judge(expected, deviations, dot))
}

/// Measure the STREAM ops `ops` (run in BabelStream's order) on `device`. Stops at the first op
/// whose results are wrong: the arrays' contents are then unknown, so later ops cannot be checked.
pub fn run_stream(
    device: &mut dyn Device,
    spec: StreamSpec,
    ops: &[StreamOp],
    ctx: &mut BenchContext<'_>,
    on_measurement: &mut dyn FnMut(Measurement),
) -> Result<()> {
    let device_index = device.info().index;
    let prepare_label = format!("stream ({} MiB per array)", spec.array_bytes() >> 20);
    (ctx.progress)(&prepare_label, Phase::Preparing);
    let mut workload = device.stream(&spec)?;
    let mut expected = ExpectedState::default();
    let mut ordered: Vec<StreamOp> = ops.to_vec();
    ordered.sort();
    ordered.dedup();
    // Each op's inputs come from the ops before it; run those once so the state is as expected.
    for op in StreamOp::ALL {
        if ctx.cancelled() {
            return Ok(());
        }
        if !ordered.contains(&op) {
            workload.run_timed(op, 1)?;
            expected.apply(op);
            continue;
        }
        let started = Instant::now();
        let label = format!("stream {}", op.name());
        let mut m = Measurement::new(
            device_index,
            "stream",
            op.name(),
            Unit::Gbps,
            vec![spec.elements as u64],
            workload.implementation(),
            spec.bytes(op),
        );
        (ctx.progress)(&label, Phase::Checking);
        workload.run_timed(op, 1)?;
        expected.apply(op);
        let (err_before, problem) = check_stream(&mut *workload, &expected, op, spec.elements)?;
        m.max_rel_error = err_before;
        if let Some(problem) = problem {
            m.correct = false;
            m.check = format!("before timing: {problem}");
            on_measurement(finish(m, None, ctx.sampling.rule.level, started));
            return Ok(());
        }
        let sampled = sample(
            Some((device_index, &m.metric)),
            &label,
            &mut |iterations| workload.run_timed(op, iterations),
            Unit::Gbps,
            spec.bytes(op),
            ctx,
        )?;
        (ctx.progress)(&label, Phase::Checking);
        let (err_after, problem) = check_stream(&mut *workload, &expected, op, spec.elements)?;
        m.max_rel_error = err_before.max(err_after);
        m.correct = problem.is_none();
        m.check = match &problem {
            None => format!(
                "all {} elements of a, b, c against the expected values, before and after timing",
                spec.elements
            ),
            Some(p) => format!("after timing: {p}"),
        };
        let failed = problem.is_some();
        on_measurement(finish(
            m,
            if failed { None } else { Some(sampled) },
            ctx.sampling.rule.level,
            started,
        ));
        if failed {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_values_use_decimal_units() {
        // 2·8192³ FLOP in 1.39 ms ≈ 791 TFLOPS.
        let flops = 2.0 * 8192f64.powi(3);
        let v = sample_value(Unit::Tflops, flops, 1, 1.39e-3);
        assert!((v - 791.0).abs() < 1.0, "{v}");
        // 1e9 bytes × 10 iterations in 2 s = 5 GB/s.
        assert_eq!(sample_value(Unit::Gbps, 1e9, 10, 2.0), 5.0);
        // 1000 launches in 2.5 ms = 2.5 µs each.
        assert!((sample_value(Unit::Us, 1.0, 1000, 2.5e-3) - 2.5).abs() < 1e-12);
    }

    /// No warm-up, 10 ms samples, a budget the fake (virtual-time) operations never reach.
    fn virtual_time_sampling() -> SamplingSettings {
        SamplingSettings {
            rule: StoppingRule {
                budget: Duration::from_secs(30),
                ..StoppingRule::default()
            },
            warmup: Duration::ZERO,
            min_sample: Duration::from_millis(10),
        }
    }

    #[test]
    fn sampling_calibrates_iterations_and_stops_on_precision() {
        let cancel = AtomicBool::new(false);
        let mut progress = |_: &str, _: Phase| {};
        let mut ctx = BenchContext {
            sampling: virtual_time_sampling(),
            seed: 1,
            cancel: &cancel,
            progress: &mut progress,
            decision: None,
        };
        // A fake operation that takes exactly 1 ms per iteration (virtual time): no noise.
        let mut calls = Vec::new();
        let mut run = |iterations: u32| {
            calls.push(iterations);
            Ok(iterations as f64 * 1e-3)
        };
        let s = sample(None, "fake", &mut run, Unit::Gbps, 1e6, &mut ctx).expect("no errors");
        assert_eq!(s.iterations_per_sample, 10);
        assert_eq!(s.stop_reason, StopReason::PrecisionReached);
        assert_eq!(s.values.len(), 10);
        assert!(s.values.iter().all(|&v| (v - 1.0).abs() < 1e-12));
    }

    #[test]
    fn an_undecided_target_keeps_a_precise_measurement_sampling() {
        /// Undecided until 30 samples: stands in for a contract target near the median.
        struct NeedsThirty;
        impl Decision for NeedsThirty {
            fn undecided(&self, device: usize, metric: &str, samples: &[f64]) -> bool {
                device == 0 && metric == "stream.triad.gbps" && samples.len() < 30
            }
        }
        let cancel = AtomicBool::new(false);
        let mut progress = |_: &str, _: Phase| {};
        let mut ctx = BenchContext {
            sampling: virtual_time_sampling(),
            seed: 1,
            cancel: &cancel,
            progress: &mut progress,
            decision: Some(&NeedsThirty),
        };
        let mut run = |iterations: u32| Ok(iterations as f64 * 1e-3);
        let s = sample(
            Some((0, "stream.triad.gbps")),
            "fake",
            &mut run,
            Unit::Gbps,
            1e6,
            &mut ctx,
        )
        .expect("no errors");
        assert_eq!(
            (s.values.len(), s.stop_reason),
            (30, StopReason::PrecisionReached)
        );
        // Another metric is not held back: precision stops it at the minimum of 10.
        let s = sample(
            Some((0, "stream.copy.gbps")),
            "fake",
            &mut run,
            Unit::Gbps,
            1e6,
            &mut ctx,
        )
        .expect("no errors");
        assert_eq!(s.values.len(), 10);
    }

    #[test]
    fn sampling_stops_when_interrupted() {
        let cancel = AtomicBool::new(false);
        let mut progress = |_: &str, _: Phase| {};
        let mut ctx = BenchContext {
            sampling: SamplingSettings {
                warmup: Duration::ZERO,
                ..SamplingSettings::default()
            },
            seed: 1,
            cancel: &cancel,
            progress: &mut progress,
            decision: None,
        };
        let mut n = 0;
        let mut run = |_: u32| {
            n += 1;
            if n == 5 {
                cancel.store(true, Ordering::Relaxed);
            }
            // Noisy enough never to reach 1% precision.
            Ok(if n % 2 == 0 { 0.02 } else { 0.01 })
        };
        let s = sample(None, "fake", &mut run, Unit::Gbps, 1e6, &mut ctx).expect("no errors");
        assert_eq!(s.stop_reason, StopReason::Interrupted);
        assert_eq!(s.values.len(), 4);
    }

    #[test]
    fn a_zero_time_from_the_backend_is_an_error_not_infinity() {
        let cancel = AtomicBool::new(false);
        let mut progress = |_: &str, _: Phase| {};
        let mut ctx = BenchContext {
            sampling: SamplingSettings::default(),
            seed: 1,
            cancel: &cancel,
            progress: &mut progress,
            decision: None,
        };
        let mut run = |_: u32| Ok(0.0);
        assert!(sample(None, "fake", &mut run, Unit::Gbps, 1.0, &mut ctx).is_err());
    }
}
