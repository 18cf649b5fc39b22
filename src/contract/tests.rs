use super::verdict::{Estimate, Status, decide};
use super::*;
use crate::backend::{BackendKind, DeviceInfo};
use crate::result::{Measurement, RunResult, Unit};
use std::time::{Duration, UNIX_EPOCH};

const P5: &str = r#"
provider = "aws"
instance_type = "p5.48xlarge"
sku = "h100-sxm"
gpus_per_instance = 8
[price]
usd_per_instance_hour = 55.04
[term]
hours = 720
"#;

fn parse(extra: &str) -> Result<Contract> {
    Contract::parse(&format!("{P5}{extra}"), "c.toml")
}

fn parse_err(text: &str) -> String {
    Contract::parse(text, "c.toml")
        .map(|_| ())
        .expect_err("must be rejected")
        .to_string()
}

/// Samples whose 95% median CI (n = 10: x(2)..x(9)) is [772, 778] around a median of 774.
const SAMPLES: [f64; 10] = [
    780.0, 770.0, 774.0, 772.0, 778.0, 774.0, 776.0, 774.0, 775.0, 773.0,
];

fn gpu_result(name: &str, devices: usize, samples: &[f64]) -> RunResult {
    let mut r = crate::result::tests::sample_result();
    r.backend = BackendKind::Cuda;
    r.devices = (0..devices)
        .map(|index| DeviceInfo {
            index,
            name: name.into(),
            ..DeviceInfo::default()
        })
        .collect();
    r.measurements = (0..devices)
        .map(|d| {
            let mut m = Measurement::new(
                d,
                "gemm",
                "bf16",
                Unit::Tflops,
                vec![8192; 3],
                "test".into(),
                1.0,
            );
            m.samples = samples.to_vec();
            m.summary = crate::stats::Summary::of(samples, 0.95);
            m
        })
        .collect();
    r
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[test]
fn the_p5_contract_reads_with_derived_prices() {
    let c = parse("[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 700\n").expect("valid");
    assert_eq!(c.usd_per_instance_hour, 55.04);
    assert_eq!(c.usd_per_device_hour(), 6.88);
    assert_eq!(c.confidence, 0.95);
    assert_eq!(c.on_inconclusive, OnInconclusive::Fail);
    assert_eq!(c.term.remaining_hours(now()), Some(720.0));
    let t = &c.targets[0];
    assert_eq!(
        (t.bound, t.value, t.per, t.line),
        (Bound::Min, 700.0, Per::Gpu, 10)
    );
}

#[test]
fn the_example_contracts_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("contracts/ exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let c = Contract::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                c.price_source.is_some() && c.price_as_of.is_some(),
                "{}",
                path.display()
            );
            n += 1;
        }
    }
    assert!(n >= 4, "{n} contracts");
    let p4d = Contract::load(&dir.join("aws-p4d.24xlarge.toml")).expect("p4d");
    assert!((p4d.usd_per_instance_hour - 21.96).abs() < 1e-9);
    let cpu = Contract::load(&dir.join("aws-m7i.2xlarge-cpu.toml")).expect("cpu");
    assert!((cpu.usd_per_instance_hour - 0.4032).abs() < 1e-12);
    assert_eq!(cpu.targets[0].value, 0.2); // 200 GFLOPS in TFLOPS
}

#[test]
fn validation_errors_name_file_position_field_reason_and_allowed_values() {
    let target = |body: &str| format!("{P5}[[target]]\n{body}\n");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            target("metric = \"gemm.bf17.tflops\"\nmin = 1"),
            vec![
                "line 11, column 10",
                "target[0].metric",
                "unknown metric",
                "gemm.bf16.tflops",
                "launch.empty_kernel.us",
            ],
        ),
        (
            target("metric = \"gemm.bf16.tflops\""),
            vec!["min and max are both missing", "give min"],
        ),
        (
            target("metric = \"gemm.bf16.tflops\"\nmin = -5"),
            vec!["line 12", "target[0].min", "-5", "greater than 0"],
        ),
        (
            target("metric = \"gemm.bf16.tflops\"\nmin = 0"),
            vec!["target[0].min", "greater than 0"],
        ),
        (
            target("metric = \"gemm.bf16.tflops\"\nmin = nan"),
            vec!["NaN", "finite"],
        ),
        (
            target("metric = \"gemm.bf16.tflops\"\nmin = inf"),
            vec!["inf", "finite"],
        ),
        (
            target("metric = \"gemm.bf16.tflops\"\nmin = 1000"),
            vec!["above the dense datasheet peak", "989.5"],
        ),
        (
            target("metric = \"gemm.bf16.tflops\"\nmin = 1979"),
            vec!["2:4 SPARSITY", "sparse and dense", "989.5"],
        ),
        (
            target("metric = \"gemm.bf16.tflops\"\nmin = 15832\nper = \"instance\""),
            vec!["SPARSITY"],
        ),
        (
            target("metric = \"usd_per_pflop_hour.bf16\"\nmax = 6"),
            vec!["implies 1146.7 per GPU", "above the dense"],
        ),
        (
            target("metric = \"launch.empty_kernel.us\"\nmin = 5"),
            vec!["lower is better", "max, not a min"],
        ),
        (
            target("metric = \"gemm.bf16.tflops\"\nmin = 5\nmax = 6"),
            vec!["not both"],
        ),
        (
            target("metric = \"gemm.bf16.tflops\"\nmin = 5\nper = \"node\""),
            vec!["\"node\"", "\"gpu\" or \"instance\""],
        ),
        (
            target("metric = \"gemm.bf16.tflops\"\nmin = 5\ncolour = 1"),
            vec!["line 13, column 1", "unknown field `colour`"],
        ),
        (
            P5.replace("h100-sxm", "h100-sxm9")
                + "[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 5\n",
            vec![
                "line 4, column 7",
                "sku",
                "not in the datasheet",
                "h100-pcie",
            ],
        ),
        (
            P5.replace("55.04", "-55.04"),
            vec!["price.usd_per_instance_hour", "-55.04"],
        ),
        (
            P5.replace("55.04", "0.0"),
            vec!["price.usd_per_instance_hour", "greater than 0"],
        ),
        (
            P5.replace("55.04", "nan"),
            vec!["price.usd_per_instance_hour", "finite"],
        ),
        (P5.to_string(), vec!["no targets"]),
        (
            P5.replace("provider = \"aws\"\n", ""),
            vec!["provider: missing"],
        ),
        (
            P5.replace("[term]", "[term]\nstart = 2026-01-01"),
            vec!["term", "hours, or both start and end"],
        ),
        (
            P5.replace("hours = 720", "start = 2026-02-01\nend = 2026-01-01"),
            vec!["term.end", "after term.start"],
        ),
        (
            P5.replace(
                "usd_per_instance_hour = 55.04",
                "usd_per_instance_hour = 55.04\nusd_per_gpu_hour = 6.88",
            ),
            vec!["exactly one", "usd_per_instance_hour and usd_per_gpu_hour"],
        ),
        (
            P5.replace("provider = \"aws", "provider = \"aws\nx"),
            vec!["c.toml: line 3, column"],
        ),
    ];
    for (text, wanted) in cases {
        let e = parse_err(&text);
        assert!(e.starts_with("c.toml: "), "{e}");
        for w in wanted {
            assert!(e.contains(w), "{e:?} lacks {w:?}");
        }
        assert!(!e.contains('\n'), "one line: {e:?}");
    }
    for (level, ok) in [
        ("0.5", false),
        ("1.0", false),
        ("1.2", false),
        ("-1", false),
        ("0.51", true),
        ("0.999", true),
    ] {
        let text = format!(
            "confidence = {level}\n{P5}[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 5\n"
        );
        match Contract::parse(&text, "c.toml") {
            Ok(_) => assert!(ok, "{level} accepted"),
            Err(e) => {
                assert!(!ok, "{level}: {e}");
                let e = e.to_string();
                assert!(
                    e.contains("line 1, column 14") && e.contains("strictly between 0.5 and 1"),
                    "{e}"
                );
                assert_eq!(
                    Error::Usage(String::new()).exit_code(),
                    crate::error::exit_code::USAGE
                );
            }
        }
    }
    // FP8 on an A100: no datasheet figure, so no such target.
    let a100 = P5.replace("h100-sxm", "a100-sxm-40gb")
        + "[[target]]\nmetric = \"gemm.fp8_e4m3.tflops\"\nmin = 5\n";
    assert!(parse_err(&a100).contains("not supported by this GPU"));
    // CPU contracts: vcpus, no GPUs, per instance.
    let cpu = "provider = \"aws\"\ninstance_type = \"m7i.2xlarge\"\n[price]\nusd_per_gpu_hour = 1\n[[target]]\nmetric = \"stream.triad.gbps\"\nmin = 5\n";
    assert!(parse_err(cpu).contains("a CPU contract has no GPUs"));
    let cpu = cpu.replace("usd_per_gpu_hour", "usd_per_vcpu_hour");
    assert!(parse_err(&cpu).contains("needs vcpus"));
}

#[test]
fn the_decision_turns_on_the_interval_bounds() {
    let e = Estimate::of(&SAMPLES, 0.95).expect("samples");
    assert_eq!((e.median, e.ci, e.n), (774.0, [772.0, 778.0], 10));
    let d = |bound, t| decide(&e, bound, t, 0.95).0;
    // min: pass when lo ≥ target; fail when hi < target.
    assert_eq!(d(Bound::Min, 772.0), Status::Pass); // exactly at the lower bound
    assert_eq!(d(Bound::Min, 772.000_001), Status::Inconclusive); // just inside
    assert_eq!(d(Bound::Min, 778.0), Status::Inconclusive); // at the upper bound
    assert_eq!(d(Bound::Min, 778.000_001), Status::Fail); // just outside
    // max: mirrored.
    assert_eq!(d(Bound::Max, 778.0), Status::Pass);
    assert_eq!(d(Bound::Max, 777.999_999), Status::Inconclusive);
    assert_eq!(d(Bound::Max, 772.0), Status::Inconclusive);
    assert_eq!(d(Bound::Max, 771.999_999), Status::Fail);
    // Too few samples for the confidence asked: undecided however clear the numbers look.
    let few = Estimate::of(&SAMPLES[..5], 0.95).expect("samples");
    let (s, why) = decide(&few, Bound::Min, 1.0, 0.95);
    assert_eq!(s, Status::Inconclusive);
    assert!(why.contains("93.8% confidence"), "{why}");
}

#[test]
fn a_failing_gpu_costs_its_pro_rata_shortfall() {
    // Per GPU: $55.04 / 8 = $6.88. Median 774 vs 860: delivered 0.9, shortfall 6.88 × 0.1 =
    // $0.688/h per GPU, $5.504/h for 8, × 720 h = $3,962.88 over the term.
    let c = parse("[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 860\n").expect("valid");
    let v = judge(&c, &gpu_result("NVIDIA H100 80GB HBM3", 8, &SAMPLES), now());
    assert_eq!(v.overall, Status::Fail);
    assert!(!v.accepted);
    assert_eq!(v.targets.len(), 8);
    let t = &v.targets[0];
    assert_eq!(t.status, Status::Fail);
    assert_eq!((t.median, t.ci), (Some(774.0), Some([772.0, 778.0])));
    assert!((t.delivered_fraction.expect("fraction") - 0.9).abs() < 1e-12);
    assert_eq!(
        cents(t.shortfall_usd_per_hour.expect("usd") * 1000.0),
        688.0
    ); // $0.688
    assert_eq!(cents(t.shortfall_usd_over_term.expect("usd")), 495.36);
    assert_eq!(cents(v.shortfall_usd_per_hour), 5.50);
    assert!((v.shortfall_usd_per_hour - 5.504).abs() < 1e-9);
    assert_eq!(cents(v.shortfall_usd_over_term.expect("term")), 3962.88);
    assert!(v.devices.iter().all(|d| d.status == Status::Pass));
    // Delivered price-performance: $6.88 / 0.774 PFLOPS = $8.89 per PFLOP-hour.
    let pp = &v.price_performance[0];
    assert_eq!(
        (pp.metric.as_str(), cents(pp.median)),
        ("usd_per_pflop_hour.bf16", 8.89)
    );
    assert_eq!([cents(pp.ci[0]), cents(pp.ci[1])], [8.84, 8.91]); // 6.88/0.778, 6.88/0.772
}

#[test]
fn passing_and_inconclusive_targets_follow_on_inconclusive() {
    let r = gpu_result("NVIDIA H100 80GB HBM3", 8, &SAMPLES);
    let c = parse("[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 772\n").expect("valid");
    let v = judge(&c, &r, now());
    assert_eq!((v.overall, v.accepted), (Status::Pass, true));
    assert_eq!(v.targets[0].shortfall_usd_per_hour, Some(0.0));
    assert_eq!(v.shortfall_usd_per_hour, 0.0);

    // 775 lies inside [772, 778]: inconclusive. The median is short by 1/775: 6.88/775 =
    // $0.0089/h per GPU, $0.071/h for the instance, $51.13 over 720 h.
    let c = parse("[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 775\n").expect("valid");
    let v = judge(&c, &r, now());
    assert_eq!((v.overall, v.accepted), (Status::Inconclusive, false));
    assert_eq!(
        cents(v.targets[0].shortfall_usd_per_hour.expect("usd") * 100.0),
        0.89
    );
    assert_eq!(cents(v.shortfall_usd_per_hour * 100.0), 7.10);
    assert_eq!(cents(v.shortfall_usd_over_term.expect("term")), 51.13);
    let lenient = Contract {
        on_inconclusive: OnInconclusive::Pass,
        ..c
    };
    let v = judge(&lenient, &r, now());
    assert_eq!((v.overall, v.accepted), (Status::Inconclusive, true));
}

#[test]
fn per_instance_targets_sum_devices_with_a_bonferroni_interval() {
    // Each GPU's interval at 1 − 0.05/8 = 0.99375 is [min, max] = [770, 780] for n = 10
    // (coverage 1 − 2/1024); the sum is [6160, 6240] around 6192, coverage 1 − 8·2/1024.
    let r = gpu_result("NVIDIA H100 80GB HBM3", 8, &SAMPLES);
    let c = parse("[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 6880\nper = \"instance\"\n")
        .expect("valid");
    let v = judge(&c, &r, now());
    let t = &v.targets[0];
    assert_eq!(t.device, None);
    assert_eq!((t.median, t.ci), (Some(6192.0), Some([6160.0, 6240.0])));
    assert!((t.ci_coverage.expect("coverage") - (1.0 - 16.0 / 1024.0)).abs() < 1e-12);
    assert_eq!(t.status, Status::Fail);
    // 6192/6880 = 0.9: shortfall $55.04 × 0.1 = $5.504/h.
    assert!((t.shortfall_usd_per_hour.expect("usd") - 5.504).abs() < 1e-9);
    let c = parse("[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 6160\nper = \"instance\"\n")
        .expect("valid");
    assert_eq!(judge(&c, &r, now()).targets[0].status, Status::Pass);
    // Half an instance cannot decide an instance target.
    let half = gpu_result("NVIDIA H100 80GB HBM3", 4, &SAMPLES);
    let v = judge(&c, &half, now());
    assert_eq!(v.targets[0].status, Status::Inconclusive);
    assert!(
        v.notes[0].contains("4 of the instance's 8 GPUs"),
        "{:?}",
        v.notes
    );
}

#[test]
fn price_performance_targets_match_the_throughput_they_imply() {
    // $8.00 per PFLOP-hour at $6.88/GPU-hour means 860 TFLOPS: same fraction (0.9) and the same
    // $0.688/h shortfall as the throughput target.
    let r = gpu_result("NVIDIA H100 80GB HBM3", 8, &SAMPLES);
    let c = parse("[[target]]\nmetric = \"usd_per_pflop_hour.bf16\"\nmax = 8.0\n").expect("valid");
    let v = judge(&c, &r, now());
    let t = &v.targets[0];
    assert_eq!(t.status, Status::Fail);
    assert_eq!(cents(t.median.expect("median")), 8.89);
    assert!((t.delivered_fraction.expect("fraction") - 0.9).abs() < 1e-12);
    assert!((t.shortfall_usd_per_hour.expect("usd") - 0.688).abs() < 1e-12);
    let c = parse("[[target]]\nmetric = \"usd_per_pflop_hour.bf16\"\nmax = 8.92\n").expect("valid");
    assert_eq!(judge(&c, &r, now()).targets[0].status, Status::Pass); // 6.88/0.772 = 8.912
}

#[test]
fn wrong_results_missing_metrics_and_the_wrong_sku_are_judged() {
    let mut r = gpu_result("NVIDIA H100 80GB HBM3", 8, &SAMPLES);
    r.measurements[1].correct = false;
    r.measurements[1].check = "Freivalds mismatch".into();
    let c = parse(
        "[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 700\n[[target]]\nmetric = \"launch.empty_kernel.us\"\nmax = 5\n",
    )
    .expect("valid");
    let v = judge(&c, &r, now());
    assert_eq!(v.targets[0].status, Status::Pass);
    assert_eq!(v.targets[1].status, Status::Fail);
    assert!(v.targets[1].reason.contains("WRONG RESULTS"));
    let launch = &v.targets[8];
    assert_eq!(launch.status, Status::Inconclusive);
    assert!(launch.reason.contains("not measured"));
    assert_eq!(v.overall, Status::Fail);

    let pcie = gpu_result("NVIDIA H100 PCIe", 8, &SAMPLES);
    let v = judge(&c, &pcie, now());
    assert_eq!(v.devices[0].status, Status::Fail);
    assert!(
        v.devices[0].detail.contains("H100 PCIe"),
        "{}",
        v.devices[0].detail
    );
    assert_eq!(v.overall, Status::Fail);
    let unknown = gpu_result("NVIDIA H100", 8, &SAMPLES);
    assert_eq!(
        judge(&c, &unknown, now()).devices[0].status,
        Status::Inconclusive
    );
}

#[test]
fn latency_targets_pass_below_the_max_and_carry_no_dollar_shortfall() {
    let mut r = gpu_result("NVIDIA H100 80GB HBM3", 1, &SAMPLES);
    let mut m = Measurement::new(
        0,
        "launch",
        "empty_kernel",
        Unit::Us,
        vec![],
        "t".into(),
        1.0,
    );
    m.samples = vec![4.0, 4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 4.7, 4.8, 4.9];
    r.measurements.push(m);
    let c = parse("[[target]]\nmetric = \"launch.empty_kernel.us\"\nmax = 4.8\n").expect("valid");
    let v = judge(&c, &r, now());
    let t = &v.targets[0];
    assert_eq!(t.status, Status::Pass); // CI [4.1, 4.8]
    assert_eq!(t.shortfall_usd_per_hour, None);
    assert!((t.delivered_fraction.expect("fraction") - 4.8 / 4.45).abs() < 1e-12);
}

#[test]
fn cpu_contracts_judge_cpu_results_in_gflops() {
    let text = r#"
provider = "aws"
instance_type = "m7i.2xlarge"
vcpus = 8
[price]
usd_per_vcpu_hour = 0.0504
[term]
start = "2026-01-01"
end = 2027-01-01T00:00:00Z
[[target]]
metric = "gemm.fp64.gflops"
min = 250
[[target]]
metric = "usd_per_pflop_hour.fp64"
max = 2000
"#;
    let c = Contract::parse(text, "cpu.toml").expect("valid");
    let mut r = crate::result::tests::sample_result();
    r.backend = BackendKind::Cpu;
    r.devices[0].name = "Intel Xeon".into();
    let m = &mut r.measurements[0];
    m.variant = "fp64".into();
    m.metric = "gemm.fp64.tflops".into();
    // 0.2016 TFLOPS median: $0.4032 / 0.0002016 PFLOPS = $2,000.00 per PFLOP-hour exactly.
    m.samples = vec![
        0.2010, 0.2012, 0.2014, 0.2015, 0.2016, 0.2016, 0.2017, 0.2018, 0.2020, 0.2022,
    ];
    // 2026-07-01 is 184 days before the end: 4,416 hours remain.
    let july = UNIX_EPOCH + Duration::from_secs(1_782_864_000);
    let v = judge(&c, &r, july);
    assert_eq!(v.contract.term_remaining_hours, Some(4416.0));
    let gemm = &v.targets[0];
    assert_eq!((gemm.per, gemm.device), (Per::Instance, None));
    assert_eq!(gemm.status, Status::Fail); // CI [0.2012, 0.2020] < 0.25
    // 0.2016 / 0.25 = 0.8064: shortfall $0.4032 × 0.1936 = $0.0781/h, × 4416 h = $344.71.
    assert!((gemm.shortfall_usd_per_hour.expect("usd") - 0.4032 * 0.1936).abs() < 1e-12);
    assert_eq!(cents(gemm.shortfall_usd_over_term.expect("usd")), 344.71);
    let price = &v.targets[1];
    assert_eq!(cents(price.median.expect("median")), 2000.0);
    assert_eq!(price.status, Status::Inconclusive); // 2,000 lies inside the interval
    assert_eq!(v.devices[0].status, Status::Pass);
}

#[test]
fn the_undecided_predicate_drives_sampling() {
    let c = parse("[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 775\n").expect("valid");
    assert!(c.undecided("gemm.bf16.tflops", &SAMPLES));
    assert!(!c.undecided("stream.triad.gbps", &SAMPLES)); // no target on it
    let c = parse("[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 700\n").expect("valid");
    assert!(!c.undecided("gemm.bf16.tflops", &SAMPLES));
    assert!(c.undecided("gemm.bf16.tflops", &SAMPLES[..4])); // too few for 95%
}

#[test]
fn a_verdict_round_trips_through_the_result_json() {
    let c = parse("[[target]]\nmetric = \"gemm.bf16.tflops\"\nmin = 860\n").expect("valid");
    let mut r = gpu_result("NVIDIA H100 80GB HBM3", 2, &SAMPLES);
    r.verdict = Some(judge(&c, &r, now()));
    let json = r.to_json().expect("json");
    assert!(json.contains("\"verdict\""));
    let back = RunResult::parse(&json, "r.json").expect("parses");
    assert_eq!(back.verdict, r.verdict);
}
