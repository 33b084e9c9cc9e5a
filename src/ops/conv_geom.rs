//! Shapes of one convolution: PyTorch's `Conv2d` arguments, the checked geometry and the GEMM
//! dimensions each pass of it runs (shared by both kernel families and the split paths).

use super::conv::GemmMode;
use crate::error::{Error, Result};

/// Stride, zero padding and dilation per spatial dim `[h, w]` (PyTorch's `Conv2d` arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
        }
    }
}

impl Conv2dParams {
    /// Square stride, padding and dilation.
    pub fn new(stride: usize, padding: usize, dilation: usize) -> Self {
        Conv2dParams {
            stride: [stride; 2],
            padding: [padding; 2],
            dilation: [dilation; 2],
        }
    }
}

/// Shapes of one convolution (linear = 1×1 conv on 1×1 images).
#[derive(Clone, Copy, Debug)]
pub struct ConvGeom {
    pub batch: usize,
    pub ci: usize,
    pub h: usize,
    pub w: usize,
    pub co: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub p: Conv2dParams,
}

impl ConvGeom {
    /// Validates shapes the way PyTorch does and derives the output size.
    pub fn new(x: &[usize], wt: &[usize], p: &Conv2dParams) -> Result<ConvGeom> {
        const OP: &str = "conv2d";
        if x.len() != 4 || wt.len() != 4 {
            return Err(Error::shape(
                OP,
                x,
                wt,
                "input must be [N, Ci, H, W] and weight [Co, Ci, KH, KW]",
            ));
        }
        if x[1] != wt[1] {
            return Err(Error::shape(
                OP,
                x,
                wt,
                format!(
                    "input has {} channels, weight expects {} (groups=1)",
                    x[1], wt[1]
                ),
            ));
        }
        if p.stride.contains(&0) || p.dilation.contains(&0) {
            return Err(Error::invalid(
                OP,
                format!(
                    "stride {:?} and dilation {:?} must be ≥ 1",
                    p.stride, p.dilation
                ),
            ));
        }
        if x.contains(&0) || wt.contains(&0) {
            return Err(Error::shape(OP, x, wt, "empty input or weight"));
        }
        let out = |i: usize, k: usize, d: usize| -> Option<usize> {
            let span = p.dilation[d] * (k - 1) + 1;
            let padded = i + 2 * p.padding[d];
            (padded >= span).then(|| (padded - span) / p.stride[d] + 1)
        };
        let (Some(oh), Some(ow)) = (out(x[2], wt[2], 0), out(x[3], wt[3], 1)) else {
            return Err(Error::shape(
                OP,
                x,
                wt,
                format!("dilated kernel is larger than the padded input ({p:?})"),
            ));
        };
        Ok(ConvGeom {
            batch: x[0],
            ci: x[1],
            h: x[2],
            w: x[3],
            co: wt[0],
            kh: wt[2],
            kw: wt[3],
            oh,
            ow,
            p: *p,
        })
    }

    /// A linear layer [batch, inp] → [batch, out] as a 1×1 convolution on 1×1 images.
    pub fn linear(batch: usize, inp: usize, out: usize) -> ConvGeom {
        ConvGeom {
            batch,
            ci: inp,
            h: 1,
            w: 1,
            co: out,
            kh: 1,
            kw: 1,
            oh: 1,
            ow: 1,
            p: Conv2dParams::default(),
        }
    }

    /// (M, N, K, columns per image of the result) of the GEMM for `mode`.
    pub fn gemm_dims(&self, mode: GemmMode) -> (usize, usize, usize, usize) {
        let khw = self.kh * self.kw;
        match mode {
            GemmMode::Forward => (
                self.co,
                self.batch * self.oh * self.ow,
                self.ci * khw,
                self.oh * self.ow,
            ),
            GemmMode::InputGrad => (
                self.ci,
                self.batch * self.h * self.w,
                self.co * khw,
                self.h * self.w,
            ),
            GemmMode::WeightGrad => {
                let n = self.ci * khw;
                (self.co, n, self.batch * self.oh * self.ow, n)
            }
        }
    }

    /// Multiply-adds ×2 of one GEMM (the same for all three modes).
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.oh * self.ow) as f64
            * (self.co * self.ci * self.kh * self.kw) as f64
    }

    pub fn out_shape(&self) -> [usize; 4] {
        [self.batch, self.co, self.oh, self.ow]
    }

    /// Bytes of one image's input or output, whichever is larger: what must fit one binding
    /// for the conv to run by batch chunks.
    pub fn image_bytes(&self) -> u64 {
        (4 * (self.ci * self.h * self.w).max(self.co * self.oh * self.ow)) as u64
    }
}
