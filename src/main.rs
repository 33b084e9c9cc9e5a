//! The `advseg` command line.

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "advseg",
    version,
    about = "Adversarial, semi- and weakly-supervised semantic segmentation on any GPU"
)]
struct Cli {
    /// Without a subcommand: the desktop app when a display is available, else this help.
    #[command(subcommand)]
    cmd: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Desktop app: set up, run and inspect training live (plots, maps, T_semi gate, inference).
    App(cli::app::AppArgs),
    /// List GPU adapters and the one advseg would use (ADVSEG_BACKEND / ADVSEG_ADAPTER choose).
    Info,
    /// Print an architecture's layer table and parameter count; optionally save an initialised checkpoint.
    Model(cli::model::ModelArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: cli::bench::BenchCmd,
    },
    /// Train a segmentation network with a method (supervised, advsemi).
    Train(Box<cli::train::TrainArgs>),
    /// Evaluate a training checkpoint on a dataset split (mIoU table or --json).
    Eval(cli::train::EvalArgs),
    /// Segment images with a training checkpoint (palette PNG + overlay, --maps).
    Predict(cli::train::PredictArgs),
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        what: cli::data::DataCmd,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The chain of causes, not a backtrace: users need the file/field/shape at fault.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let Some(cmd) = cli.cmd else {
        if advseg::app::display_available() {
            return cli::app::run(Default::default());
        }
        Cli::command().print_help()?;
        return Ok(());
    };
    match cmd {
        Command::App(a) => cli::app::run(a),
        Command::Info => cli::info::run(),
        Command::Bench { what } => cli::bench::run(what),
        Command::Model(a) => cli::model::run(a),
        Command::Data { what } => cli::data::run(what),
        Command::Train(a) => cli::train::run_train(*a),
        Command::Eval(a) => cli::train::run_eval(a),
        Command::Predict(a) => cli::train::run_predict(a),
    }
}
