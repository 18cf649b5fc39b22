//! Helpers shared by the command-line test files (`mod common;` in each).
#![allow(dead_code)] // each test file uses a different subset

use assert_cmd::Command;
use std::path::Path;

/// The `gpuaudit` binary with an environment that cannot change what the tests assert.
pub fn gpuaudit() -> Command {
    let mut cmd = Command::cargo_bin("gpuaudit").expect("binary built by cargo");
    // A developer's thread setting would change timings and implementation strings.
    cmd.env_remove("RAYON_NUM_THREADS");
    // Never ask a cloud metadata service from a test, even on a cloud CI machine.
    cmd.env("GPUAUDIT_METADATA_URL", "off");
    cmd
}

/// `gpuaudit run` on the CPU backend, quick suite, the given benchmarks; callers add the budget,
/// output and anything else.
pub fn quick_cpu_run(benches: &str) -> Command {
    let mut cmd = gpuaudit();
    cmd.args([
        "run",
        "--backend",
        "cpu",
        "--suite",
        "quick",
        "--bench",
        benches,
    ]);
    cmd
}

/// A JSON file the test expects to exist and be valid.
pub fn load_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} should exist: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} should be valid JSON: {e}", path.display()))
}
