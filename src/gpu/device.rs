//! Adapter discovery and selection (`ADVSEG_BACKEND`, `ADVSEG_ADAPTER`).

use super::error::{GpuError, GpuResult};

/// What `advseg info` shows about one adapter.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_storage_buffers_per_shader_stage: u32,
}

impl AdapterSummary {
    pub fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let l = adapter.limits();
        AdapterSummary {
            name: info.name,
            backend: format!("{:?}", info.backend).to_lowercase(),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
            max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
            max_buffer_size: l.max_buffer_size,
            max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
        }
    }
}

/// Backends allowed by `ADVSEG_BACKEND` (all native ones when unset).
pub fn backends_from_env() -> GpuResult<wgpu::Backends> {
    match std::env::var("ADVSEG_BACKEND") {
        Err(_) => Ok(wgpu::Backends::all()),
        Ok(v) if v.trim().is_empty() => Ok(wgpu::Backends::all()),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
            "metal" => Ok(wgpu::Backends::METAL),
            "dx12" | "d3d12" => Ok(wgpu::Backends::DX12),
            "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
            _ => Err(GpuError::BadEnv {
                var: "ADVSEG_BACKEND",
                value: v,
                why: "expected one of vulkan, metal, dx12, gl".into(),
            }),
        },
    }
}

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn backend_rank(b: wgpu::Backend) -> u32 {
    // GL lacks several compute features we rely on (and is slow); prefer the native APIs.
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    }
}

/// All adapters the instance sees under the backend filter.
pub fn enumerate(instance: &wgpu::Instance, backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(backends))
}

/// Index into `adapters` of the one advseg would use: the `ADVSEG_ADAPTER` substring filter,
/// then discrete before integrated before software, native APIs before GL.
pub fn choose(adapters: &[wgpu::Adapter]) -> GpuResult<usize> {
    let filter = std::env::var("ADVSEG_ADAPTER")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let mut best: Option<(u32, u32, usize)> = None;
    for (i, a) in adapters.iter().enumerate() {
        let info = a.get_info();
        if let Some(f) = &filter {
            if !info.name.to_lowercase().contains(&f.to_lowercase()) {
                continue;
            }
        }
        let key = (type_rank(info.device_type), backend_rank(info.backend), i);
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    }
    best.map(|b| b.2).ok_or_else(|| {
        let mut f = String::new();
        if let Ok(b) = std::env::var("ADVSEG_BACKEND") {
            f.push_str(&format!(" for ADVSEG_BACKEND={b:?}"));
        }
        if let Some(a) = filter {
            let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
            f.push_str(&format!(
                " matching ADVSEG_ADAPTER={a:?} (adapters present: {names:?})"
            ));
        }
        GpuError::NoAdapter { filter: f }
    })
}

/// Every adapter of the environment's backends (`ADVSEG_BACKEND`) and the index of the one
/// advseg would use (`advseg info`), through the same instance set-up as [`super::Gpu::new`].
pub fn survey() -> GpuResult<(Vec<AdapterSummary>, GpuResult<usize>)> {
    let backends = backends_from_env()?;
    let adapters = enumerate(&instance(backends), backends);
    let chosen = choose(&adapters);
    Ok((adapters.iter().map(AdapterSummary::of).collect(), chosen))
}

/// A headless wgpu instance for `backends`.
pub(super) fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    })
}
