//! Pooled storage buffers: allocation within the device's size limits, host writes,
//! read-backs (in pieces under `max_buffer_size`), copies; [`GpuBuffer`] returns to the pool
//! when dropped.

use super::*;

impl Gpu {
    /// A storage buffer of at least `bytes` bytes from the pool; contents are undefined.
    /// Buffers may exceed [`Gpu::binding_limit`] (up to the device's `max_buffer_size`): such
    /// a tensor can only be bound in ranges, and a kernel binding it whole is refused.
    pub fn alloc(self: &Arc<Self>, op: &'static str, bytes: u64) -> GpuResult<GpuBuffer> {
        let (class, buf) = self.alloc_raw(op, bytes)?;
        self.counters.add_live(class);
        Ok(GpuBuffer {
            buf: Some(buf),
            class,
            bytes,
            gpu: self.clone(),
        })
    }

    /// A pooled buffer and its size class, for [`Gpu::alloc`] and temporaries that go back to
    /// the pool by hand (`Pool::give`) once recorded.
    pub(super) fn alloc_raw(&self, op: &'static str, bytes: u64) -> GpuResult<(u64, wgpu::Buffer)> {
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
        Ok((class, buf))
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
