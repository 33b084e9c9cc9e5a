//! The `advseg` command line.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(name = "advseg", version, about = "Adversarial, semi- and weakly-supervised semantic segmentation on any GPU")]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List GPU adapters and the one advseg would use (ADVSEG_BACKEND / ADVSEG_ADAPTER choose).
    Info,
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: cli::bench::BenchCmd,
    },
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        what: cli::data::DataCmd,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Command::Info => cli::info::run(),
        Command::Bench { what } => cli::bench::run(what),
        Command::Data { what } => cli::data::run(what),
    }
}
