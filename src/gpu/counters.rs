//! Engine counters read by tests and benchmarks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct Counters {
    pub buffers_allocated: AtomicU64,
    pub bytes_allocated: AtomicU64,
    pub bytes_live: AtomicU64,
    pub bytes_peak: AtomicU64,
    pub dispatches: AtomicU64,
    pub submits: AtomicU64,
    pub readbacks: AtomicU64,
    pub pipelines: AtomicU64,
    pub flops: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CounterSnapshot {
    /// Buffers created on the device (pool misses), ever.
    pub buffers_allocated: u64,
    /// Bytes of all buffers created, ever.
    pub bytes_allocated: u64,
    /// Bytes held by live tensors now.
    pub bytes_live: u64,
    /// Most bytes held by live tensors at once.
    pub bytes_peak: u64,
    pub dispatches: u64,
    pub submits: u64,
    pub readbacks: u64,
    /// Compute pipelines compiled (pipeline-cache misses).
    pub pipelines: u64,
    /// Floating-point operations recorded by the GEMM-shaped ops (conv2d, linear: 2 per
    /// multiply-add, each of forward, input and weight gradient).
    pub flops: u64,
}

impl Counters {
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            buffers_allocated: self.buffers_allocated.load(Relaxed),
            bytes_allocated: self.bytes_allocated.load(Relaxed),
            bytes_live: self.bytes_live.load(Relaxed),
            bytes_peak: self.bytes_peak.load(Relaxed),
            dispatches: self.dispatches.load(Relaxed),
            submits: self.submits.load(Relaxed),
            readbacks: self.readbacks.load(Relaxed),
            pipelines: self.pipelines.load(Relaxed),
            flops: self.flops.load(Relaxed),
        }
    }
    pub(crate) fn add_live(&self, b: u64) {
        let now = self.bytes_live.fetch_add(b, Relaxed) + b;
        self.bytes_peak.fetch_max(now, Relaxed);
    }
    pub(crate) fn sub_live(&self, b: u64) {
        self.bytes_live.fetch_sub(b, Relaxed);
    }
    pub(crate) fn reset_peak(&self) {
        self.bytes_peak
            .store(self.bytes_live.load(Relaxed), Relaxed);
    }
}

impl CounterSnapshot {
    /// Counter deltas `self - earlier` (live/peak are taken as they are now).
    pub fn since(&self, earlier: &CounterSnapshot) -> CounterSnapshot {
        CounterSnapshot {
            buffers_allocated: self.buffers_allocated - earlier.buffers_allocated,
            bytes_allocated: self.bytes_allocated - earlier.bytes_allocated,
            bytes_live: self.bytes_live,
            bytes_peak: self.bytes_peak,
            dispatches: self.dispatches - earlier.dispatches,
            submits: self.submits - earlier.submits,
            readbacks: self.readbacks - earlier.readbacks,
            pipelines: self.pipelines - earlier.pipelines,
            flops: self.flops - earlier.flops,
        }
    }
}
