//! Channel ops over NCHW (or [N, C]): softmax / log_softmax along dim 1, argmax over channels,
//! one-hot encoding of label maps, and a host-side label check. Shader: `shaders/softmax.wgsl`.

use super::cases::{CaseArgs, Cases, Outputs};
use crate::error::{Error, Result};
use crate::gpu::{codes, r, w};
use crate::tensor::{DType, Tensor};

const SHADER: &str = "softmax";

/// Mirrors `Params` in softmax.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_pos: u32,
    c: u32,
    inner: u32,
    op: u32,
    ignore: i32,
    _pad: [u32; 3],
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "softmax", Params { n_pos, c, inner, op, ignore, _pad });

/// (N, C, inner) of an [N, C, H, W] or [N, C] tensor.
pub(crate) fn nc_inner(op: &'static str, s: &[usize]) -> Result<(usize, usize, usize)> {
    match s {
        [n, c] => Ok((*n, *c, 1)),
        [n, c, h, w] => Ok((*n, *c, h * w)),
        _ => Err(Error::invalid(
            op,
            format!("expected [N, C, H, W] or [N, C], got shape {s:?}"),
        )),
    }
}

fn check_dim(op: &'static str, dim: usize) -> Result<()> {
    if dim != 1 {
        return Err(Error::invalid(
            op,
            format!("only dim=1 (channels) is supported, got dim={dim}"),
        ));
    }
    Ok(())
}

fn params(n_pos: usize, c: usize, inner: usize, op: u32, ignore: i32) -> Params {
    Params {
        n_pos: n_pos as u32,
        c: c as u32,
        inner: inner as u32,
        op,
        ignore,
        _pad: [0; 3],
    }
}

/// The shader's V4 constant and the workgroups for `n_pos` positions: four positions per
/// invocation when every plane is whole vec4s.
fn v4_grid(gpu: &crate::Gpu, n_pos: usize, inner: usize) -> (u32, [u32; 3]) {
    if inner.is_multiple_of(4) {
        (1, gpu.grid_1d(n_pos.div_ceil(4) as u64, 256))
    } else {
        (0, gpu.grid_1d(n_pos as u64, 256))
    }
}

/// The shader's OP constant.
fn op_code(log: bool) -> u32 {
    if log {
        codes::LOG_SOFTMAX
    } else {
        codes::SOFTMAX
    }
}

fn softmax_raw(x: &Tensor, log: bool) -> Result<Tensor> {
    let op = if log { "log_softmax" } else { "softmax" };
    let (n, c, inner) = nc_inner(op, x.shape())?;
    let gpu = x.gpu();
    let out = Tensor::empty(gpu, op, x.shape(), DType::F32)?;
    let (v4, groups) = v4_grid(gpu, n * inner, inner);
    gpu.dispatch(
        SHADER,
        "softmax_fwd",
        &[("OP", op_code(log)), ("V4", v4)],
        &params(n * inner, c, inner, op_code(log), 0),
        &[r(x.buffer()), gpu.unused(), w(out.buffer())],
        groups,
    )?;
    Ok(out)
}

fn softmax_bwd_raw(y: &Tensor, g: &Tensor, log: bool) -> Result<Tensor> {
    let op = if log { "log_softmax" } else { "softmax" };
    let (n, c, inner) = nc_inner(op, y.shape())?;
    let gpu = y.gpu();
    let out = Tensor::empty(gpu, op, y.shape(), DType::F32)?;
    let (v4, groups) = v4_grid(gpu, n * inner, inner);
    gpu.dispatch(
        SHADER,
        "softmax_bwd",
        &[("OP", op_code(log)), ("V4", v4)],
        &params(n * inner, c, inner, op_code(log), 0),
        &[r(y.buffer()), r(g.buffer()), w(out.buffer())],
        groups,
    )?;
    Ok(out)
}

fn softmax_any(x: &Tensor, dim: usize, log: bool) -> Result<Tensor> {
    let op = if log { "log_softmax" } else { "softmax" };
    x.expect_f32(op)?;
    check_dim(op, dim)?;
    if x.ndim() == 4 && super::split_grad::over(x, x.shape()) {
        // Pixel bands fit where one image does not, but record no backward; batch chunks do.
        if crate::autograd::is_grad_enabled() && x.requires_grad() {
            return super::split_grad::per_image(op, x, x.shape(), |b| softmax_any(b, 1, log));
        }
        return super::split_act::by_pixels(op, x, |b| softmax_raw(b, log));
    }
    let y = softmax_raw(x, log)?;
    let ys = y.detach();
    Ok(Tensor::from_op(y, op, [x], move |_| {
        move |g: &Tensor, _: [bool; 1]| Ok([Some(softmax_bwd_raw(&ys, g, log)?)])
    }))
}

/// Softmax over channels (`dim` must be 1), max-subtracted for stability.
pub fn softmax(x: &Tensor, dim: usize) -> Result<Tensor> {
    softmax_any(x, dim, false)
}

/// Log-softmax over channels (`dim` must be 1), computed as `x - max - log Σ exp(x - max)`.
pub fn log_softmax(x: &Tensor, dim: usize) -> Result<Tensor> {
    softmax_any(x, dim, true)
}

/// Index of the largest channel per position: [N, C, H, W] → I32 [N, H, W], [N, C] → I32 [N].
/// Ties resolve to the lowest index (as PyTorch on the CPU). Not differentiable.
pub fn argmax_channels(x: &Tensor) -> Result<Tensor> {
    x.expect_f32("argmax_channels")?;
    let (n, c, inner) = nc_inner("argmax_channels", x.shape())?;
    if c == 0 {
        return Err(Error::invalid("argmax_channels", "zero channels"));
    }
    let s = x.shape();
    let out_shape: Vec<usize> = if s.len() == 2 {
        vec![n]
    } else {
        vec![n, s[2], s[3]]
    };
    if s.len() == 4 && super::split_grad::over(x, s) {
        return super::split_grad::per_image("argmax_channels", x, &out_shape, argmax_channels);
    }
    let gpu = x.gpu();
    let out = Tensor::empty(gpu, "argmax_channels", &out_shape, DType::I32)?;
    gpu.dispatch(
        SHADER,
        "argmax",
        &[],
        &params(n * inner, c, inner, 0, 0),
        &[
            r(x.buffer()),
            gpu.unused(),
            gpu.unused(),
            gpu.unused(),
            w(out.buffer()),
        ],
        gpu.grid_1d((n * inner) as u64, 256),
    )?;
    Ok(out)
}

/// One-hot encodes labels: I32 [N, H, W] → F32 [N, C, H, W] (I32 [N] → F32 [N, C]).
/// `ignore_index` gives an all-zero vector. Labels outside `[0, C)` also give an all-zero vector
/// because a GPU kernel cannot report them cheaply; validate label maps with [`check_labels`]
/// when they are loaded. Not differentiable.
pub fn one_hot(labels: &Tensor, classes: usize, ignore_index: i32) -> Result<Tensor> {
    if labels.dtype() != DType::I32 {
        return Err(Error::invalid(
            "one_hot",
            format!("labels must be I32, got {:?}", labels.dtype()),
        ));
    }
    let s = labels.shape();
    let (out_shape, n, inner) = match s {
        [n] => (vec![*n, classes], *n, 1),
        [n, h, w] => (vec![*n, classes, *h, *w], *n, h * w),
        _ => {
            return Err(Error::invalid(
                "one_hot",
                format!("expected labels [N, H, W] or [N], got {s:?}"),
            ))
        }
    };
    if out_shape.len() == 4 && super::split_grad::over(labels, &out_shape) {
        return super::split_grad::per_image("one_hot", labels, &out_shape, |t| {
            one_hot(t, classes, ignore_index)
        });
    }
    let gpu = labels.gpu();
    let out = Tensor::empty(gpu, "one_hot", &out_shape, DType::F32)?;
    let total = n * classes * inner;
    let (v4, groups) = v4_grid(gpu, total, inner);
    gpu.dispatch(
        SHADER,
        "one_hot",
        &[("V4", v4)],
        &params(total, classes, inner, 0, ignore_index),
        &[
            gpu.unused(),
            gpu.unused(),
            w(out.buffer()),
            r(labels.buffer()),
        ],
        groups,
    )?;
    Ok(out)
}

/// Host check of a label map: every label is `ignore_index` or in `[0, classes)`. Call it when
/// data is loaded; the GPU ops treat bad labels as ignored instead of failing.
pub fn check_labels(labels: &[i32], classes: usize, ignore_index: i32) -> Result<()> {
    if let Some((i, &v)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &v)| v != ignore_index && (v < 0 || v as i64 >= classes as i64))
    {
        return Err(Error::invalid(
            "check_labels",
            format!("label {v} at index {i} is outside [0, {classes}) and is not the ignore index {ignore_index}"),
        ));
    }
    Ok(())
}

/// Parity-case evaluations of this module's ops by case op name (see `ops::cases`).
pub(crate) const CASES: Cases = &[
    ("softmax", |c: &dyn CaseArgs| -> Result<Outputs> {
        Ok(softmax(&c.input("x")?, c.i64("dim", Some(1))? as usize)?.into())
    }),
    ("log_softmax", |c: &dyn CaseArgs| -> Result<Outputs> {
        Ok(log_softmax(&c.input("x")?, c.i64("dim", Some(1))? as usize)?.into())
    }),
    ("argmax_channels", |c: &dyn CaseArgs| -> Result<Outputs> {
        Ok(argmax_channels(&c.input("x")?)?.into())
    }),
];
