//! The error of the engine core: tensors, autograd, ops and optimisers (`tensor`, `autograd`,
//! `ops`, `optim`, `metrics`). It wraps the device layer's [`GpuError`](crate::gpu::GpuError)
//! and is itself wrapped by the layers above (`nn::NnError`, `train::TrainError`); binaries wrap
//! everything in `anyhow`.

use std::path::PathBuf;

/// A failure of the engine core. Messages name the op, file, field or shape at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: shape mismatch: {a:?} vs {b:?}: {why}")]
    Shape {
        op: &'static str,
        a: Vec<usize>,
        b: Vec<usize>,
        why: String,
    },

    #[error("{op}: {why}")]
    Invalid { op: &'static str, why: String },

    /// A failure of the device layer, its message unchanged.
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),

    /// An engine invariant broke (a bug, not bad input).
    #[error("GPU error: internal: {0}")]
    Internal(String),

    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Whether a device size limit was exceeded (buffer, texture or binding).
    pub fn is_too_large(&self) -> bool {
        matches!(self, Error::Gpu(g) if g.is_too_large())
    }
    pub(crate) fn invalid(op: &'static str, why: impl Into<String>) -> Self {
        Error::Invalid {
            op,
            why: why.into(),
        }
    }
    pub(crate) fn shape(
        op: &'static str,
        a: &[usize],
        b: &[usize],
        why: impl Into<String>,
    ) -> Self {
        Error::Shape {
            op,
            a: a.to_vec(),
            b: b.to_vec(),
            why: why.into(),
        }
    }
}
