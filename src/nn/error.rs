//! Errors of the networks layer: arch names, network construction and use, parameter slots,
//! weight files. Failures of the ops and the device below pass through unchanged
//! (`NnError::Op`, transparent); `train::TrainError` wraps this type the same way.

use super::checkpoint::LoadReport;
use std::path::PathBuf;

/// A failure of the networks layer. Messages name the arch, file, tensor or shape at fault.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// A failure of an op or the device, its message unchanged.
    #[error(transparent)]
    Op(#[from] crate::Error),

    #[error("model: unknown arch {name:?}; known: {known}")]
    UnknownArch { name: String, known: String },

    /// A network that cannot be built or used as asked (class count, depth, a capability the
    /// arch lacks, an input of the wrong layout). `what` is the arch or function at fault.
    #[error("{what}: {why}")]
    Invalid { what: &'static str, why: String },

    /// Inputs whose shapes do not fit together.
    #[error("{what}: shape mismatch: {a:?} vs {b:?}: {why}")]
    Shape {
        what: &'static str,
        a: Vec<usize>,
        b: Vec<usize>,
        why: String,
    },

    /// A parameter read before the model was given GPU tensors.
    #[error("model: {name} is not on the GPU yet (call materialize or load a checkpoint)")]
    NotMaterialized { name: String },

    /// A tensor set into a parameter slot of another shape.
    #[error("set_param: shape mismatch: {want:?} vs {got:?}: {name}: expected vs given")]
    ParamShape {
        name: String,
        want: Vec<usize>,
        got: Vec<usize>,
    },

    /// A strict load whose file does not hold exactly the model's tensors (names, shapes).
    #[error("{path}: strict load refused: {report}")]
    StrictLoad { path: PathBuf, report: LoadReport },

    /// A weights file that cannot be used: not safetensors, an unsupported dtype, NaN/inf.
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },

    /// Tensors that safetensors cannot serialise (a shape that does not match the data).
    #[error("checkpoint: {why}")]
    Serialise { why: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, NnError>;

impl NnError {
    /// Whether a device size limit was exceeded (buffer, texture or binding).
    pub fn is_too_large(&self) -> bool {
        matches!(self, NnError::Op(e) if e.is_too_large())
    }
    pub(crate) fn invalid(what: &'static str, why: impl Into<String>) -> Self {
        NnError::Invalid {
            what,
            why: why.into(),
        }
    }
    pub(crate) fn shape(
        what: &'static str,
        a: &[usize],
        b: &[usize],
        why: impl Into<String>,
    ) -> Self {
        NnError::Shape {
            what,
            a: a.to_vec(),
            b: b.to_vec(),
            why: why.into(),
        }
    }
}

impl From<crate::gpu::GpuError> for NnError {
    fn from(e: crate::gpu::GpuError) -> Self {
        NnError::Op(e.into())
    }
}
