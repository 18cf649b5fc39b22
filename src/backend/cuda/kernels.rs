//! The CUDA sources in `kernels/`, compiled at run time by NVRTC.
//!
//! Each kernel file is compiled to a **cubin for the device's exact `sm_XY`**, so the driver never
//! has to JIT PTX: an NVRTC newer than the driver emits PTX the driver cannot read (the PTX
//! version trap), while a cubin for an arch the driver knows always loads. PTX for the highest
//! `compute_XY` NVRTC supports (≤ the device's) is the fallback, for an NVRTC older than the GPU;
//! the result records which path was taken.
//!
//! Compiled images are cached by (kernel name, hash of its source, arch, NVRTC version): in
//! memory for the process (every device thread shares it) and on disk under
//! `$GPUAUDIT_CACHE_DIR`, else `$XDG_CACHE_HOME/gpuaudit/kernels`, else
//! `~/.cache/gpuaudit/kernels`. A cache that cannot be read or written is skipped, never an error.
//!
//! Nothing here needs a GPU: the tests compile every kernel for several archs on a CPU-only
//! machine (see `tests/cuda_kernels.rs`).

use cudarc::nvrtc::{result as nvrtc_result, sys as nvrtc_sys};
use std::collections::HashMap;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// One `.cu` file of `kernels/`, embedded in the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSource {
    pub name: &'static str,
    pub source: &'static str,
    /// Functions the host looks up in it (arch-dependent ones excluded; see `fp8_functions`).
    pub functions: &'static [&'static str],
}

pub const INIT: KernelSource = KernelSource {
    name: "init",
    source: include_str!("../../../kernels/init.cu"),
    functions: &[
        "fill_f64",
        "fill_f32",
        "fill_f16",
        "fill_bf16",
        "rng_bits_kernel",
    ],
};
pub const STREAM: KernelSource = KernelSource {
    name: "stream",
    source: include_str!("../../../kernels/stream.cu"),
    functions: &[
        "stream_fill",
        "stream_copy",
        "stream_scale",
        "stream_add",
        "stream_triad",
        "stream_dot",
        "stream_max_dev",
    ],
};
pub const GEMM_CHECK: KernelSource = KernelSource {
    name: "gemm_check",
    source: include_str!("../../../kernels/gemm_check.cu"),
    functions: &[
        "row_times_f64",
        "row_times_f32",
        "row_times_f16",
        "row_times_bf16",
        "gather_f64",
        "gather_f32",
        "gather_f16",
        "gather_bf16",
    ],
};
pub const LAUNCH: KernelSource = KernelSource {
    name: "launch",
    source: include_str!("../../../kernels/launch.cu"),
    functions: &["empty_kernel"],
};

/// Every kernel file; the tests compile each for every supported arch.
pub const ALL: [KernelSource; 4] = [INIT, STREAM, GEMM_CHECK, LAUNCH];

/// Functions that exist only from sm_89 (FP8 conversion instructions).
pub const FP8_FUNCTIONS: &[&str] = &["fill_fp8_e4m3"];

/// Threads per block the reduction kernels are written for (`STREAM_BLOCK`, `CHECK_BLOCK`).
pub const REDUCTION_BLOCK: u32 = 256;

/// What NVRTC is asked to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Machine code for exactly `sm_{major}{minor}`.
    Cubin { major: u32, minor: u32 },
    /// PTX for `compute_{major}{minor}`, JIT-compiled by the driver at load time.
    Ptx { major: u32, minor: u32 },
}

impl Target {
    /// The `--gpu-architecture` value, e.g. `sm_90` or `compute_80`.
    pub fn arch(self) -> String {
        match self {
            Target::Cubin { major, minor } => format!("sm_{major}{minor}"),
            Target::Ptx { major, minor } => format!("compute_{major}{minor}"),
        }
    }

    pub fn is_cubin(self) -> bool {
        matches!(self, Target::Cubin { .. })
    }

    fn extension(self) -> &'static str {
        if self.is_cubin() { "cubin" } else { "ptx" }
    }
}

/// A compiled kernel file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub target: Target,
    /// Cubin bytes, or PTX text (without a trailing NUL).
    pub image: Arc<Vec<u8>>,
    /// Whether it came from the compile cache.
    pub cached: bool,
}

/// Whether libnvrtc can be opened (by name, through the dynamic loader's search path).
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the library by its known names; never panics.
    unsafe { nvrtc_sys::is_culib_present() }
}

/// NVRTC's version, e.g. (13, 0). Call only when [`nvrtc_present`].
pub fn nvrtc_version() -> Result<(i32, i32), String> {
    if !nvrtc_present() {
        return Err("NVRTC library (libnvrtc.so) not found".into());
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present (checked above, so cudarc's loader does not panic); both
    // pointers are to live locals.
    let status = unsafe { nvrtc_sys::nvrtcVersion(&mut major, &mut minor) };
    status
        .result()
        .map_err(|e| format!("nvrtcVersion failed: {e:?}"))?;
    Ok((major, minor))
}

/// The archs (`sm_XY` numbers, e.g. 90) this NVRTC can compile for.
pub fn supported_archs() -> Result<Vec<u32>, String> {
    if !nvrtc_present() {
        return Err("NVRTC library (libnvrtc.so) not found".into());
    }
    let mut count = 0;
    // SAFETY: library present; `count` is a live local.
    unsafe { nvrtc_sys::nvrtcGetNumSupportedArchs(&mut count) }
        .result()
        .map_err(|e| format!("nvrtcGetNumSupportedArchs failed: {e:?}"))?;
    let mut archs = vec![0i32; count.max(0) as usize];
    // SAFETY: `archs` holds exactly the number of entries NVRTC reported.
    unsafe { nvrtc_sys::nvrtcGetSupportedArchs(archs.as_mut_ptr()) }
        .result()
        .map_err(|e| format!("nvrtcGetSupportedArchs failed: {e:?}"))?;
    Ok(archs.into_iter().map(|a| a.max(0) as u32).collect())
}

/// FNV-1a, 64-bit: a hash that is stable across Rust releases (std's is not), so on-disk cache
/// names stay valid.
pub fn source_hash(source: &str) -> u64 {
    source.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The cache key (also the on-disk file name) of a kernel file compiled for `target` by NVRTC
/// `nvrtc`.
pub fn cache_key(kernel: &KernelSource, target: Target, nvrtc: (i32, i32)) -> String {
    format!(
        "{}-{:016x}-{}-nvrtc{}.{}.{}",
        kernel.name,
        source_hash(kernel.source),
        target.arch(),
        nvrtc.0,
        nvrtc.1,
        target.extension()
    )
}

fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("GPUAUDIT_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("gpuaudit").join("kernels"))
}

fn memory_cache() -> &'static Mutex<HashMap<String, Arc<Vec<u8>>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Compile `kernel` for `target`, through the cache.
pub fn compile_cached(kernel: &KernelSource, target: Target) -> Result<Compiled, String> {
    let key = cache_key(kernel, target, nvrtc_version()?);
    if let Ok(map) = memory_cache().lock()
        && let Some(image) = map.get(&key)
    {
        return Ok(Compiled {
            target,
            image: image.clone(),
            cached: true,
        });
    }
    let disk = cache_dir().map(|d| d.join(&key));
    if let Some(path) = &disk
        && let Ok(bytes) = std::fs::read(path)
        && !bytes.is_empty()
    {
        let image = Arc::new(bytes);
        if let Ok(mut map) = memory_cache().lock() {
            map.insert(key, image.clone());
        }
        return Ok(Compiled {
            target,
            image,
            cached: true,
        });
    }
    let compiled = compile(kernel, target)?;
    if let Ok(mut map) = memory_cache().lock() {
        map.insert(key, compiled.image.clone());
    }
    if let Some(path) = disk {
        // Write to a temporary name, then rename, so a concurrent reader never sees half a file.
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let written = path
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| std::fs::write(&tmp, compiled.image.as_slice()))
            .and_then(|_| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(compiled)
}

/// Compile `kernel` for `target` with NVRTC, bypassing the cache. The error carries NVRTC's log.
pub fn compile(kernel: &KernelSource, target: Target) -> Result<Compiled, String> {
    if !nvrtc_present() {
        return Err("NVRTC library (libnvrtc.so) not found".into());
    }
    let source = CString::new(kernel.source)
        .map_err(|_| format!("kernels/{}.cu contains a NUL byte", kernel.name))?;
    let name = CString::new(format!("{}.cu", kernel.name))
        .map_err(|_| "kernel name contains a NUL byte".to_string())?;
    let program = nvrtc_result::create_program(&source, Some(&name))
        .map_err(|e| format!("nvrtcCreateProgram({}): {e:?}", kernel.name))?;
    let options = [
        format!("--gpu-architecture={}", target.arch()),
        "-std=c++17".to_string(),
        // FMA contraction is what production kernels use; the STREAM check allows for it.
        "--fmad=true".to_string(),
    ];
    // SAFETY: `program` was just created and is destroyed exactly once below.
    let compiled = unsafe { nvrtc_result::compile_program(program, &options) };
    let outcome = match compiled {
        Err(e) => {
            // SAFETY: the program is live.
            let log = unsafe { nvrtc_result::get_program_log(program) }
                .map(|chars| c_chars_to_string(&chars))
                .unwrap_or_default();
            Err(format!(
                "NVRTC could not compile kernels/{}.cu for {}: {e:?}\n{log}",
                kernel.name,
                target.arch()
            ))
        }
        Ok(()) => read_image(program, target).map_err(|e| format!("{}: {e}", kernel.name)),
    };
    // SAFETY: created above, not destroyed before.
    let _ = unsafe { nvrtc_result::destroy_program(program) };
    outcome.map(|image| Compiled {
        target,
        image: Arc::new(image),
        cached: false,
    })
}

fn read_image(program: nvrtc_sys::nvrtcProgram, target: Target) -> Result<Vec<u8>, String> {
    match target {
        Target::Ptx { .. } => {
            // SAFETY: the program compiled successfully and is live.
            let chars = unsafe { nvrtc_result::get_ptx(program) }
                .map_err(|e| format!("nvrtcGetPTX: {e:?}"))?;
            Ok(c_chars_to_string(&chars).into_bytes())
        }
        Target::Cubin { .. } => {
            let mut size = 0usize;
            // SAFETY: live, compiled program; `size` is a live local.
            unsafe { nvrtc_sys::nvrtcGetCUBINSize(program, &mut size) }
                .result()
                .map_err(|e| format!("nvrtcGetCUBINSize: {e:?}"))?;
            if size == 0 {
                return Err("NVRTC produced an empty cubin".into());
            }
            let mut image = vec![0u8; size];
            // SAFETY: `image` holds exactly the `size` bytes NVRTC reported.
            unsafe { nvrtc_sys::nvrtcGetCUBIN(program, image.as_mut_ptr().cast()) }
                .result()
                .map_err(|e| format!("nvrtcGetCUBIN: {e:?}"))?;
            Ok(image)
        }
    }
}

fn c_chars_to_string(chars: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// How to build kernels for a device of compute capability `major.minor`: its exact cubin when
/// NVRTC supports the arch, else PTX for the highest supported arch not above it.
pub fn target_for(major: u32, minor: u32, supported: &[u32]) -> Option<Target> {
    let wanted = major * 10 + minor;
    if supported.contains(&wanted) {
        return Some(Target::Cubin { major, minor });
    }
    supported
        .iter()
        .copied()
        .filter(|&a| a <= wanted)
        .max()
        .map(|a| Target::Ptx {
            major: a / 10,
            minor: a % 10,
        })
}

/// The functions the host needs from `kernel` on a device of arch `sm_XY` (`xy` = 10·major+minor).
pub fn functions_for(kernel: &KernelSource, xy: u32) -> Vec<&'static str> {
    let mut f = kernel.functions.to_vec();
    if kernel.name == INIT.name && xy >= 89 {
        f.extend_from_slice(FP8_FUNCTIONS);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_prefer_the_exact_cubin_and_fall_back_to_older_ptx() {
        let supported = [75, 80, 86, 89, 90, 100, 120];
        assert_eq!(
            target_for(9, 0, &supported),
            Some(Target::Cubin { major: 9, minor: 0 })
        );
        // An NVRTC that predates the GPU: PTX for the newest arch it knows, JIT by the driver.
        assert_eq!(
            target_for(10, 3, &supported),
            Some(Target::Ptx {
                major: 10,
                minor: 0
            })
        );
        assert_eq!(target_for(7, 0, &supported), None);
        assert_eq!(Target::Cubin { major: 9, minor: 0 }.arch(), "sm_90");
        assert_eq!(Target::Ptx { major: 8, minor: 0 }.arch(), "compute_80");
    }

    #[test]
    fn cache_keys_change_with_source_arch_and_nvrtc() {
        let t90 = Target::Cubin { major: 9, minor: 0 };
        let t80 = Target::Cubin { major: 8, minor: 0 };
        let a = cache_key(&INIT, t90, (13, 0));
        assert!(
            a.starts_with("init-") && a.ends_with("-sm_90-nvrtc13.0.cubin"),
            "{a}"
        );
        assert_ne!(a, cache_key(&INIT, t80, (13, 0)));
        assert_ne!(a, cache_key(&INIT, t90, (13, 1)));
        let edited = KernelSource {
            source: "// edited\n",
            ..INIT
        };
        assert_ne!(a, cache_key(&edited, t90, (13, 0)));
        // FNV-1a reference value: the empty string hashes to the offset basis.
        assert_eq!(source_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(source_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn every_listed_function_is_defined_in_its_source() {
        for k in ALL {
            for f in functions_for(&k, 90) {
                let defined =
                    k.source.contains(&format!(" {f}(")) || k.source.contains(&format!("({f},"));
                assert!(defined, "{f} not found in kernels/{}.cu", k.name);
            }
        }
    }
}
