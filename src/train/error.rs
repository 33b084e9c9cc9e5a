//! Errors of the training layer: configuration, checkpoints, diverging losses; the engine
//! core's, the networks' and the data layer's errors pass through it unchanged (transparent
//! variants).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A failure of the engine core (ops, networks, the GPU), its message unchanged.
    #[error(transparent)]
    Op(#[from] crate::error::Error),

    /// A failure of the networks layer (arch, weights file, parameters), its message unchanged.
    #[error(transparent)]
    Nn(#[from] crate::nn::NnError),

    /// A failure reading data, its message unchanged.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),

    #[error("unknown method {name:?}; known: {known}")]
    UnknownMethod { name: String, known: String },

    #[error("unknown setting {key:?}; known settings of method {method}: {known}")]
    UnknownKey {
        key: String,
        method: String,
        known: String,
    },

    #[error("setting {key:?} belongs to method {owner}; it does not apply to method {method}")]
    KeyNotForMethod {
        key: String,
        owner: String,
        method: String,
    },

    #[error("setting {key:?}: {why}")]
    BadValue { key: String, why: String },

    #[error("config {path}: {why}")]
    ConfigFile { path: PathBuf, why: String },

    #[error("checkpoint {path}: {why}")]
    Checkpoint { path: PathBuf, why: String },

    /// A new run would overwrite the run directory's checkpoints; each front end says how to
    /// continue it instead.
    #[error("{dir} already holds a run")]
    RunDirTaken { dir: PathBuf },

    #[error(
        "step {step} made the state non-finite ({what}); it was not saved and training \
         stopped; {kept}"
    )]
    NonFiniteState {
        step: usize,
        what: String,
        kept: String,
    },

    #[error(
        "bad training sample in step {step}: {why}; {saved}; fix or remove the file (or pass \
         --set on_bad_sample=skip) and continue with --resume auto"
    )]
    BadSample {
        step: usize,
        why: String,
        saved: String,
    },

    #[error("loss term {term:?} is {value} at step {step}: training stopped; {kept}")]
    NonFinite {
        term: String,
        value: f32,
        step: usize,
        kept: String,
    },
}

pub type Result<T> = std::result::Result<T, TrainError>;

impl From<crate::gpu::GpuError> for TrainError {
    fn from(e: crate::gpu::GpuError) -> Self {
        TrainError::Op(e.into())
    }
}

impl TrainError {
    /// Whether a device size limit was exceeded (buffer, texture or binding).
    pub fn is_too_large(&self) -> bool {
        match self {
            TrainError::Op(e) => e.is_too_large(),
            TrainError::Nn(e) => e.is_too_large(),
            _ => false,
        }
    }
    pub fn bad_value(key: impl Into<String>, why: impl Into<String>) -> Self {
        TrainError::BadValue {
            key: key.into(),
            why: why.into(),
        }
    }
    pub fn checkpoint(path: &std::path::Path, why: impl Into<String>) -> Self {
        TrainError::Checkpoint {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }
}
