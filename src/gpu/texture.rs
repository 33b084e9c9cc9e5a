//! Pooled rgba32float textures: operands of the texture GEMM family (`shaders/texgemm.wgsl`).
//!
//! Every texture is addressed linearly by texel: texel L sits at `(L mod TW, L / TW)` with a
//! power-of-two width TW, so kernels address a 1-d array of vec4 without divisions. Textures
//! are recycled by row count like buffers, so steady-state training creates none.

use super::error::{GpuError, GpuResult};
use super::Gpu;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub(super) const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba32Float;
const TEXEL_BYTES: u64 = 16;
/// Preferred row width (texels); the device limit may force a narrower one.
const WIDTH_SHIFT: u32 = 12;

pub(super) fn create(device: &wgpu::Device, width: u32, height: u32) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some("operand texture"),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: FORMAT,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::STORAGE_BINDING,
        view_formats: &[],
    })
}

#[derive(Default)]
pub(super) struct TexPool {
    free: HashMap<u32, Vec<(wgpu::Texture, wgpu::TextureView)>>,
}

impl TexPool {
    /// Drops every cached texture; returns the bytes released.
    pub(super) fn clear(&mut self, row_bytes: u64) -> u64 {
        self.free
            .drain()
            .map(|(rows, v)| rows as u64 * row_bytes * v.len() as u64)
            .sum()
    }
}

/// Row-count class: powers of two up to 64 rows, then multiples of an eighth of the power of
/// two below (≤ 12.5% waste), as the buffer pool does.
fn rows_class(rows: u32) -> u32 {
    let r = rows.max(1);
    if r <= 64 {
        return r.next_power_of_two();
    }
    let p = if r.is_power_of_two() {
        r
    } else {
        r.next_power_of_two() / 2
    };
    r.div_ceil(p / 8) * (p / 8)
}

/// A pooled operand texture; returns to the pool when dropped.
pub struct GpuTexture {
    tex: Option<(wgpu::Texture, wgpu::TextureView)>,
    rows: u32,
    gpu: Arc<Gpu>,
}

impl GpuTexture {
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }
    pub(super) fn view(&self) -> &wgpu::TextureView {
        &self.tex.as_ref().expect("live texture").1
    }
}

impl Drop for GpuTexture {
    fn drop(&mut self) {
        if let Some(t) = self.tex.take() {
            let bytes = self.gpu.texture_row_bytes() * self.rows as u64;
            self.gpu.counters.sub_live(bytes);
            let mut pool = self.gpu.textures.lock().unwrap();
            pool.free.entry(self.rows).or_default().push(t);
        }
    }
}

impl Gpu {
    /// log2 of the texel width of operand textures (`TWS` in the shaders).
    pub fn texture_width_shift(&self) -> u32 {
        let max = self.limits.max_texture_dimension_2d.max(1);
        WIDTH_SHIFT.min(31 - max.leading_zeros())
    }

    pub(super) fn texture_row_bytes(&self) -> u64 {
        (1u64 << self.texture_width_shift()) * TEXEL_BYTES
    }

    /// Most texels one operand texture can hold on this device.
    pub fn max_texels(&self) -> u64 {
        (1u64 << self.texture_width_shift()) * self.limits.max_texture_dimension_2d as u64
    }

    /// An operand texture of at least `texels` texels (contents undefined).
    pub fn alloc_texels(self: &Arc<Self>, op: &'static str, texels: u64) -> GpuResult<GpuTexture> {
        let shift = self.texture_width_shift();
        let rows = texels.div_ceil(1 << shift).max(1);
        let max_rows = self.limits.max_texture_dimension_2d;
        if rows > max_rows as u64 {
            return Err(GpuError::TooLarge {
                op,
                bytes: texels * TEXEL_BYTES,
                limit: self.max_texels() * TEXEL_BYTES,
                setting: "max_texture_dimension_2d",
            });
        }
        let rows = rows_class(rows as u32).min(max_rows);
        let cached = self
            .textures
            .lock()
            .unwrap()
            .free
            .get_mut(&rows)
            .and_then(|v| v.pop());
        let tex = match cached {
            Some(t) => t,
            None => {
                let t = create(&self.device, 1 << shift, rows);
                self.counters.buffers_allocated.fetch_add(1, Relaxed);
                self.counters
                    .bytes_allocated
                    .fetch_add(self.texture_row_bytes() * rows as u64, Relaxed);
                let v = t.create_view(&wgpu::TextureViewDescriptor::default());
                (t, v)
            }
        };
        self.counters
            .add_live(self.texture_row_bytes() * rows as u64);
        Ok(GpuTexture {
            tex: Some(tex),
            rows,
            gpu: self.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::rows_class;
    #[test]
    fn row_classes_bound_waste() {
        assert_eq!(rows_class(1), 1);
        assert_eq!(rows_class(3), 4);
        assert_eq!(rows_class(64), 64);
        for r in [65u32, 100, 1000, 4097, 16383] {
            let c = rows_class(r);
            assert!(c >= r && c as f64 <= r as f64 * 1.125 + 1.0, "{r} -> {c}");
        }
    }
}
