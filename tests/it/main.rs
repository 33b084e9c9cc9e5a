//! All integration tests in one binary: linking wgpu (and egui) once instead of once per file
//! keeps CI's link time and disk use down. Each module is one former test file; run a group with
//! a filter, e.g. `cargo test --test it -- torch_parity:: fd_conv::`.
//!
//! Tests that need a process of their own stay outside (`tests/app_device_lost.rs` destroys
//! the process's shared GPU device).

mod common;

#[cfg(feature = "app")]
mod app_ui;
#[cfg(feature = "app")]
mod app_views;
mod autograd;
mod bench_smoke;
mod checkpoint;
mod convert_pth;
mod crf;
mod data_camvid;
mod data_files;
mod data_pipeline;
mod engine;
mod fd_conv;
mod fd_elementwise;
mod fd_loss;
mod fd_minmax;
mod fd_spatial;
mod kernel_iface;
mod large;
mod large_train;
mod layers;
mod metrics;
mod nn_archs;
mod nn_forward;
mod nn_params;
mod nn_parity;
mod normalise;
mod optim;
mod robustness;
mod rrm_rules;
mod shaders_validate;
mod signals;
mod sweep_cli;
mod torch_parity;
mod train_cli;
mod train_ema;
mod train_methods_cli;
mod train_signals_cli;
mod train_unit;
mod train_unit_methods;
