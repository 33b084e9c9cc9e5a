//! Test support shipped with the library: the PyTorch parity-case runner (used by
//! `tests/torch_parity.rs` and by anyone with their own case directories), finite differences
//! and the mutation fuzzer of the file readers (`tests/robustness.rs`).

pub mod fd;
pub mod fuzz;
pub mod parity;
