//! Host sampler for the CPU backend: CPU frequency through sysinfo, package energy from Linux
//! powercap (RAPL) where readable. Cloud VMs rarely expose RAPL; then the summary says so.

use super::{Sample, Sampler, TelemetryError};
use std::path::{Path, PathBuf};
use sysinfo::{CpuRefreshKind, RefreshKind, System};

pub struct HostSampler {
    /// `None` when sysinfo cannot read the host (the sampler then reports why per reading).
    system: Option<System>,
    /// `energy_uj` files of the RAPL packages, and why there are none when empty.
    rapl: Result<Vec<PathBuf>, String>,
    base_mhz: Option<f64>,
}

impl Default for HostSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl HostSampler {
    pub fn new() -> HostSampler {
        let refresh = RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing().with_frequency());
        HostSampler {
            system: System::new_with_specifics(refresh).ok(),
            rapl: rapl_files(Path::new("/sys/class/powercap")),
            // intel_pstate publishes the base (non-turbo) frequency in kHz.
            base_mhz: std::fs::read_to_string(
                "/sys/devices/system/cpu/cpu0/cpufreq/base_frequency",
            )
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .map(|khz| khz / 1e3),
        }
    }

    /// Why package energy is not read, when it is not.
    pub fn energy_problem(&self) -> Option<&str> {
        self.rapl.as_ref().err().map(String::as_str)
    }
}

/// Package-level RAPL domains (`intel-rapl:N`, not the `:N:M` subdomains, which the package
/// already includes) whose counter can be read.
fn rapl_files(root: &Path) -> Result<Vec<PathBuf>, String> {
    let dir = std::fs::read_dir(root)
        .map_err(|e| format!("package energy unavailable: {} ({e})", root.display()))?;
    let mut files = Vec::new();
    let mut problem = None;
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_package = name.starts_with("intel-rapl:") && name.matches(':').count() == 1;
        if !is_package {
            continue;
        }
        let file = entry.path().join("energy_uj");
        match std::fs::read_to_string(&file) {
            Ok(_) => files.push(file),
            Err(e) => problem = Some(format!("{} ({e})", file.display())),
        }
    }
    if files.is_empty() {
        Err(format!(
            "package energy unavailable: {}",
            problem.unwrap_or_else(|| format!("no intel-rapl package under {}", root.display()))
        ))
    } else {
        Ok(files)
    }
}

impl Sampler for HostSampler {
    fn source(&self) -> String {
        match &self.rapl {
            Ok(files) => format!(
                "sysinfo CPU frequency; RAPL energy ({} package(s))",
                files.len()
            ),
            Err(why) => format!("sysinfo CPU frequency; {why}"),
        }
    }

    fn base_sm_clock_mhz(&self) -> Option<f64> {
        self.base_mhz
    }

    fn sample(&mut self) -> Result<Sample, TelemetryError> {
        let system = self.system.as_mut().ok_or_else(|| {
            TelemetryError::Unavailable("sysinfo cannot read this host's CPUs".into())
        })?;
        system.refresh_cpu_frequency();
        let freqs: Vec<f64> = system
            .cpus()
            .iter()
            .map(|c| c.frequency() as f64)
            .filter(|&f| f > 0.0)
            .collect();
        if freqs.is_empty() {
            return Err(TelemetryError::Read(
                "the OS reports no CPU frequency".into(),
            ));
        }
        // RAPL counters wrap (max_energy_range_uj); a wrapped difference is dropped by the
        // summary's "counter must not decrease" check rather than corrected here.
        let energy_j = match &self.rapl {
            Ok(files) => files
                .iter()
                .map(|f| {
                    std::fs::read_to_string(f)
                        .ok()
                        .and_then(|s| s.trim().parse::<f64>().ok())
                })
                .sum::<Option<f64>>()
                .map(|uj| uj / 1e6),
            Err(_) => None,
        };
        Ok(Sample {
            // The mean over cores: what the benchmark threads, spread over all cores, ran at.
            sm_clock_mhz: Some(freqs.iter().sum::<f64>() / freqs.len() as f64),
            energy_j,
            ..Sample::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_sampler_reads_a_plausible_cpu_frequency_here() {
        let mut s = HostSampler::new();
        let sample = s.sample().expect("this machine reports a CPU frequency");
        let mhz = sample.sm_clock_mhz.expect("frequency");
        assert!((100.0..10_000.0).contains(&mhz), "{mhz} MHz");
        // On this VM RAPL is absent: the source says why instead of reporting zero energy.
        if sample.energy_j.is_none() {
            assert!(s.source().contains("unavailable"), "{}", s.source());
        }
    }

    #[test]
    fn missing_powercap_is_a_reason() {
        let e = rapl_files(Path::new("/nonexistent/powercap")).expect_err("absent");
        assert!(e.starts_with("package energy unavailable"), "{e}");
    }
}
