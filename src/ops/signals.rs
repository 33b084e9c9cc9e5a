//! Confidence histograms of right and wrong labelled pixels on the GPU, accumulated over a
//! split and read back once (the math is `metrics::signals`). Shader: `shaders/signals.wgsl`.

use crate::error::{Error, Result};
use crate::gpu::{r, w, Gpu, GpuBuffer};
use crate::metrics::signals::{ConfidenceHist, GateCounts};
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

/// Mirrors `Params` in signals.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    bins: u32,
    ignore: i32,
    classes: i32,
    t: f32,
    chunk: u32,
    _pad0: u32,
    _pad1: u32,
}
crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "signals", Params { n, bins, ignore, classes, t, chunk, _pad0, _pad1 });

/// The shader's workgroup histogram size.
pub const MAX_BINS: usize = 1024;
/// Pixels one workgroup counts: enough work per workgroup to amortise clearing and adding
/// its 2·bins local counters.
const CHUNK: usize = 1 << 14;

/// A histogram being filled on the GPU.
pub struct ConfHistGpu {
    gpu: Arc<Gpu>,
    buf: GpuBuffer,
    bins: usize,
    gate_t: Option<f32>,
}

impl ConfHistGpu {
    /// `bins` ≤ [`MAX_BINS`]; `gate_t` the threshold of the exact gate counts, if any.
    pub fn new(gpu: &Arc<Gpu>, bins: usize, gate_t: Option<f32>) -> Result<ConfHistGpu> {
        if !(1..=MAX_BINS).contains(&bins) {
            return Err(Error::invalid(
                "conf_hist",
                format!("bins = {bins} must be within 1..={MAX_BINS}"),
            ));
        }
        Ok(ConfHistGpu {
            gpu: gpu.clone(),
            buf: gpu.zeros("conf_hist", ((2 * bins + 2) * 4) as u64)?,
            bins,
            gate_t,
        })
    }

    /// Counts one batch: `conf` F32 with N·H·W elements (e.g. [N, 1, H, W]), `pred` and
    /// `labels` I32 [N, H, W]; labels equal to `ignore` or outside `0..classes` are skipped.
    pub fn add(
        &self,
        conf: &Tensor,
        pred: &Tensor,
        labels: &Tensor,
        ignore: i32,
        classes: usize,
    ) -> Result<()> {
        conf.expect_f32("conf_hist")?;
        for (t, what) in [(pred, "prediction"), (labels, "labels")] {
            if t.dtype() != DType::I32 {
                return Err(Error::invalid("conf_hist", format!("{what} must be I32")));
            }
        }
        let n = labels.numel();
        if conf.numel() != n || pred.numel() != n {
            return Err(Error::shape(
                "conf_hist",
                labels.shape(),
                conf.shape(),
                format!(
                    "confidence ({}) / prediction ({}) / labels ({n}) pixel counts differ",
                    conf.numel(),
                    pred.numel()
                ),
            ));
        }
        if n == 0 {
            return Ok(());
        }
        let groups = n.div_ceil(CHUNK);
        let p = Params {
            n: n as u32,
            bins: self.bins as u32,
            ignore,
            classes: classes as i32,
            // No pixel passes an infinite threshold: the gate counts stay 0.
            t: self.gate_t.unwrap_or(f32::INFINITY),
            chunk: CHUNK as u32,
            _pad0: 0,
            _pad1: 0,
        };
        Ok(self.gpu.dispatch(
            "signals",
            "conf_hist",
            &[],
            &p,
            &[
                r(conf.buffer()),
                r(pred.buffer()),
                r(labels.buffer()),
                w(&self.buf),
            ],
            self.gpu.grid_1d((groups * 256) as u64, 256),
        )?)
    }

    /// Reads the counts back (one transfer of 2·bins + 2 words).
    pub fn read(&self) -> Result<ConfidenceHist> {
        let bytes = self
            .gpu
            .read(&self.buf, 0, ((2 * self.bins + 2) * 4) as u64)?;
        let v: Vec<u64> = bytemuck::cast_slice::<u8, u32>(&bytes)
            .iter()
            .map(|&c| c as u64)
            .collect();
        let b = self.bins;
        Ok(ConfidenceHist {
            correct: v[..b].to_vec(),
            wrong: v[b..2 * b].to_vec(),
            gate: self.gate_t.map(|t| GateCounts {
                t,
                gated: v[2 * b],
                gated_correct: v[2 * b + 1],
            }),
        })
    }
}
