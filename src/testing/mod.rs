//! Test support shipped with the library: the PyTorch parity-case runner (used by
//! `tests/torch_parity.rs` and by anyone with their own case directories) and finite differences.

pub mod fd;
pub mod parity;
