//! Write a synthetic fleet of result files for `gpuaudit fleet`: the scale benchmark and the
//! HTML screenshot check (see docs/fleet.md). Not measurements.
//!
//! cargo run --release --example fleet_fixture -- OUT_DIR NODES [GPUS_PER_NODE]
//!
//! Node k (8 GPUs, BF16 around 800 TFLOPS and triad around 2,900 GB/s with a little noise):
//! every 50th node is uniformly slow (665), every 37th has one GPU at 560, every 23rd throttles
//! four GPUs to 630 (with thermal-throttle telemetry). 11 samples per measurement keep files slim
//! (~10 KB) while still giving the contract verdict a 95% interval.

use gpuaudit::fleet::fixture::{PlantedGpu, gpu_result_json};
use gpuaudit::result::Unit;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(out), Some(nodes)) = (args.first(), args.get(1)) else {
        return Err("usage: fleet_fixture OUT_DIR NODES [GPUS_PER_NODE]".into());
    };
    let out = PathBuf::from(out);
    let nodes: usize = nodes.parse()?;
    let gpus: usize = args.get(2).map(|g| g.parse()).transpose()?.unwrap_or(8);
    std::fs::create_dir_all(&out)?;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut noise = move || {
        // xorshift64*: deterministic, no dependency; ±1 roughly uniform.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    for k in 0..nodes {
        let host = format!("node{k:06}");
        let planted: Vec<PlantedGpu> = (0..gpus)
            .map(|i| {
                let mut bf16 = 800.0 + 4.0 * noise();
                let mut throttled = false;
                if k % 50 == 49 {
                    bf16 = 665.0 + noise();
                } else if k % 37 == 36 && i == 3 {
                    bf16 = 560.0;
                } else if k % 23 == 22 && i >= 4 {
                    bf16 = 630.0 + 2.0 * noise();
                    throttled = true;
                }
                PlantedGpu {
                    uuid: format!("GPU-{k:06}-{i}"),
                    values: vec![
                        ("gemm", "bf16", Unit::Tflops, bf16),
                        ("stream", "triad", Unit::Gbps, 2900.0 + 10.0 * noise()),
                    ],
                    throttled,
                }
            })
            .collect();
        let json = gpu_result_json(&host, "2026-11-28T10:00:00Z", "h100-sxm", &planted, 11);
        std::fs::write(out.join(format!("{host}.json")), json)?;
    }
    Ok(())
}
