//! gpuaudit: measure what GPU (or CPU) capacity actually delivers, with checked answers and honest
//! statistics, and publish it as a result file.
//!
//! Data flow: `run` plans benchmarks per device → `backend` prepares and times them →
//! `bench` checks answers and samples → `stats` summarises → `result` writes the published JSON
//! → `report` shows it. The README documents the command line, the result schema and the exit
//! codes.

pub mod backend;
pub mod bench;
pub mod contract;
pub mod error;
pub mod evidence;
pub mod fleet;
pub mod host;
pub mod report;
pub mod result;
pub mod rng;
pub mod run;
pub mod specs;
pub mod stats;
pub mod telemetry;

pub use error::{Error, Result};
