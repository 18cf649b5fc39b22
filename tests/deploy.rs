//! What can be checked of `deploy/` without a cluster: the Kubernetes manifests' structure and
//! their agreement with each other and with the CLI, and the sbatch script's syntax and layout.
//! (scripts/slurm-test.sh runs the sbatch on a real Slurm cluster.)
//!
//! The manifests are checked line by line rather than with a YAML crate: no YAML parser is among
//! the vendored crates, the files use plain block style only, and what matters here (keys,
//! values, names that must match across files, flags that must exist) reads fine as text.
//! `python3 -c 'import yaml; …'` parses them too; see docs/fleet.md.

use assert_cmd::Command;
use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// Values of every `key: value` line (list dashes and comments stripped).
fn values(yaml: &str, key: &str) -> Vec<String> {
    yaml.lines()
        .map(|l| l.split(" #").next().unwrap_or("").trim())
        .map(|l| l.trim_start_matches("- "))
        .filter_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().trim_matches('"').to_string())
        .collect()
}

fn one(yaml: &str, key: &str) -> String {
    let v = values(yaml, key);
    assert_eq!(v.len(), 1, "{key}: {v:?}");
    v[0].clone()
}

/// YAML forbids tabs in indentation; these files indent by two spaces.
fn well_indented(name: &str, yaml: &str) {
    for (i, line) in yaml.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        assert!(!line.contains('\t'), "{name}:{}: tab", i + 1);
        assert!(
            line.trim().is_empty() || indent % 2 == 0,
            "{name}:{}: odd indentation",
            i + 1
        );
    }
}

#[test]
fn k8s_indexed_job_one_pod_per_gpu_node() {
    let job = read("deploy/k8s/gpuaudit-job.yaml");
    let fleet = read("deploy/k8s/gpuaudit-fleet-job.yaml");
    let pvc = read("deploy/k8s/results-pvc.yaml");
    for (name, y) in [("job", &job), ("fleet", &fleet), ("pvc", &pvc)] {
        well_indented(name, y);
        assert_eq!(
            one(y, "apiVersion"),
            if name == "pvc" { "v1" } else { "batch/v1" }
        );
    }
    assert_eq!(one(&job, "kind"), "Job");
    assert_eq!(one(&job, "completionMode"), "Indexed");
    // One pod per node, all at once.
    assert_eq!(one(&job, "completions"), one(&job, "parallelism"));
    assert_eq!(one(&job, "restartPolicy"), "Never");
    assert_eq!(one(&job, "topologyKey"), "kubernetes.io/hostname");
    assert!(job.contains("podAntiAffinity:") && job.contains("requiredDuringScheduling"));
    // Every GPU of the node, as limit and request.
    assert_eq!(values(&job, "nvidia.com/gpu"), ["8", "8"]);
    assert_eq!(one(&job, "fieldPath"), "spec.nodeName");
    // The anti-affinity selects the measuring pods themselves.
    assert!(
        values(&job, "app.kubernetes.io/component")
            .iter()
            .all(|c| c == "measure")
    );
    // Each pod writes a distinct file where the fleet Job reads.
    assert!(job.contains("/results/runs/${NODE_NAME}-${JOB_COMPLETION_INDEX}.json"));
    assert!(fleet.contains("gpuaudit fleet /results/runs "));
    // Names that must agree across files.
    let claim = one(&pvc, "name");
    assert_eq!(values(&job, "claimName"), std::slice::from_ref(&claim));
    assert_eq!(values(&fleet, "claimName"), [claim]);
    assert!(
        pvc.contains("ReadWriteMany"),
        "pods on many nodes mount it at once"
    );
    let cm = |y: &str| {
        let lines: Vec<&str> = y.lines().collect();
        let at = lines.iter().position(|l| l.trim() == "configMap:").unwrap();
        values(lines[at + 1], "name")[0].clone()
    };
    assert_eq!(cm(&job), cm(&fleet));
    assert!(
        !fleet.contains("nvidia.com/gpu"),
        "aggregation needs no GPU"
    );
}

#[test]
fn deploy_commands_use_flags_that_exist() {
    let help = |sub: &str| {
        let out = Command::cargo_bin("gpuaudit")
            .unwrap()
            .args([sub, "--help"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let (run, fleet) = (help("run"), help("fleet"));
    for flag in ["--progress", "--contract", "--json"] {
        assert!(run.contains(flag), "run {flag}");
    }
    for flag in ["--contract", "--json", "--html", "--strict"] {
        assert!(fleet.contains(flag), "fleet {flag}");
    }
    let sbatch = read("deploy/slurm/gpuaudit.sbatch");
    for needle in [
        "\"$bin\" fleet",
        "run --progress never",
        "--json \"$results/../fleet.json\"",
    ] {
        assert!(sbatch.contains(needle), "{needle}");
    }
}

#[test]
fn sbatch_is_valid_bash_with_one_task_per_node() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/slurm/gpuaudit.sbatch");
    let ok = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "bash -n");
    let s = read("deploy/slurm/gpuaudit.sbatch");
    assert!(s.starts_with("#!/usr/bin/env bash\n"));
    assert!(s.contains("#SBATCH --ntasks-per-node=1"));
    assert!(s.contains("srun "));
    assert!(
        s.contains("${SLURM_SUBMIT_DIR:-.}"),
        "paths relative to the submit directory"
    );
    assert!(s.contains("${GPUAUDIT:-"), "binary from the environment");
    assert!(s.contains("${SLURMD_NODENAME:-$(hostname -s)}-${SLURM_PROCID:-0}.json"));
}
