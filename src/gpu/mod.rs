//! Everything that touches wgpu: the device, buffers, the pipeline cache and kernel dispatch.
//!
//! Work is recorded into one open compute pass and submitted in batches; per-dispatch parameters
//! go to a uniform ring written once per submit. Nothing is read back unless a caller asks.

mod bind;
mod buffer;
pub mod codes;
mod counters;
pub mod device;
mod dispatch;
mod error;
pub mod layout;
mod merge;
mod pipeline_cache;
mod pool;
pub mod reflect;
mod texture;
pub mod wgsl_compose;

use bind::{binding_limit_from_env, storage_limit_from_env, Res};
pub use bind::{r, r_at, r_elems, store_tex, tex, w, w_at, w_elems, Access, Bind};
pub use buffer::GpuBuffer;
pub use counters::{CounterSnapshot, Counters};
pub use device::AdapterSummary;
pub use error::{GpuError, GpuResult};
pub use pipeline_cache::{cache_dir, fnv1a};
pub use texture::GpuTexture;

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock};

include!(concat!(env!("OUT_DIR"), "/shaders.rs"));

/// WGSL source of a shader by file stem (or variant name, see `shaders/variants/`).
pub fn shader_source(name: &str) -> Option<&'static str> {
    SHADERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .or_else(|| VARIANTS.iter().find(|(n, ..)| *n == name).map(|v| v.2))
}

/// (name, base shader, composed source) of every shader variant.
pub fn shader_variants() -> &'static [(&'static str, &'static str, &'static str)] {
    VARIANTS
}

/// Bytes of uniform ring; a submit happens at the latest when it is full.
const RING_BYTES: u64 = 1 << 20;
/// Submit after this many dispatches so the GPU starts while the CPU keeps recording.
const DISPATCHES_PER_SUBMIT: u32 = 512;

#[derive(Clone, PartialEq, Eq, Hash)]
struct PipeKey {
    shader: &'static str,
    entry: &'static str,
    constants: Vec<(&'static str, u32)>,
    access: Vec<Access>,
}

struct Pipe {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    /// Bindings the entry point uses: only these are laid out and bound.
    used: Vec<u32>,
    /// Read-only inputs merged into one binding (adapters with few storage buffers per stage).
    merge: Option<merge::Merge>,
}

#[derive(Default)]
struct Batch {
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    ring: Vec<u8>,
    dispatches: u32,
}

/// The GPU context: one per process in practice (see [`Gpu::shared`]).
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// The adapter's name, backend and limits (the device is created with these limits).
    pub summary: AdapterSummary,
    limits: wgpu::Limits,
    /// Bytes one storage binding may cover: the device's `max_storage_buffer_binding_size`,
    /// or less when `ADVSEG_MAX_BINDING_BYTES` asks (tests force the split paths with it).
    binding_limit: u64,
    /// Storage buffers one kernel may bind (`max_storage_buffers_per_shader_stage`, or less
    /// when `ADVSEG_MAX_STORAGE_BUFFERS` asks).
    storage_limit: u32,
    /// Storage-binding offsets are multiples of this (bytes, at least 16: one vec4).
    offset_align: u64,
    modules: Mutex<HashMap<&'static str, Arc<wgpu::ShaderModule>>>,
    pipelines: Mutex<HashMap<PipeKey, Arc<Pipe>>>,
    pool: Mutex<pool::Pool>,
    batch: Mutex<Batch>,
    ring: wgpu::Buffer,
    dummy: wgpu::Buffer,
    dummy_tex: wgpu::TextureView,
    textures: Mutex<texture::TexPool>,
    readback: Mutex<Option<(u64, wgpu::Buffer)>>,
    errors: Arc<Mutex<Vec<String>>>,
    counters: Counters,
    ubo_align: u64,
    subgroup: Option<u32>,
    disk_cache: Option<pipeline_cache::DiskCache>,
    /// Per-kernel wall time when `ADVSEG_PROFILE` is set (each dispatch then runs alone).
    profile: Option<Mutex<HashMap<String, (u64, f64)>>>,
}

static SHARED: OnceLock<std::result::Result<Arc<Gpu>, String>> = OnceLock::new();

impl Gpu {
    /// The process-wide context, created on first use from the environment's adapter choice.
    pub fn shared() -> GpuResult<Arc<Gpu>> {
        SHARED
            .get_or_init(|| Gpu::new().map_err(|e| e.to_string()))
            .clone()
            .map_err(GpuError::Backend)
    }

    /// Creates a context on the adapter chosen by [`device::choose`], with that adapter's limits.
    pub fn new() -> GpuResult<Arc<Gpu>> {
        Self::new_with_binding_limit(None)
    }

    /// [`Gpu::new`] with the engine's storage-binding limit lowered to `limit` bytes (rounded
    /// down to the offset alignment), as `ADVSEG_MAX_BINDING_BYTES` does, but for this context
    /// only: tests run the split paths of large tensors at small sizes next to the shared
    /// context's unsplit ones.
    pub fn new_with_binding_limit(limit: Option<u64>) -> GpuResult<Arc<Gpu>> {
        Self::new_with_limits(limit, None)
    }

    /// [`Gpu::new_with_binding_limit`] that can also lower the storage buffers one kernel may
    /// bind, as `ADVSEG_MAX_STORAGE_BUFFERS` does (tests of adapters with wgpu's downlevel 4:
    /// kernels over it run with merged read-only inputs, see `merge.rs`).
    pub fn new_with_limits(binding: Option<u64>, storage: Option<u32>) -> GpuResult<Arc<Gpu>> {
        let backends = device::backends_from_env()?;
        let adapters = device::enumerate(&device::instance(backends), backends);
        let idx = device::choose(&adapters)?;
        Self::build(
            adapters.into_iter().nth(idx).expect("chosen index"),
            binding,
            storage,
        )
    }

    pub fn from_adapter(adapter: wgpu::Adapter) -> GpuResult<Arc<Gpu>> {
        Self::build(adapter, None, None)
    }

    /// Calls `f` with "reason: message" when the device is lost (driver reset, GPU removed).
    /// The next GPU call fails anyway; this lets a caller say why first (the app's runner).
    pub fn on_device_lost(&self, f: impl Fn(String) + Send + 'static) {
        self.device
            .set_device_lost_callback(move |reason, msg| f(format!("{reason:?}: {msg}")));
    }

    /// Destroys the device as a driver reset would: for tests of device-loss handling.
    pub fn lose_device(&self) {
        self.device.destroy();
    }

    /// The wgpu device and queue, for one use only: rendering egui offscreen on the compute
    /// device (`advseg bench app`, through egui-wgpu, whose API takes them). All compute goes
    /// through this type's methods.
    pub fn render_handles(&self) -> (&wgpu::Device, &wgpu::Queue) {
        (&self.device, &self.queue)
    }

    fn build(
        adapter: wgpu::Adapter,
        limit: Option<u64>,
        storage: Option<u32>,
    ) -> GpuResult<Arc<Gpu>> {
        let summary = AdapterSummary::of(&adapter);
        let info = adapter.get_info();
        let subgroup = (adapter.features().contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size == info.subgroup_max_size)
            .then_some(info.subgroup_min_size);
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("advseg"),
            // Subgroup operations let the texture GEMM share operand fetches across SIMD lanes.
            required_features: adapter.features()
                & (wgpu::Features::SUBGROUP | wgpu::Features::PIPELINE_CACHE),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|source| GpuError::RequestDevice {
            adapter: summary.name.clone(),
            source,
        })?;
        let disk_cache = pipeline_cache::DiskCache::open(&device, &info);
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap().push(e.to_string());
        }));
        let ring = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("param ring"),
            size: RING_BYTES,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused binding"),
            size: 256,
            // COPY_SRC: a placeholder in a merged input's slot is copied like any input.
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let dummy_tex =
            texture::create(&device, 1, 1).create_view(&wgpu::TextureViewDescriptor::default());
        let ubo_align = (limits.min_uniform_buffer_offset_alignment as u64).max(16);
        let offset_align = (limits.min_storage_buffer_offset_alignment as u64).max(16);
        let binding_limit = binding_limit_from_env(
            limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size),
            offset_align,
        )?;
        let storage_limit = storage_limit_from_env(limits.max_storage_buffers_per_shader_stage)?
            .min(storage.unwrap_or(u32::MAX));
        let binding_limit = match limit {
            None => binding_limit,
            Some(l) if l >= offset_align => binding_limit.min(l) / offset_align * offset_align,
            Some(l) => {
                return Err(GpuError::invalid(
                    "binding limit",
                    format!("{l} bytes is below the storage offset alignment ({offset_align})"),
                ))
            }
        };
        Ok(Arc::new(Gpu {
            device,
            queue,
            summary,
            limits,
            binding_limit,
            storage_limit,
            offset_align,
            modules: Mutex::default(),
            pipelines: Mutex::default(),
            pool: Mutex::default(),
            batch: Mutex::default(),
            ring,
            dummy,
            dummy_tex,
            textures: Mutex::default(),
            readback: Mutex::new(None),
            errors,
            counters: Counters::default(),
            ubo_align,
            subgroup,
            disk_cache,
            profile: std::env::var_os("ADVSEG_PROFILE").map(|_| Mutex::default()),
        }))
    }

    /// Lanes per subgroup when wgpu's SUBGROUP feature is on and the adapter's subgroups have
    /// one fixed size.
    pub fn subgroup_size(&self) -> Option<u32> {
        self.subgroup
    }

    /// A read-only binding for kernel slots an entry point does not use.
    pub fn unused(&self) -> Bind<'_> {
        Bind(Res::Buffer(&self.dummy), Access::Read)
    }

    /// A texture binding for slots an entry point does not read.
    pub fn unused_texture(&self) -> Bind<'_> {
        Bind(Res::View(&self.dummy_tex), Access::Texture)
    }

    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }

    /// Counts `flops` floating-point operations of recorded work (see [`CounterSnapshot::flops`]).
    pub fn add_flops(&self, flops: f64) {
        self.counters.flops.fetch_add(flops as u64, Relaxed);
    }

    /// Restarts peak-memory tracking from the current live bytes.
    pub fn reset_peak(&self) {
        self.counters.reset_peak();
    }

    /// Frees the pool's cached buffers; returns the bytes released.
    pub fn trim_pool(&self) -> u64 {
        self.textures
            .lock()
            .unwrap()
            .clear(self.texture_row_bytes())
            + self.pool.lock().unwrap().clear()
    }

    fn take_errors(&self) -> GpuResult<()> {
        let mut e = self.errors.lock().unwrap();
        if e.is_empty() {
            Ok(())
        } else {
            Err(GpuError::Backend(std::mem::take(&mut *e).join("; ")))
        }
    }

    /// Bytes one storage binding may cover (the device's limit or `ADVSEG_MAX_BINDING_BYTES`).
    /// Tensors up to this size are bound whole; larger ones only by ops that split them.
    pub fn binding_limit(&self) -> u64 {
        self.binding_limit
    }

    /// Element ranges of a flat tensor of `n` elements of `elem_bytes` bytes, each small
    /// enough for one storage binding and starting at an aligned byte offset (and a multiple
    /// of 4 elements, so vec4 kernels see whole vec4s). One range when the tensor fits.
    pub fn chunks(&self, n: usize, elem_bytes: usize) -> Vec<std::ops::Range<usize>> {
        let eb = elem_bytes.max(1) as u64;
        if n as u64 * eb <= self.binding_limit {
            return std::iter::once(0..n).collect();
        }
        let quantum = (self.offset_align / eb).max(4) as usize;
        let len = ((self.binding_limit / eb) as usize / quantum * quantum).max(quantum);
        (0..n).step_by(len).map(|s| s..(s + len).min(n)).collect()
    }
}
