//! What each subcommand does at the binary's edge: printing, exit codes, signal handling.

use crate::cli::{
    CheckArgs, Cli, Command, FleetArgs, InfoArgs, KeygenArgs, ProgressArg, RunArgs, SignArgs,
    SpecsArgs, VerifyArgs,
};
use anyhow::Result;
use gpuaudit::backend;
use gpuaudit::contract::Contract;
use gpuaudit::error::exit_code;
use gpuaudit::evidence::{PublicKey, Signer, VerifyError, canonical, sign};
use gpuaudit::report::progress::{Progress, ProgressMode};
use gpuaudit::report::{table, verdict};
use gpuaudit::result::RunResult;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run(args) => run(&args),
        Command::Info(args) => info(&args),
        Command::Check(args) => check(&args),
        Command::Specs(args) => specs(&args),
        Command::Keygen(args) => keygen(&args),
        Command::Sign(args) => sign(&args),
        Command::Verify(args) => verify(&args),
        Command::Fleet(args) => fleet(&args),
    }
}

/// `gpuaudit keygen --out KEY`.
fn keygen(args: &KeygenArgs) -> Result<i32> {
    let signer = Signer::generate()?;
    let public = signer.write_pair(&args.out)?;
    println!(
        "key {}: private key {} (mode 0600, keep it secret), public key {}",
        signer.key_id(),
        args.out.display(),
        public.display()
    );
    Ok(exit_code::OK)
}

/// `gpuaudit sign KEY RESULT.json [--out PATH]`: sign the file's JSON as it is (fields this
/// version does not know included), after checking it is a gpuaudit result.
fn sign(args: &SignArgs) -> Result<i32> {
    let signer = Signer::load(&args.key)?;
    let origin = args.result.display().to_string();
    let text = std::fs::read_to_string(&args.result).map_err(|source| gpuaudit::Error::Read {
        path: args.result.clone(),
        source,
    })?;
    RunResult::parse(&text, &origin)?;
    let mut value = canonical::parse_strict(&text)
        .map_err(|e| gpuaudit::Error::Usage(format!("{origin}: {e}")))?;
    if let Some(old) = value.get(sign::FIELD) {
        let id = old.get("key_id").and_then(|k| k.as_str()).unwrap_or("?");
        eprintln!("note: replacing the signature by key {id}");
    }
    if value.get("complete") != Some(&serde_json::Value::Bool(true)) {
        eprintln!("warning: {origin} is an incomplete run (\"complete\" is not true)");
    }
    signer.sign_value(&mut value)?;
    let mut json = serde_json::to_string_pretty(&value)?;
    json.push('\n');
    let out = args.out.as_ref().unwrap_or(&args.result);
    gpuaudit::result::write_atomic(out, json.as_bytes())?;
    eprintln!("signed with key {}: {}", signer.key_id(), out.display());
    Ok(exit_code::OK)
}

/// `gpuaudit verify RESULT.json --pubkey PUB`: 0 valid, 1 invalid (with the reason), 2 when an
/// input cannot be read.
fn verify(args: &VerifyArgs) -> Result<i32> {
    let key = PublicKey::load(&args.pubkey)?;
    let text = std::fs::read(&args.result).map_err(|source| gpuaudit::Error::Read {
        path: args.result.clone(),
        source,
    })?;
    // Bytes that are not UTF-8 are content damage (exit 1), not an unreadable file.
    let outcome = match String::from_utf8(text) {
        Ok(text) => gpuaudit::evidence::verify_text(&text, std::slice::from_ref(&key)),
        Err(_) => Err(VerifyError::Malformed("not UTF-8 text".into())),
    };
    match outcome {
        Ok(id) => {
            println!("{}: valid signature by key {id}", args.result.display());
            Ok(exit_code::OK)
        }
        Err(e) => {
            println!("{}: INVALID: {e}", args.result.display());
            Ok(exit_code::TARGET_FAILED)
        }
    }
}

/// `gpuaudit fleet PATH…`.
fn fleet(args: &FleetArgs) -> Result<i32> {
    use gpuaudit::fleet;
    let contract = args.contract.as_deref().map(Contract::load).transpose()?;
    let use_stdin = args.paths.iter().any(|p| p.as_os_str() == "-");
    let paths: Vec<std::path::PathBuf> = args
        .paths
        .iter()
        .filter(|p| p.as_os_str() != "-")
        .cloned()
        .collect();
    let sources = fleet::expand_inputs(&paths)?;
    let now = std::time::SystemTime::now();
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    let input: Option<&mut dyn std::io::BufRead> = if use_stdin { Some(&mut lock) } else { None };
    let trusted = args
        .trusted_keys
        .as_deref()
        .map(gpuaudit::evidence::load_trusted_keys)
        .transpose()?;
    if let Some(t) = &trusted {
        for (path, why) in &t.skipped {
            eprintln!("warning: --trusted-keys: skipped {}: {why}", path.display());
        }
    }
    let judging = fleet::Judging {
        contract: contract.as_ref(),
        trusted: trusted.as_ref().map(|t| t.keys.as_slice()),
        now,
    };
    let folded = fleet::aggregate(&sources, input, judging);
    if args.strict && !folded.bad.is_empty() {
        for b in &folded.bad {
            eprintln!("{}: {}", b.origin, b.reason);
        }
        return Err(gpuaudit::Error::Usage(format!(
            "--strict: {} of {} results could not be counted (listed above); nothing written",
            folded.bad.len(),
            folded.bad.len() + folded.results
        ))
        .into());
    }
    let report = fleet::build_report(folded, contract.as_ref(), now);
    let to_stdout = args.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    if let Some(out) = &args.json {
        if to_stdout {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            serde_json::to_writer_pretty(&mut w, &report)?;
            std::io::Write::write_all(&mut w, b"\n")?;
        } else {
            fleet::write_json(&report, out)?;
        }
    }
    if let Some(out) = &args.html {
        let html = gpuaudit::report::html::render(&report)?;
        gpuaudit::result::write_atomic(out, html.as_bytes())?;
    }
    if !args.quiet {
        let text = fleet::render_text(&report);
        if to_stdout {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }
    Ok(if report.wrong_results {
        exit_code::WRONG_RESULTS
    } else if report.accepted == Some(false) {
        exit_code::TARGET_FAILED
    } else {
        exit_code::OK
    })
}

/// First Ctrl-C: finish the current sample, write what was measured, exit 130.
/// Second Ctrl-C: exit at once (the result file already holds every completed benchmark).
fn install_interrupt_handler() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let installed = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(exit_code::INTERRUPTED);
        }
        eprintln!(
            "\ninterrupted: finishing the current sample and writing the result (Ctrl-C again to quit now)"
        );
    });
    if let Err(e) = installed {
        eprintln!(
            "warning: cannot handle Ctrl-C ({e}); an interrupt will lose the current benchmark"
        );
    }
    cancel
}

fn run(args: &RunArgs) -> Result<i32> {
    let mut config = args.config(std::env::args().collect());
    // A bad or exposed key is an input error: say so before any measuring.
    if let Some(path) = &args.sign {
        config.signer = Some(Signer::load(path)?);
    }
    // A bad contract is an input error: say so before any measuring.
    if let Some(path) = &args.contract {
        config.contract = Some(Contract::load(path)?);
    }
    let to_stdout = config.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let say = |text: &str| {
        if !args.quiet {
            eprintln!("{text}");
        }
    };

    let selected = backend::select(config.backend)?;
    say(&format!(
        "gpuaudit {}: {}",
        env!("CARGO_PKG_VERSION"),
        selected.reason
    ));
    let prefix = match selected.backend.kind() {
        backend::BackendKind::Cpu => "cpu",
        backend::BackendKind::Cuda => "gpu",
    };
    for d in selected.backend.devices() {
        say(&format!("  {prefix}{}: {}", d.index, d.name));
    }

    let mode = match (args.quiet, args.progress) {
        (true, _) | (_, ProgressArg::Never) => ProgressMode::Silent,
        (false, ProgressArg::Lines) => ProgressMode::Lines,
        (false, ProgressArg::Auto) if std::io::stderr().is_terminal() => ProgressMode::Live,
        (false, ProgressArg::Auto) => ProgressMode::Lines,
    };
    let mut progress = Progress::new(mode, prefix);
    let cancel = install_interrupt_handler();
    let outcome = gpuaudit::run::run(&config, selected, &mut progress, &cancel);
    progress.finish();
    let outcome = outcome?;
    let result = &outcome.result;

    let rendered = table::render(&table::rows(result));
    if to_stdout {
        print!("{}", outcome.json);
        if !args.quiet {
            eprint!("\n{rendered}");
        }
    } else if !args.quiet {
        print!("\n{rendered}");
    }
    for note in &outcome.sku_notes {
        say(note);
    }
    if let Some(v) = &result.verdict
        && !args.quiet
    {
        let text = verdict::render_verdict(v, prefix);
        if to_stdout {
            eprint!("\n{text}");
        } else {
            print!("\n{text}");
        }
    }
    for s in &result.skipped {
        say(&format!("skipped {}: {}", s.bench, s.reason));
    }
    for e in &result.errors {
        eprintln!("error: {e}");
    }
    if let Some(path) = &outcome.path {
        let note = if outcome.fallback_used {
            " (fallback: the path asked for could not be written)"
        } else {
            ""
        };
        if outcome.fallback_used || !args.quiet {
            eprintln!("result written to {}{note}", path.display());
        }
    }

    let code = if outcome.wrong_results {
        eprintln!(
            "error: a benchmark computed WRONG RESULTS (see \"check\" in the result); its timings were discarded. Suspect hardware faults or silent data corruption."
        );
        exit_code::WRONG_RESULTS
    } else if result.interrupted {
        exit_code::INTERRUPTED
    } else if !result.errors.is_empty() {
        exit_code::ENVIRONMENT
    } else if result.verdict.as_ref().is_some_and(|v| !v.accepted) {
        exit_code::TARGET_FAILED
    } else {
        exit_code::OK
    };
    Ok(code)
}

/// `gpuaudit check`: read everything first (any bad input is exit 2 with nothing written), then
/// judge each result as one instance.
fn check(args: &CheckArgs) -> Result<i32> {
    let contract = Contract::load(&args.contract)?;
    if args.json.is_some() && args.results.len() != 1 {
        return Err(gpuaudit::Error::Usage(format!(
            "--json writes one judged result; {} result files were given (judge them one at a time, or drop --json)",
            args.results.len()
        ))
        .into());
    }
    let mut results = Vec::new();
    for path in &args.results {
        results.push((path, RunResult::load(path)?));
    }
    let now = std::time::SystemTime::now();
    let mut accepted = true;
    let mut wrong = false;
    for (path, result) in &mut results {
        for note in gpuaudit::specs::annotate(result) {
            if !args.quiet {
                eprintln!("{}: {note}", path.display());
            }
        }
        let v = gpuaudit::contract::judge(&contract, result, now);
        accepted &= v.accepted;
        wrong |= result.measurements.iter().any(|m| !m.correct);
        if !args.quiet {
            let prefix = match result.backend {
                backend::BackendKind::Cpu => "cpu",
                backend::BackendKind::Cuda => "gpu",
            };
            println!(
                "== {} ({}, {})\n{}",
                path.display(),
                result.host.hostname,
                result.started_at,
                verdict::render_verdict(&v, prefix)
            );
        }
        result.verdict = Some(v);
    }
    if let (Some(out), Some((_, result))) = (&args.json, results.first()) {
        if out.as_os_str() == "-" {
            println!("{}", result.to_json()?);
        } else {
            result.write_atomic(out)?;
        }
    }
    Ok(if wrong {
        exit_code::WRONG_RESULTS
    } else if accepted {
        exit_code::OK
    } else {
        exit_code::TARGET_FAILED
    })
}

/// `gpuaudit specs [SKU]`.
fn specs(args: &SpecsArgs) -> Result<i32> {
    use gpuaudit::specs::{self, Detection};
    let Some(query) = &args.sku else {
        if args.json {
            println!("{}", serde_json::to_string_pretty(specs::all())?);
        } else {
            print!("{}", table::render(&specs::table_rows()));
            println!(
                "\nDense peaks per GPU: TFLOPS (int8: TOPS), memory GB, bandwidth GB/s. Sparse figures are never peaks; `gpuaudit specs SKU` shows them and the sources."
            );
        }
        return Ok(exit_code::OK);
    };
    let sku = match specs::find(query) {
        Some(s) => s,
        None => match specs::detect(query, 0, None) {
            Detection::Known(s) => s,
            Detection::Unknown(why) => {
                return Err(gpuaudit::Error::Usage(format!(
                    "unknown SKU \"{query}\" ({why}); known SKUs: {}",
                    specs::known_ids()
                ))
                .into());
            }
        },
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(sku)?);
    } else {
        print!("{}", specs::describe(sku));
    }
    Ok(exit_code::OK)
}

fn info(args: &InfoArgs) -> Result<i32> {
    let host = gpuaudit::host::collect();
    let selected = backend::select(args.backend.choice())?;
    let backend = selected.backend.as_ref();
    if args.json {
        let value = serde_json::json!({
            "backend": backend.kind(),
            "backend_reason": selected.reason,
            "devices": backend.devices(),
            "components": backend.components(),
            "cuda_libraries": backend::cuda::libs::report(),
            "host": host,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(exit_code::OK);
    }
    println!("backend:  {} — {}", backend.kind(), selected.reason);
    println!(
        "host:     {} ({}, kernel {}), {} logical CPUs, {:.1} GiB",
        host.hostname,
        host.os,
        host.kernel,
        host.cpu_cores,
        host.memory_bytes as f64 / (1u64 << 30) as f64
    );
    println!("devices:");
    for d in backend.devices() {
        let mut facts = vec![format!(
            "{:.1} GiB",
            d.memory_bytes as f64 / (1u64 << 30) as f64
        )];
        if let Some(cc) = &d.compute_capability {
            facts.push(format!("sm_{}", cc.replace('.', "")));
        }
        if let Some(sms) = d.sm_count {
            facts.push(format!("{sms} SMs"));
        }
        if let Some(t) = d.threads {
            facts.push(format!("{t} threads"));
        }
        if let Some(c) = d.last_level_cache_bytes {
            facts.push(format!("last-level cache {} MiB", c >> 20));
        }
        if let Some(sku) = &d.sku {
            facts.push(format!("SKU {sku}"));
        }
        println!("  {}: {} ({})", d.index, d.name, facts.join(", "));
    }
    println!("components:");
    for c in backend.components() {
        let mut line = format!("  {}", c.name);
        if let Some(v) = &c.version {
            line += &format!(" {v}");
        }
        if let Some(p) = &c.path {
            line += &format!(" ({p})");
        }
        if let Some(problem) = &c.problem {
            line += &format!(": {problem}");
        }
        println!("{line}");
    }
    // The CUDA libraries, found or not, whichever backend was chosen: this is where a user sees
    // why CUDA was not used, and which library versions a GPU run would use.
    if backend.kind() != backend::BackendKind::Cuda {
        println!("CUDA libraries:");
        for c in backend::cuda::libs::report() {
            let mut line = format!("  {}", c.name);
            if let Some(v) = &c.version {
                line += &format!(" {v}");
            }
            if let Some(p) = &c.path {
                line += &format!(" ({p})");
            }
            if let Some(problem) = &c.problem {
                line += &format!(": {problem}");
            }
            println!("{line}");
        }
    }
    Ok(exit_code::OK)
}
