//! Recording kernels: shader modules and the pipeline cache, the one open compute pass that
//! many dispatches share, the uniform ring of per-dispatch params, submits and waits.

use super::*;

impl Gpu {
    pub(super) fn encoder<'a>(&self, batch: &'a mut Batch) -> &'a mut wgpu::CommandEncoder {
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
        let m = Arc::new(self.module_from(name, src, &format!("shaders/{name}.wgsl"))?);
        self.modules.lock().unwrap().insert(name, m.clone());
        Ok(m)
    }

    fn module_from(&self, label: &str, src: &str, what: &str) -> GpuResult<wgpu::ShaderModule> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let m = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Backend(format!("{what}: {e}")));
        }
        Ok(m)
    }

    /// An entry point over the storage-buffer limit with `k` of its read-only inputs merged
    /// into one binding (`merge.rs`): its module and the bindings it then uses.
    fn merged_module(
        &self,
        key: &PipeKey,
        used: &[u32],
        k: usize,
    ) -> Result<(wgpu::ShaderModule, Vec<u32>, merge::Merge), String> {
        let src = shader_source(key.shader).unwrap_or_default();
        let reads: Vec<u32> = used
            .iter()
            .copied()
            .filter(|&b| b > 0 && key.access[b as usize - 1] == Access::Read)
            .collect();
        let merged = merge::merge(src, &reads, k)?;
        let what = format!(
            "shaders/{}.wgsl entry {} (inputs merged)",
            key.shader, key.entry
        );
        let mut uses = reflect::analyse(&merged.source).map_err(|e| format!("{what}: {e}"))?;
        let used = uses
            .remove(key.entry)
            .ok_or_else(|| format!("{what}: entry point lost"))?;
        let module = self
            .module_from(key.entry, &merged.source, &what)
            .map_err(|e| e.to_string())?;
        Ok((module, used, merged.merge))
    }

    fn pipeline(&self, key: &PipeKey) -> GpuResult<Arc<Pipe>> {
        if let Some(p) = self.pipelines.lock().unwrap().get(key) {
            return Ok(p.clone());
        }
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
        let storage = used
            .iter()
            .filter(|&&b| {
                b > 0 && matches!(key.access[b as usize - 1], Access::Read | Access::ReadWrite)
            })
            .count() as u32;
        let (module, used, merge) = if storage > self.storage_limit {
            // Fallback: merge enough read-only inputs into one binding to fit, or refuse.
            let k = (storage - self.storage_limit + 1) as usize;
            let (module, used, merge) =
                self.merged_module(key, &used, k)
                    .map_err(|_| GpuError::TooManyStorageBuffers {
                        kernel: format!("{}::{}", key.shader, key.entry),
                        used: storage,
                        limit: self.storage_limit,
                    })?;
            (Arc::new(module), used, Some(merge))
        } else {
            (self.module(key.shader)?, used, None)
        };
        let mut entries = vec![uniform_entry(0)];
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
        if merge.is_some() {
            entries.push(uniform_entry(merge::MOFF_BINDING));
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
            merge,
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
        let mslot = match pipe.merge {
            Some(_) => merge::MOFF_BYTES.next_multiple_of(self.ubo_align),
            None => 0,
        };
        let mut batch = self.batch.lock().unwrap();
        if batch.ring.len() as u64 + slot + mslot > RING_BYTES {
            self.submit(&mut batch)?;
        }
        let offset = batch.ring.len() as u64;
        batch.ring.extend_from_slice(pbytes);
        batch.ring.resize((offset + slot) as usize, 0);
        // Merged inputs: copied into one temporary buffer, their offsets into the ring.
        let merged = match &pipe.merge {
            Some(m) => Some(self.merge_inputs(&mut batch, m, binds, mslot, shader, entry)?),
            None => None,
        };
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
        if let (Some(m), Some((_, temp, moff))) = (&pipe.merge, &merged) {
            entries.push(wgpu::BindGroupEntry {
                binding: m.binding,
                resource: temp.as_entire_binding(),
            });
            entries.push(wgpu::BindGroupEntry {
                binding: merge::MOFF_BINDING,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.ring,
                    offset: *moff,
                    size: std::num::NonZeroU64::new(merge::MOFF_BYTES),
                }),
            });
        }
        let is_merged = |b: u32| {
            pipe.merge
                .as_ref()
                .is_some_and(|m| m.inputs.iter().any(|i| i.0 == b))
        };
        for (i, b) in binds.iter().enumerate() {
            if !pipe.used.contains(&(i as u32 + 1)) || is_merged(i as u32 + 1) {
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
        if let Some((class, temp, _)) = merged {
            // Recorded: later work may reuse it in stream order, as with any dropped tensor.
            self.pool.lock().unwrap().give(class, temp);
        }
        if batch.dispatches >= DISPATCHES_PER_SUBMIT {
            self.submit(&mut batch)?;
        }
        Ok(())
    }

    /// Copies the bound ranges of a merged pipeline's inputs into one pooled temporary buffer
    /// (ending the open pass) and appends their word offsets and element counts to the ring.
    /// Returns the temporary's size class, the buffer and the ring offset of `_moff`.
    fn merge_inputs(
        &self,
        batch: &mut Batch,
        m: &merge::Merge,
        binds: &[Bind<'_>],
        mslot: u64,
        shader: &'static str,
        entry: &'static str,
    ) -> GpuResult<(u64, wgpu::Buffer, u64)> {
        let mut moff = [0u32; (merge::MOFF_BYTES / 4) as usize];
        let mut copies = Vec::with_capacity(m.inputs.len());
        let mut total = 0u64;
        for (j, &(b, words)) in m.inputs.iter().enumerate() {
            let (buf, off, size) = match binds[b as usize - 1].0 {
                Res::Buffer(buf) => (buf, 0, buf.size()),
                Res::Range(buf, off, size) => (buf, off, size),
                Res::View(_) => {
                    return Err(GpuError::invalid(
                        "dispatch",
                        format!("{shader}::{entry}: binding {b} is a buffer, given a texture"),
                    ))
                }
            };
            let size = size / 4 * 4;
            moff[2 * j] = (total / 4) as u32;
            moff[2 * j + 1] = (size / (4 * words as u64)) as u32;
            copies.push((buf, off, size, total));
            total += size;
        }
        if total > self.binding_limit {
            return Err(GpuError::BindingTooLarge {
                kernel: format!("{shader}::{entry}"),
                what: format!("its merged read-only inputs (bindings {:?})", m.inputs),
                bytes: total,
                limit: self.binding_limit,
                why: "; they are merged because the adapter allows few storage buffers".into(),
            });
        }
        let (class, temp) = self.alloc_raw("merged inputs", total.max(4))?;
        batch.pass = None;
        let enc = self.encoder(batch);
        for (buf, off, size, at) in copies {
            if size > 0 {
                enc.copy_buffer_to_buffer(buf, off, &temp, at, size);
            }
        }
        let at = batch.ring.len() as u64;
        batch.ring.extend_from_slice(bytemuck::cast_slice(&moff));
        batch.ring.resize((at + mslot) as usize, 0);
        Ok((class, temp, at))
    }

    pub(super) fn submit(&self, batch: &mut Batch) -> GpuResult<()> {
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
}

/// A compute-stage uniform buffer at `binding`: the per-dispatch params (0) and the merge
/// fallback's offsets.
fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}
