//! `advseg bench ...`: kernel benchmarks.

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Per-op forward/backward timings at DeepLab training shapes.
    Ops {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Ops { json } => {
            let _ = json;
            anyhow::bail!("bench ops: not built yet")
        }
    }
}
