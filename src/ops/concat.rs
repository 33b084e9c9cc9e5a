//! Channel concatenation, split and narrow for NCHW / [N, C] tensors. Shader:
//! `shaders/concat.wgsl`. Concat's backward splits the gradient; narrow's backward places the
//! gradient into a zero tensor of the input's shape with a gather kernel.

use super::cases::{CaseArgs, Cases, Outputs};
use super::softmax::nc_inner;
use crate::error::{Error, Result};
use crate::gpu::{r, w};
use crate::tensor::{DType, Tensor};

const SHADER: &str = "concat";

/// Mirrors `Params` in concat.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    inner: u32,
    c_src: u32,
    c_dst: u32,
    off: u32,
    len: u32,
    _pad: [u32; 2],
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "concat", Params { n, inner, c_src, c_dst, off, len, _pad });

fn with_channels(s: &[usize], c: usize) -> Vec<usize> {
    let mut v = s.to_vec();
    v[1] = c;
    v
}

/// `x[:, start:start+len]` as a new tensor. Raw: no autograd.
pub(crate) fn narrow_raw(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    let (n, c, inner) = nc_inner("narrow_channels", x.shape())?;
    let gpu = x.gpu();
    let out = Tensor::empty(
        gpu,
        "narrow_channels",
        &with_channels(x.shape(), len),
        DType::F32,
    )?;
    let total = n * len * inner;
    let p = Params {
        n: total as u32,
        inner: inner as u32,
        c_src: c as u32,
        c_dst: len as u32,
        off: start as u32,
        len: len as u32,
        _pad: [0; 2],
    };
    gpu.dispatch(
        SHADER,
        "narrow",
        &[],
        &p,
        &[r(x.buffer()), w(out.buffer())],
        gpu.grid_1d(total as u64, 256),
    )?;
    Ok(out)
}

/// Zeros of `[N, c_full, ...]` with `g` in channels `start..start + len`. Raw: no autograd.
fn place_raw(g: &Tensor, c_full: usize, start: usize) -> Result<Tensor> {
    let (n, len, inner) = nc_inner("narrow_channels", g.shape())?;
    let gpu = g.gpu();
    let out = Tensor::empty(
        gpu,
        "narrow_channels",
        &with_channels(g.shape(), c_full),
        DType::F32,
    )?;
    let total = n * c_full * inner;
    let p = Params {
        n: total as u32,
        inner: inner as u32,
        c_src: len as u32,
        c_dst: c_full as u32,
        off: start as u32,
        len: len as u32,
        _pad: [0; 2],
    };
    gpu.dispatch(
        SHADER,
        "place",
        &[],
        &p,
        &[r(g.buffer()), w(out.buffer())],
        gpu.grid_1d(total as u64, 256),
    )?;
    Ok(out)
}

/// Batch concatenation: contiguous [N_i, …] tensors laid end to end are the channel
/// concatenation of their [1, numel] views, so it reuses that kernel and its backward.
fn concat_batch(xs: &[&Tensor]) -> Result<Tensor> {
    const OP: &str = "concat";
    let first = xs.first().ok_or_else(|| Error::invalid(OP, "no inputs"))?;
    if first.ndim() == 0 {
        return Err(Error::invalid(OP, "dim=0 of a 0-d tensor"));
    }
    let mut n = 0;
    let mut flat = Vec::with_capacity(xs.len());
    for x in xs {
        if x.ndim() != first.ndim() || x.shape()[1..] != first.shape()[1..] {
            return Err(Error::shape(
                OP,
                first.shape(),
                x.shape(),
                "inputs must agree in every dim but 0",
            ));
        }
        n += x.shape()[0];
        flat.push(x.reshape(&[1, x.numel()])?);
    }
    let refs: Vec<&Tensor> = flat.iter().collect();
    let mut shape = first.shape().to_vec();
    shape[0] = n;
    concat(&refs, 1)?.reshape(&shape)
}

/// Concatenates tensors along channels (`dim` 1: inputs [N, C_i, H, W] or [N, C_i] with equal
/// N, H, W) or along the batch (`dim` 0: inputs [N_i, …] equal in every other dim).
pub fn concat(xs: &[&Tensor], dim: usize) -> Result<Tensor> {
    const OP: &str = "concat";
    if dim == 0 {
        return concat_batch(xs);
    }
    if dim != 1 {
        return Err(Error::invalid(
            OP,
            format!("only dim=0 (batch) and dim=1 (channels) are supported, got dim={dim}"),
        ));
    }
    let first = xs.first().ok_or_else(|| Error::invalid(OP, "no inputs"))?;
    let mut total_c = 0;
    for x in xs {
        x.expect_f32(OP)?;
        nc_inner(OP, x.shape())?;
        let same_rest = x.ndim() == first.ndim()
            && x.shape()[0] == first.shape()[0]
            && x.shape()[2..] == first.shape()[2..];
        if !same_rest {
            return Err(Error::shape(
                OP,
                first.shape(),
                x.shape(),
                "inputs must agree in every dim but 1",
            ));
        }
        total_c += x.shape()[1];
    }
    let gpu = first.gpu();
    let out_shape = with_channels(first.shape(), total_c);
    if super::split_grad::over(first, &out_shape) {
        return by_copies(xs, &out_shape);
    }
    let out = Tensor::empty(gpu, OP, &out_shape, DType::F32)?;
    let mut offsets = Vec::with_capacity(xs.len());
    let mut off = 0;
    for x in xs {
        let (_, c, inner) = nc_inner(OP, x.shape())?;
        let p = Params {
            n: x.numel() as u32,
            inner: inner as u32,
            c_src: c as u32,
            c_dst: total_c as u32,
            off: off as u32,
            len: c as u32,
            _pad: [0; 2],
        };
        gpu.dispatch(
            SHADER,
            "insert",
            &[],
            &p,
            &[r(x.buffer()), w(out.buffer())],
            gpu.grid_1d(x.numel() as u64, 256),
        )?;
        offsets.push((off, c));
        off += c;
    }
    Ok(Tensor::from_op_dyn(out, OP, xs, move || {
        Box::new(move |g: &Tensor, needs: &[bool]| {
            offsets
                .iter()
                .zip(needs)
                .map(|(&(o, c), &need)| {
                    if need {
                        narrow_raw(g, o, c).map(Some)
                    } else {
                        Ok(None)
                    }
                })
                .collect()
        })
    }))
}

/// [`concat`] with an output over one binding: buffer copies per image and input, which bind
/// nothing (so even one image over a binding concatenates), and the same copies back for the
/// inputs' gradients. Exact: concatenation only moves values.
fn by_copies(xs: &[&Tensor], out_shape: &[usize]) -> Result<Tensor> {
    use super::split_grad::{put, take};
    let out = Tensor::empty(xs[0].gpu(), "concat", out_shape, DType::F32)?;
    let mut ranges = Vec::with_capacity(xs.len());
    let mut off = 0;
    for x in xs {
        put(x, &out, 1, off);
        ranges.push(off..off + x.shape()[1]);
        off += x.shape()[1];
    }
    Ok(Tensor::from_op_dyn(out, "concat", xs, move || {
        Box::new(move |g: &Tensor, needs: &[bool]| {
            ranges
                .iter()
                .zip(needs)
                .map(|(cs, &need)| need.then(|| take(g, 1, cs)).transpose())
                .collect()
        })
    }))
}

/// Channels `start..start + len` of `x` (like `x.narrow(1, start, len)`, but a copy).
pub fn narrow_channels(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    const OP: &str = "narrow_channels";
    x.expect_f32(OP)?;
    let (_, c, _) = nc_inner(OP, x.shape())?;
    if start + len > c {
        return Err(Error::invalid(
            OP,
            format!(
                "channels {start}..{} exceed the {c} channels of shape {:?}",
                start + len,
                x.shape()
            ),
        ));
    }
    if super::split_grad::over(x, x.shape()) {
        // A pure copy: buffer copies per image, which bind nothing, both ways.
        let (cs, shape) = (start..start + len, x.shape().to_vec());
        let out = super::split_grad::take(x, 1, &cs)?;
        return Ok(Tensor::from_op(out, OP, [x], move |_| {
            move |g: &Tensor, _: [bool; 1]| {
                let dx = Tensor::zeros(g.gpu(), &shape, DType::F32)?;
                super::split_grad::put(g, &dx, 1, start);
                Ok([Some(dx)])
            }
        }));
    }
    let out = narrow_raw(x, start, len)?;
    Ok(Tensor::from_op(out, OP, [x], move |_| {
        move |g: &Tensor, _: [bool; 1]| Ok([Some(place_raw(g, c, start)?)])
    }))
}

/// Splits `x` along channels (`dim` must be 1) into pieces of `sizes` channels, which must sum
/// to the channel count.
pub fn split(x: &Tensor, sizes: &[usize], dim: usize) -> Result<Vec<Tensor>> {
    const OP: &str = "split";
    if dim != 1 {
        return Err(Error::invalid(
            OP,
            format!("only dim=1 (channels) is supported, got dim={dim}"),
        ));
    }
    let (_, c, _) = nc_inner(OP, x.shape())?;
    if sizes.iter().sum::<usize>() != c {
        return Err(Error::invalid(
            OP,
            format!(
                "sizes {sizes:?} do not sum to the {c} channels of shape {:?}",
                x.shape()
            ),
        ));
    }
    let mut start = 0;
    sizes
        .iter()
        .map(|&len| {
            let t = narrow_channels(x, start, len);
            start += len;
            t
        })
        .collect()
}

/// Parity-case evaluations of this module's ops by case op name (see `ops::cases`).
pub(crate) const CASES: Cases = &[("concat", |c: &dyn CaseArgs| -> Result<Outputs> {
    let dim = c.i64("dim", Some(1))? as usize;
    let (a, b) = (c.input("a")?, c.input("b")?);
    Ok(concat(&[&a, &b], dim)?.into())
})];
