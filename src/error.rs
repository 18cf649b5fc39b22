//! One error type for the library. Each variant maps to one documented exit code, so the binary's
//! `main` never has to guess what kind of failure it is looking at.

use std::path::PathBuf;

/// Process exit codes, as published in the README.
pub mod exit_code {
    /// Ran; every target passed, or there was no contract.
    pub const OK: i32 = 0;
    /// A contract target failed.
    pub const TARGET_FAILED: i32 = 1;
    /// Usage or input error: bad flag, unreadable or invalid file.
    pub const USAGE: i32 = 2;
    /// Asked-for environment unavailable: no driver, no device, missing library.
    pub const ENVIRONMENT: i32 = 3;
    /// A benchmark produced wrong results (possible silent data corruption).
    pub const WRONG_RESULTS: i32 = 4;
    /// Interrupted (Ctrl-C); everything measured so far was written.
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command-line value or input file; the message names the field and what is allowed.
    #[error("{0}")]
    Usage(String),

    /// The backend or device asked for is not available on this machine.
    #[error("{0}")]
    Environment(String),

    /// A backend operation failed at run time (allocation, launch, library call).
    #[error("{backend} backend: {message}")]
    Backend {
        backend: &'static str,
        message: String,
    },

    /// The measured operation computed a wrong answer; its timings are not to be trusted.
    #[error("wrong results in {what}: {detail}")]
    WrongResults { what: String, detail: String },

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The operation is not offered by this backend (e.g. host-device transfers on the CPU).
    #[error("{0} is not supported by this backend")]
    Unsupported(String),

    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Read { .. } => exit_code::USAGE,
            Error::Environment(_) => exit_code::ENVIRONMENT,
            Error::WrongResults { .. } => exit_code::WRONG_RESULTS,
            Error::Interrupted => exit_code::INTERRUPTED,
            // A write failure or a backend fault after start is an environment problem: the
            // measurement itself could not be carried out on this machine.
            Error::Backend { .. } | Error::Write { .. } | Error::Unsupported(_) => {
                exit_code::ENVIRONMENT
            }
        }
    }

    pub fn backend(backend: &'static str, message: impl Into<String>) -> Self {
        Error::Backend {
            backend,
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
