//! Which CUDA libraries this process can open, where from, and which versions.
//!
//! cudarc opens libcuda, libnvrtc, libcublas and libcublasLt by name at run time and **panics** on
//! the first call into a library that is missing, so every entry point here checks
//! `is_culib_present()` (which only tries to open it) before calling anything. Paths come from
//! `/proc/self/maps` after a library has been loaded: that is the file the dynamic loader chose.

use crate::backend::Component;
use cudarc::cublas::sys as cublas_sys;
use cudarc::cublaslt::sys as cublaslt_sys;
use cudarc::driver::sys as driver_sys;

/// Whether libcuda (the driver) can be opened.
pub fn driver_present() -> bool {
    // SAFETY: tries to dlopen by the known names; never panics.
    unsafe { driver_sys::is_culib_present() }
}

pub fn cublas_present() -> bool {
    // SAFETY: as above.
    unsafe { cublas_sys::is_culib_present() }
}

pub fn cublaslt_present() -> bool {
    // SAFETY: as above.
    unsafe { cublaslt_sys::is_culib_present() }
}

/// The driver's CUDA version, e.g. "13.0". Only call when [`driver_present`].
pub fn driver_version() -> Result<String, String> {
    let mut v = 0;
    // SAFETY: the driver library is present (callers check); `v` is a live local.
    unsafe { driver_sys::cuDriverGetVersion(&mut v) }
        .result()
        .map_err(|e| format!("cuDriverGetVersion failed: {e:?}"))?;
    Ok(format!("{}.{}", v / 1000, (v % 1000) / 10))
}

/// cuBLAS's version, e.g. "13.0.2". Only call when [`cublas_present`].
pub fn cublas_version() -> Result<String, String> {
    let mut parts = [0i32; 3];
    for (slot, property) in parts.iter_mut().zip([
        cublas_sys::libraryPropertyType::MAJOR_VERSION,
        cublas_sys::libraryPropertyType::MINOR_VERSION,
        cublas_sys::libraryPropertyType::PATCH_LEVEL,
    ]) {
        // SAFETY: cuBLAS is present (callers check); `slot` is a live i32.
        unsafe { cublas_sys::cublasGetProperty(property, slot) }
            .result()
            .map_err(|e| format!("cublasGetProperty failed: {e:?}"))?;
    }
    Ok(format!("{}.{}.{}", parts[0], parts[1], parts[2]))
}

/// cuBLASLt's version, e.g. "13.0.2". Only call when [`cublaslt_present`].
pub fn cublaslt_version() -> String {
    // SAFETY: cuBLASLt is present (callers check); the function takes no arguments.
    let v = unsafe { cublaslt_sys::cublasLtGetVersion() };
    format!("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100)
}

/// The file a loaded library was mapped from, found by its file-name prefix (`libcuda.so`).
pub fn loaded_path(file_prefix: &str) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            path.rsplit('/')
                .next()
                .is_some_and(|file| file.starts_with(file_prefix))
        })
        .map(String::from)
}

fn component(
    name: &str,
    present: bool,
    file_prefix: &str,
    version: impl FnOnce() -> Result<String, String>,
    missing: &str,
) -> Component {
    if !present {
        return Component {
            name: name.into(),
            path: None,
            version: None,
            problem: Some(missing.into()),
        };
    }
    let (version, problem) = match version() {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    Component {
        name: name.into(),
        // The version call loaded the library, so it is in the map now.
        path: loaded_path(file_prefix),
        version,
        problem,
    }
}

/// Every CUDA library the backend uses, found or not, for `gpuaudit info` and result provenance.
pub fn report() -> Vec<Component> {
    vec![
        component(
            "CUDA driver (libcuda)",
            driver_present(),
            "libcuda.so",
            driver_version,
            "not found: no NVIDIA driver installed (libcuda.so)",
        ),
        component(
            "NVRTC (libnvrtc)",
            super::kernels::nvrtc_present(),
            "libnvrtc.so",
            || super::kernels::nvrtc_version().map(|(a, b)| format!("{a}.{b}")),
            "not found (libnvrtc.so.13): install the CUDA toolkit's NVRTC or add its lib folder to LD_LIBRARY_PATH",
        ),
        component(
            "cuBLAS (libcublas)",
            cublas_present(),
            "libcublas.so",
            cublas_version,
            "not found (libcublas.so.13): install cuBLAS or add its lib folder to LD_LIBRARY_PATH",
        ),
        component(
            "cuBLASLt (libcublasLt)",
            cublaslt_present(),
            "libcublasLt.so",
            || Ok(cublaslt_version()),
            "not found (libcublasLt.so.13): install cuBLAS or add its lib folder to LD_LIBRARY_PATH",
        ),
    ]
}

/// Why the CUDA backend cannot run, checking in order: driver, NVRTC, cuBLAS, cuBLASLt. `None`
/// when every library is present (devices are checked separately).
pub fn missing_library() -> Option<String> {
    if !driver_present() {
        return Some(
            "no CUDA driver: libcuda.so cannot be opened (no NVIDIA driver installed)".into(),
        );
    }
    if !super::kernels::nvrtc_present() {
        return Some("NVRTC library not found (libnvrtc.so.13); the kernels cannot be compiled. Install the CUDA toolkit's NVRTC or add its lib folder to LD_LIBRARY_PATH".into());
    }
    if !cublas_present() {
        return Some(
            "cuBLAS library not found (libcublas.so.13); add its lib folder to LD_LIBRARY_PATH"
                .into(),
        );
    }
    if !cublaslt_present() {
        return Some(
            "cuBLASLt library not found (libcublasLt.so.13); add its lib folder to LD_LIBRARY_PATH"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_all_four_libraries_and_never_panics() {
        let report = report();
        let names: Vec<&str> = report.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 4);
        for (c, expected) in report.iter().zip(["driver", "NVRTC", "cuBLAS", "cuBLASLt"]) {
            assert!(c.name.contains(expected), "{names:?}");
            // Either found (with a version) or a reason.
            assert!(c.version.is_some() || c.problem.is_some(), "{c:?}");
        }
    }

    #[test]
    fn loaded_paths_come_from_the_process_map() {
        // The C library is always mapped into a Rust test on Linux.
        if cfg!(target_os = "linux") {
            assert!(loaded_path("libc.so").is_some_and(|p| p.starts_with('/')));
        }
        assert_eq!(loaded_path("libdefinitely-not-loaded.so"), None);
    }
}
