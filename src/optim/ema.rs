//! An exponential moving average of a network's tensors (the "model EMA" of timm and of
//! TensorFlow's `ExponentialMovingAverage`), kept on the GPU beside the live weights and swapped
//! in for evaluation. Shader: `ema_update` in `shaders/optim.wgsl`.
//!
//! Why: a run's evaluations swing by 1–2 mIoU from one to the next at a high learning rate
//! (docs/NOTES.md, session 13), and averaging the recent weights damps that noise. Every tensor
//! is averaged, BN running statistics included (as timm does), so the averaged network is
//! evaluated with statistics that drifted with it.

use super::{Params, SHADER};
use crate::error::{Error, Result};
use crate::gpu::{r_elems as r, w_elems as w};
use crate::tensor::{DType, Tensor};

/// The decay used after `step` completed updates: `min(decay, (1 + step) / (10 + step))`,
/// TensorFlow's warm-up, so the average does not hold on to the initial network for
/// thousands of steps; it averages over about the last 1/9 of the run until `decay` caps it.
pub fn decay_at(decay: f32, step: usize) -> f32 {
    let s = step as f64;
    (decay as f64).min((1.0 + s) / (10.0 + s)) as f32
}

/// Averaged copies of a list of f32 tensors.
pub struct WeightEma {
    decay: f32,
    avg: Vec<Tensor>,
    /// Holds one side of a swap; as large as `avg`, allocated once.
    spare: Vec<Tensor>,
    swapped: bool,
}

impl WeightEma {
    /// Starts the average at the tensors' current values.
    pub fn new(live: &[Tensor], decay: f32) -> Result<Self> {
        if !(0.0..1.0).contains(&decay) {
            return Err(Error::invalid(
                "ema",
                format!("decay {decay} is not in [0, 1)"),
            ));
        }
        let mut avg = Vec::with_capacity(live.len());
        let mut spare = Vec::with_capacity(live.len());
        for (i, t) in live.iter().enumerate() {
            if t.dtype() != DType::F32 {
                return Err(Error::invalid(
                    "ema",
                    format!("tensor {i} ({t:?}) is not f32"),
                ));
            }
            let a = Tensor::empty(t.gpu(), "ema", t.shape(), DType::F32)?;
            copy(t, &a);
            avg.push(a);
            spare.push(Tensor::empty(t.gpu(), "ema", t.shape(), DType::F32)?);
        }
        Ok(WeightEma {
            decay,
            avg,
            spare,
            swapped: false,
        })
    }

    pub fn decay(&self) -> f32 {
        self.decay
    }

    /// The averaged tensors, in the order given to [`WeightEma::new`].
    pub fn averages(&self) -> &[Tensor] {
        &self.avg
    }

    /// Replaces the averages with `values` (a checkpoint's), shape-checked.
    pub fn load(&mut self, values: &[(Vec<f32>, Vec<usize>)]) -> Result<()> {
        self.check("stored", values.iter().map(|v| v.1.as_slice()))?;
        // All checked before any is replaced: a refused load leaves the average whole.
        for (i, ((data, shape), a)) in values.iter().zip(&self.avg).enumerate() {
            if data.len() != a.numel() {
                return Err(Error::invalid(
                    "ema",
                    format!(
                        "stored tensor {i} holds {} values for shape {shape:?}",
                        data.len()
                    ),
                ));
            }
        }
        for ((data, shape), a) in values.iter().zip(&mut self.avg) {
            *a = Tensor::from_f32(a.gpu(), data, shape)?;
        }
        Ok(())
    }

    /// Folds the live tensors into the average after `step` completed updates
    /// ([`decay_at`]).
    pub fn update(&mut self, live: &[Tensor], step: usize) -> Result<()> {
        self.check("live", live.iter().map(Tensor::shape))?;
        if self.swapped {
            return Err(Error::invalid(
                "ema",
                "update while the average is swapped in",
            ));
        }
        let d = decay_at(self.decay, step);
        for (t, a) in live.iter().zip(&self.avg) {
            let gpu = t.gpu();
            // A tensor larger than one storage binding is averaged piece by piece.
            for c in gpu.chunks(t.numel(), 4) {
                let params = Params {
                    n: c.len() as u32,
                    momentum: d,
                    ..Default::default()
                };
                gpu.dispatch(
                    SHADER,
                    "ema_update",
                    &[],
                    &params,
                    &[w(a.buffer(), &c, 4), r(t.buffer(), &c, 4)],
                    gpu.grid_1d(c.len() as u64, 256),
                )?;
            }
        }
        Ok(())
    }

    /// Exchanges the contents of the live tensors and the averages (GPU copies, nothing read
    /// back). Called twice, it restores both.
    pub fn swap(&mut self, live: &[Tensor]) -> Result<()> {
        self.check("live", live.iter().map(Tensor::shape))?;
        for ((t, a), s) in live.iter().zip(&mut self.avg).zip(&mut self.spare) {
            copy(t, s);
            copy(a, t);
            std::mem::swap(a, s);
        }
        self.swapped = !self.swapped;
        Ok(())
    }

    /// `what` tensors (live or stored) of the averages' count and shapes.
    fn check<'a>(
        &self,
        what: &str,
        shapes: impl ExactSizeIterator<Item = &'a [usize]>,
    ) -> Result<()> {
        if shapes.len() != self.avg.len() {
            return Err(Error::invalid(
                "ema",
                format!(
                    "{} {what} tensors for {} averaged ones",
                    shapes.len(),
                    self.avg.len()
                ),
            ));
        }
        for (i, (s, a)) in shapes.zip(&self.avg).enumerate() {
            if s != a.shape() {
                return Err(Error::shape(
                    "ema",
                    a.shape(),
                    s,
                    format!("{what} tensor {i} does not match its average"),
                ));
            }
        }
        Ok(())
    }
}

fn copy(src: &Tensor, dst: &Tensor) {
    src.gpu()
        .copy(src.buffer(), 0, dst.buffer(), 0, (src.numel() * 4) as u64);
}
