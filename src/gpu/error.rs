//! `GpuError`: failures of the device layer (adapter, device, limits, dispatch, read-back).
//! The layers above wrap it (`crate::Error::Gpu`, transparent), so its messages reach the user
//! unchanged.

/// A failure of the GPU layer. Messages name the kernel, setting or adapter at fault.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
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

    /// A request the device layer refuses (unknown shader, missing binding, bad limit).
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

    /// A fused kernel reads and writes more storage buffers in one pass than the adapter allows
    /// per shader stage (wgpu's downlevel limit is 4; WebGPU guarantees 8, and no kernel uses
    /// more than 7), even with its read-only inputs merged into one binding (`gpu/merge.rs`).
    #[error(
        "{kernel} uses {used} storage buffers in one pass, over the adapter's \
         max_storage_buffers_per_shader_stage of {limit} (or ADVSEG_MAX_STORAGE_BUFFERS) even \
         with its read-only inputs merged into one binding; advseg needs an adapter with more \
         (every WebGPU-conformant one has 8)"
    )]
    TooManyStorageBuffers {
        kernel: String,
        used: u32,
        limit: u32,
    },

    /// Validation, device-lost or mapping errors reported by wgpu.
    #[error("GPU error: {0}")]
    Backend(String),
}

pub type GpuResult<T> = std::result::Result<T, GpuError>;

impl GpuError {
    pub(crate) fn invalid(op: &'static str, why: impl Into<String>) -> Self {
        GpuError::Invalid {
            op,
            why: why.into(),
        }
    }
    /// Whether the request exceeded a device size limit (a buffer, texture or binding):
    /// callers turn that into advice about crop or batch size.
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            GpuError::TooLarge { .. } | GpuError::BindingTooLarge { .. }
        )
    }
}
