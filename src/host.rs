//! Facts about the host machine, for the result file and for sizing CPU benchmarks.

use crate::result::HostInfo;
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// Collect host facts. Anything the OS does not tell is left empty, never guessed.
pub fn collect() -> HostInfo {
    let refresh = RefreshKind::nothing()
        .with_memory(MemoryRefreshKind::nothing().with_ram())
        .with_cpu(CpuRefreshKind::nothing());
    let system = System::new_with_specifics(refresh).ok();
    let cpu_model = system
        .as_ref()
        .and_then(|s| s.cpus().first().map(|c| c.brand().trim().to_string()))
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "unknown CPU".into());
    HostInfo {
        hostname: System::host_name().unwrap_or_else(|_| "unknown-host".into()),
        os: System::long_os_version()
            .or_else(|_| System::name())
            .unwrap_or_default(),
        kernel: System::kernel_version().unwrap_or_default(),
        cpu_model,
        cpu_cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        physical_cores: System::physical_core_count().ok(),
        memory_bytes: system.as_ref().map(|s| s.total_memory()).unwrap_or(0),
    }
}

/// Size of the largest CPU cache (the last level) in bytes, from Linux sysfs. `None` when the
/// OS does not say.
pub fn last_level_cache_bytes() -> Option<u64> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    dir.filter_map(|entry| {
        let path = entry.ok()?.path();
        let size = std::fs::read_to_string(path.join("size")).ok()?;
        parse_cache_size(size.trim())
    })
    .max()
}

/// Parse sysfs cache sizes such as "32768K", "2M" or "512".
fn parse_cache_size(s: &str) -> Option<u64> {
    let (digits, scale) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1u64 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits.parse::<u64>().ok().map(|v| v * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sizes_parse() {
        assert_eq!(parse_cache_size("32768K"), Some(32 << 20));
        assert_eq!(parse_cache_size("2M"), Some(2 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size("x"), None);
        assert_eq!(parse_cache_size(""), None);
    }

    #[test]
    fn host_facts_are_collected_on_this_machine() {
        let h = collect();
        assert!(!h.hostname.is_empty());
        assert!(h.cpu_cores >= 1);
        assert!(h.memory_bytes > 0, "sysinfo reported no memory");
    }
}
