//! Subcommand implementations of the `advseg` binary.
#[cfg(feature = "app")]
pub mod app;
pub mod bench;
pub mod bench_step;
pub mod compare;
pub mod data;
pub mod info;
pub mod model;
pub mod sweep;
pub mod train;
