//! 2-d pooling with PyTorch semantics: `max_pool2d` (argmax saved for a gather backward),
//! `avg_pool2d` (PyTorch's divisor rules incl. ceil_mode clipping) and `adaptive_avg_pool2d`.
//! Shader: `shaders/pool.wgsl`.

use super::cases::{CaseArgs, Cases, Outputs};
use crate::error::{Error, Result};
use crate::gpu::{r, w};
use crate::tensor::{DType, Tensor};

const SHADER: &str = "pool";

/// Mirrors `Params` in pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    ih: u32,
    iw: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    count_include_pad: u32,
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "pool", Params { n, ih, iw, oh, ow, kh, kw, sh, sw, ph, pw, count_include_pad });

/// Window geometry of one pooling call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub ceil_mode: bool,
}

/// PyTorch's `pooling_output_shape` (dilation 1): with ceil_mode the last window must still
/// start inside the input or the left padding.
pub fn pool_out_size(
    input: usize,
    k: usize,
    s: usize,
    pad: usize,
    ceil_mode: bool,
) -> Option<usize> {
    let span = (input + 2 * pad).checked_sub(k)?;
    let mut out = if ceil_mode {
        span.div_ceil(s)
    } else {
        span / s
    } + 1;
    if ceil_mode && (out - 1) * s >= input + pad {
        out -= 1;
    }
    Some(out)
}

fn geometry(op: &'static str, x: &Tensor, g: Pool2d) -> Result<[usize; 2]> {
    x.expect_f32(op)?;
    x.expect_ndim(op, 4)?;
    let [_, _, ih, iw] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let mut out = [0; 2];
    for (d, input) in [ih, iw].into_iter().enumerate() {
        let (k, s, pad) = (g.kernel[d], g.stride[d], g.padding[d]);
        if k == 0 || s == 0 {
            return Err(Error::invalid(
                op,
                format!(
                    "kernel {:?} and stride {:?} must be positive",
                    g.kernel, g.stride
                ),
            ));
        }
        if pad > k / 2 {
            return Err(Error::invalid(
                op,
                format!(
                    "padding {:?} must be at most half the kernel {:?}",
                    g.padding, g.kernel
                ),
            ));
        }
        out[d] = pool_out_size(input, k, s, pad, g.ceil_mode)
            .filter(|&o| o > 0)
            .ok_or_else(|| {
                Error::invalid(
                    op,
                    format!(
                        "input {:?} is smaller than kernel {:?} with padding {:?}",
                        x.shape(),
                        g.kernel,
                        g.padding
                    ),
                )
            })?;
    }
    Ok(out)
}

fn params(
    n: usize,
    x_shape: &[usize],
    o: [usize; 2],
    g: Pool2d,
    count_include_pad: bool,
) -> Params {
    Params {
        n: n as u32,
        ih: x_shape[2] as u32,
        iw: x_shape[3] as u32,
        oh: o[0] as u32,
        ow: o[1] as u32,
        kh: g.kernel[0] as u32,
        kw: g.kernel[1] as u32,
        sh: g.stride[0] as u32,
        sw: g.stride[1] as u32,
        ph: g.padding[0] as u32,
        pw: g.padding[1] as u32,
        count_include_pad: count_include_pad as u32,
    }
}

/// Runs a gather backward entry point: `out[input-shaped] = gather(g[output-shaped], extra)`.
fn gather_bwd(
    entry: &'static str,
    g: &Tensor,
    in_shape: &[usize],
    p: Params,
    argmax: Option<&Tensor>,
) -> Result<Tensor> {
    let gpu = g.gpu();
    let dx = Tensor::empty(gpu, entry, in_shape, DType::F32)?;
    let n = dx.numel();
    let p = Params { n: n as u32, ..p };
    let grid = gpu.grid_1d(n as u64, 256);
    match argmax {
        Some(a) => gpu.dispatch(
            SHADER,
            entry,
            &[],
            &p,
            &[r(g.buffer()), w(dx.buffer()), gpu.unused(), r(a.buffer())],
            grid,
        )?,
        None => gpu.dispatch(
            SHADER,
            entry,
            &[],
            &p,
            &[r(g.buffer()), w(dx.buffer())],
            grid,
        )?,
    }
    Ok(dx)
}

/// Max pooling; padding counts as -inf. Returns the pooled tensor (the argmax stays internal).
pub fn max_pool2d(
    x: &Tensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    ceil_mode: bool,
) -> Result<Tensor> {
    let geo = Pool2d {
        kernel,
        stride,
        padding,
        ceil_mode,
    };
    let o = geometry("max_pool2d", x, geo)?;
    if let Some(out) = big(x, o) {
        return super::split_grad::per_image("max_pool2d", x, &out, |t| {
            max_pool2d(t, kernel, stride, padding, ceil_mode)
        });
    }
    let (y, _) = max_pool2d_with_indices(x, kernel, stride, padding, ceil_mode)?;
    Ok(y)
}

/// The output shape of pooling `x` to planes `o` when it or `x` is over one binding (pooling
/// then runs by batch chunks, exact: images are pooled on their own).
fn big(x: &Tensor, o: [usize; 2]) -> Option<Vec<usize>> {
    let s = x.shape();
    let out = vec![s[0], s[1], o[0], o[1]];
    let over = super::split_grad::over(x, s) || super::split_grad::over(x, &out);
    over.then_some(out)
}

/// Max pooling that also returns the argmax as an I32 tensor of flat indices into each input
/// plane (`h * W + w`, like PyTorch's `return_indices=True`).
pub fn max_pool2d_with_indices(
    x: &Tensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    ceil_mode: bool,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "max_pool2d";
    let geo = Pool2d {
        kernel,
        stride,
        padding,
        ceil_mode,
    };
    let o = geometry(OP, x, geo)?;
    let gpu = x.gpu();
    let s = x.shape();
    let out_shape = [s[0], s[1], o[0], o[1]];
    let y = Tensor::empty(gpu, OP, &out_shape, DType::F32)?;
    let idx = Tensor::empty(gpu, OP, &out_shape, DType::I32)?;
    let n = y.numel();
    let p = params(n, s, o, geo, false);
    gpu.dispatch(
        SHADER,
        "max_fwd",
        &[],
        &p,
        &[r(x.buffer()), w(y.buffer()), w(idx.buffer())],
        gpu.grid_1d(n as u64, 256),
    )?;
    let in_shape = s.to_vec();
    let saved = idx.clone();
    let y = Tensor::from_op(y, OP, [x], move |_| {
        move |g: &Tensor, _: [bool; 1]| {
            Ok([Some(gather_bwd("max_bwd", g, &in_shape, p, Some(&saved))?)])
        }
    });
    Ok((y, idx))
}

/// Average pooling with PyTorch's divisor rules (no divisor override).
pub fn avg_pool2d(
    x: &Tensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    ceil_mode: bool,
    count_include_pad: bool,
) -> Result<Tensor> {
    const OP: &str = "avg_pool2d";
    let geo = Pool2d {
        kernel,
        stride,
        padding,
        ceil_mode,
    };
    let o = geometry(OP, x, geo)?;
    if let Some(out) = big(x, o) {
        return super::split_grad::per_image(OP, x, &out, |t| {
            avg_pool2d(t, kernel, stride, padding, ceil_mode, count_include_pad)
        });
    }
    let gpu = x.gpu();
    let s = x.shape();
    let y = Tensor::empty(gpu, OP, &[s[0], s[1], o[0], o[1]], DType::F32)?;
    let n = y.numel();
    let p = params(n, s, o, geo, count_include_pad);
    gpu.dispatch(
        SHADER,
        "avg_fwd",
        &[],
        &p,
        &[r(x.buffer()), w(y.buffer())],
        gpu.grid_1d(n as u64, 256),
    )?;
    let in_shape = s.to_vec();
    Ok(Tensor::from_op(y, OP, [x], move |_| {
        move |g: &Tensor, _: [bool; 1]| Ok([Some(gather_bwd("avg_bwd", g, &in_shape, p, None)?)])
    }))
}

/// Adaptive average pooling to `output` = [h, w] (PyTorch's bins `[⌊i·in/out⌋, ⌈(i+1)·in/out⌉)`);
/// `[1, 1]` is global average pooling.
pub fn adaptive_avg_pool2d(x: &Tensor, output: [usize; 2]) -> Result<Tensor> {
    const OP: &str = "adaptive_avg_pool2d";
    x.expect_f32(OP)?;
    x.expect_ndim(OP, 4)?;
    let s = x.shape();
    if output.contains(&0) || s[2] == 0 || s[3] == 0 {
        return Err(Error::shape(
            OP,
            s,
            &output,
            "input plane and output size must be non-empty",
        ));
    }
    if let Some(out) = big(x, output) {
        return super::split_grad::per_image(OP, x, &out, |t| adaptive_avg_pool2d(t, output));
    }
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, OP, &[s[0], s[1], output[0], output[1]], DType::F32)?;
    let n = y.numel();
    let geo = Pool2d {
        kernel: [1, 1],
        stride: [1, 1],
        padding: [0, 0],
        ceil_mode: false,
    };
    let p = params(n, s, output, geo, false);
    gpu.dispatch(
        SHADER,
        "adaptive_avg_fwd",
        &[],
        &p,
        &[r(x.buffer()), w(y.buffer())],
        gpu.grid_1d(n as u64, 256),
    )?;
    let in_shape = s.to_vec();
    Ok(Tensor::from_op(y, OP, [x], move |_| {
        move |g: &Tensor, _: [bool; 1]| {
            Ok([Some(gather_bwd("adaptive_avg_bwd", g, &in_shape, p, None)?)])
        }
    }))
}

/// Parity-case evaluations of this module's ops by case op name (see `ops::cases`).
pub(crate) const CASES: Cases = &[
    ("max_pool2d", |c: &dyn CaseArgs| -> Result<Outputs> {
        let x = c.input("x")?;
        let k = c.pair("kernel", None)?;
        let s = c.pair("stride", Some(k))?;
        Ok(max_pool2d(
            &x,
            k,
            s,
            c.pair("padding", Some([0, 0]))?,
            c.bool("ceil_mode", Some(false))?,
        )?
        .into())
    }),
    ("avg_pool2d", |c: &dyn CaseArgs| -> Result<Outputs> {
        let x = c.input("x")?;
        let k = c.pair("kernel", None)?;
        let s = c.pair("stride", Some(k))?;
        Ok(avg_pool2d(
            &x,
            k,
            s,
            c.pair("padding", Some([0, 0]))?,
            c.bool("ceil_mode", Some(false))?,
            c.bool("count_include_pad", Some(true))?,
        )?
        .into())
    }),
    (
        "adaptive_avg_pool2d",
        |c: &dyn CaseArgs| -> Result<Outputs> {
            Ok(adaptive_avg_pool2d(&c.input("x")?, c.pair("output", None)?)?.into())
        },
    ),
];
