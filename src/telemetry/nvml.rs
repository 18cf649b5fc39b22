//! NVML sampler (`nvml-wrapper`, which opens `libnvidia-ml.so.1` at run time: no driver means an
//! error we report as "unavailable: …", never a panic). Devices are found by UUID, never by
//! index: NVML's and CUDA's orderings differ (CUDA_VISIBLE_DEVICES, FASTEST_FIRST), and reading
//! GPU 0 for CUDA device 0 would attribute another GPU's throttling to the one measured.

use super::{ClockReason, Sample, Sampler, TelemetryError};
use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use std::sync::Arc;

/// Load and initialise NVML. The error is a sentence saying what is missing.
pub fn open() -> Result<Arc<Nvml>, TelemetryError> {
    open_with(None)
}

/// As [`open`], from an explicit library path (tests use a path that does not exist).
pub fn open_with(lib_path: Option<&std::ffi::OsStr>) -> Result<Arc<Nvml>, TelemetryError> {
    let mut builder = Nvml::builder();
    if let Some(p) = lib_path {
        builder.lib_path(p);
    }
    builder.init().map(Arc::new).map_err(|e| {
        TelemetryError::Unavailable(format!(
            "NVML could not be initialised ({e}); is the NVIDIA driver (libnvidia-ml.so.1) installed?"
        ))
    })
}

/// Board serial number and VBIOS version of the device `uuid`, where NVML can read them (the
/// serial is only readable on boards that publish one). For provenance.
pub fn board_identity(nvml: &Nvml, uuid: &str) -> (Option<String>, Option<String>) {
    match nvml.device_by_uuid(normalize_uuid(uuid).as_str()) {
        Ok(device) => (
            device.serial().ok().filter(|s| !s.trim().is_empty()),
            device.vbios_version().ok().filter(|v| !v.trim().is_empty()),
        ),
        Err(_) => (None, None),
    }
}

/// NVML's UUID form: `GPU-` (or `MIG-`) + lowercase hex groups. The CUDA backend already prints
/// `GPU-…`; this also accepts bare or upper-case forms so a join never fails on spelling.
pub fn normalize_uuid(uuid: &str) -> String {
    let u = uuid.trim();
    let lower = u.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("gpu-") {
        format!("GPU-{rest}")
    } else if let Some(rest) = lower.strip_prefix("mig-") {
        format!("MIG-{rest}")
    } else {
        format!("GPU-{lower}")
    }
}

/// Map NVML's bitmask with `contains`, not equality: several reasons are often set at once
/// (power cap and thermal together), and an exact match would miss both.
pub fn reasons_of(mask: ThrottleReasons) -> Vec<ClockReason> {
    let table = [
        (ThrottleReasons::GPU_IDLE, ClockReason::GpuIdle),
        (
            ThrottleReasons::APPLICATIONS_CLOCKS_SETTING,
            ClockReason::ApplicationsClocks,
        ),
        (ThrottleReasons::SW_POWER_CAP, ClockReason::SwPowerCap),
        (ThrottleReasons::HW_SLOWDOWN, ClockReason::HwSlowdown),
        (ThrottleReasons::SYNC_BOOST, ClockReason::SyncBoost),
        (
            ThrottleReasons::SW_THERMAL_SLOWDOWN,
            ClockReason::SwThermalSlowdown,
        ),
        (
            ThrottleReasons::HW_THERMAL_SLOWDOWN,
            ClockReason::HwThermalSlowdown,
        ),
        (
            ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN,
            ClockReason::HwPowerBrake,
        ),
        (
            ThrottleReasons::DISPLAY_CLOCK_SETTING,
            ClockReason::DisplayClocks,
        ),
    ];
    table
        .iter()
        .filter(|(bit, _)| !bit.is_empty() && mask.contains(*bit))
        .map(|&(_, r)| r)
        .collect()
}

pub struct NvmlSampler {
    nvml: Arc<Nvml>,
    uuid: String,
    driver: String,
    base_sm_clock_mhz: Option<f64>,
}

impl NvmlSampler {
    /// Check that NVML knows the device `uuid` (as the CUDA backend reported it).
    pub fn new(nvml: Arc<Nvml>, uuid: &str) -> Result<NvmlSampler, TelemetryError> {
        let uuid = normalize_uuid(uuid);
        let device = nvml.device_by_uuid(uuid.as_str()).map_err(|e| {
            TelemetryError::Unavailable(format!("NVML has no device with UUID {uuid} ({e})"))
        })?;
        // NVML has no "base clock" query; the default applications clock is the clock the
        // board runs at without boost settings, the nearest published stand-in.
        let base_sm_clock_mhz = device
            .default_applications_clock(Clock::Graphics)
            .ok()
            .map(f64::from);
        let driver = nvml.sys_driver_version().unwrap_or_default();
        Ok(NvmlSampler {
            nvml,
            uuid,
            driver,
            base_sm_clock_mhz,
        })
    }
}

impl Sampler for NvmlSampler {
    fn source(&self) -> String {
        format!("NVML (driver {}) {}", self.driver, self.uuid)
    }

    fn base_sm_clock_mhz(&self) -> Option<f64> {
        self.base_sm_clock_mhz
    }

    fn sample(&mut self) -> Result<Sample, TelemetryError> {
        let d = self
            .nvml
            .device_by_uuid(self.uuid.as_str())
            .map_err(|e| TelemetryError::Read(format!("{}: {e}", self.uuid)))?;
        let utilization = d.utilization_rates().ok();
        Ok(Sample {
            t_s: 0.0,
            sm_clock_mhz: d.clock_info(Clock::SM).ok().map(f64::from),
            mem_clock_mhz: d.clock_info(Clock::Memory).ok().map(f64::from),
            power_w: d.power_usage().ok().map(|mw| f64::from(mw) / 1e3),
            energy_j: d.total_energy_consumption().ok().map(|mj| mj as f64 / 1e3),
            temperature_c: d.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
            reasons: d
                .current_throttle_reasons()
                .map(reasons_of)
                .unwrap_or_default(),
            gpu_util_pct: utilization.as_ref().map(|u| f64::from(u.gpu)),
            mem_util_pct: utilization.as_ref().map(|u| f64::from(u.memory)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_nvml_is_unavailable_with_a_reason_not_a_panic() {
        let e = open_with(Some(std::ffi::OsStr::new(
            "/nonexistent/gpuaudit-test/libnvidia-ml.so.1",
        )))
        .expect_err("no library at that path");
        let text = e.to_string();
        assert!(text.starts_with("unavailable: NVML"), "{text}");
        // The default path: on this machine (no driver) also an error; with a driver, fine too.
        match open() {
            Ok(_) => {}
            Err(e) => assert!(e.to_string().starts_with("unavailable: "), "{e}"),
        }
    }

    #[test]
    fn uuids_normalise_to_nvml_form() {
        let nvml_form = "GPU-12345678-9abc-def0-1234-56789abcdef0";
        assert_eq!(normalize_uuid(nvml_form), nvml_form);
        assert_eq!(
            normalize_uuid(" gpu-12345678-9ABC-DEF0-1234-56789ABCDEF0 "),
            nvml_form
        );
        assert_eq!(
            normalize_uuid("12345678-9abc-def0-1234-56789abcdef0"),
            nvml_form
        );
        assert!(normalize_uuid("MIG-aa").starts_with("MIG-aa"));
    }

    #[test]
    fn combined_reason_bits_are_all_reported() {
        let mask = ThrottleReasons::SW_POWER_CAP | ThrottleReasons::HW_THERMAL_SLOWDOWN;
        assert_eq!(
            reasons_of(mask),
            vec![ClockReason::SwPowerCap, ClockReason::HwThermalSlowdown]
        );
        assert!(reasons_of(ThrottleReasons::NONE).is_empty());
    }
}
