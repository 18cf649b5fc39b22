//! Evidence from the command line: keygen, run --sign, sign, verify, and the provenance section.
//! No test here sends a packet beyond 127.0.0.1: the instance lookup is either skipped (this
//! machine is not a cloud instance, or GPUAUDIT_METADATA_URL=off) or aimed at a mock server.

use predicates::prelude::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

mod common;
use common::{gpuaudit, quick_cpu_run};

fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(name);
    gpuaudit()
        .args(["keygen", "--out"])
        .arg(&key)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("mode 0600"));
    let public = dir.join(format!("{name}.pub"));
    (key, public)
}

fn verify(result: &Path, public: &Path) -> assert_cmd::assert::Assert {
    gpuaudit()
        .arg("verify")
        .arg(result)
        .arg("--pubkey")
        .arg(public)
        .assert()
}

/// A minimal valid result, as an older gpuaudit (no provenance) would have written it.
fn handmade_result(path: &Path) {
    let json = serde_json::json!({
        "schema": "gpuaudit.result/v1",
        "tool": {"name": "gpuaudit", "version": "0.1.0"},
        "complete": true,
        "started_at": "2026-11-28T10:00:00Z",
        "finished_at": "2026-11-28T10:01:00Z",
        "command": ["gpuaudit", "run"],
        "settings": {"suite": "quick", "precision": 0.01, "confidence": 0.95,
                     "max_time_s": 2.0, "seed": 18446744073709551557u64, "benches": ["all"]},
        "host": {"hostname": "h", "os": "linux", "kernel": "6", "cpu_model": "x",
                 "cpu_cores": 2, "memory_bytes": 1u64 << 33},
        "backend": "cpu",
        "backend_reason": "test",
        "devices": [{"index": 0, "name": "cpu", "memory_bytes": 1u64 << 33}],
        "measurements": [{
            "device": 0, "bench": "stream", "variant": "triad", "metric": "stream.triad.gbps",
            "unit": "gbps", "shape": [4194304], "implementation": "rust", "work_per_iteration": 1e8,
            "iterations_per_sample": 3, "median": 12.345678901234567, "ci": [12.3, 12.4],
            "samples": [12.3, 12.345678901234567, 12.4], "correct": true, "max_rel_error": 0.0,
            "check": "exact", "duration_s": 0.5
        }]
    });
    std::fs::write(path, serde_json::to_string_pretty(&json).expect("json")).expect("write");
}

fn edit(src: &Path, dst: &Path, change: impl FnOnce(&mut Value)) {
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(src).expect("read")).expect("json");
    change(&mut v);
    std::fs::write(dst, serde_json::to_string_pretty(&v).expect("json")).expect("write");
}

#[test]
fn signed_file_verifies_and_every_tampering_fails_with_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = keygen(dir.path(), "k");
    let (_, other_public) = keygen(dir.path(), "other");
    let result = dir.path().join("r.json");
    handmade_result(&result);
    verify(&result, &public)
        .code(1)
        .stdout(predicate::str::contains("not signed"));

    let signed = dir.path().join("signed.json");
    gpuaudit()
        .arg("sign")
        .arg(&key)
        .arg(&result)
        .arg("--out")
        .arg(&signed)
        .assert()
        .code(0);
    verify(&signed, &public)
        .code(0)
        .stdout(predicate::str::contains("valid signature by key"));

    // Same content, members re-ordered (serde_json sorts them) and no whitespace.
    let reordered = dir.path().join("reordered.json");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&signed).expect("read")).expect("json");
    std::fs::write(&reordered, serde_json::to_string(&v).expect("json")).expect("write");
    assert_ne!(
        std::fs::read(&reordered).expect("read"),
        std::fs::read(&signed).expect("read")
    );
    verify(&reordered, &public).code(0);

    let changed = "was changed after it was signed";
    type Change = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "value",
            Box::new(|v| v["measurements"][0]["median"] = 13.0.into()),
        ),
        (
            "seed",
            Box::new(|v| v["settings"]["seed"] = 18446744073709551556u64.into()),
        ),
        ("added", Box::new(|v| v["note"] = "hello".into())),
        (
            "removed",
            Box::new(|v| {
                v.as_object_mut().expect("object").remove("finished_at");
            }),
        ),
    ];
    for (name, change) in cases {
        let path = dir.path().join(format!("{name}.json"));
        edit(&signed, &path, change);
        verify(&path, &public)
            .code(1)
            .stdout(predicate::str::contains(changed));
    }

    let text = std::fs::read_to_string(&signed).expect("read");
    let truncated = dir.path().join("truncated.json");
    std::fs::write(&truncated, &text[..text.len() * 2 / 3]).expect("write");
    verify(&truncated, &public)
        .code(1)
        .stdout(predicate::str::contains("ends before the JSON does"));

    // A duplicate member would let two readers see two different files.
    let duplicated = dir.path().join("duplicated.json");
    std::fs::write(
        &duplicated,
        text.replacen(
            "\"complete\": true",
            "\"complete\": true, \"complete\": false",
            1,
        ),
    )
    .expect("write");
    verify(&duplicated, &public)
        .code(1)
        .stdout(predicate::str::contains(
            "duplicate member name \"complete\"",
        ));

    // Another key: the message names the key that signed.
    let signed_value: Value = serde_json::from_str(&text).expect("json");
    let key_id = signed_value["signature"]["key_id"]
        .as_str()
        .expect("key id")
        .to_string();
    verify(&signed, &other_public)
        .code(1)
        .stdout(predicate::str::contains(format!("signed by key {key_id}")));

    // Unreadable inputs: exit 2.
    verify(&dir.path().join("missing.json"), &public).code(2);
    verify(&signed, &dir.path().join("missing.pub")).code(2);
    verify(&signed, &key)
        .code(2)
        .stderr(predicate::str::contains("holds a private key"));
}

#[cfg(unix)]
#[test]
fn private_keys_are_0600_and_loose_ones_are_refused_before_measuring() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = keygen(dir.path(), "k");
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&public), 0o644);
    // Never overwrites a key.
    gpuaudit()
        .args(["keygen", "--out"])
        .arg(&key)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("refusing to overwrite"));

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let result = dir.path().join("r.json");
    handmade_result(&result);
    gpuaudit()
        .arg("sign")
        .arg(&key)
        .arg(&result)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("mode 0644"));
    // run --sign fails fast: no result file is started.
    let out = dir.path().join("run.json");
    gpuaudit()
        .args(["run", "--backend", "cpu", "--suite", "quick", "--sign"])
        .arg(&key)
        .arg("--json")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("chmod 600"));
    assert!(!out.exists());
}

/// A mock AWS IMDSv2 on 127.0.0.1 answering `requests` requests.
fn mock_imds(requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = if req.starts_with("PUT /latest/api/token") {
                "T0KEN"
            } else if !req.contains("X-aws-ec2-metadata-token: T0KEN") {
                ""
            } else if req.starts_with("GET /latest/dynamic/instance-identity/document") {
                r#"{"instanceId":"i-0mock","instanceType":"p5.48xlarge","region":"us-east-1"}"#
            } else if req.starts_with("GET /latest/dynamic/instance-identity/pkcs7") {
                "MIAGCSqGSIb3DQEHAqCAMIACAQEx"
            } else {
                ""
            };
            let status = if body.is_empty() {
                "404 Not Found"
            } else {
                "200 OK"
            };
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn signed_run_carries_provenance_and_instance_identity_from_the_mock_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = keygen(dir.path(), "k");
    let out = dir.path().join("run.json");
    let url = mock_imds(3);
    quick_cpu_run("stream.triad")
        .env("GPUAUDIT_METADATA_URL", &url)
        .env("GPUAUDIT_METADATA_PROVIDER", "aws")
        .args(["--max-time=0.3s", "--quiet", "--sign"])
        .arg(&key)
        .arg("--json")
        .arg(&out)
        .assert()
        .code(0);
    verify(&out, &public).code(0);
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("json");
    let p = &v["provenance"];
    assert_eq!(
        p["binary"]["sha256"].as_str().map(str::len),
        Some(64),
        "{p}"
    );
    assert_eq!(p["crate_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(p["instance"]["provider"], "aws");
    assert_eq!(p["instance"]["document"]["instanceId"], "i-0mock");
    assert!(p["instance"]["absent_reason"].is_null(), "{p}");
    assert_eq!(p["devices"][0]["index"], 0);
    assert_eq!(v["signature"]["algorithm"], "ed25519");
    assert_eq!(v["signature"]["canonicalization"], "RFC 8785 (JCS)");
    assert_eq!(v["complete"], true);
}

#[test]
fn without_a_cloud_the_instance_is_absent_with_the_reason() {
    // GPUAUDIT_METADATA_URL unset: the decision rests on DMI. On this machine (no DMI naming a
    // cloud) nothing is sent; a machine that is a cloud instance skips this test, since the
    // lookup there would leave the loopback.
    let dmi = std::fs::read_to_string("/sys/class/dmi/id/sys_vendor").unwrap_or_default();
    let asset = std::fs::read_to_string("/sys/class/dmi/id/chassis_asset_tag").unwrap_or_default();
    if dmi.contains("Amazon") || dmi.contains("Google") || asset.contains("7783-7084") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run.json");
    quick_cpu_run("stream.triad")
        .env_remove("GPUAUDIT_METADATA_URL")
        .args(["--max-time=0.3s", "--quiet", "--json"])
        .arg(&out)
        .assert()
        .code(0);
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("json");
    let reason = v["provenance"]["instance"]["absent_reason"]
        .as_str()
        .expect("absent with a reason");
    assert!(
        reason.starts_with("not a recognised cloud instance"),
        "{reason}"
    );
    assert!(v.get("signature").is_none());
}

#[test]
fn fleet_with_trusted_keys_counts_only_results_signed_by_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("trusted");
    std::fs::create_dir(&keys).expect("mkdir");
    let (key, _public) = keygen(&keys, "auditor");
    let (other_key, _) = keygen(dir.path(), "stranger");
    let results = dir.path().join("results");
    std::fs::create_dir(&results).expect("mkdir");
    let run = |name: &str, sign: Option<&Path>| {
        let mut cmd = gpuaudit();
        cmd.args([
            "run",
            "--backend",
            "cpu",
            "--suite",
            "quick",
            "--bench",
            "stream.copy",
        ])
        .args(["--max-time=0.2s", "--quiet", "--json"])
        .arg(results.join(name));
        if let Some(k) = sign {
            cmd.arg("--sign").arg(k);
        }
        cmd.assert().code(0);
    };
    run("trusted.json", Some(&key));
    run("unsigned.json", None);
    run("stranger.json", Some(&other_key));
    // A trusted file changed after signing must not count either.
    run("altered.json", Some(&key));
    let altered = results.join("altered.json");
    let text = std::fs::read_to_string(&altered).expect("read");
    std::fs::write(
        &altered,
        text.replacen("\"complete\": true", "\"complete\": false", 1),
    )
    .expect("write");

    let report = dir.path().join("fleet.json");
    gpuaudit()
        .arg("fleet")
        .arg(&results)
        .arg("--trusted-keys")
        .arg(&keys)
        .arg("--json")
        .arg(&report)
        .arg("--quiet")
        .assert()
        .code(0);
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(v["inputs"]["results"], 1, "{}", v["inputs"]);
    assert_eq!(v["inputs"]["untrusted"], 3, "{}", v["inputs"]);
    let reasons: Vec<String> = v["bad_files"]
        .as_array()
        .expect("bad files")
        .iter()
        .map(|b| format!("{} {}", b["origin"], b["reason"]))
        .collect();
    let find = |name: &str| {
        reasons
            .iter()
            .find(|r| r.contains(name))
            .cloned()
            .unwrap_or_default()
    };
    assert!(find("unsigned.json").contains("not signed"), "{reasons:?}");
    assert!(find("stranger.json").contains("key"), "{reasons:?}");
    assert!(find("altered.json").contains("changed"), "{reasons:?}");
}
