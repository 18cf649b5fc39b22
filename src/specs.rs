//! Built-in datasheet data: dense peaks per GPU SKU, SKU detection from what a backend reports,
//! and the `peak` / `fraction_of_peak` annotation of results.
//!
//! The figures live in `data/specs.toml` (compiled in), each entry naming its source. Only dense
//! figures are peaks; NVIDIA's printed 2:4-sparse tensor figures are kept apart so that a contract
//! quoting one can be recognised as a sparse/dense mix-up.

use crate::backend::{BackendKind, DeviceInfo};
use crate::result::RunResult;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

const SPECS_TOML: &str = include_str!("../data/specs.toml");

/// Tensor figures NVIDIA prints with 2:4 sparsity (2× the dense ones). Never used as peaks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparseFigures {
    pub tf32_tflops: Option<f64>,
    pub fp16_tflops: Option<f64>,
    pub bf16_tflops: Option<f64>,
    pub fp8_tflops: Option<f64>,
    pub int8_tops: Option<f64>,
}

/// One datasheet entry; per GPU, dense, in TFLOPS (INT8: TOPS), GB and GB/s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sku {
    pub id: String,
    pub name: String,
    /// Alternatives of upper-case name tokens; all tokens of one alternative must be present.
    #[serde(rename = "match")]
    pub match_tokens: Vec<Vec<String>>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub memory_gb: f64,
    pub memory_bandwidth_gbps: f64,
    pub sm_counts: Vec<u32>,
    pub fp64_tflops: Option<f64>,
    pub fp64_tensor_tflops: Option<f64>,
    pub fp32_tflops: Option<f64>,
    pub tf32_tflops: Option<f64>,
    pub fp16_tflops: Option<f64>,
    pub bf16_tflops: Option<f64>,
    pub fp8_tflops: Option<f64>,
    pub int8_tops: Option<f64>,
    #[serde(default)]
    pub sparse: SparseFigures,
    pub source: String,
    /// What the documents disagree on, when they do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertain: Option<String>,
}

impl Sku {
    /// Dense peak for a measurement metric (`gemm.bf16.tflops`, `stream.triad.gbps`), in the
    /// metric's unit. `None` when the datasheet has no figure (e.g. FP8 on an A100) or the metric
    /// has no datasheet counterpart (transfers, launch latency).
    pub fn peak(&self, metric: &str) -> Option<f64> {
        let mut parts = metric.split('.');
        let (bench, variant, unit) = (parts.next()?, parts.next()?, parts.next()?);
        match (bench, unit) {
            // cuBLAS DGEMM runs on the FP64 tensor cores where a GPU has them.
            ("gemm", "tflops") => match variant {
                "fp64" => self.fp64_tensor_tflops.or(self.fp64_tflops),
                "fp32" => self.fp32_tflops,
                "tf32" => self.tf32_tflops,
                "fp16" => self.fp16_tflops,
                "bf16" => self.bf16_tflops,
                "fp8_e4m3" => self.fp8_tflops,
                _ => None,
            },
            ("stream", "gbps") => Some(self.memory_bandwidth_gbps),
            _ => None,
        }
    }

    /// The printed sparse figure for a GEMM metric, if the datasheet has one.
    pub fn sparse(&self, metric: &str) -> Option<f64> {
        match metric {
            "gemm.tf32.tflops" => self.sparse.tf32_tflops,
            "gemm.fp16.tflops" => self.sparse.fp16_tflops,
            "gemm.bf16.tflops" => self.sparse.bf16_tflops,
            "gemm.fp8_e4m3.tflops" => self.sparse.fp8_tflops,
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecsFile {
    sku: Vec<Sku>,
}

/// Parse the datasheet text; separate from [`all`] so tests can feed it bad data.
fn parse(text: &str) -> Result<Vec<Sku>, String> {
    let file: SpecsFile = toml::from_str(text).map_err(|e| e.to_string())?;
    for s in &file.sku {
        if s.match_tokens.is_empty() || s.sm_counts.is_empty() || s.source.trim().is_empty() {
            return Err(format!("{}: needs match, sm_counts and source", s.id));
        }
    }
    Ok(file.sku)
}

/// Every SKU in the built-in data.
pub fn all() -> &'static [Sku] {
    static SKUS: OnceLock<Vec<Sku>> = OnceLock::new();
    // The data is compiled in and parsed by a unit test, so a failure here is a build defect,
    // not an input error; an empty table keeps the tool usable (every SKU "unknown").
    SKUS.get_or_init(|| parse(SPECS_TOML).unwrap_or_default())
}

/// Look up a SKU by id, case-insensitively.
pub fn find(id: &str) -> Option<&'static Sku> {
    all().iter().find(|s| s.id.eq_ignore_ascii_case(id))
}

/// Comma-separated ids, for error messages.
pub fn known_ids() -> String {
    all()
        .iter()
        .map(|s| s.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Outcome of matching a device to the datasheet: the SKU, or why none could be chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Detection {
    Known(&'static Sku),
    Unknown(String),
}

fn tokens(name: &str) -> Vec<String> {
    name.to_uppercase()
        .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// A "<n>GB" token in the name (e.g. "NVIDIA A100-SXM4-40GB").
fn name_memory_gb(tokens: &[String]) -> Option<f64> {
    tokens
        .iter()
        .find_map(|t| t.strip_suffix("GB").and_then(|n| n.parse::<f64>().ok()))
}

/// Match a device to a datasheet SKU from its name, memory size and SM count. Memory and SM
/// count are checked only when reported (`memory_bytes > 0`, `sm_count` present).
pub fn detect(name: &str, memory_bytes: u64, sm_count: Option<u32>) -> Detection {
    let toks = tokens(name);
    if toks.iter().any(|t| t == "MIG") {
        return Detection::Unknown(format!(
            "\"{name}\" is a MIG slice; whole-GPU datasheet peaks do not apply"
        ));
    }
    let stated_gb = name_memory_gb(&toks);
    let by_name: Vec<&'static Sku> = all()
        .iter()
        .filter(|s| {
            s.match_tokens
                .iter()
                .any(|alt| alt.iter().all(|t| toks.contains(t)))
                && !s.exclude.iter().any(|t| toks.contains(t))
        })
        .collect();
    if by_name.is_empty() {
        return Detection::Unknown(format!("no datasheet entry matches \"{name}\""));
    }
    let memory_fits = |s: &Sku| {
        let by_stated = stated_gb.is_none_or(|gb| gb == s.memory_gb);
        let reported = memory_bytes as f64 / 1e9;
        let by_reported =
            memory_bytes == 0 || (reported >= 0.9 * s.memory_gb && reported <= 1.2 * s.memory_gb);
        by_stated && by_reported
    };
    let candidates: Vec<&'static Sku> =
        by_name.iter().copied().filter(|s| memory_fits(s)).collect();
    let ids = |v: &[&Sku]| {
        v.iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sku = match candidates.as_slice() {
        [one] => *one,
        [] => {
            return Detection::Unknown(format!(
                "\"{name}\" matches {} by name, but its memory ({:.1} GB reported) fits none of them",
                ids(&by_name),
                memory_bytes as f64 / 1e9
            ));
        }
        many => {
            return Detection::Unknown(format!(
                "\"{name}\" could be {}; the memory size needed to tell them apart was not reported",
                ids(many)
            ));
        }
    };
    if let Some(sms) = sm_count
        && !sku.sm_counts.contains(&sms)
    {
        return Detection::Unknown(format!(
            "\"{name}\" looks like {} by name and memory, but reports {sms} SMs (datasheet: {:?}); a cut-down or different part",
            sku.id, sku.sm_counts
        ));
    }
    Detection::Known(sku)
}

/// Detect the SKU of a device as reported by a backend.
pub fn detect_device(d: &DeviceInfo) -> Detection {
    detect(&d.name, d.memory_bytes, d.sm_count)
}

/// Fill in `DeviceInfo.sku` for GPU devices (when the backend left it empty) and `peak` /
/// `fraction_of_peak` on every measurement of a known SKU. Returns one line per GPU whose SKU is
/// unknown, so the caller can say so: an unknown SKU is never silently skipped. CPUs have no
/// datasheet entries; their measurements are left without a peak.
pub fn annotate(result: &mut RunResult) -> Vec<String> {
    if result.backend != BackendKind::Cuda {
        return Vec::new();
    }
    let mut notes = Vec::new();
    for d in &mut result.devices {
        let detected = match &d.sku {
            Some(id) => find(id).map(Detection::Known).unwrap_or_else(|| {
                Detection::Unknown(format!("SKU \"{id}\" is not in the datasheet data"))
            }),
            None => detect_device(d),
        };
        match detected {
            Detection::Known(sku) => {
                d.sku = Some(sku.id.clone());
                for m in result
                    .measurements
                    .iter_mut()
                    .filter(|m| m.device == d.index)
                {
                    m.peak = sku.peak(&m.metric);
                    m.fraction_of_peak = match (m.peak, m.median()) {
                        (Some(p), Some(median)) if p > 0.0 => Some(median / p),
                        _ => None,
                    };
                }
            }
            Detection::Unknown(why) => notes.push(format!(
                "gpu{}: SKU unknown: {why}; no datasheet peak for its measurements",
                d.index
            )),
        }
    }
    notes
}

fn cell(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_else(|| "–".into())
}

/// The datasheet table, one row per SKU (`gpuaudit specs`).
pub fn table_rows() -> Vec<Vec<String>> {
    let mut rows = vec![
        [
            "sku", "name", "fp64", "fp64tc", "fp32", "tf32", "fp16", "bf16", "fp8", "int8",
            "mem GB", "GB/s", "SMs",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for s in all() {
        rows.push(vec![
            s.id.clone(),
            s.name.clone(),
            cell(s.fp64_tflops),
            cell(s.fp64_tensor_tflops),
            cell(s.fp32_tflops),
            cell(s.tf32_tflops),
            cell(s.fp16_tflops),
            cell(s.bf16_tflops),
            cell(s.fp8_tflops),
            cell(s.int8_tops),
            format!("{}", s.memory_gb),
            format!("{}", s.memory_bandwidth_gbps),
            s.sm_counts
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join("/"),
        ]);
    }
    rows
}

/// Everything about one SKU, for `gpuaudit specs SKU`.
pub fn describe(s: &Sku) -> String {
    let mut out = format!("{} ({})\n", s.name, s.id);
    let dense = [
        ("FP64", s.fp64_tflops, "TFLOPS"),
        ("FP64 tensor", s.fp64_tensor_tflops, "TFLOPS"),
        ("FP32", s.fp32_tflops, "TFLOPS"),
        ("TF32 tensor", s.tf32_tflops, "TFLOPS"),
        ("FP16 tensor", s.fp16_tflops, "TFLOPS"),
        ("BF16 tensor", s.bf16_tflops, "TFLOPS"),
        ("FP8 tensor", s.fp8_tflops, "TFLOPS"),
        ("INT8 tensor", s.int8_tops, "TOPS"),
    ];
    out += "  dense peaks (per GPU):\n";
    for (label, v, unit) in dense {
        out += &format!(
            "    {label:<12} {}\n",
            v.map(|x| format!("{x} {unit}"))
                .unwrap_or_else(|| "not supported / not printed".into())
        );
    }
    out += &format!(
        "  memory: {} GB at {} GB/s; SMs: {:?}\n",
        s.memory_gb, s.memory_bandwidth_gbps, s.sm_counts
    );
    let sparse = [
        ("TF32", s.sparse.tf32_tflops),
        ("FP16", s.sparse.fp16_tflops),
        ("BF16", s.sparse.bf16_tflops),
        ("FP8", s.sparse.fp8_tflops),
        ("INT8", s.sparse.int8_tops),
    ];
    let printed: Vec<String> = sparse
        .iter()
        .filter_map(|(l, v)| v.map(|x| format!("{l} {x}")))
        .collect();
    if !printed.is_empty() {
        out += &format!(
            "  printed with 2:4 sparsity (never used as peaks): {}\n",
            printed.join(", ")
        );
    }
    out += &format!("  source: {}\n", s.source);
    if let Some(u) = &s.uncertain {
        out += &format!("  uncertain: {u}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_data_parses_and_names_its_sources() {
        let skus = parse(SPECS_TOML).expect("data/specs.toml parses");
        assert!(skus.len() >= 15, "{}", skus.len());
        for id in [
            "h100-sxm",
            "h100-pcie",
            "h100-nvl",
            "h200",
            "b200",
            "gb200",
            "a100-sxm-40gb",
            "a100-sxm-80gb",
            "a100-pcie-40gb",
            "a100-pcie-80gb",
            "l40s",
            "l4",
            "a10g",
            "v100-sxm2-32gb",
        ] {
            let s = find(id).unwrap_or_else(|| panic!("{id} missing"));
            assert!(!s.source.is_empty());
            // Sparse figures are 2× dense, within NVIDIA's rounding (L40S prints 362 dense and
            // 733 sparse): catches a row typed into the wrong column.
            if let (Some(d), Some(sp)) = (s.bf16_tflops, s.sparse.bf16_tflops) {
                assert!((sp / (2.0 * d) - 1.0).abs() <= 0.015, "{id}: {sp} vs {d}");
            }
        }
        assert_eq!(all().len(), skus.len());
        assert!(parse("[[sku]]\nid = 1\n").is_err());
    }

    #[test]
    fn device_names_map_to_skus() {
        let gb = 1_000_000_000u64;
        let cases: [(&str, u64, Option<u32>, &str); 14] = [
            (
                "NVIDIA H100 80GB HBM3",
                85_520_000_000,
                Some(132),
                "h100-sxm",
            ),
            ("NVIDIA H100 PCIe", 85 * gb, Some(114), "h100-pcie"),
            ("NVIDIA H100 NVL", 100 * gb, Some(132), "h100-nvl"),
            ("NVIDIA H200", 150 * gb, Some(132), "h200"),
            ("NVIDIA A100-SXM4-40GB", 42 * gb, Some(108), "a100-sxm-40gb"),
            ("NVIDIA A100-SXM4-80GB", 0, None, "a100-sxm-80gb"),
            ("NVIDIA A100-PCIE-40GB", 0, None, "a100-pcie-40gb"),
            (
                "NVIDIA A100 80GB PCIe",
                85 * gb,
                Some(108),
                "a100-pcie-80gb",
            ),
            ("NVIDIA L40S", 48 * gb, Some(142), "l40s"),
            ("NVIDIA L4", 24 * gb, Some(58), "l4"),
            ("NVIDIA A10G", 24 * gb, Some(80), "a10g"),
            ("Tesla V100-SXM2-32GB", 34 * gb, Some(80), "v100-sxm2-32gb"),
            ("NVIDIA B200", 190 * gb, Some(148), "b200"),
            ("NVIDIA GB200", 0, None, "gb200"),
        ];
        for (name, mem, sms, want) in cases {
            match detect(name, mem, sms) {
                Detection::Known(s) => assert_eq!(s.id, want, "{name}"),
                Detection::Unknown(why) => panic!("{name}: {why}"),
            }
        }
    }

    #[test]
    fn unknown_and_ambiguous_devices_say_why() {
        let unknown = |name: &str, mem: u64, sms: Option<u32>| match detect(name, mem, sms) {
            Detection::Unknown(why) => why,
            Detection::Known(s) => panic!("{name} matched {}", s.id),
        };
        assert!(unknown("AMD Instinct MI300X", 0, None).contains("no datasheet entry"));
        assert!(unknown("NVIDIA H200 NVL", 0, None).contains("no datasheet entry"));
        assert!(unknown("NVIDIA H100 80GB HBM3 MIG 1g.10gb", 0, None).contains("MIG"));
        // Without a memory size, the two A100 PCIe parts cannot be told apart.
        assert!(unknown("NVIDIA A100-PCIE", 0, None).contains("a100-pcie-40gb, a100-pcie-80gb"));
        // Memory or SM count that contradicts the name.
        assert!(unknown("NVIDIA H100 PCIe", 40_000_000_000, None).contains("fits none"));
        assert!(unknown("NVIDIA H100 80GB HBM3", 0, Some(114)).contains("114 SMs"));
    }

    #[test]
    fn peaks_are_dense_and_follow_the_metric() {
        let h100 = find("h100-sxm").expect("h100");
        assert_eq!(h100.peak("gemm.bf16.tflops"), Some(989.5));
        assert_eq!(h100.peak("gemm.fp64.tflops"), Some(67.0)); // FP64 tensor cores
        assert_eq!(h100.peak("gemm.fp8_e4m3.tflops"), Some(1979.0));
        assert_eq!(h100.peak("stream.triad.gbps"), Some(3350.0));
        assert_eq!(h100.peak("transfer.h2d.gbps"), None);
        assert_eq!(h100.sparse("gemm.bf16.tflops"), Some(1979.0));
        let l40s = find("L40S").expect("case-insensitive");
        assert_eq!(l40s.peak("gemm.fp64.tflops"), Some(1.4)); // no FP64 tensor cores
        assert_eq!(
            find("a100-sxm-80gb").and_then(|s| s.peak("gemm.fp8_e4m3.tflops")),
            None
        );
    }

    #[test]
    fn annotate_sets_sku_peak_and_fraction() {
        let mut r = crate::result::tests::sample_result();
        r.devices[0].name = "NVIDIA H100 80GB HBM3".into();
        let notes = annotate(&mut r);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(r.devices[0].sku.as_deref(), Some("h100-sxm"));
        let m = &r.measurements[0];
        assert_eq!(m.peak, Some(989.5));
        let f = m.fraction_of_peak.expect("fraction");
        assert!((f - 790.75 / 989.5).abs() < 1e-12);

        r.devices[0].name = "Mystery GPU".into();
        r.devices[0].sku = None;
        let notes = annotate(&mut r);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("gpu0: SKU unknown"), "{}", notes[0]);
    }
}
