//! Health snapshot of each GPU before and after a run (ECC, retired pages, row remapping, PCIe
//! link, power limit, persistence and MIG mode, driver), and the findings they support.

use super::TelemetryError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    PcieDowntrained,
    EccUncorrected,
    EccCorrectedDuringRun,
    RetiredPages,
    RowRemapPending,
    RowRemapFailed,
    PowerLimitReduced,
    PersistenceOff,
    MigEnabled,
    SustainedDecay,
    HealthUnavailable,
}

/// Something a reader of the result should know, with how much it matters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<usize>,
    pub severity: Severity,
    pub kind: FindingKind,
    pub message: String,
}

/// One reading of a GPU's health. A field NVML cannot read is absent (the reason is in
/// `problems`), never zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthSnapshot {
    pub taken_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_corrected_volatile: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_uncorrected_volatile: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_uncorrected_aggregate: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_pages_sbe: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_pages_dbe: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remap_pending: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remap_failed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_gen_current: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_gen_max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_width_current: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_width_max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_limit_enforced_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_limit_default_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_mode: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    /// Fields that could not be read, and why (e.g. ECC on a GeForce board).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Before and after snapshots of one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceHealth {
    pub device: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<HealthSnapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<HealthSnapshot>,
    /// Change during the run (after − before), when both were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_corrected_delta: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_uncorrected_delta: Option<u64>,
}

impl DeviceHealth {
    pub fn new(
        device: usize,
        uuid: Option<String>,
        before: Result<HealthSnapshot, TelemetryError>,
    ) -> DeviceHealth {
        let (before, unavailable) = match before {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        DeviceHealth {
            device,
            uuid,
            unavailable,
            before,
            after: None,
            ecc_corrected_delta: None,
            ecc_uncorrected_delta: None,
        }
    }

    pub fn set_after(&mut self, after: Result<HealthSnapshot, TelemetryError>) {
        match after {
            Ok(a) => {
                if let Some(b) = &self.before {
                    let delta = |x: Option<u64>, y: Option<u64>| Some(y?.saturating_sub(x?));
                    self.ecc_corrected_delta =
                        delta(b.ecc_corrected_volatile, a.ecc_corrected_volatile);
                    self.ecc_uncorrected_delta =
                        delta(b.ecc_uncorrected_volatile, a.ecc_uncorrected_volatile);
                }
                self.after = Some(a);
            }
            Err(e) => {
                self.unavailable.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Read a snapshot of the GPU with `uuid` through NVML.
pub fn snapshot(
    nvml: &nvml_wrapper::Nvml,
    uuid: &str,
    taken_at: String,
) -> Result<HealthSnapshot, TelemetryError> {
    use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError, RetirementCause};
    let uuid = super::nvml::normalize_uuid(uuid);
    let d = nvml.device_by_uuid(uuid.as_str()).map_err(|e| {
        TelemetryError::Unavailable(format!("NVML has no device with UUID {uuid} ({e})"))
    })?;
    let mut problems = Vec::new();
    fn get<T>(
        problems: &mut Vec<String>,
        what: &str,
        r: Result<T, nvml_wrapper::error::NvmlError>,
    ) -> Option<T> {
        r.map_err(|e| problems.push(format!("{what}: {e}"))).ok()
    }
    let mut s = HealthSnapshot {
        taken_at,
        ecc_corrected_volatile: get(
            &mut problems,
            "ECC corrected",
            d.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile),
        ),
        ecc_uncorrected_volatile: get(
            &mut problems,
            "ECC uncorrected",
            d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile),
        ),
        ecc_uncorrected_aggregate: get(
            &mut problems,
            "ECC uncorrected (aggregate)",
            d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate),
        ),
        retired_pages_sbe: get(
            &mut problems,
            "retired pages (single-bit)",
            d.retired_pages(RetirementCause::MultipleSingleBitEccErrors)
                .map(|p| p.len() as u64),
        ),
        retired_pages_dbe: get(
            &mut problems,
            "retired pages (double-bit)",
            d.retired_pages(RetirementCause::DoubleBitEccError)
                .map(|p| p.len() as u64),
        ),
        remap_pending: None,
        remap_failed: None,
        pcie_gen_current: get(&mut problems, "PCIe generation", d.current_pcie_link_gen()),
        pcie_gen_max: get(&mut problems, "PCIe max generation", d.max_pcie_link_gen()),
        pcie_width_current: get(&mut problems, "PCIe width", d.current_pcie_link_width()),
        pcie_width_max: get(&mut problems, "PCIe max width", d.max_pcie_link_width()),
        power_limit_enforced_w: get(
            &mut problems,
            "enforced power limit",
            d.enforced_power_limit(),
        )
        .map(|mw| f64::from(mw) / 1e3),
        power_limit_default_w: get(
            &mut problems,
            "default power limit",
            d.power_management_limit_default(),
        )
        .map(|mw| f64::from(mw) / 1e3),
        persistence_mode: get(&mut problems, "persistence mode", d.is_in_persistent_mode()),
        mig_enabled: get(&mut problems, "MIG mode", d.mig_mode()).map(|m| m.current == 1),
        driver_version: get(&mut problems, "driver version", nvml.sys_driver_version()),
        problems: Vec::new(),
    };
    match remapped_rows(nvml, &d) {
        Ok((pending, failed)) => {
            s.remap_pending = Some(pending);
            s.remap_failed = Some(failed);
        }
        Err(e) => problems.push(format!("row remapping: {e}")),
    }
    s.problems = problems;
    Ok(s)
}

/// Row-remapping state (Ampere and newer). nvml-wrapper 0.13 has no safe wrapper for
/// `nvmlDeviceGetRemappedRows`, so it is called through the loaded library's symbol table.
fn remapped_rows(
    nvml: &nvml_wrapper::Nvml,
    d: &nvml_wrapper::Device<'_>,
) -> Result<(bool, bool), String> {
    let f = nvml
        .lib()
        .nvmlDeviceGetRemappedRows
        .as_ref()
        .map_err(|e| format!("not in this driver's NVML ({e})"))?;
    let (mut corrected, mut uncorrected, mut pending, mut failed) = (0u32, 0u32, 0u32, 0u32);
    // SAFETY: the handle comes from a live `Device` of this `Nvml`, and the four out-pointers
    // point at local integers, as the NVML signature requires.
    let status = unsafe {
        f(
            d.handle(),
            &mut corrected,
            &mut uncorrected,
            &mut pending,
            &mut failed,
        )
    };
    if status == 0 {
        Ok((pending != 0, failed != 0))
    } else {
        Err(format!("NVML returned status {status}"))
    }
}

/// Findings a device's health supports. Pure: the rules are tested on recorded snapshots.
///
/// The PCIe link is judged on the best state seen (before or after): idle GPUs lower their link
/// generation to save power, so one idle reading alone is not a downtrained link.
pub fn findings(h: &DeviceHealth) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |severity, kind, message: String| {
        out.push(Finding {
            device: Some(h.device),
            severity,
            kind,
            message,
        })
    };
    let snaps: Vec<&HealthSnapshot> = h.before.iter().chain(h.after.iter()).collect();
    let Some(latest) = snaps.last() else {
        add(
            Severity::Info,
            FindingKind::HealthUnavailable,
            h.unavailable
                .clone()
                .unwrap_or_else(|| "no health snapshot".into()),
        );
        return out;
    };
    let best = |f: fn(&HealthSnapshot) -> Option<u32>| snaps.iter().filter_map(|s| f(s)).max();
    if let (Some(g), Some(gm), Some(w), Some(wm)) = (
        best(|s| s.pcie_gen_current),
        best(|s| s.pcie_gen_max),
        best(|s| s.pcie_width_current),
        best(|s| s.pcie_width_max),
    ) && (g < gm || w < wm)
    {
        add(
            Severity::Warning,
            FindingKind::PcieDowntrained,
            format!("PCIe link trained at Gen{g} x{w}, maximum Gen{gm} x{wm}"),
        );
    }
    if let Some(n) = latest.ecc_uncorrected_aggregate.filter(|&n| n > 0) {
        add(
            Severity::Critical,
            FindingKind::EccUncorrected,
            format!("{n} uncorrected ECC error(s) in the GPU's lifetime"),
        );
    }
    if let Some(n) = h.ecc_uncorrected_delta.filter(|&n| n > 0) {
        add(
            Severity::Critical,
            FindingKind::EccUncorrected,
            format!("{n} uncorrected ECC error(s) during the run"),
        );
    }
    if let Some(n) = h.ecc_corrected_delta.filter(|&n| n > 0) {
        add(
            Severity::Warning,
            FindingKind::EccCorrectedDuringRun,
            format!("{n} corrected ECC error(s) during the run"),
        );
    }
    let retired = latest.retired_pages_sbe.unwrap_or(0) + latest.retired_pages_dbe.unwrap_or(0);
    if retired > 0 {
        add(
            Severity::Warning,
            FindingKind::RetiredPages,
            format!("{retired} retired memory page(s)"),
        );
    }
    if latest.remap_failed == Some(true) {
        add(
            Severity::Critical,
            FindingKind::RowRemapFailed,
            "row remapping failed: the GPU has run out of spare memory rows".into(),
        );
    }
    if latest.remap_pending == Some(true) {
        add(
            Severity::Warning,
            FindingKind::RowRemapPending,
            "row remapping pending: a GPU reset is needed to retire faulty memory rows".into(),
        );
    }
    if let (Some(e), Some(d)) = (latest.power_limit_enforced_w, latest.power_limit_default_w)
        && e < d * 0.99
    {
        add(
            Severity::Warning,
            FindingKind::PowerLimitReduced,
            format!("power limit {e:.0} W enforced, default {d:.0} W"),
        );
    }
    if latest.persistence_mode == Some(false) {
        add(
            Severity::Info,
            FindingKind::PersistenceOff,
            "persistence mode is off (first CUDA call after idle re-initialises the GPU)".into(),
        );
    }
    if latest.mig_enabled == Some(true) {
        add(
            Severity::Warning,
            FindingKind::MigEnabled,
            "MIG mode is enabled: measurements cover a GPU instance, not the whole GPU".into(),
        );
    }
    out
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub(crate) fn healthy() -> HealthSnapshot {
        HealthSnapshot {
            taken_at: "t".into(),
            ecc_corrected_volatile: Some(0),
            ecc_uncorrected_volatile: Some(0),
            ecc_uncorrected_aggregate: Some(0),
            retired_pages_sbe: Some(0),
            retired_pages_dbe: Some(0),
            remap_pending: Some(false),
            remap_failed: Some(false),
            pcie_gen_current: Some(5),
            pcie_gen_max: Some(5),
            pcie_width_current: Some(16),
            pcie_width_max: Some(16),
            power_limit_enforced_w: Some(700.0),
            power_limit_default_w: Some(700.0),
            persistence_mode: Some(true),
            mig_enabled: Some(false),
            driver_version: Some("570.86".into()),
            problems: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::healthy;
    use super::*;

    fn health(before: HealthSnapshot, after: HealthSnapshot) -> DeviceHealth {
        let mut h = DeviceHealth::new(0, None, Ok(before));
        h.set_after(Ok(after));
        h
    }

    #[test]
    fn a_healthy_gpu_has_no_findings() {
        assert!(findings(&health(healthy(), healthy())).is_empty());
    }

    #[test]
    fn downtrained_link_ecc_and_power_limit_are_found() {
        let mut after = healthy();
        after.pcie_gen_current = Some(4);
        after.ecc_corrected_volatile = Some(12);
        after.power_limit_enforced_w = Some(500.0);
        let mut before = healthy();
        before.pcie_gen_current = Some(4);
        let f = findings(&health(before, after));
        let msg: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        assert!(
            msg.contains(&"PCIe link trained at Gen4 x16, maximum Gen5 x16"),
            "{msg:?}"
        );
        assert!(
            f.iter()
                .any(|f| f.kind == FindingKind::EccCorrectedDuringRun
                    && f.message.starts_with("12 "))
        );
        assert!(
            msg.contains(&"power limit 500 W enforced, default 700 W"),
            "{msg:?}"
        );
    }

    #[test]
    fn an_idle_reading_alone_is_not_downtraining() {
        let mut before = healthy();
        before.pcie_gen_current = Some(1); // idle power saving
        assert!(findings(&health(before, healthy())).is_empty());
    }

    #[test]
    fn unavailable_health_is_an_info_finding() {
        let h = DeviceHealth::new(0, None, Err(TelemetryError::Unavailable("no NVML".into())));
        let f = findings(&h);
        assert_eq!(f[0].kind, FindingKind::HealthUnavailable);
        assert_eq!(f[0].severity, Severity::Info);
    }
}
