//! The `gpuaudit` binary: parse the command line, call the library, map the outcome to an exit
//! code (see `gpuaudit::error::exit_code`).

mod cli;
mod commands;

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use gpuaudit::error::exit_code;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                std::process::exit(
                    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        exit_code::USAGE
                    } else {
                        exit_code::OK
                    },
                );
            }
            // One line that names the problem, and where to read more.
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("error: invalid arguments");
            let allowed = match e.get(ContextKind::ValidValue) {
                Some(ContextValue::Strings(values)) => {
                    format!("; choose from {}", values.join(", "))
                }
                _ => String::new(),
            };
            eprintln!("{first}{allowed} (see gpuaudit --help)");
            std::process::exit(exit_code::USAGE);
        }
    };
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            e.downcast_ref::<gpuaudit::Error>()
                .map(|e| e.exit_code())
                .unwrap_or(exit_code::USAGE)
        }
    };
    std::process::exit(code);
}
