//! Everything that touches wgpu: the device, buffers, the pipeline cache and kernel dispatch.
//!
//! Work is recorded into one open compute pass and submitted in batches; per-dispatch parameters
//! go to a uniform ring written once per submit. Nothing is read back unless a caller asks.

mod bind;
pub mod codes;
mod counters;
pub mod device;
mod error;
pub mod layout;
mod pipeline_cache;
mod pool;
pub mod reflect;
mod texture;
pub mod wgsl_compose;

use bind::{binding_limit_from_env, Res};
pub use bind::{r, r_at, r_elems, store_tex, tex, w, w_at, w_elems, Access, Bind};
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
        let backends = device::backends_from_env()?;
        let adapters = device::enumerate(&device::instance(backends), backends);
        let idx = device::choose(&adapters)?;
        Self::build(adapters.into_iter().nth(idx).expect("chosen index"), limit)
    }

    pub fn from_adapter(adapter: wgpu::Adapter) -> GpuResult<Arc<Gpu>> {
        Self::build(adapter, None)
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

    fn build(adapter: wgpu::Adapter, limit: Option<u64>) -> GpuResult<Arc<Gpu>> {
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
            usage: wgpu::BufferUsages::STORAGE,
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

    /// A storage buffer of at least `bytes` bytes from the pool; contents are undefined.
    /// Buffers may exceed [`Gpu::binding_limit`] (up to the device's `max_buffer_size`): such
    /// a tensor can only be bound in ranges, and a kernel binding it whole is refused.
    pub fn alloc(self: &Arc<Self>, op: &'static str, bytes: u64) -> GpuResult<GpuBuffer> {
        let limit = self.binding_limit;
        let max = self.limits.max_buffer_size;
        if bytes > max {
            return Err(GpuError::TooLarge {
                op,
                bytes,
                limit: max,
                setting: "max_buffer_size",
            });
        }
        // Classes never straddle the binding limit: a buffer is bound whole iff it fits.
        let class = if bytes <= limit {
            pool::size_class(bytes).min(limit.max(bytes).next_multiple_of(4))
        } else {
            pool::size_class(bytes)
                .min(max)
                .max(bytes.next_multiple_of(16))
        };
        let buf = self.pool.lock().unwrap().take(class);
        let buf = match buf {
            Some(b) => b,
            None => {
                self.counters.buffers_allocated.fetch_add(1, Relaxed);
                self.counters.bytes_allocated.fetch_add(class, Relaxed);
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(op),
                    size: class,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            }
        };
        self.counters.add_live(class);
        Ok(GpuBuffer {
            buf: Some(buf),
            class,
            bytes,
            gpu: self.clone(),
        })
    }

    /// A buffer whose first `bytes` bytes are zero (cleared in stream order).
    pub fn zeros(self: &Arc<Self>, op: &'static str, bytes: u64) -> GpuResult<GpuBuffer> {
        let b = self.alloc(op, bytes)?;
        let mut batch = self.batch.lock().unwrap();
        batch.pass = None;
        let enc = self.encoder(&mut batch);
        enc.clear_buffer(b.raw(), 0, Some(b.class));
        Ok(b)
    }

    /// A buffer holding `data` (written after all work recorded so far).
    pub fn upload(self: &Arc<Self>, op: &'static str, data: &[u8]) -> GpuResult<GpuBuffer> {
        let b = self.alloc(op, data.len() as u64)?;
        self.write(&b, 0, data)?;
        Ok(b)
    }

    /// Overwrites bytes of `b` in stream order. Pending work is submitted first because queue
    /// writes land before the next submit's commands, which may still read the old contents.
    pub fn write(&self, b: &GpuBuffer, offset: u64, data: &[u8]) -> GpuResult<()> {
        if data.is_empty() {
            return Ok(());
        }
        if offset + data.len() as u64 > b.class {
            return Err(GpuError::invalid(
                "write",
                format!(
                    "{} bytes at {offset} overflow a {}-byte buffer",
                    data.len(),
                    b.class
                ),
            ));
        }
        self.flush()?;
        if data.len().is_multiple_of(4) {
            self.queue.write_buffer(b.raw(), offset, data);
        } else {
            let mut padded = data.to_vec();
            padded.resize(data.len().next_multiple_of(4), 0);
            self.queue.write_buffer(b.raw(), offset, &padded);
        }
        Ok(())
    }

    fn encoder<'a>(&self, batch: &'a mut Batch) -> &'a mut wgpu::CommandEncoder {
        batch.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("advseg"),
                })
        })
    }

    fn module(&self, name: &'static str) -> GpuResult<Arc<wgpu::ShaderModule>> {
        if let Some(m) = self.modules.lock().unwrap().get(name) {
            return Ok(m.clone());
        }
        let src = shader_source(name).ok_or_else(|| {
            GpuError::invalid("dispatch", format!("no shader named {name:?} in shaders/"))
        })?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let m = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Backend(format!("shaders/{name}.wgsl: {e}")));
        }
        let m = Arc::new(m);
        self.modules.lock().unwrap().insert(name, m.clone());
        Ok(m)
    }

    fn pipeline(&self, key: &PipeKey) -> GpuResult<Arc<Pipe>> {
        if let Some(p) = self.pipelines.lock().unwrap().get(key) {
            return Ok(p.clone());
        }
        let module = self.module(key.shader)?;
        let src = shader_source(key.shader).unwrap_or_default();
        let used = reflect::used_bindings(key.shader, src, key.entry)
            .map_err(|e| GpuError::invalid("dispatch", e))?;
        if let Some(&b) = used.iter().find(|&&b| b as usize > key.access.len()) {
            return Err(GpuError::invalid(
                "dispatch",
                format!(
                    "{}::{} uses binding {b} but was given {} (bindings 1..)",
                    key.shader,
                    key.entry,
                    key.access.len()
                ),
            ));
        }
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        for (i, a) in key.access.iter().enumerate() {
            let ty = match a {
                Access::Read | Access::ReadWrite => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *a == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                Access::Texture => wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Float { filterable: false },
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
                Access::StoreTexture => wgpu::BindingType::StorageTexture {
                    access: wgpu::StorageTextureAccess::WriteOnly,
                    format: texture::FORMAT,
                    view_dimension: wgpu::TextureViewDimension::D2,
                },
            };
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty,
                count: None,
            });
        }
        entries.retain(|e| used.contains(&e.binding));
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(key.entry),
                entries: &entries,
            });
        let pl = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(key.entry),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let constants: Vec<(&str, f64)> =
            key.constants.iter().map(|(k, v)| (*k, *v as f64)).collect();
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(key.entry),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(key.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: self.disk_cache.as_ref().map(|c| &c.cache),
            });
        if let Some(c) = &self.disk_cache {
            c.mark_dirty();
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Backend(format!(
                "shaders/{}.wgsl entry {}: {e}",
                key.shader, key.entry
            )));
        }
        self.counters.pipelines.fetch_add(1, Relaxed);
        let p = Arc::new(Pipe {
            pipeline,
            layout,
            used,
        });
        self.pipelines
            .lock()
            .unwrap()
            .insert(key.clone(), p.clone());
        Ok(p)
    }

    /// Workgroup grid covering `n` invocations of `wg`-wide groups, folded into y when x would
    /// exceed the per-dimension limit. Shaders index as `(wid.y * nwg.x + wid.x) * WG + lid.x`.
    pub fn grid_1d(&self, n: u64, wg: u32) -> [u32; 3] {
        let groups = n.div_ceil(wg as u64).max(1);
        let maxd = self.limits.max_compute_workgroups_per_dimension as u64;
        if groups <= maxd {
            [groups as u32, 1, 1]
        } else {
            [maxd as u32, groups.div_ceil(maxd) as u32, 1]
        }
    }

    /// Records one kernel dispatch. `params` is bound as the uniform at binding 0 and must
    /// mirror the shader's `Params` struct; `binds` are bindings 1.. in order.
    pub fn dispatch<P: bytemuck::Pod>(
        &self,
        shader: &'static str,
        entry: &'static str,
        constants: &[(&'static str, u32)],
        params: &P,
        binds: &[Bind<'_>],
        groups: [u32; 3],
    ) -> GpuResult<()> {
        let maxd = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > maxd) {
            return Err(GpuError::invalid(
                "dispatch",
                format!(
                    "{shader}::{entry}: grid {groups:?} exceeds {maxd} workgroups per dimension"
                ),
            ));
        }
        if groups.contains(&0) {
            return Ok(());
        }
        if let Some(prof) = &self.profile {
            // Profiling: wait for everything before, then time this dispatch alone.
            self.sync()?;
            let t = std::time::Instant::now();
            self.record(shader, entry, constants, params, binds, groups)?;
            self.sync()?;
            let name = format!("{shader}::{entry}");
            let mut m = prof.lock().unwrap();
            let e = m.entry(name).or_default();
            e.0 += 1;
            e.1 += t.elapsed().as_secs_f64();
            return Ok(());
        }
        self.record(shader, entry, constants, params, binds, groups)
    }

    /// Per-kernel (calls, seconds) since the start or the last call, slowest first, when
    /// `ADVSEG_PROFILE` is set.
    pub fn take_profile(&self) -> Option<Vec<(String, u64, f64)>> {
        let prof = self.profile.as_ref()?;
        let mut v: Vec<_> = std::mem::take(&mut *prof.lock().unwrap())
            .into_iter()
            .map(|(k, (n, s))| (k, n, s))
            .collect();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        Some(v)
    }

    fn record<P: bytemuck::Pod>(
        &self,
        shader: &'static str,
        entry: &'static str,
        constants: &[(&'static str, u32)],
        params: &P,
        binds: &[Bind<'_>],
        groups: [u32; 3],
    ) -> GpuResult<()> {
        let key = PipeKey {
            shader,
            entry,
            constants: constants.to_vec(),
            access: binds.iter().map(|b| b.1).collect(),
        };
        let pipe = self.pipeline(&key)?;
        let pbytes = bytemuck::bytes_of(params);
        let slot = (pbytes.len().max(16) as u64).next_multiple_of(self.ubo_align);
        let mut batch = self.batch.lock().unwrap();
        if batch.ring.len() as u64 + slot > RING_BYTES {
            self.submit(&mut batch)?;
        }
        let offset = batch.ring.len() as u64;
        batch.ring.extend_from_slice(pbytes);
        batch.ring.resize((offset + slot) as usize, 0);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.ring,
                offset,
                size: std::num::NonZeroU64::new(slot),
            }),
        }];
        if !pipe.used.contains(&0) {
            entries.clear();
        }
        for (i, b) in binds.iter().enumerate() {
            if !pipe.used.contains(&(i as u32 + 1)) {
                continue;
            }
            let size = match b.0 {
                Res::Buffer(buf) => buf.size(),
                Res::Range(_, _, size) => size,
                Res::View(_) => 0,
            };
            if size > self.binding_limit {
                return Err(GpuError::BindingTooLarge {
                    kernel: format!("{shader}::{entry}"),
                    what: format!("binding {}", i + 1),
                    bytes: size,
                    limit: self.binding_limit,
                    why: String::new(),
                });
            }
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: match b.0 {
                    Res::Buffer(buf) => buf.as_entire_binding(),
                    Res::Range(buf, offset, size) => {
                        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: buf,
                            offset,
                            size: std::num::NonZeroU64::new(size),
                        })
                    }
                    Res::View(v) => wgpu::BindingResource::TextureView(v),
                },
            });
        }
        let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(entry),
            layout: &pipe.layout,
            entries: &entries,
        });
        if batch.pass.is_none() {
            let enc = self.encoder(&mut batch);
            let pass = enc
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("advseg"),
                    timestamp_writes: None,
                })
                .forget_lifetime();
            batch.pass = Some(pass);
        }
        let pass = batch.pass.as_mut().expect("open pass");
        pass.set_pipeline(&pipe.pipeline);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        batch.dispatches += 1;
        self.counters.dispatches.fetch_add(1, Relaxed);
        if batch.dispatches >= DISPATCHES_PER_SUBMIT {
            self.submit(&mut batch)?;
        }
        Ok(())
    }

    fn submit(&self, batch: &mut Batch) -> GpuResult<()> {
        if let Some(c) = &self.disk_cache {
            // Pipelines compiled since the last submit are kept for later processes.
            c.save_if_dirty();
        }
        batch.pass = None;
        if let Some(enc) = batch.encoder.take() {
            if !batch.ring.is_empty() {
                self.queue.write_buffer(&self.ring, 0, &batch.ring);
            }
            self.queue.submit([enc.finish()]);
            self.counters.submits.fetch_add(1, Relaxed);
        }
        batch.ring.clear();
        batch.dispatches = 0;
        self.take_errors()
    }

    /// Submits all recorded work (does not wait for it).
    pub fn flush(&self) -> GpuResult<()> {
        let mut batch = self.batch.lock().unwrap();
        self.submit(&mut batch)
    }

    /// Waits until the GPU has finished all submitted work.
    pub fn sync(&self) -> GpuResult<()> {
        self.flush()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Backend(e.to_string()))?;
        self.take_errors()
    }

    /// Waits (bounded) for submitted work without submitting more, ignoring errors: after a
    /// failure this lets wgpu run its pending callbacks, so the device-lost report can come
    /// before the caller's own error. A destroyed device reports itself lost only from a poll
    /// that finds its queue empty, so a single non-blocking poll could miss it.
    pub fn settle(&self) {
        let _ = self.device.poll(wgpu::PollType::Wait {
            submission_index: None,
            timeout: Some(std::time::Duration::from_secs(5)),
        });
        let _ = self.device.poll(wgpu::PollType::Poll);
    }

    /// Copies `len` bytes at `offset` of `b` back to the host (submits and waits). Large reads
    /// go through the staging buffer in pieces, so it stays within `max_buffer_size`.
    pub fn read(&self, b: &GpuBuffer, offset: u64, len: u64) -> GpuResult<Vec<u8>> {
        const PIECE: u64 = 64 << 20;
        if len <= PIECE {
            return self.read_piece(b, offset, len);
        }
        let mut out = Vec::with_capacity(len as usize);
        let mut at = 0;
        while at < len {
            let n = PIECE.min(len - at);
            out.extend_from_slice(&self.read_piece(b, offset + at, n)?);
            at += n;
        }
        Ok(out)
    }

    fn read_piece(&self, b: &GpuBuffer, offset: u64, len: u64) -> GpuResult<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let padded = len.next_multiple_of(4);
        let mut rb = self.readback.lock().unwrap();
        if rb.as_ref().is_none_or(|(s, _)| *s < padded) {
            let size = padded.next_power_of_two().max(4096);
            self.counters.buffers_allocated.fetch_add(1, Relaxed);
            self.counters.bytes_allocated.fetch_add(size, Relaxed);
            *rb = Some((
                size,
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
            ));
        }
        let staging = &rb.as_ref().expect("readback buffer").1;
        {
            let mut batch = self.batch.lock().unwrap();
            batch.pass = None;
            let enc = self.encoder(&mut batch);
            enc.copy_buffer_to_buffer(b.raw(), offset, staging, 0, padded);
            self.submit(&mut batch)?;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, 0..padded, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Backend(e.to_string()))?;
        rx.recv()
            .map_err(|e| GpuError::Backend(e.to_string()))?
            .map_err(|e| GpuError::Backend(format!("mapping readback buffer: {e}")))?;
        let out = {
            let view = staging
                .get_mapped_range(0..padded)
                .map_err(|e| GpuError::Backend(e.to_string()))?;
            view[..len as usize].to_vec()
        };
        staging.unmap();
        self.counters.readbacks.fetch_add(1, Relaxed);
        self.take_errors()?;
        Ok(out)
    }

    /// Records a buffer-to-buffer copy in stream order.
    pub fn copy(&self, src: &GpuBuffer, src_off: u64, dst: &GpuBuffer, dst_off: u64, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut batch = self.batch.lock().unwrap();
        batch.pass = None;
        let enc = self.encoder(&mut batch);
        enc.copy_buffer_to_buffer(src.raw(), src_off, dst.raw(), dst_off, bytes);
    }
}

/// A pooled storage buffer; returns to the pool when dropped.
pub struct GpuBuffer {
    buf: Option<wgpu::Buffer>,
    class: u64,
    bytes: u64,
    gpu: Arc<Gpu>,
}

impl GpuBuffer {
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buf.as_ref().expect("live buffer")
    }
    /// Bytes requested (the buffer itself may be larger).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.gpu.counters.sub_live(self.class);
            self.gpu.pool.lock().unwrap().give(self.class, b);
        }
    }
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer({} bytes)", self.bytes)
    }
}
