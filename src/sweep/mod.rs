//! Seed sweeps and their comparison (`advseg sweep`, `advseg compare`): the grid of runs, where
//! each run stands, and the statistics over seeds. Running the child processes is the binary's
//! job (`src/cli/sweep.rs`).

pub mod compare;
pub mod grid;
pub mod stats;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("grid {src}: {why}")]
    Grid { src: String, why: String },

    #[error("sweep cell {cell}: {why}")]
    Cell { cell: String, why: String },

    #[error("{0}")]
    Flags(String),

    #[error("{path}: {why}")]
    Run { path: PathBuf, why: String },
}
