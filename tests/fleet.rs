//! `gpuaudit fleet` on a planted fleet: every finding and every dollar is known in advance.
//!
//! Six p5-like nodes of 8 H100 SXM, contract $55.04 per instance-hour ($6.88 per GPU-hour),
//! BF16 ≥ 700 TFLOPS per GPU, 100 h term:
//! - node-a, node-b: healthy (798 … 801.5 TFLOPS).
//! - node-c: healthy but GPU 7 at 740: a fleet outlier that still meets the contract (watch, do
//!   not return), and within 10% of its siblings (not a straggler).
//! - node-d: GPU 3 at 560 = 80% of 700: straggler, outlier, fails: $6.88 × 0.20 = $1.376/h.
//! - node-e: throttling, GPUs 4–7 at 630 = 90% with telemetry attribution:
//!   4 × $6.88 × 0.10 = $2.752/h; two or more failing GPUs: the node is returned.
//! - node-f: uniformly slow, all 8 at 665 = 95%: gpu-fryer's relative rule passes it, the
//!   contract does not: 8 × $6.88 × 0.05 = $2.752/h; returned.
//!
//! Fleet: $1.376 + $2.752 + $2.752 = $6.88/h, × 100 h = $688; delivered 48 − 6.88/6.88 = 47
//! GPU-hours per hour of 48 contracted. Plus five files that must not count: a duplicate of
//! node-a, a truncated file, text that is not JSON, another schema version, and a v1 file with
//! missing fields.

use assert_cmd::Command;
use gpuaudit::fleet::fixture::{PlantedGpu, gpu_result_json};
use gpuaudit::result::Unit;
use serde_json::Value;
use std::path::Path;

const CONTRACT: &str = r#"
provider = "aws"
instance_type = "p5.48xlarge"
sku = "h100-sxm"
gpus_per_instance = 8
[price]
usd_per_instance_hour = 55.04
[term]
hours = 100
[[target]]
metric = "gemm.bf16.tflops"
min = 700
"#;

fn node(host: &str, bf16: [f64; 8], throttled: bool) -> String {
    let gpus: Vec<PlantedGpu> = bf16
        .iter()
        .enumerate()
        .map(|(i, &v)| PlantedGpu {
            uuid: format!("GPU-{host}-{i}"),
            values: vec![
                ("gemm", "bf16", Unit::Tflops, v),
                ("stream", "triad", Unit::Gbps, 2900.0 + 0.1 * i as f64),
            ],
            throttled: throttled && v < 700.0 && v > 600.0 && v != 665.0,
        })
        .collect();
    gpu_result_json(host, "2026-11-28T10:00:00Z", "h100-sxm", &gpus, 11)
}

fn healthy() -> [f64; 8] {
    std::array::from_fn(|i| 798.0 + 0.5 * i as f64)
}

fn plant(dir: &Path) {
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    let a = node("node-a", healthy(), false);
    write("node-a.json", &a);
    write("node-b.json", &node("node-b", healthy(), false));
    let mut c = healthy();
    c[7] = 740.0;
    write("node-c.json", &node("node-c", c, false));
    let mut d = healthy();
    d[3] = 560.0;
    write("node-d.json", &node("node-d", d, false));
    let mut e = healthy();
    e[4..].fill(630.0);
    write("node-e.json", &node("node-e", e, true));
    write("node-f.json", &node("node-f", [665.0; 8], false));
    // Not counted:
    write("z-copy-of-node-a.json", &a);
    write("trunc.json", &a[..a.len() / 2]);
    write("malformed.json", "this is not JSON\n");
    write(
        "v2.json",
        &a.replace("gpuaudit.result/v1", "gpuaudit.result/v2"),
    );
    write(
        "invalid.json",
        r#"{"schema": "gpuaudit.result/v1", "tool": 1}"#,
    );
    write("notes.txt", "not a result, not read");
    write("contract.toml.txt", CONTRACT);
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    plant(&results);
    std::fs::write(dir.path().join("contract.toml"), CONTRACT).unwrap();
    dir
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

#[test]
fn planted_fleet_is_judged_as_planted() {
    let dir = setup();
    let out = dir.path().join("fleet.json");
    let html = dir.path().join("fleet.html");
    let assert = Command::cargo_bin("gpuaudit")
        .unwrap()
        .args(["fleet", "--contract"])
        .arg(dir.path().join("contract.toml"))
        .arg(dir.path().join("results"))
        .arg("--json")
        .arg(&out)
        .arg("--html")
        .arg(&html)
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(stdout.contains("return nodes: node-e, node-f"), "{stdout}");
    assert!(
        stdout.contains("shortfall $6.88/h, $688.00 over the term"),
        "{stdout}"
    );

    let r: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["schema"], "gpuaudit.fleet/v1");
    let i = &r["inputs"];
    assert_eq!(i["results"], 6);
    assert_eq!(i["nodes"], 6);
    assert_eq!(i["devices"], 48);
    assert_eq!(i["bad"], 5);
    for kind in [
        "duplicate",
        "truncated",
        "malformed",
        "unknown_schema",
        "invalid",
    ] {
        assert_eq!(i[kind], 1, "{kind}");
    }
    let bad: Vec<(String, String)> = r["bad_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let origin = b["origin"].as_str().unwrap();
            let file = Path::new(origin).file_name().unwrap().to_string_lossy();
            (file.to_string(), b["kind"].as_str().unwrap().to_string())
        })
        .collect();
    for (file, kind) in [
        ("z-copy-of-node-a.json", "duplicate"),
        ("trunc.json", "truncated"),
        ("malformed.json", "malformed"),
        ("v2.json", "unknown_schema"),
        ("invalid.json", "invalid"),
    ] {
        assert!(bad.contains(&(file.into(), kind.into())), "{file}: {bad:?}");
    }

    assert_eq!(r["overall"], "fail");
    assert_eq!(r["accepted"], false);
    assert_eq!(r["return_nodes"], serde_json::json!(["node-e", "node-f"]));
    let gpus = r["return_gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 1);
    assert_eq!(gpus[0]["node"], "node-d");
    assert_eq!(gpus[0]["device"], 3);
    assert_eq!(gpus[0]["uuid"], "GPU-node-d-3");
    assert!(close(
        gpus[0]["shortfall_usd_per_hour"].as_f64().unwrap(),
        1.376
    ));

    let p = &r["price_performance"];
    let f = |k: &str| p[k].as_f64().unwrap();
    assert!(close(f("shortfall_usd_per_hour"), 6.88));
    assert!(close(f("shortfall_usd_over_term"), 688.0));
    assert!(close(f("contracted_device_hours_per_hour"), 48.0));
    assert!(close(f("delivered_device_hours_per_hour"), 47.0));
    assert!(close(f("delivered_fraction"), 47.0 / 48.0));
    assert!(close(f("contracted_usd_per_hour"), 48.0 * 6.88));
    assert!(close(f("contracted_device_hours_over_term"), 4800.0));
    assert!(close(f("delivered_device_hours_over_term"), 4700.0));
    assert!(close(f("returned_shortfall_usd_per_hour"), 6.88));

    let nodes = r["nodes"].as_array().unwrap();
    let n = |name: &str| nodes.iter().find(|n| n["node"] == name).unwrap().clone();
    for (name, status, shortfall, failing, returned, relative, uniform, stragglers) in [
        ("node-a", "pass", 0.0, 0, false, true, false, 0),
        ("node-b", "pass", 0.0, 0, false, true, false, 0),
        ("node-c", "pass", 0.0, 0, false, true, false, 0),
        ("node-d", "fail", 1.376, 1, false, false, false, 1),
        ("node-e", "fail", 2.752, 4, true, false, false, 4),
        ("node-f", "fail", 2.752, 8, true, true, true, 0),
    ] {
        let x = n(name);
        assert_eq!(x["status"], status, "{name}");
        assert!(
            close(x["shortfall_usd_per_hour"].as_f64().unwrap(), shortfall),
            "{name}: {x}"
        );
        assert_eq!(x["failing_devices"], failing, "{name}");
        assert_eq!(x["returned"], returned, "{name}");
        assert_eq!(x["passes_relative_rule"], relative, "{name}");
        assert_eq!(x["uniformly_slow"], uniform, "{name}");
        assert_eq!(x["stragglers"], stragglers, "{name}");
    }

    // Outliers: exactly the planted slow GPUs, including node-c's 740 that meets the contract.
    let mut outliers: Vec<String> = r["outliers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}/{}/{}",
                o["node"].as_str().unwrap(),
                o["device"],
                o["metric"].as_str().unwrap()
            )
        })
        .collect();
    outliers.sort();
    let mut want: Vec<String> = vec!["node-c/7".into(), "node-d/3".into()];
    want.extend((4..8).map(|g| format!("node-e/{g}")));
    want.extend((0..8).map(|g| format!("node-f/{g}")));
    let mut want: Vec<String> = want
        .into_iter()
        .map(|w| format!("{w}/gemm.bf16.tflops"))
        .collect();
    want.sort();
    assert_eq!(outliers, want);
    let stragglers: Vec<String> = r["stragglers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{}/{}", o["node"].as_str().unwrap(), o["device"]))
        .collect();
    assert_eq!(
        stragglers,
        ["node-d/3", "node-e/4", "node-e/5", "node-e/6", "node-e/7"]
    );

    let devices = r["devices"].as_array().unwrap();
    let dev = |node: &str, i: u64| {
        devices
            .iter()
            .find(|d| d["node"] == node && d["device"] == i)
            .unwrap()
            .clone()
    };
    let e5 = dev("node-e", 5);
    assert_eq!(
        e5["attribution"],
        serde_json::json!([
            "thermal_slowdown: thermal slowdown in 80% of samples; max temperature 91 °C"
        ])
    );
    assert_eq!(e5["status"], "fail");
    assert!(close(e5["shortfall_usd_per_hour"].as_f64().unwrap(), 0.688));
    let c7 = dev("node-c", 7);
    assert_eq!(c7["status"], "pass");
    assert_eq!(
        c7["flags"],
        serde_json::json!(["fleet_outlier:gemm.bf16.tflops"])
    );
    assert!(dev("node-a", 0).get("flags").is_none());

    let m = r["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "gemm.bf16.tflops")
        .unwrap()
        .clone();
    assert_eq!(m["count"], 48);
    assert_eq!(m["target"], 700.0);
    assert_eq!(m["min"], 560.0);
    assert_eq!(m["max"], 801.5);
    // Mean by hand: 34 healthy values, 740, 560, 4 × 630, 8 × 665.
    let healthy_sum: f64 = 4.0 * healthy().iter().sum::<f64>() // a, b, c, d …
        - 801.5 - 799.5 // … less c's GPU 7 and d's GPU 3 …
        + (798.0 + 798.5 + 799.0 + 799.5); // … plus e's first four
    let mean = (healthy_sum + 740.0 + 560.0 + 4.0 * 630.0 + 8.0 * 665.0) / 48.0;
    assert!(
        close(m["mean"].as_f64().unwrap(), mean),
        "{} vs {mean}",
        m["mean"]
    );

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.matches("<svg").count() >= 5,
        "histograms, strips, shortfall"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "self-contained"
    );
    assert!(
        !page.contains("<link") && !page.contains("src="),
        "nothing fetched"
    );
    assert!(page.contains("node-f") && page.contains("Uniformly slow"));
    assert!(page.contains("$6.88/h") && page.contains("$688.00"));
    assert!(page.contains("class=\"sortable\""));
}

#[test]
fn strict_makes_bad_files_fatal() {
    let dir = setup();
    let out = dir.path().join("fleet.json");
    let assert = Command::cargo_bin("gpuaudit")
        .unwrap()
        .args(["fleet", "--strict"])
        .arg(dir.path().join("results"))
        .arg("--json")
        .arg(&out)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("trunc.json") && stderr.contains("5 of 11"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written");

    // Only good files: --strict is happy; no contract, so exit 0, but the outliers still show.
    let good = ["node-a", "node-b", "node-c", "node-d", "node-e", "node-f"]
        .map(|n| dir.path().join("results").join(format!("{n}.json")));
    Command::cargo_bin("gpuaudit")
        .unwrap()
        .args(["fleet", "--strict", "--json", "-"])
        .args(&good)
        .assert()
        .code(0)
        .stdout(predicates::str::contains("\"uniformly_slow\": false"))
        .stderr(predicates::str::contains(
            "outliers (modified z < -3.5): 14; stragglers (< 90% of siblings): 5",
        ));
}

#[test]
fn json_lines_on_stdin_and_globs() {
    let dir = setup();
    let results = dir.path().join("results");
    let line = |n: &str| {
        let text = std::fs::read_to_string(results.join(n)).unwrap();
        serde_json::to_string(&serde_json::from_str::<Value>(&text).unwrap()).unwrap()
    };
    let stdin = format!(
        "{}\n\n{}\n{{\"schema\": \"gpuaudit.result/v1\"\n",
        line("node-d.json"),
        line("node-e.json")
    );
    let out = dir.path().join("f.json");
    Command::cargo_bin("gpuaudit")
        .unwrap()
        .args(["fleet", "-", "--quiet", "--json"])
        .arg(&out)
        .arg(results.join("*node-a.json"))
        .write_stdin(stdin)
        .assert()
        .code(0);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    // node-a.json and its copy (a duplicate) from the glob, then two stdin lines and a bad one.
    assert_eq!(r["inputs"]["results"], 3);
    assert_eq!(r["inputs"]["duplicate"], 1);
    assert_eq!(r["inputs"]["truncated"], 1);
    assert!(
        r["bad_files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["origin"] == "stdin:4")
    );

    // A pattern that matches nothing, or a missing path, is a usage error.
    Command::cargo_bin("gpuaudit")
        .unwrap()
        .arg("fleet")
        .arg(results.join("nothing*.json"))
        .assert()
        .code(2);
}
