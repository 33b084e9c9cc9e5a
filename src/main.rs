//! The `advseg` command line.

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "advseg",
    version,
    about = "Adversarial, semi- and weakly-supervised semantic segmentation on any GPU"
)]
#[cfg_attr(
    not(feature = "app"),
    command(
        after_help = "Built without the `app` feature: no desktop app (`advseg app`, \
                     `advseg bench app`); rebuild with default features for it."
    )
)]
struct Cli {
    /// Without a subcommand: the desktop app when a display is available, else this help
    /// (always the help in a build without the `app` feature).
    #[command(subcommand)]
    cmd: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Desktop app: set up, run and inspect training live (plots, maps, T_semi gate, inference).
    #[cfg(feature = "app")]
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
    /// Train a segmentation network with a method (the list comes from the METHODS registry).
    Train(Box<cli::train::TrainArgs>),
    /// Evaluate a training checkpoint on a dataset split (mIoU table or --json).
    Eval(cli::train::EvalArgs),
    /// Segment images with a training checkpoint (palette PNG + overlay, --maps).
    Predict(cli::predict::PredictArgs),
    /// Run a grid of method × labelled fraction × seed as independent training runs
    /// (resumable; --list / --index I for Slurm job arrays and Kubernetes Indexed Jobs).
    Sweep(cli::sweep::SweepArgs),
    /// Compare finished runs: mean ± std over seeds, paired differences against supervised
    /// with a bootstrap interval (table, --markdown or --json).
    Compare(cli::compare::CompareArgs),
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        what: cli::data::DataCmd,
    },
}

/// The clap command with `train`'s one-line help naming every registered method, so the help
/// cannot fall behind the registry.
fn command() -> clap::Command {
    let names: Vec<&str> = advseg::train::methods::METHODS
        .iter()
        .map(|m| m.name)
        .collect();
    Cli::command().mut_subcommand("train", |c| {
        c.about(format!(
            "Train a segmentation network with a method ({})",
            names.join(", ")
        ))
    })
}

/// The error and its causes on one line, each cause once: many errors already quote their
/// source in their own message (`{path}: {source}`), which `{:#}` would print a second time.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if line.contains(&c) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&c);
    }
    line
}

fn main() -> std::process::ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches())
        .unwrap_or_else(|e| e.format(&mut command()).exit());
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if cli::is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The chain of causes, not a backtrace: users need the file/field/shape at fault.
            eprintln!("error: {}", error_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let Some(cmd) = cli.cmd else {
        #[cfg(feature = "app")]
        if advseg::app::display_available() {
            return cli::app::run(Default::default());
        }
        command().print_help()?;
        return Ok(());
    };
    match cmd {
        #[cfg(feature = "app")]
        Command::App(a) => cli::app::run(a),
        Command::Info => cli::info::run(),
        Command::Bench { what } => cli::bench::run(what),
        Command::Model(a) => cli::model::run(a),
        Command::Data { what } => cli::data::run(what),
        Command::Sweep(a) => cli::sweep::run(a),
        Command::Compare(a) => cli::compare::run(a),
        Command::Train(a) => cli::train::run_train(*a),
        Command::Eval(a) => cli::train::run_eval(a),
        Command::Predict(a) => cli::predict::run_predict(a),
    }
}
