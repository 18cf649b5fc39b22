//! Command-line definitions (clap derive) and their translation into validated library
//! configuration. Clap types stay here; the library never sees them.

use clap::{Args, Parser, Subcommand, ValueEnum};
use gpuaudit::backend::BackendChoice;
use gpuaudit::bench::gemm::GemmDtype;
use gpuaudit::run::{BenchSelection, DeviceSelection, RunConfig, Suite};
use std::path::PathBuf;
use std::time::Duration;

const ABOUT: &str =
    "Prove whether reserved GPU (or CPU) capacity delivers what its contract promises";

const LONG_ABOUT: &str = "\
gpuaudit runs matrix-multiply (GEMM) and memory-bandwidth (STREAM) kernels on every device,
checks that each answer is right before any time counts, measures with a median and its 95%
confidence interval, and writes a result JSON file that a fleet report or a dispute can rest on.

Start with:  gpuaudit run            (CUDA if a driver is present, otherwise the CPU)
             gpuaudit info           (what was detected)";

const RUN_AFTER_HELP: &str = "\
Examples:
  gpuaudit run                                 standard suite on every device (~2 min on 2 cores)
  gpuaudit run --suite quick                   a 30-second smoke test
  gpuaudit run --bench gemm --dtype bf16,fp8_e4m3 --json h100.json
  gpuaudit run --bench stream.triad --precision 0.005 --max-time 2m
  gpuaudit run --json - | jq .measurements     result JSON on standard output
  gpuaudit run --contract contracts/aws-p5.48xlarge.toml   judge against a contract
  gpuaudit run --duration 30m                  sustained: does it hold for the paid hours?

Exit codes: 0 ran (and every contract target passed), 1 a contract target failed,
2 usage or input error, 3 backend or device unavailable or failed, 4 wrong results detected
(possible silent data corruption), 130 interrupted (everything measured so far is kept).";

#[derive(Debug, Parser)]
#[command(name = "gpuaudit", version, about = ABOUT, long_about = LONG_ABOUT)]
#[command(arg_required_else_help = true, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure every device, print a table and write a result JSON file
    #[command(after_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Show the backend, devices, libraries and host that were detected
    Info(InfoArgs),
    /// Judge saved result files against a contract (offline)
    #[command(after_help = CHECK_AFTER_HELP)]
    Check(CheckArgs),
    /// Print the built-in datasheet table (dense peaks per GPU SKU), or one SKU in detail
    Specs(SpecsArgs),
    /// Create an Ed25519 key pair for signing results (KEY, mode 0600, and KEY.pub)
    Keygen(KeygenArgs),
    /// Sign a result file with a private key (replaces any earlier signature)
    Sign(SignArgs),
    /// Check a result file's signature against a public key
    #[command(after_help = VERIFY_AFTER_HELP)]
    Verify(VerifyArgs),
    /// Aggregate many result files: distributions, outliers, stragglers, fleet $ shortfall
    #[command(after_help = FLEET_AFTER_HELP)]
    Fleet(FleetArgs),
}

const VERIFY_AFTER_HELP: &str = "\
The signature covers the RFC 8785 (JCS) canonical form of the whole result except its
\"signature\" member; see docs/evidence.md to check it without gpuaudit.

Exit codes: 0 the signature is valid and made by the given key, 1 it is not (unsigned, another
key, content changed, truncated or malformed result; the reason is printed), 2 the result or
key file cannot be read, or the key is not an Ed25519 public key.";

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Private key file to create (PKCS#8 PEM, mode 0600); the public key goes to KEY.pub.
    /// Existing files are never overwritten.
    #[arg(long, value_name = "KEY")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Private key (PKCS#8 PEM, as written by keygen; must not be readable by group or others)
    #[arg(value_name = "KEY")]
    pub key: PathBuf,

    /// Result file to sign
    #[arg(value_name = "RESULT.json")]
    pub result: PathBuf,

    /// Write the signed result here instead of replacing RESULT.json (atomically either way)
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Result file to check
    #[arg(value_name = "RESULT.json")]
    pub result: PathBuf,

    /// The signer's public key (PEM, as written by keygen as KEY.pub)
    #[arg(long, value_name = "PUB")]
    pub pubkey: PathBuf,
}

const FLEET_AFTER_HELP: &str = "\
Examples:
  gpuaudit fleet results/                                   every *.json / *.jsonl below results/
  gpuaudit fleet 'results/node*.json' --contract contracts/aws-p5.48xlarge.toml --html fleet.html
  cat all.jsonl | gpuaudit fleet - --json fleet.json        JSON lines on standard input

Unreadable, truncated, malformed, unknown-schema, invalid and duplicate results (same device and
start time twice) are listed and counted, not fatal unless --strict.

Exit codes: 0 every node delivers the contract (or no contract), 1 a node is not accepted,
2 usage error (or, with --strict, any file not counted), 4 a result holds wrong results.";

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Result files, folders (searched for *.json and *.jsonl), globs with * or ? in the last
    /// component, or "-" for JSON lines (one result per line) on standard input
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Judge every result against this contract (TOML)
    #[arg(long, value_name = "FILE")]
    pub contract: Option<PathBuf>,

    /// Write the fleet report (schema gpuaudit.fleet/v1) here ("-" for standard output)
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,

    /// Write a self-contained HTML report (SVG charts, sortable table) here
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,

    /// Count only results signed by a public key in this folder (*.pub / *.pem, as written by
    /// keygen); unsigned, otherwise signed or altered results are listed as untrusted
    #[arg(long, value_name = "DIR")]
    pub trusted_keys: Option<PathBuf>,

    /// Any file that cannot be counted is an error (exit 2, nothing written)
    #[arg(long)]
    pub strict: bool,

    /// Print nothing but errors
    #[arg(long, short)]
    pub quiet: bool,
}

const CHECK_AFTER_HELP: &str = "\
Examples:
  gpuaudit check --contract contracts/aws-p5.48xlarge.toml results/node1.json results/node2.json
  gpuaudit check --contract my.toml run.json --json judged.json

Exit codes: 0 every result delivers the contract, 1 a target failed (or was inconclusive and the
contract says on_inconclusive = \"fail\"), 2 invalid contract or result file, 4 a result holds
wrong results.";

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The contract (TOML) to judge against
    #[arg(long, value_name = "FILE")]
    pub contract: PathBuf,

    /// Result files written by gpuaudit run (schema gpuaudit.result/v1); each is one instance
    #[arg(required = true, value_name = "RESULT.json")]
    pub results: Vec<PathBuf>,

    /// Write the judged result (with its verdict) here, atomically ("-" for standard output);
    /// needs exactly one result file
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Print nothing but errors
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SpecsArgs {
    /// A SKU id (e.g. h100-sxm) or a device name (e.g. "NVIDIA H100 80GB HBM3")
    pub sku: Option<String>,

    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// CUDA when a driver and a GPU are present, otherwise the CPU
    Auto,
    /// NVIDIA GPUs through the CUDA driver, NVRTC and cuBLAS (exit 3 if unavailable)
    Cuda,
    /// The host CPU: threaded GEMM and STREAM
    Cpu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SuiteArg {
    /// Small sizes, ~2 s per benchmark: a smoke test (~30 s on 2 cores)
    Quick,
    /// Sizes that fill the device, 8–20 s per benchmark (~2 min on 2 cores)
    Standard,
    /// 60 s per benchmark, for the tightest confidence intervals
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// Live progress on a terminal, one line per benchmark otherwise
    Auto,
    /// One line per finished benchmark
    Lines,
    /// No progress output
    Never,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Which backend measures
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,

    /// Devices to measure: "all" or a comma list of indices such as 0,2
    #[arg(long, default_value = "all", value_parser = parse_devices, value_name = "all|LIST")]
    pub devices: DeviceSelection,

    /// How long and how large: quick, standard or full
    #[arg(long, value_enum, default_value_t = SuiteArg::Standard)]
    pub suite: SuiteArg,

    /// Benchmarks to run: gemm, stream, transfer, launch, or one variant such as stream.triad
    /// or gemm.bf16 (comma-separated; default: all the backend offers)
    #[arg(long, value_delimiter = ',', value_parser = BenchSelection::parse, value_name = "LIST")]
    pub bench: Vec<BenchSelection>,

    /// GEMM element types: fp64, fp32, tf32, fp16, bf16, fp8_e4m3 (comma-separated; default:
    /// all the device offers)
    #[arg(long, value_delimiter = ',', value_parser = parse_dtype, value_name = "LIST")]
    pub dtype: Vec<GemmDtype>,

    /// Where to write the result JSON ("-" for standard output) [default:
    /// results/<hostname>-<UTC time>.json]
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Sample until the 95% CI of the median is within ± this fraction of it (0 < P < 1)
    #[arg(long, default_value_t = 0.01, value_parser = parse_precision, value_name = "FRACTION", allow_negative_numbers = true)]
    pub precision: f64,

    /// Sampling budget per benchmark, e.g. 30s, 2m, 500ms or a number of seconds
    /// [default: by suite: quick 2s, standard 8–20s, full 60s]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", allow_negative_numbers = true)]
    pub max_time: Option<Duration>,

    /// Judge the result against this contract (TOML): verdict table, "verdict" in the result,
    /// exit 1 if a target fails; undecided targets get more samples within the time budget
    #[arg(long, value_name = "FILE")]
    pub contract: Option<PathBuf>,

    /// Sustained mode: repeat GEMM and STREAM triad windows for this long (e.g. 30m, 2h), with
    /// a throughput/clock/power/temperature time series and a decay check in the result
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,

    /// Seed of the operand generator (default: fresh per run; recorded in the result)
    #[arg(long)]
    pub seed: Option<u64>,

    /// Sign the final result with this private key (see gpuaudit keygen); checked before
    /// measuring starts
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,

    /// Print nothing but errors (the result file is still written)
    #[arg(long, short)]
    pub quiet: bool,

    /// Progress display
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Which backend to probe
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,

    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

impl BackendArg {
    pub fn choice(self) -> BackendChoice {
        match self {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Cuda => BackendChoice::Cuda,
            BackendArg::Cpu => BackendChoice::Cpu,
        }
    }
}

impl RunArgs {
    pub fn config(&self, command: Vec<String>) -> RunConfig {
        RunConfig {
            backend: self.backend.choice(),
            devices: self.devices.clone(),
            suite: match self.suite {
                SuiteArg::Quick => Suite::Quick,
                SuiteArg::Standard => Suite::Standard,
                SuiteArg::Full => Suite::Full,
            },
            benches: self.bench.clone(),
            dtypes: self.dtype.clone(),
            precision: self.precision,
            max_time: self.max_time,
            json: self.json.clone(),
            seed: self.seed,
            duration: self.duration,
            command,
            ..RunConfig::default()
        }
    }
}

fn parse_devices(text: &str) -> Result<DeviceSelection, String> {
    if text == "all" {
        return Ok(DeviceSelection::All);
    }
    let list: Result<Vec<usize>, String> = text
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<usize>()
                .map_err(|_| format!("'{part}' is not a device index; use \"all\" or e.g. 0,2"))
        })
        .collect();
    let mut list = list?;
    list.sort_unstable();
    list.dedup();
    Ok(DeviceSelection::List(list))
}

fn parse_dtype(text: &str) -> Result<GemmDtype, String> {
    GemmDtype::parse(text).ok_or_else(|| {
        format!(
            "unknown dtype '{text}'; choose from {}",
            GemmDtype::ALL.map(|d| d.name()).join(", ")
        )
    })
}

fn parse_precision(text: &str) -> Result<f64, String> {
    let p: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number; use a fraction such as 0.01 for ±1%"))?;
    if p > 0.0 && p < 1.0 {
        Ok(p)
    } else {
        Err(format!(
            "{text} is out of range; the precision is a fraction strictly between 0 and 1, such as 0.01 for ±1%"
        ))
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 => Duration::from_secs_f64(seconds),
        Ok(_) => return Err(format!("{text} must be a positive duration")),
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            format!("cannot parse '{text}' as a duration ({e}); use e.g. 30s, 2m, 500ms")
        })?,
    };
    if d.is_zero() {
        return Err(format!("{text} must be a positive duration"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_both_forms() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-3").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("NaN").is_err());
    }

    #[test]
    fn precision_must_be_a_fraction() {
        assert_eq!(parse_precision("0.01"), Ok(0.01));
        for bad in ["0", "-0.1", "1", "2", "x", "NaN"] {
            assert!(parse_precision(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn devices_parse() {
        assert_eq!(parse_devices("all"), Ok(DeviceSelection::All));
        assert_eq!(
            parse_devices("2,0,2"),
            Ok(DeviceSelection::List(vec![0, 2]))
        );
        assert!(parse_devices("0,x").is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
