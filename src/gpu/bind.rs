//! Kernel bindings: how a kernel uses each (read / read-write storage, texture), whole
//! buffers or aligned ranges of tensors larger than one storage binding, and the engine's
//! binding limit (`ADVSEG_MAX_BINDING_BYTES`).

use super::error::{GpuError, GpuResult};
use super::{GpuBuffer, GpuTexture};

/// How a kernel uses a binding; must match the WGSL declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// `var<storage, read>` buffer.
    Read,
    /// `var<storage, read_write>` buffer.
    ReadWrite,
    /// `texture_2d<f32>` read with `textureLoad` (rgba32float, not filterable).
    Texture,
    /// `texture_storage_2d<rgba32float, write>`.
    StoreTexture,
}

pub(super) enum Res<'a> {
    Buffer(&'a wgpu::Buffer),
    /// `size` bytes of a buffer from `offset` (a chunk of a tensor larger than one binding).
    Range(&'a wgpu::Buffer, u64, u64),
    View(&'a wgpu::TextureView),
}

/// One binding of a dispatch (bindings 1.. in order; binding 0 is the parameter uniform).
pub struct Bind<'a>(pub(super) Res<'a>, pub(super) Access);

/// Read-only storage binding.
pub fn r(b: &GpuBuffer) -> Bind<'_> {
    Bind(Res::Buffer(b.raw()), Access::Read)
}
/// Read-write storage binding.
pub fn w(b: &GpuBuffer) -> Bind<'_> {
    Bind(Res::Buffer(b.raw()), Access::ReadWrite)
}
/// Read-only storage binding of bytes `[offset, offset + size)` of `b` (see [`Gpu::chunks`]).
pub fn r_at(b: &GpuBuffer, offset: u64, size: u64) -> Bind<'_> {
    Bind(range(b, offset, size), Access::Read)
}
/// Read-write storage binding of bytes `[offset, offset + size)` of `b`.
pub fn w_at(b: &GpuBuffer, offset: u64, size: u64) -> Bind<'_> {
    Bind(range(b, offset, size), Access::ReadWrite)
}
/// Element range `elems` of a tensor of `elem_bytes`-byte elements, read-only.
pub fn r_elems<'a>(
    b: &'a GpuBuffer,
    elems: &std::ops::Range<usize>,
    elem_bytes: usize,
) -> Bind<'a> {
    r_at(
        b,
        (elems.start * elem_bytes) as u64,
        (elems.len() * elem_bytes) as u64,
    )
}
/// Element range `elems` of a tensor of `elem_bytes`-byte elements, read-write.
pub fn w_elems<'a>(
    b: &'a GpuBuffer,
    elems: &std::ops::Range<usize>,
    elem_bytes: usize,
) -> Bind<'a> {
    w_at(
        b,
        (elems.start * elem_bytes) as u64,
        (elems.len() * elem_bytes) as u64,
    )
}

/// A range rounded up to whole vec4s (kernels declare vec4 arrays and guard the tail by `n`),
/// within the buffer.
fn range(b: &GpuBuffer, offset: u64, size: u64) -> Res<'_> {
    let buf = b.raw();
    let size = size
        .next_multiple_of(16)
        .min(buf.size().saturating_sub(offset))
        .max(4);
    Res::Range(buf, offset, size)
}

/// The engine's binding limit: the device's, lowered by `ADVSEG_MAX_BINDING_BYTES` (rounded
/// down to the offset alignment), so the split paths of large tensors run at small sizes.
pub(super) fn binding_limit_from_env(device: u64, align: u64) -> GpuResult<u64> {
    const VAR: &str = "ADVSEG_MAX_BINDING_BYTES";
    let Some(v) = std::env::var_os(VAR) else {
        return Ok(device);
    };
    let v = v.to_string_lossy().into_owned();
    let bytes: u64 = v.trim().parse().map_err(|_| GpuError::BadEnv {
        var: VAR,
        value: v.clone(),
        why: "expected a number of bytes".into(),
    })?;
    if bytes < align.max(1024) {
        return Err(GpuError::BadEnv {
            var: VAR,
            value: v,
            why: format!(
                "at least {} bytes (the storage offset alignment and a 1 KiB floor)",
                align.max(1024)
            ),
        });
    }
    Ok(bytes.min(device) / align * align)
}
/// Storage buffers one kernel may bind: the adapter's limit, or less when
/// `ADVSEG_MAX_STORAGE_BUFFERS` asks (tests of the merged-inputs fallback and of the refusal).
pub(super) fn storage_limit_from_env(device: u32) -> GpuResult<u32> {
    const VAR: &str = "ADVSEG_MAX_STORAGE_BUFFERS";
    let Some(v) = std::env::var_os(VAR) else {
        return Ok(device);
    };
    let v = v.to_string_lossy().into_owned();
    match v.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n.min(device)),
        _ => Err(GpuError::BadEnv {
            var: VAR,
            value: v,
            why: "expected a whole number of storage buffers, at least 1".into(),
        }),
    }
}

/// Texture read with `textureLoad`.
pub fn tex(t: &GpuTexture) -> Bind<'_> {
    Bind(Res::View(t.view()), Access::Texture)
}
/// Write-only storage texture.
pub fn store_tex(t: &GpuTexture) -> Bind<'_> {
    Bind(Res::View(t.view()), Access::StoreTexture)
}
