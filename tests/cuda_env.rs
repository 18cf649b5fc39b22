//! The CUDA backend on a machine without a GPU driver (CI, development machines): clear
//! messages, the documented exit codes, and no panics.

use assert_cmd::Command;
use gpuaudit::backend::{self, BackendChoice, cuda};
use gpuaudit::error::{Error, exit_code};
use predicates::prelude::*;

fn no_driver() -> bool {
    if cuda::libs::driver_present() {
        eprintln!("skipped: this machine has a CUDA driver");
        return false;
    }
    true
}

#[test]
fn asking_for_cuda_without_a_driver_is_an_environment_error() {
    if !no_driver() {
        return;
    }
    let e = backend::select(BackendChoice::Cuda)
        .err()
        .expect("no CUDA here");
    assert!(matches!(e, Error::Environment(_)), "{e:?}");
    assert_eq!(e.exit_code(), exit_code::ENVIRONMENT);
    assert!(e.to_string().contains("no CUDA driver"), "{e}");
}

#[test]
fn auto_falls_back_to_the_cpu_and_says_why() {
    if !no_driver() {
        return;
    }
    let selected = backend::select(BackendChoice::Auto).expect("CPU fallback");
    assert_eq!(selected.backend.kind(), backend::BackendKind::Cpu);
    assert!(
        selected.reason.contains("no CUDA driver"),
        "{}",
        selected.reason
    );
}

#[test]
fn cli_run_with_backend_cuda_exits_3() {
    if !no_driver() {
        return;
    }
    Command::cargo_bin("gpuaudit")
        .expect("binary")
        .args(["run", "--backend", "cuda", "--json", "-", "--quiet"])
        .assert()
        .code(exit_code::ENVIRONMENT)
        .stderr(predicate::str::contains("no CUDA driver"));
}

#[test]
fn cli_info_lists_every_cuda_library() {
    if !no_driver() {
        return;
    }
    Command::cargo_bin("gpuaudit")
        .expect("binary")
        .args(["info", "--backend", "auto"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("CUDA libraries:")
                .and(predicate::str::contains("CUDA driver (libcuda)"))
                .and(predicate::str::contains("NVRTC (libnvrtc)"))
                .and(predicate::str::contains("cuBLAS (libcublas)"))
                .and(predicate::str::contains("cuBLASLt (libcublasLt)")),
        );
}
