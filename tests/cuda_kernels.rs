//! Checks of `kernels/*.cu` that need NVRTC and ptxas but no GPU.
//!
//! Tools are found through two environment variables (set by `.ci/run`):
//! - `LD_LIBRARY_PATH` must contain the folder with `libnvrtc.so.13` (cudarc opens it by name, so
//!   the dynamic loader has to find it; this must be set before the test process starts);
//! - `GPUAUDIT_CUDA_WHEELS`: the `pip install --target` folder of the pinned CUDA wheels
//!   (`scripts/install-cuda-wheels.sh`); ptxas is `$GPUAUDIT_CUDA_WHEELS/nvidia/cu13/bin/ptxas`,
//!   else `ptxas` on `PATH`.
//!
//! With `GPUAUDIT_REQUIRE_CUDA_TOOLS=1` a missing tool fails the test; otherwise the test prints
//! why it is skipped and passes, so a plain `cargo test` works on any machine.

use gpuaudit::backend::cuda::kernels::{self, KernelSource, Target};
use std::path::PathBuf;
use std::process::Command;

/// Archs every kernel must build for: Ampere, Ada, Hopper, Blackwell.
const ARCHS: [(u32, u32); 4] = [(8, 0), (8, 9), (9, 0), (10, 0)];

fn required() -> bool {
    std::env::var("GPUAUDIT_REQUIRE_CUDA_TOOLS").is_ok_and(|v| v == "1")
}

/// `true` when NVRTC is usable; otherwise skip (or fail when required).
fn nvrtc_or_skip(test: &str) -> bool {
    if kernels::nvrtc_present() {
        return true;
    }
    assert!(
        !required(),
        "{test}: GPUAUDIT_REQUIRE_CUDA_TOOLS=1 but NVRTC (libnvrtc.so.13) cannot be opened; \
         run scripts/install-cuda-wheels.sh DIR and set LD_LIBRARY_PATH=DIR/nvidia/cu13/lib"
    );
    eprintln!("{test}: skipped: NVRTC not found (set GPUAUDIT_CUDA_WHEELS or LD_LIBRARY_PATH)");
    false
}

fn ptxas_or_skip(test: &str) -> Option<PathBuf> {
    let from_wheels = std::env::var_os("GPUAUDIT_CUDA_WHEELS")
        .map(|d| PathBuf::from(d).join("nvidia/cu13/bin/ptxas"))
        .filter(|p| p.is_file());
    let found = from_wheels.or_else(|| {
        Command::new("ptxas")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| PathBuf::from("ptxas"))
    });
    if found.is_none() {
        assert!(
            !required(),
            "{test}: GPUAUDIT_REQUIRE_CUDA_TOOLS=1 but ptxas was found neither at \
             $GPUAUDIT_CUDA_WHEELS/nvidia/cu13/bin/ptxas nor on PATH"
        );
        eprintln!("{test}: skipped: ptxas not found (set GPUAUDIT_CUDA_WHEELS)");
    }
    found
}

#[test]
fn every_kernel_compiles_to_cubin_for_each_arch_and_to_ptx_for_compute_80() {
    if !nvrtc_or_skip("compile") {
        return;
    }
    let version = kernels::nvrtc_version().expect("NVRTC version");
    eprintln!("NVRTC {}.{}", version.0, version.1);
    for k in kernels::ALL {
        for (major, minor) in ARCHS {
            let c = kernels::compile(&k, Target::Cubin { major, minor })
                .unwrap_or_else(|e| panic!("{e}"));
            // An ELF image, not PTX text.
            assert_eq!(&c.image[..4], b"\x7fELF", "{} sm_{major}{minor}", k.name);
        }
        let ptx = kernels::compile(&k, Target::Ptx { major: 8, minor: 0 })
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&ptx.image);
        assert!(text.contains(".target sm_80"), "{}: {text:.200}", k.name);
        for f in kernels::functions_for(&k, 80) {
            assert!(
                text.contains(&format!(".entry {f}(")),
                "{}: no entry {f}",
                k.name
            );
        }
    }
}

#[test]
fn fp8_fill_exists_from_sm89_only() {
    if !nvrtc_or_skip("fp8") {
        return;
    }
    for (major, minor, expected) in [(8, 0, false), (8, 9, true), (9, 0, true)] {
        let ptx = kernels::compile(&kernels::INIT, Target::Ptx { major, minor })
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&ptx.image);
        assert_eq!(
            text.contains(".entry fill_fp8_e4m3("),
            expected,
            "sm_{major}{minor}"
        );
    }
}

/// Resource usage ptxas reports for one kernel.
#[derive(Debug)]
struct Resources {
    function: String,
    registers: u32,
    spill_stores: u32,
    spill_loads: u32,
}

/// Parse `ptxas -v` output ("Compiling entry function 'f' …", "… N bytes spill stores, M bytes
/// spill loads", "Used R registers …").
fn parse_ptxas(log: &str) -> Vec<Resources> {
    let mut out: Vec<Resources> = Vec::new();
    let number_before = |line: &str, word: &str| -> Option<u32> {
        let at = line.find(word)?;
        line[..at].split_whitespace().last()?.parse().ok()
    };
    for line in log.lines() {
        if let Some(start) = line.find("Compiling entry function '") {
            let rest = &line[start + "Compiling entry function '".len()..];
            let name = rest.split('\'').next().unwrap_or("").to_string();
            out.push(Resources {
                function: name,
                registers: 0,
                spill_stores: 0,
                spill_loads: 0,
            });
        } else if let Some(cur) = out.last_mut() {
            if let Some(n) = number_before(line, "bytes spill stores") {
                cur.spill_stores = n;
            }
            if let Some(n) = number_before(line, "bytes spill loads") {
                cur.spill_loads = n;
            }
            if let Some(n) = number_before(line, "registers") {
                cur.registers = n;
            }
        }
    }
    out
}

fn ptxas_resources(ptxas: &PathBuf, k: &KernelSource, major: u32, minor: u32) -> Vec<Resources> {
    let ptx = kernels::compile(k, Target::Ptx { major, minor }).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join(format!("{}.ptx", k.name));
    std::fs::write(&input, ptx.image.as_slice()).expect("write ptx");
    let output = Command::new(ptxas)
        .arg(format!("-arch=sm_{major}{minor}"))
        .args(["-v", "-O3"])
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("out.cubin"))
        .output()
        .expect("run ptxas");
    let log = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ptxas failed on {} sm_{major}{minor}:\n{log}",
        k.name
    );
    parse_ptxas(&log)
}

#[test]
fn ptxas_reports_no_spills_for_any_kernel_and_arch() {
    if !nvrtc_or_skip("ptxas") {
        return;
    }
    let Some(ptxas) = ptxas_or_skip("ptxas") else {
        return;
    };
    for k in kernels::ALL {
        for (major, minor) in ARCHS {
            let resources = ptxas_resources(&ptxas, &k, major, minor);
            let expected = kernels::functions_for(&k, major * 10 + minor);
            assert_eq!(
                resources.len(),
                expected.len(),
                "{} sm_{major}{minor}: {resources:?}",
                k.name
            );
            for r in &resources {
                eprintln!(
                    "sm_{major}{minor} {:<18} {:>3} registers, {} B spill stores, {} B spill loads",
                    r.function, r.registers, r.spill_stores, r.spill_loads
                );
                assert_eq!(
                    (r.spill_stores, r.spill_loads),
                    (0, 0),
                    "{} spills on sm_{major}{minor}",
                    r.function
                );
                // Every kernel here is simple; more than 64 registers would mean a regression
                // that lowers occupancy of the memory-bound kernels.
                assert!(
                    r.registers <= 64,
                    "{}: {} registers",
                    r.function,
                    r.registers
                );
            }
        }
    }
}

#[test]
fn ptxas_log_parser_reads_registers_and_spills() {
    let log = "ptxas info    : Compiling entry function 'stream_dot' for 'sm_90'\n\
ptxas info    : Function properties for stream_dot\n\
    16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads\n\
ptxas info    : Used 18 registers, used 1 barriers, 64 bytes smem, 384 bytes cmem[0]\n";
    let r = parse_ptxas(log);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].function, "stream_dot");
    assert_eq!(
        (r[0].registers, r[0].spill_stores, r[0].spill_loads),
        (18, 8, 4)
    );
}
