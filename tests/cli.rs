//! The command line as a user meets it: exit codes, one-line errors, the result file, interrupts.

use predicates::prelude::*;
use std::path::Path;
use std::time::Duration;

mod common;
use common::{gpuaudit, load_json};

/// Poll `done` every 20 ms until it holds; fail the test after `limit`.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start `gpuaudit` in the background with standard error captured.
fn spawn(args: &[&str], json: &Path, envs: &[(&str, &Path)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("gpuaudit"));
    cmd.args(args).arg("--json").arg(json);
    cmd.env("GPUAUDIT_METADATA_URL", "off");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns")
}

/// A fast CPU run: one GEMM and one STREAM op, tiny budgets.
const FAST: [&str; 8] = [
    "run",
    "--backend",
    "cpu",
    "--suite",
    "quick",
    "--bench",
    "gemm.fp32,stream.triad",
    "--max-time=0.3s",
];

#[test]
fn help_teaches_the_main_command_and_exit_codes() {
    gpuaudit()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("gpuaudit run"));
    gpuaudit()
        .args(["run", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes"))
        .stdout(predicate::str::contains("--precision"));
}

#[test]
fn bad_flags_get_one_line_errors_and_exit_2() {
    let cases: [(&[&str], &str); 7] = [
        (&["run", "--precision", "0"], "--precision"),
        (&["run", "--precision", "-0.5"], "--precision"),
        (&["run", "--max-time", "soon"], "--max-time"),
        (&["run", "--suite", "huge"], "huge"),
        (&["run", "--bench", "gemm.int4"], "int4"),
        (&["run", "--frobnicate"], "--frobnicate"),
        (&["run", "--dtype", "fp12"], "fp12"),
    ];
    for (args, needle) in cases {
        let out = gpuaudit().args(args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn an_unwritable_result_path_fails_before_measuring() {
    let start = std::time::Instant::now();
    let out = gpuaudit()
        .args(["run", "--backend", "cpu", "--json", "/proc/gpuaudit/r.json"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/proc/gpuaudit"), "{stderr}");
    // A standard run takes a minute or more; failing here must not have measured anything.
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_cpu_run_writes_a_complete_checked_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/cpu.json");
    let out = gpuaudit()
        .args(FAST)
        .arg("--json")
        .arg(&path)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("CPU backend"), "{stderr}");
    assert!(stderr.contains("result written to"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("gemm fp32") && stdout.contains("stream triad"),
        "{stdout}"
    );

    let r = load_json(&path);
    assert_eq!(r["schema"], "gpuaudit.result/v1");
    assert_eq!(r["complete"], true);
    assert_eq!(r["backend"], "cpu");
    assert!(r["host"]["cpu_cores"].as_u64().unwrap_or(0) >= 1);
    let ms = r["measurements"].as_array().expect("measurements");
    assert_eq!(ms.len(), 2, "{ms:?}");
    for m in ms {
        assert_eq!(m["correct"], true);
        let median = m["median"].as_f64().expect("median");
        let ci = m["ci"].as_array().expect("ci");
        let (lo, hi) = (
            ci[0].as_f64().unwrap_or(f64::NAN),
            ci[1].as_f64().unwrap_or(f64::NAN),
        );
        assert!(lo <= median && median <= hi && median > 0.0, "{m}");
        assert_eq!(
            m["samples"].as_array().map(|s| s.len()),
            m["n"].as_u64().map(|n| n as usize)
        );
    }
    let gemm = ms.iter().find(|m| m["bench"] == "gemm").expect("gemm");
    assert_eq!(gemm["metric"], "gemm.fp32.tflops");
    assert_eq!(gemm["work_per_iteration"], 2.0 * 2048f64.powi(3));
    // No temporary files are left beside the result.
    let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn json_dash_prints_the_result_on_stdout() {
    let out = gpuaudit()
        .args(["run", "--backend", "cpu", "--suite", "quick"])
        .args([
            "--bench",
            "stream.copy",
            "--max-time",
            "0.2",
            "--json",
            "-",
            "--quiet",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["measurements"][0]["metric"], "stream.copy.gbps");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn asking_for_an_unavailable_family_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.json");
    let out = gpuaudit()
        .args([
            "run",
            "--backend",
            "cpu",
            "--suite",
            "quick",
            "--max-time",
            "0.2",
        ])
        .args(["--bench", "stream.add,transfer", "--json"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let r = load_json(&path);
    assert_eq!(r["skipped"][0]["bench"], "transfer");
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped transfer"));
}

#[test]
fn info_reports_the_backend_and_host() {
    let out = gpuaudit().args(["info", "--json"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(v["devices"].as_array().is_some_and(|d| !d.is_empty()));
    assert!(!v["backend_reason"].as_str().unwrap_or("").is_empty());
}

#[test]
fn asking_for_cuda_without_a_driver_is_exit_3() {
    let has_driver = ["/dev/nvidiactl", "/proc/driver/nvidia/version"]
        .iter()
        .any(|p| Path::new(p).exists());
    if has_driver {
        eprintln!("skipped: this machine has an NVIDIA driver");
        return;
    }
    let out = gpuaudit()
        .args(["run", "--backend", "cuda", "--suite", "quick"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--backend cpu"),
        "says what to do next: {stderr}"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_keeps_every_completed_benchmark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.json");
    // Unreachable precision: triad samples for its whole 3 s budget, then dot starts.
    let args = [
        "run",
        "--backend",
        "cpu",
        "--suite",
        "quick",
        "--precision",
        "0.0001",
    ];
    let child = spawn(
        &[
            &args[..],
            &["--bench", "stream.triad,stream.dot", "--max-time", "3s"],
        ]
        .concat(),
        &path,
        &[],
    );
    wait_until(Duration::from_secs(60), "the first measurement", || {
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v["measurements"].as_array().is_some_and(|m| !m.is_empty()))
    });
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("exits");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = load_json(&path);
    assert_eq!(r["complete"], false);
    assert_eq!(r["interrupted"], true);
    let ms = r["measurements"].as_array().expect("measurements");
    assert_eq!(ms[0]["metric"], "stream.triad.gbps");
    assert!(ms[0]["median"].as_f64().is_some());
}

#[test]
fn a_result_path_that_vanishes_mid_run_falls_back_and_says_where() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target_dir = dir.path().join("vanishing");
    let fallback_dir = dir.path().join("tmp");
    std::fs::create_dir_all(&fallback_dir).expect("mkdir");
    let path = target_dir.join("r.json");
    let args = [
        "run",
        "--backend",
        "cpu",
        "--suite",
        "quick",
        "--bench",
        "stream.copy",
    ];
    let child = spawn(
        &[&args[..], &["--max-time", "3s", "--precision", "0.0001"]].concat(),
        &path,
        &[("TMPDIR", &fallback_dir)],
    );
    // The first (empty) result appears at start; then remove its folder before the run ends.
    wait_until(Duration::from_secs(30), "the initial result file", || {
        path.exists()
    });
    std::fs::remove_dir_all(&target_dir).expect("remove");
    let out = child.wait_with_output().expect("exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fallback"), "{stderr}");
    let saved: Vec<_> = std::fs::read_dir(&fallback_dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let r = load_json(&saved[0]);
    assert_eq!(r["measurements"][0]["metric"], "stream.copy.gbps");
}
