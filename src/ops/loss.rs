//! Losses as fused kernels: cross-entropy over channels with ignore index and optional pixel
//! weights, BCE with logits with optional mask, multilabel soft margin. Shader:
//! `shaders/loss.wgsl`.
//!
//! Each loss writes per-element terms and counts, sums them with the deterministic tree
//! reduction of `ops::reduce`, and divides on the GPU, so computing a loss reads nothing back.
//! Losses are 0-d tensors (shape [], one element) as in PyTorch. When nothing is counted (every pixel ignored, an all-zero mask) the
//! loss is 0 with a zero gradient, where PyTorch gives NaN.

use super::cases::{CaseArgs, Cases, Outputs};
use super::reduce::sum_dims;
use super::softmax::nc_inner;
use super::split_grad::{groups, over, run, take, Cut, Join};
use crate::autograd::no_grad;
use crate::error::{Error, Result};
use crate::gpu::{r, w, Gpu};
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

const SHADER: &str = "loss";

/// Mirrors `Params` in loss.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    c: u32,
    inner: u32,
    ignore: i32,
    has_w: u32,
    _pad: [u32; 3],
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "loss", Params { n, c, inner, ignore, has_w, _pad });

fn params(n: usize, c: usize, inner: usize, ignore: i32, has_w: bool) -> Params {
    Params {
        n: n as u32,
        c: c as u32,
        inner: inner as u32,
        ignore,
        has_w: has_w as u32,
        _pad: [0; 3],
    }
}

/// Sums the two rows [terms | counts] of `stats` and divides them on the GPU.
/// Returns (loss [], sums [2, 1]).
/// With `count` (a [1] tensor), that count replaces the stats' own as divisor, forward and
/// backward: how a piece of a split loss divides by the whole loss's count.
fn finish(
    gpu: &Arc<Gpu>,
    op: &'static str,
    stats: &Tensor,
    count: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    let sums = sum_dims(stats, &[1])?;
    if let Some(c) = count {
        gpu.copy(c.buffer(), 0, sums.buffer(), 4, 4);
    }
    let loss = Tensor::empty(gpu, op, &[], DType::F32)?;
    gpu.dispatch(
        SHADER,
        "ratio",
        &[],
        &params(1, 0, 0, 0, false),
        &[
            gpu.unused(),
            gpu.unused(),
            gpu.unused(),
            gpu.unused(),
            r(sums.buffer()),
            gpu.unused(),
            w(loss.buffer()),
        ],
        [1, 1, 1],
    )?;
    Ok((loss, sums))
}

/// Cross-entropy of `logits` [N, C, H, W] against `target` I32 [N, H, W] (or [N, C] against
/// [N]): `Σ_valid w·ce / #valid`, the mean over pixels whose label is not `ignore_index`.
/// With `pixel_weight` ([N, H, W] / [N]) each pixel's term is scaled by its weight but the
/// divisor stays the number of valid pixels (not PyTorch's class-weight normalisation).
/// Gradients flow to the logits and to the pixel weights. Labels outside `[0, C)` count as
/// ignored (validate them with `ops::softmax::check_labels`). No valid pixel → loss 0, zero
/// gradient.
pub fn cross_entropy(
    logits: &Tensor,
    target: &Tensor,
    ignore_index: i32,
    pixel_weight: Option<&Tensor>,
) -> Result<Tensor> {
    const OP: &str = "cross_entropy";
    logits.expect_f32(OP)?;
    let (n, c, inner) = nc_inner(OP, logits.shape())?;
    if target.dtype() != DType::I32 {
        return Err(Error::invalid(
            OP,
            format!("target must be I32, got {:?}", target.dtype()),
        ));
    }
    let s = logits.shape();
    let want: Vec<usize> = if s.len() == 2 {
        vec![n]
    } else {
        vec![n, s[2], s[3]]
    };
    if target.shape() != want.as_slice() {
        return Err(Error::shape(
            OP,
            s,
            target.shape(),
            format!("target must be {want:?} for these logits"),
        ));
    }
    if c == 0 {
        return Err(Error::invalid(OP, "logits have zero channels"));
    }
    if let Some(pw) = pixel_weight {
        pw.expect_f32(OP)?;
        if pw.shape() != target.shape() {
            return Err(Error::shape(
                OP,
                target.shape(),
                pw.shape(),
                "pixel_weight must match the target's shape",
            ));
        }
    }
    let pix = n * inner;
    if over(logits, &[n * c * inner]) || over(logits, &[2, pix]) {
        let ins: Vec<&Tensor> = [Some(logits), Some(target), pixel_weight]
            .into_iter()
            .flatten()
            .collect();
        return by_batch(OP, &ins, 4 * inner * c.max(2), |t, count| {
            ce_core(&t[0], &t[1], ignore_index, t.get(2), count)
        });
    }
    Ok(ce_core(logits, target, ignore_index, pixel_weight, None)?.0)
}

/// Cross-entropy on validated inputs, divided by `count` when given; returns (loss, sums).
fn ce_core(
    logits: &Tensor,
    target: &Tensor,
    ignore_index: i32,
    pixel_weight: Option<&Tensor>,
    count: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "cross_entropy";
    let (n, c, inner) = nc_inner(OP, logits.shape())?;
    let gpu = logits.gpu();
    let pix = n * inner;
    let stats = Tensor::empty(gpu, OP, &[2, pix], DType::F32)?;
    let lse = Tensor::empty(gpu, OP, &[pix], DType::F32)?;
    let wbind = || pixel_weight.map_or_else(|| gpu.unused(), |t| r(t.buffer()));
    gpu.dispatch(
        SHADER,
        "ce_fwd",
        &[("HAS_W", pixel_weight.is_some() as u32)],
        &params(pix, c, inner, ignore_index, pixel_weight.is_some()),
        &[
            r(logits.buffer()),
            r(target.buffer()),
            wbind(),
            gpu.unused(),
            gpu.unused(),
            gpu.unused(),
            w(stats.buffer()),
            w(lse.buffer()),
        ],
        gpu.grid_1d(pix as u64, 256),
    )?;
    let (loss, sums) = finish(gpu, OP, &stats, count)?;
    let sums_out = sums.clone();
    let (xd, td, wd) = (
        logits.detach(),
        target.detach(),
        pixel_weight.map(|t| t.detach()),
    );
    let loss = Tensor::from_op_opt(
        loss,
        OP,
        [Some(logits), Some(target), pixel_weight],
        move |_| {
            move |g: &Tensor, needs: [bool; 3]| {
                let gpu = xd.gpu();
                let p = params(0, c, inner, ignore_index, wd.is_some());
                let mut grads = [None, None, None];
                if needs[0] {
                    let gx = Tensor::empty(gpu, OP, xd.shape(), DType::F32)?;
                    let nx = xd.numel();
                    gpu.dispatch(
                        SHADER,
                        "ce_bwd_x",
                        &[("HAS_W", p.has_w)],
                        &Params { n: nx as u32, ..p },
                        &[
                            r(xd.buffer()),
                            r(td.buffer()),
                            wd.as_ref().map_or_else(|| gpu.unused(), |t| r(t.buffer())),
                            r(lse.buffer()),
                            r(sums.buffer()),
                            r(g.buffer()),
                            w(gx.buffer()),
                        ],
                        gpu.grid_1d(nx as u64, 256),
                    )?;
                    grads[0] = Some(gx);
                }
                if let Some(wt) = &wd {
                    grads[2] = if needs[2] {
                        let gw = Tensor::empty(gpu, OP, wt.shape(), DType::F32)?;
                        gpu.dispatch(
                            SHADER,
                            "ce_bwd_w",
                            &[],
                            &Params { n: pix as u32, ..p },
                            &[
                                r(xd.buffer()),
                                r(td.buffer()),
                                gpu.unused(),
                                r(lse.buffer()),
                                r(sums.buffer()),
                                r(g.buffer()),
                                w(gw.buffer()),
                            ],
                            gpu.grid_1d(pix as u64, 256),
                        )?;
                        Some(gw)
                    } else {
                        None
                    };
                }
                Ok(grads)
            }
        },
    );
    Ok((loss, sums_out))
}

/// Binary cross-entropy with logits, `Σ mask·bce / Σ mask` (the plain mean without a mask),
/// using the stable `max(x, 0) − x·t + log(1 + exp(−|x|))`. `target` and `mask` match the
/// logits' shape; the mask is a constant (0/1) and gets no gradient, the target does.
/// An all-zero mask gives loss 0 with zero gradient.
pub fn bce_with_logits(logits: &Tensor, target: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    const OP: &str = "bce_with_logits";
    logits.expect_f32(OP)?;
    target.expect_f32(OP)?;
    if target.shape() != logits.shape() {
        return Err(Error::shape(
            OP,
            logits.shape(),
            target.shape(),
            "target must match the logits' shape",
        ));
    }
    if let Some(m) = mask {
        m.expect_f32(OP)?;
        if m.shape() != logits.shape() {
            return Err(Error::shape(
                OP,
                logits.shape(),
                m.shape(),
                "mask must match the logits' shape",
            ));
        }
    }
    let n = logits.numel();
    if logits.ndim() > 0 && over(logits, &[2, n]) {
        let ins: Vec<&Tensor> = [Some(logits), Some(target), mask]
            .into_iter()
            .flatten()
            .collect();
        let per = 2 * 4 * (n / logits.shape()[0].max(1));
        return by_batch(OP, &ins, per, |t, count| {
            bce_core(&t[0], &t[1], t.get(2), count)
        });
    }
    Ok(bce_core(logits, target, mask, None)?.0)
}

/// BCE with logits on validated inputs, divided by `count` when given; returns (loss, sums).
fn bce_core(
    logits: &Tensor,
    target: &Tensor,
    mask: Option<&Tensor>,
    count: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "bce_with_logits";
    let gpu = logits.gpu();
    let n = logits.numel();
    let stats = Tensor::empty(gpu, OP, &[2, n], DType::F32)?;
    let mbind = || mask.map_or_else(|| gpu.unused(), |t| r(t.buffer()));
    gpu.dispatch(
        SHADER,
        "bce_fwd",
        &[("HAS_W", mask.is_some() as u32)],
        &params(n, 0, 0, 0, mask.is_some()),
        &[
            r(logits.buffer()),
            gpu.unused(),
            r(target.buffer()),
            mbind(),
            gpu.unused(),
            gpu.unused(),
            w(stats.buffer()),
        ],
        gpu.grid_1d(n as u64, 256),
    )?;
    let (loss, sums) = finish(gpu, OP, &stats, count)?;
    let sums_out = sums.clone();
    let (xd, td, md) = (logits.detach(), target.detach(), mask.map(|t| t.detach()));
    let loss = Tensor::from_op_opt(loss, OP, [Some(logits), Some(target), mask], move |_| {
        move |g: &Tensor, needs: [bool; 3]| {
            let gpu = xd.gpu();
            let gx = Tensor::empty(gpu, OP, xd.shape(), DType::F32)?;
            let gt = Tensor::empty(gpu, OP, xd.shape(), DType::F32)?;
            gpu.dispatch(
                SHADER,
                "bce_bwd",
                &[("HAS_W", md.is_some() as u32)],
                &params(n, 0, 0, 0, md.is_some()),
                &[
                    r(xd.buffer()),
                    gpu.unused(),
                    r(td.buffer()),
                    md.as_ref().map_or_else(|| gpu.unused(), |t| r(t.buffer())),
                    r(sums.buffer()),
                    r(g.buffer()),
                    w(gx.buffer()),
                    w(gt.buffer()),
                ],
                gpu.grid_1d(n as u64, 256),
            )?;
            Ok([needs[0].then_some(gx), needs[1].then_some(gt), None])
        }
    });
    Ok((loss, sums_out))
}

/// A loss on inputs over one binding, by batch chunks (every input is cut along dim 0). The
/// loss is a mean over the counted elements of the whole batch, so a first pass (no gradient)
/// sums the chunks' counts, and every chunk's loss and gradient divide by that count: the
/// chunks' losses then sum to the whole loss and each element's gradient is the unsplit one.
fn by_batch(
    op: &'static str,
    ins: &[&Tensor],
    per_image: usize,
    core: impl Fn(&[Tensor], Option<&Tensor>) -> Result<(Tensor, Tensor)>,
) -> Result<Tensor> {
    let x = ins[0];
    let chunks = groups(op, x, x.shape()[0], per_image, || {
        format!("one image of {:?}", x.shape())
    })?;
    let count = no_grad(|| -> Result<Tensor> {
        let mut acc: Option<Tensor> = None;
        for r in &chunks {
            let t: Vec<Tensor> = ins.iter().map(|t| take(t, 0, r)).collect::<Result<_>>()?;
            let sums = core(&t, None)?.1.reshape(&[2])?;
            let c = take(&sums, 0, &(1..2))?;
            acc = Some(match acc {
                None => c,
                Some(a) => crate::tensor::kernels::accumulate(&a, &c)?,
            });
        }
        acc.ok_or_else(|| Error::Internal(format!("{op}: split into no chunks")))
    })?;
    let cut: Vec<(&Tensor, Cut)> = ins.iter().map(|t| (*t, Cut::Along(0))).collect();
    run(op, &cut, &chunks, Join::Sum, |t, _| {
        Ok(core(t, Some(&count))?.0)
    })
}

/// PyTorch's `multilabel_soft_margin_loss` (mean reduction) for logits and targets [N, C]:
/// the mean over N of the mean over C of BCE with logits, i.e. the mean over all elements.
pub fn multilabel_soft_margin(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    if logits.ndim() != 2 || target.shape() != logits.shape() {
        return Err(Error::shape(
            "multilabel_soft_margin",
            logits.shape(),
            target.shape(),
            "logits and target must both be [N, C]",
        ));
    }
    bce_with_logits(logits, target, None)
}

fn mean_reduction(c: &dyn CaseArgs) -> Result<()> {
    let r = c.str("reduction", Some("mean"))?;
    if r != "mean" {
        return Err(Error::invalid(
            "parity",
            format!("only reduction \"mean\" is implemented, got {r:?}"),
        ));
    }
    Ok(())
}

/// Parity-case evaluations of this module's ops by case op name (see `ops::cases`).
pub(crate) const CASES: Cases = &[
    ("cross_entropy", |c: &dyn CaseArgs| -> Result<Outputs> {
        mean_reduction(c)?;
        let ignore = c.i64("ignore_index", Some(-100))? as i32;
        let pw = c.opt_input("pixel_weight")?;
        Ok(cross_entropy(
            &c.input("logits")?,
            &c.input("target")?,
            ignore,
            pw.as_ref(),
        )?
        .into())
    }),
    ("bce_with_logits", |c: &dyn CaseArgs| -> Result<Outputs> {
        mean_reduction(c)?;
        let m = c.opt_input("mask")?;
        Ok(bce_with_logits(&c.input("logits")?, &c.input("target")?, m.as_ref())?.into())
    }),
    (
        "multilabel_soft_margin",
        |c: &dyn CaseArgs| -> Result<Outputs> {
            mean_reduction(c)?;
            Ok(multilabel_soft_margin(&c.input("logits")?, &c.input("target")?)?.into())
        },
    ),
];
