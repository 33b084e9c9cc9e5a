//! Typed errors of the library. Binaries wrap them in `anyhow`.

use std::path::PathBuf;

/// Every failure the library reports. Messages name the op, file, field or shape at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no usable GPU adapter found{filter}. Install a Vulkan, Metal, DX12 or GL driver; \
         on Linux without a GPU install Mesa's software Vulkan driver: \
         `apt-get install mesa-vulkan-drivers libvulkan1`"
    )]
    NoAdapter { filter: String },

    #[error("invalid {var}={value:?}: {why}")]
    BadEnv {
        var: &'static str,
        value: String,
        why: String,
    },

    #[error("requesting the GPU device failed on adapter {adapter:?}: {source}")]
    RequestDevice {
        adapter: String,
        #[source]
        source: wgpu::RequestDeviceError,
    },

    #[error("{op}: shape mismatch: {a:?} vs {b:?}: {why}")]
    Shape {
        op: &'static str,
        a: Vec<usize>,
        b: Vec<usize>,
        why: String,
    },

    #[error("{op}: {why}")]
    Invalid { op: &'static str, why: String },

    #[error("{op}: buffer of {bytes} bytes exceeds the adapter's {setting} of {limit} bytes")]
    TooLarge {
        op: &'static str,
        bytes: u64,
        limit: u64,
        /// The device limit at fault (`max_buffer_size`, `max_texture_dimension_2d`, ...).
        setting: &'static str,
    },

    /// A kernel was asked to bind a tensor larger than one storage binding whole: the op has
    /// no split path for it.
    #[error(
        "{kernel}: {what} is {bytes} bytes, over the storage-binding limit of {limit} bytes \
         (max_storage_buffer_binding_size, or ADVSEG_MAX_BINDING_BYTES), and this op cannot \
         split it{why}"
    )]
    BindingTooLarge {
        kernel: String,
        /// The binding or tensor part at fault ("binding 2", "one channel of [1, 3, H, W]").
        what: String,
        bytes: u64,
        limit: u64,
        /// Why no split applies, when one exists for other cases ("" or "; ...").
        why: String,
    },

    #[error("GPU error: {0}")]
    Gpu(String),

    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },

    #[error(transparent)]
    Data(#[from] crate::data::DataError),

    #[error(transparent)]
    Train(#[from] crate::train::TrainError),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
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
