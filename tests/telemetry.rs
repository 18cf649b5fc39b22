//! Telemetry and sustained mode end to end on the CPU backend (no GPU needed).

use gpuaudit::backend::{self, BackendChoice};
use gpuaudit::result::RunResult;
use gpuaudit::run::{BenchSelection, Event, Observer, RunConfig, Suite};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod common;
use common::quick_cpu_run;

#[test]
fn a_three_second_sustained_cpu_run_has_a_series_with_clocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.json");
    quick_cpu_run("gemm")
        .args(["--duration", "3s", "--quiet", "--json"])
        .arg(&path)
        .assert()
        .success();
    let r = RunResult::load(&path).expect("valid result");
    let s = r.sustained.expect("sustained section");
    assert!(s.windows.len() >= 2, "{} windows", s.windows.len());
    assert!(
        s.windows
            .iter()
            .all(|w| w.median > 0.0 && w.mean_sm_clock_mhz.is_some())
    );
    assert_eq!(
        s.decay.len(),
        1,
        "one series, one decay check: {:?}",
        s.decay
    );
}

#[test]
fn a_plain_run_publishes_telemetry_per_measurement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.json");
    quick_cpu_run("stream.triad")
        .args(["--max-time", "1s", "--quiet", "--json"])
        .arg(&path)
        .assert()
        .success();
    let r = RunResult::load(&path).expect("valid result");
    let t = r.measurements[0].telemetry.as_ref().expect("telemetry");
    assert!(t.samples >= 1, "{t:?}");
    assert!(t.mean_sm_clock_mhz.is_some_and(|f| f > 100.0), "{t:?}");
}

/// Sets the run's cancel flag (as Ctrl-C does) once two windows have completed.
struct CancelAfterTwo<'a> {
    cancel: &'a AtomicBool,
    windows: usize,
}

impl Observer for CancelAfterTwo<'_> {
    fn event(&mut self, event: &Event) {
        if let Event::Window(_) = event {
            self.windows += 1;
            if self.windows == 2 {
                self.cancel.store(true, Ordering::SeqCst);
            }
        }
    }
}

#[test]
fn an_interrupt_during_sustained_mode_keeps_every_completed_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("i.json");
    let config = RunConfig {
        backend: BackendChoice::Cpu,
        suite: Suite::Quick,
        benches: vec![BenchSelection::parse("gemm").expect("valid")],
        // Long enough that only the interrupt ends it; 1 s windows keep the test short.
        duration: Some(Duration::from_secs(40)),
        json: Some(path.clone()),
        seed: Some(1),
        ..RunConfig::default()
    };
    let cancel = AtomicBool::new(false);
    let mut observer = CancelAfterTwo {
        cancel: &cancel,
        windows: 0,
    };
    let selected = backend::select(BackendChoice::Cpu).expect("cpu backend");
    let started = std::time::Instant::now();
    let outcome =
        gpuaudit::run::run(&config, selected, &mut observer, &cancel).expect("run completes");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "stopped promptly"
    );
    assert!(outcome.result.interrupted);
    let on_disk = RunResult::load(&path).expect("valid result");
    let windows = on_disk.sustained.expect("sustained").windows;
    assert!(windows.len() >= 2, "{} windows kept", windows.len());
    assert!(windows.iter().all(|w| w.n > 0));
}
