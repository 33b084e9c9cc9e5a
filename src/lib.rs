//! advseg: adversarial, semi-supervised and weakly-supervised semantic segmentation on any GPU.
//!
//! Layers, bottom up, each importing only those below it (checked by `tests/it/layers.rs`):
//! [`gpu`] (wgpu device, buffers, kernel dispatch; [`gpu::GpuError`]) → [`tensor`] and
//! [`autograd`] ([`Error`], the core error, wrapping `GpuError`) → [`ops`] and [`optim`] →
//! [`nn`] → [`train`] (one trainer, methods as plug-ins, observers of its event stream;
//! [`train::TrainError`], wrapping [`Error`] and [`data::DataError`]). [`data`] (files, decoding,
//! loader) needs no GPU and sits beside the engine.

#[cfg(feature = "app")]
pub mod app;
pub mod atomic;
pub mod autograd;
pub mod data;
pub mod error;
pub mod gpu;
pub mod kernels;
pub mod metrics;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod rng;
pub mod sweep;
pub mod tensor;
pub mod testing;
pub mod train;

pub use error::{Error, Result};
pub use gpu::Gpu;
pub use tensor::{DType, Tensor};
