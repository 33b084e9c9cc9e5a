//! Training: one [`Trainer`] drives any [`Method`] (supervised, advsemi, …) and emits an
//! [`Event`] stream that the CLI and the desktop app observe.
//!
//! Layout: `config` (shared settings + the method's table, TOML, `--set`), `method` (the
//! trait), `methods/` (one module per method and the registry), `streams` (seeded resumable
//! data streams), `models` (networks and optimiser groups), `trainer` (the loop), `eval`,
//! `checkpoint` (one atomic safetensors file per checkpoint), `event` (observers), `maps` (map kinds), `rundir`
//! (the run directory writer), `session` (resume, run directory and observers: one run setup
//! for the CLI and the app).

pub mod balance;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod eval;
pub mod event;
pub mod maps;
pub mod method;
pub mod methods;
pub mod models;
pub mod rundir;
pub mod session;
pub mod streams;
pub mod trainer;

pub use config::{RunConfig, TrainConfig};
pub use error::TrainError;
pub use event::{EvalResult, Event, Observer, Snapshot, StepScalars};
pub use maps::{MapKind, ProbeMap};
pub use method::Method;
pub use session::{ResumeFrom, RunSession};
pub use trainer::{Outcome, Trainer, TrainerOptions};
