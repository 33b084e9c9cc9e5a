//! Subcommand implementations of the `advseg` binary.
#[cfg(feature = "app")]
pub mod app;
pub mod bench;
pub mod bench_step;
pub mod compare;
mod console;
pub mod data;
pub mod info;
pub mod model;
pub mod predict;
pub mod sweep;
pub mod train;
