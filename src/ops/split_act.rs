//! Inference on activations larger than one storage binding (a 4000×3000 image is 144 MB at
//! the input of a network; lavapipe binds at most 128 MiB). NCHW channel groups and pixel bands
//! are gathered into binding-sized tensors by buffer copies, the ordinary kernels run on them,
//! and the results are copied into the full-size output, which no kernel binds whole.
//!
//! - per-pixel ops across channels (softmax over channels): pixel bands, exact;
//! - conv2d: output-channel groups × input-channel groups, the groups' partial outputs summed
//!   (reassociated against the unsplit GEMM: tests/it/large.rs states the tolerance).
//!
//! These paths record no backward: with gradients, the ops take `split_grad`'s batch chunks
//! or channel groups instead (which need one image, or one channel, to fit).

use super::conv::{forward_into, ConvGeom, GemmConfig};
use super::elementwise::add;
use super::split_grad::{put, take};
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};
use std::ops::Range;

fn limit_err(op: &'static str, shape: &[usize], what: &str, bytes: usize, limit: u64) -> Error {
    crate::gpu::GpuError::BindingTooLarge {
        kernel: op.to_string(),
        what: format!("{what} of {shape:?}"),
        bytes: bytes as u64,
        limit,
        why: String::new(),
    }
    .into()
}

/// Channel groups of `c` channels whose `per_channel` bytes each fit one binding.
fn channel_groups(
    op: &'static str,
    x: &Tensor,
    c: usize,
    per_channel: usize,
) -> Result<Vec<Range<usize>>> {
    super::split_grad::groups(op, x, c, per_channel, || {
        format!("one channel of {:?}", x.shape())
    })
}

/// A per-pixel op across channels `f` (shape-preserving, e.g. softmax over channels) on `x`
/// [N, C, H, W], by bands of pixels gathered as [N, C, 1, band].
pub fn by_pixels(
    op: &'static str,
    x: &Tensor,
    f: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let s = x.shape().to_vec();
    let (nc, hw) = (s[0] * s[1], s[2] * s[3]);
    let limit = x.gpu().binding_limit() as usize;
    // Bands of whole vec4s, so the vec4 kernels' fast paths see the same layout.
    let band = (limit / (nc * 4)) / 4 * 4;
    if band == 0 {
        return Err(limit_err(
            op,
            &s,
            "one pixel across channels",
            nc * 16,
            limit as u64,
        ));
    }
    let out = Tensor::empty(x.gpu(), op, &s, DType::F32)?;
    let gpu = x.gpu();
    for p0 in (0..hw).step_by(band) {
        let len = band.min(hw - p0);
        let xb = Tensor::empty(gpu, op, &[s[0], s[1], 1, len], DType::F32)?;
        for k in 0..nc {
            gpu.copy(
                x.buffer(),
                ((k * hw + p0) * 4) as u64,
                xb.buffer(),
                (k * len * 4) as u64,
                (len * 4) as u64,
            );
        }
        let yb = f(&xb)?;
        for k in 0..nc {
            gpu.copy(
                yb.buffer(),
                (k * len * 4) as u64,
                out.buffer(),
                ((k * hw + p0) * 4) as u64,
                (len * 4) as u64,
            );
        }
    }
    Ok(out)
}

/// Weight block `[os, cs, KH, KW]` of `wt` [Co, Ci, KH, KW]: one copy per output channel (the
/// block is gathered directly, so no kernel ever binds more of the weight than one block).
fn weight_block(wt: &Tensor, os: &Range<usize>, cs: &Range<usize>) -> Result<Tensor> {
    let s = wt.shape();
    let taps = s[2] * s[3];
    let out = Tensor::empty(
        wt.gpu(),
        "conv2d",
        &[os.len(), cs.len(), s[2], s[3]],
        DType::F32,
    )?;
    let run = cs.len() * taps * 4;
    for (j, o) in os.clone().enumerate() {
        wt.gpu().copy(
            wt.buffer(),
            ((o * s[1] + cs.start) * taps * 4) as u64,
            out.buffer(),
            (j * run) as u64,
            run as u64,
        );
    }
    Ok(out)
}

/// conv2d forward (no autograd) where the input or the output is larger than one binding:
/// output-channel groups, each the sum over input-channel groups of ordinary GEMMs.
pub fn conv(
    x: &Tensor,
    wt: &Tensor,
    bias: Option<&Tensor>,
    g: &ConvGeom,
    cfg: &GemmConfig,
) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let taps = g.kh * g.kw;
    let ins = channel_groups(OP, x, g.ci, g.batch * g.h * g.w * 4)?;
    // An output group's GEMM output and weight block [go, gi, kh, kw] must each fit.
    let per_out = (g.batch * g.oh * g.ow * 4).max(ins[0].len() * taps * 4);
    let outs = channel_groups(OP, x, g.co, per_out)?;
    let xs: Vec<Tensor> = ins.iter().map(|cs| take(x, 1, cs)).collect::<Result<_>>()?;
    let out = Tensor::empty(x.gpu(), OP, &g.out_shape(), DType::F32)?;
    for os in &outs {
        let bo = bias
            .map(|b| super::split_grad::take(b, 0, os))
            .transpose()?;
        let mut acc: Option<Tensor> = None;
        for (k, (cs, xg)) in ins.iter().zip(&xs).enumerate() {
            let wk = weight_block(wt, os, cs)?;
            let gk = ConvGeom {
                ci: cs.len(),
                co: os.len(),
                ..*g
            };
            let b = if k == 0 { bo.as_ref() } else { None };
            let y = forward_into(xg, &wk, b, &gk, &gk.out_shape(), cfg)?;
            acc = Some(match acc {
                None => y,
                Some(a) => add(&a, &y)?,
            });
        }
        put(&acc.expect("one input group at least"), &out, 1, os.start);
    }
    Ok(out)
}
