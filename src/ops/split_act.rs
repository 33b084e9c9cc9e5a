//! Inference on activations larger than one storage binding (a 4000×3000 image is 144 MB at
//! the input of a network; lavapipe binds at most 128 MiB). NCHW channel groups and pixel bands
//! are gathered into binding-sized tensors by buffer copies, the ordinary kernels run on them,
//! and the results are copied into the full-size output, which no kernel binds whole.
//!
//! - per-channel ops (batch norm in eval mode, resizes): channel groups, exact;
//! - per-pixel ops across channels (softmax over channels): pixel bands, exact;
//! - conv2d: output-channel groups × input-channel groups, the groups' partial outputs summed
//!   (reassociated against the unsplit GEMM: tests/it/large.rs states the tolerance).
//!
//! These paths record no backward: with gradients on they refuse, naming the op and shape.

use super::conv::{forward_into, ConvGeom, GemmConfig};
use super::elementwise::add;
use crate::autograd::is_grad_enabled;
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};
use std::ops::Range;

/// Whether a tensor of `shape` (f32) is larger than one binding of `x`'s context.
pub fn over(x: &Tensor, shape: &[usize]) -> bool {
    (shape.iter().product::<usize>() * 4) as u64 > x.gpu().binding_limit()
}

/// Refuses when a gradient would be needed: the split paths are forward-only.
pub fn inference_only(op: &'static str, inputs: &[&Tensor]) -> Result<()> {
    if is_grad_enabled() && inputs.iter().any(|t| t.requires_grad()) {
        let x = inputs[0];
        return Err(crate::gpu::GpuError::BindingTooLarge {
            kernel: op.to_string(),
            what: format!("input {:?}", x.shape()),
            bytes: (x.numel() * 4) as u64,
            limit: x.gpu().binding_limit(),
            why: " with gradients (its split path is for inference only)".into(),
        }
        .into());
    }
    Ok(())
}

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

/// Channels `cs` of every image of `x` [N, C, ...] as a new tensor (one copy per image).
fn gather_channels(x: &Tensor, cs: &Range<usize>) -> Result<Tensor> {
    let s = x.shape();
    let plane: usize = s[2..].iter().product();
    let mut shape = s.to_vec();
    shape[1] = cs.len();
    let out = Tensor::empty(x.gpu(), "split_channels", &shape, DType::F32)?;
    for n in 0..s[0] {
        x.gpu().copy(
            x.buffer(),
            ((n * s[1] + cs.start) * plane * 4) as u64,
            out.buffer(),
            (n * cs.len() * plane * 4) as u64,
            (cs.len() * plane * 4) as u64,
        );
    }
    Ok(out)
}

/// Elements `cs` of a per-channel vector [C] (weights, running statistics of a group).
pub fn channels_of(t: &Tensor, cs: &Range<usize>) -> Result<Tensor> {
    gather_channels(&t.reshape(&[1, t.numel()])?, cs)?.reshape(&[cs.len()])
}

/// Writes `part` [N, len, ...] into channels `start..` of `out` [N, C, ...].
fn scatter_channels(part: &Tensor, out: &Tensor, start: usize) {
    let (s, c) = (part.shape(), out.shape()[1]);
    let plane: usize = s[2..].iter().product();
    for n in 0..s[0] {
        out.gpu().copy(
            part.buffer(),
            (n * s[1] * plane * 4) as u64,
            out.buffer(),
            ((n * c + start) * plane * 4) as u64,
            (s[1] * plane * 4) as u64,
        );
    }
}

/// Channel groups of `c` channels whose `per_channel` bytes each fit one binding.
fn channel_groups(
    op: &'static str,
    x: &Tensor,
    c: usize,
    per_channel: usize,
) -> Result<Vec<Range<usize>>> {
    let limit = x.gpu().binding_limit();
    let g = (limit as usize / per_channel.max(1)).min(c);
    if g == 0 {
        return Err(limit_err(op, x.shape(), "one channel", per_channel, limit));
    }
    Ok((0..c).step_by(g).map(|s| s..(s + g).min(c)).collect())
}

/// A per-channel op `f` (channels in = channels out; it gets its group's channel range) on
/// `x` [N, C, H, W] with output planes of `out_hw`, by channel groups.
pub fn by_channels(
    op: &'static str,
    x: &Tensor,
    out_hw: [usize; 2],
    f: impl Fn(&Tensor, &Range<usize>) -> Result<Tensor>,
) -> Result<Tensor> {
    let s = x.shape();
    let per = s[0] * 4 * (s[2] * s[3]).max(out_hw[0] * out_hw[1]);
    let out = Tensor::empty(x.gpu(), op, &[s[0], s[1], out_hw[0], out_hw[1]], DType::F32)?;
    for cs in channel_groups(op, x, s[1], per)? {
        let y = f(&gather_channels(x, &cs)?, &cs)?;
        scatter_channels(&y, &out, cs.start);
    }
    Ok(out)
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
    let xs: Vec<Tensor> = ins
        .iter()
        .map(|cs| gather_channels(x, cs))
        .collect::<Result<_>>()?;
    let out = Tensor::empty(x.gpu(), OP, &g.out_shape(), DType::F32)?;
    for os in &outs {
        let bo = bias.map(|b| channels_of(b, os)).transpose()?;
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
        scatter_channels(&acc.expect("one input group at least"), &out, os.start);
    }
    Ok(out)
}
