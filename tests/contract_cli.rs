//! CLI tests of `gpuaudit check`, `gpuaudit specs` and `gpuaudit run --contract`: exit codes,
//! one-line errors, nothing half-written.

use predicates::prelude::*;
use std::path::{Path, PathBuf};

mod common;
use common::{gpuaudit, quick_cpu_run};

fn contracts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts")
}

/// A hand-written result: `devices` H100 SXM GPUs, each with BF16 GEMM samples whose 95% median
/// interval is [772, 778] TFLOPS around 774.
fn h100_result(devices: usize) -> serde_json::Value {
    let samples = [
        780.0, 770.0, 774.0, 772.0, 778.0, 774.0, 776.0, 774.0, 775.0, 773.0,
    ];
    let measurement = |d: usize| {
        serde_json::json!({
            "device": d, "bench": "gemm", "variant": "bf16", "metric": "gemm.bf16.tflops",
            "unit": "tflops", "shape": [8192, 8192, 8192], "implementation": "hand-written",
            "work_per_iteration": 1.1e12, "iterations_per_sample": 10,
            "n": 10, "median": 774.0, "ci": [772.0, 778.0], "ci_coverage": 0.978515625,
            "min": 770.0, "max": 780.0, "p05": 770.9, "p95": 779.1,
            "samples": samples, "stop_reason": "precision_reached",
            "correct": true, "max_rel_error": 0.001, "check": "test", "duration_s": 1.0
        })
    };
    serde_json::json!({
        "schema": "gpuaudit.result/v1",
        "tool": {"name": "gpuaudit", "version": "0.1.0"},
        "complete": true, "started_at": "2026-11-28T10:00:00Z", "command": ["gpuaudit", "run"],
        "settings": {"suite": "standard", "precision": 0.01, "confidence": 0.95,
                     "max_time_s": 20.0, "seed": 1, "benches": ["gemm"]},
        "host": {"hostname": "node1", "os": "linux", "kernel": "6", "cpu_model": "x",
                 "cpu_cores": 192, "memory_bytes": 2000000000000u64},
        "backend": "cuda", "backend_reason": "test",
        "devices": (0..devices).map(|i| serde_json::json!({
            "index": i, "name": "NVIDIA H100 80GB HBM3", "memory_bytes": 85520000000u64,
            "sm_count": 132})).collect::<Vec<_>>(),
        "measurements": (0..devices).map(measurement).collect::<Vec<_>>()
    })
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

const P5: &str = "provider = \"aws\"\ninstance_type = \"p5.48xlarge\"\nsku = \"h100-sxm\"\ngpus_per_instance = 8\n[price]\nusd_per_instance_hour = 55.04\n[term]\nhours = 720\n";

#[test]
fn check_passes_fails_and_writes_the_verdict_atomically() {
    let dir = tempfile::tempdir().expect("tmp");
    let result = write(dir.path(), "r.json", &h100_result(8).to_string());
    let pass = write(
        dir.path(),
        "pass.toml",
        &format!("{P5}[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 772\n"),
    );
    gpuaudit()
        .args(["check", "--contract"])
        .arg(&pass)
        .arg(&result)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("VERDICT: PASS"));

    let fail = write(
        dir.path(),
        "fail.toml",
        &format!("{P5}[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 860\n"),
    );
    let out = dir.path().join("judged.json");
    gpuaudit()
        .args(["check", "--contract"])
        .arg(&fail)
        .arg(&result)
        .arg("--json")
        .arg(&out)
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("VERDICT: FAIL").and(predicate::str::contains(
                "$5.50/h per instance, $3962.88 over the 720 h",
            )),
        );
    let judged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("json");
    assert_eq!(judged["verdict"]["overall"], "fail");
    assert_eq!(judged["devices"][0]["sku"], "h100-sxm");
    assert_eq!(judged["measurements"][0]["peak"], 989.5);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());

    // Inconclusive (775 inside [772, 778]) follows on_inconclusive.
    let body = "[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 775\n";
    for (policy, code) in [("fail", 1), ("pass", 0)] {
        let c = write(
            dir.path(),
            "i.toml",
            &format!("on_inconclusive = \"{policy}\"\n{P5}{body}"),
        );
        gpuaudit()
            .args(["check", "--contract"])
            .arg(&c)
            .arg(&result)
            .assert()
            .code(code)
            .stdout(predicate::str::contains("INCONCLUSIVE"));
    }
}

#[test]
fn bad_inputs_exit_2_with_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let good = h100_result(8).to_string();
    let result = write(dir.path(), "r.json", &good);
    let out = dir.path().join("judged.json");
    let mut count = 0;
    let mut contract = |body: &str| {
        count += 1;
        write(
            dir.path(),
            &format!("c{count}.toml"),
            &format!("{P5}[[target]]\n{body}\n"),
        )
    };
    let cases: Vec<(PathBuf, PathBuf, &str)> = vec![
        (
            contract("metric = \"gemm.bf17.tflops\"\nmin = 1"),
            result.clone(),
            "line 10, column 10: target[0].metric: unknown metric",
        ),
        (
            contract("metric = \"gemm.bf16.tflops\"\nmin = 1979"),
            result.clone(),
            "SPARSITY",
        ),
        (
            contract("metric = \"gemm.bf16.tflops\""),
            result.clone(),
            "min and max are both missing",
        ),
        (
            contract("metric = \"gemm.bf16.tflops\"\nmin = 700"),
            write(dir.path(), "t.json", &good[..good.len() / 2]),
            "truncated",
        ),
        (
            contract("metric = \"gemm.bf16.tflops\"\nmin = 700"),
            write(
                dir.path(),
                "v9.json",
                &good.replace("gpuaudit.result/v1", "gpuaudit.result/v9"),
            ),
            "schema is \"gpuaudit.result/v9\"",
        ),
    ];
    for (c, r, wanted) in cases {
        let assert = gpuaudit()
            .args(["check", "--contract"])
            .arg(&c)
            .arg(&r)
            .arg("--json")
            .arg(&out)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(wanted));
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(!out.exists(), "nothing written on bad input");
    }
}

#[test]
fn specs_prints_the_table_and_one_sku() {
    gpuaudit()
        .arg("specs")
        .assert()
        .success()
        .stdout(predicate::str::contains("h100-sxm").and(predicate::str::contains("989.5")));
    gpuaudit()
        .args(["specs", "NVIDIA A100-SXM4-40GB"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("A100 SXM4 40GB").and(predicate::str::contains("source:")),
        );
    gpuaudit().args(["specs", "mi300x"]).assert().code(2);
}

#[test]
fn run_with_a_cpu_contract_writes_a_verdict() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("r.json");
    // 1 GB/s is far below any CPU's triad bandwidth: a pass, unless the machine is broken.
    let c = write(
        dir.path(),
        "cpu.toml",
        "provider = \"test\"\ninstance_type = \"local\"\n[price]\nusd_per_instance_hour = 0.40\n[[target]]\nmetric = \"stream.triad.gbps\"\nmin = 1\n",
    );
    quick_cpu_run("stream.triad")
        .args(["--max-time", "1s", "--progress", "never", "--contract"])
        .arg(&c)
        .arg("--json")
        .arg(&out)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("VERDICT: PASS"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("json");
    assert_eq!(v["verdict"]["overall"], "pass");
    assert_eq!(v["verdict"]["contract"]["usd_per_instance_hour"], 0.4);
    // A bad contract stops the run before it measures or writes anything.
    let bad = write(dir.path(), "bad.toml", "provider = \"x\"\n");
    let out2 = dir.path().join("r2.json");
    gpuaudit()
        .args(["run", "--backend", "cpu", "--suite", "quick", "--contract"])
        .arg(&bad)
        .arg("--json")
        .arg(&out2)
        .assert()
        .code(2);
    assert!(!out2.exists());
    for file in std::fs::read_dir(contracts()).expect("contracts/") {
        let path = file.expect("entry").path();
        gpuaudit()
            .args(["check", "--contract"])
            .arg(&path)
            .arg(dir.path().join("r.json"))
            .assert()
            .code(predicate::in_iter([0, 1]));
    }
}

#[test]
fn a_failed_target_says_what_the_telemetry_shows() {
    let dir = tempfile::tempdir().expect("tmp");
    // 100 TB/s of triad: no CPU delivers it, so the target fails and the verdict explains it.
    let c = write(
        dir.path(),
        "cpu.toml",
        "provider = \"test\"\ninstance_type = \"local\"\n[price]\nusd_per_instance_hour = 0.40\n[[target]]\nmetric = \"stream.triad.gbps\"\nmin = 100000\n",
    );
    let out = dir.path().join("r.json");
    quick_cpu_run("stream.triad")
        .args(["--max-time", "0.5s", "--progress", "never", "--contract"])
        .arg(&c)
        .arg("--json")
        .arg(&out)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("VERDICT: FAIL"))
        .stdout(predicate::str::contains(
            "cause: instance stream.triad.gbps: ",
        ));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("json");
    let causes = &v["verdict"]["targets"][0]["causes"];
    assert!(causes.as_array().is_some_and(|c| !c.is_empty()), "{causes}");
}
