//! What each subcommand does at the binary's edge: printing, exit codes, signal handling.

use crate::cli::{Cli, Command, InfoArgs, ProgressArg, RunArgs};
use anyhow::Result;
use gpuaudit::backend;
use gpuaudit::error::exit_code;
use gpuaudit::report::progress::{Progress, ProgressMode};
use gpuaudit::report::table;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run(args) => run(&args),
        Command::Info(args) => info(&args),
    }
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
    let config = args.config(std::env::args().collect());
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
        println!("{}", result.to_json()?);
        if !args.quiet {
            eprint!("\n{rendered}");
        }
    } else if !args.quiet {
        print!("\n{rendered}");
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
    } else {
        exit_code::OK
    };
    Ok(code)
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
