//! Everything a person reads: the terminal table, progress display, and later the fleet report.

pub mod html;
pub mod progress;
pub mod table;
pub mod verdict;
