//! 2-d convolution and linear layers, forward and backward, as one implicit GEMM.
//! Shader: `shaders/conv.wgsl` (entry `gemm`, operand loaders chosen by the `MODE` constant,
//! and `splitk_reduce`).
//!
//! Forward, input gradient and weight gradient are the same tiled GEMM with different operand
//! loaders; nothing is unfolded into an im2col buffer. Long reductions are split over extra
//! workgroups (split-K) whose partials are summed in a fixed order by a second pass.

use super::cases::{CaseArgs, Cases, Outputs};
pub use super::conv_config::{family_for, Family, GemmConfig, GemmMode, Tile};
pub use super::conv_geom::{Conv2dParams, ConvGeom};
use super::conv_tex;
use super::tune;
use crate::error::{Error, Result};
use crate::gpu::{r, w, GpuBuffer};
use crate::tensor::{DType, Tensor};

const SHADER: &str = "conv";

/// Mirrors `Params` in conv.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    splits: u32,
    kchunk: u32,
    pix: u32,
    has_bias: u32,
    tiles_n: u32,
    tiles_m: u32,
    batch: u32,
    ci: u32,
    h: u32,
    w: u32,
    co: u32,
    kh: u32,
    kw: u32,
    oh: u32,
    ow: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "conv", Params { m, n, k, splits, kchunk, pix, has_bias, tiles_n, tiles_m, batch, ci, h, w, co, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw });

/// Shortest reduction one split should walk; shorter chunks cost more in partial traffic than
/// they gain in parallelism.
const MIN_CHUNK: usize = 256;
/// Enough workgroups to fill a large GPU a few times over.
const TARGET_GROUPS: usize = 512;

/// Runs one GEMM of `mode` with operands `a`, `b` into a new tensor of `out_shape`.
fn gemm(
    mode: GemmMode,
    g: &ConvGeom,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    out_shape: &[usize],
    cfg: &GemmConfig,
) -> Result<Tensor> {
    let gpu = a.gpu();
    let (m, n, k, pix) = g.gemm_dims(mode);
    let tile = cfg.tile.unwrap_or_else(|| Tile::auto(m, n));
    tile.check()?;
    let tiles_m = m.div_ceil(tile.tm as usize);
    let tiles_n = n.div_ceil(tile.tn as usize);
    let tiles = tiles_m * tiles_n;
    let limit = gpu.binding_limit() as usize;
    let max_splits = (limit / (m * n * 4).max(1)).max(1);
    let splits = cfg
        .splits
        .unwrap_or_else(|| TARGET_GROUPS.div_ceil(tiles).min(k.div_ceil(MIN_CHUNK)))
        .clamp(1, max_splits)
        .min(k.div_ceil(tile.tk as usize));
    let kchunk = k.div_ceil(splits).next_multiple_of(tile.tk as usize);
    let splits = k.div_ceil(kchunk);

    let u = |v: usize| -> Result<u32> {
        u32::try_from(v).map_err(|_| {
            Error::invalid(
                "conv2d",
                format!("size {v} exceeds 32-bit indexing ({g:?})"),
            )
        })
    };
    // The shader forms flat offsets in i32 (−1 marks out-of-range operands).
    let fits = |v: usize| -> Result<()> {
        if v <= i32::MAX as usize {
            Ok(())
        } else {
            Err(Error::invalid(
                "conv2d",
                format!("tensor of {v} elements exceeds 31-bit indexing ({g:?})"),
            ))
        }
    };
    // Every flat index the shader forms stays below these.
    fits(g.batch * g.ci * g.h * g.w)?;
    fits(g.batch * g.co * g.oh * g.ow)?;
    fits(g.co * g.ci * g.kh * g.kw)?;
    u(splits * m * n)?;
    let params = Params {
        m: u(m)?,
        n: u(n)?,
        k: u(k)?,
        splits: u(splits)?,
        kchunk: u(kchunk)?,
        pix: u(pix)?,
        has_bias: bias.is_some() as u32,
        tiles_n: u(tiles_n)?,
        tiles_m: u(tiles_m)?,
        batch: u(g.batch)?,
        ci: u(g.ci)?,
        h: u(g.h)?,
        w: u(g.w)?,
        co: u(g.co)?,
        kh: u(g.kh)?,
        kw: u(g.kw)?,
        oh: u(g.oh)?,
        ow: u(g.ow)?,
        sh: u(g.p.stride[0])?,
        sw: u(g.p.stride[1])?,
        ph: u(g.p.padding[0])?,
        pw: u(g.p.padding[1])?,
        dh: u(g.p.dilation[0])?,
        dw: u(g.p.dilation[1])?,
    };
    // Coalescing: the index that walks contiguous memory should vary across adjacent threads.
    let khw = g.kh * g.kw;
    let (a_kfast, b_kfast) = match mode {
        GemmMode::Forward => (true, g.oh * g.ow == 1),
        GemmMode::InputGrad => (khw > 1, g.h * g.w == 1),
        GemmMode::WeightGrad => (g.oh * g.ow > 1, g.oh * g.ow > 1),
    };
    let constants = [
        ("MODE", mode as u32),
        ("TM", tile.tm),
        ("TN", tile.tn),
        ("TK", tile.tk),
        ("RM", tile.rm),
        ("RN", tile.rn),
        ("WG", tile.threads()),
        ("A_KFAST", a_kfast as u32),
        ("B_KFAST", b_kfast as u32),
    ];
    let out = Tensor::empty(gpu, "conv2d", out_shape, DType::F32)?;
    let bias_bind = || bias.map(r).unwrap_or_else(|| gpu.unused());
    let wg = tile.threads();
    let groups = gpu.grid_1d((tiles * splits) as u64 * wg as u64, wg);
    if splits == 1 {
        gpu.dispatch(
            SHADER,
            "gemm",
            &constants,
            &params,
            &[r(a), r(b), bias_bind(), w(out.buffer())],
            groups,
        )?;
        return Ok(out);
    }
    let partial = gpu.alloc("conv2d split-K", (splits * m * n * 4) as u64)?;
    gpu.dispatch(
        SHADER,
        "gemm",
        &constants,
        &params,
        &[r(a), r(b), gpu.unused(), w(&partial)],
        groups,
    )?;
    gpu.dispatch(
        SHADER,
        "splitk_reduce",
        &[],
        &params,
        &[r(&partial), gpu.unused(), bias_bind(), w(out.buffer())],
        gpu.grid_1d((m * n) as u64, 256),
    )?;
    Ok(out)
}

/// Forward convolution without autograd: y = conv(x, w) + bias.
pub fn conv2d_forward_raw(
    x: &Tensor,
    wt: &Tensor,
    bias: Option<&Tensor>,
    g: &ConvGeom,
    cfg: &GemmConfig,
) -> Result<Tensor> {
    forward_into(x, wt, bias, g, &g.out_shape(), cfg)
}

/// Forward GEMM with the result in `out_shape` (NCHW, or [N, Co] for linear).
pub(super) fn forward_into(
    x: &Tensor,
    wt: &Tensor,
    bias: Option<&Tensor>,
    g: &ConvGeom,
    out_shape: &[usize],
    cfg: &GemmConfig,
) -> Result<Tensor> {
    let gpu = x.gpu();
    gpu.add_flops(g.flops());
    tune::run(gpu, GemmMode::Forward, g, cfg, |c| {
        if family_for(gpu, g, c) == Family::Texture {
            return conv_tex::forward(x, wt, bias, g, out_shape, &c.tex());
        }
        gemm(
            GemmMode::Forward,
            g,
            wt.buffer(),
            x.buffer(),
            bias.map(|b| b.buffer()),
            out_shape,
            c,
        )
    })
}

/// dL/dx of a convolution given dL/dy (no autograd).
pub fn conv2d_input_grad_raw(
    dy: &Tensor,
    wt: &Tensor,
    g: &ConvGeom,
    cfg: &GemmConfig,
) -> Result<Tensor> {
    let gpu = dy.gpu();
    gpu.add_flops(g.flops());
    tune::run(gpu, GemmMode::InputGrad, g, cfg, |c| {
        if family_for(gpu, g, c) == Family::Texture {
            return conv_tex::input_grad(dy, wt, g, &c.tex());
        }
        gemm(
            GemmMode::InputGrad,
            g,
            wt.buffer(),
            dy.buffer(),
            None,
            &[g.batch, g.ci, g.h, g.w],
            c,
        )
    })
}

/// dL/dw of a convolution given dL/dy and the input x (no autograd).
pub fn conv2d_weight_grad_raw(
    dy: &Tensor,
    x: &Tensor,
    g: &ConvGeom,
    cfg: &GemmConfig,
) -> Result<Tensor> {
    let gpu = dy.gpu();
    gpu.add_flops(g.flops());
    tune::run(gpu, GemmMode::WeightGrad, g, cfg, |c| {
        if family_for(gpu, g, c) == Family::Texture {
            return conv_tex::weight_grad(dy, x, g, &c.tex());
        }
        gemm(
            GemmMode::WeightGrad,
            g,
            dy.buffer(),
            x.buffer(),
            None,
            &[g.co, g.ci, g.kh, g.kw],
            c,
        )
    })
}

/// Bias gradient: per-output-channel sum of dy over batch and space.
pub(super) fn bias_grad(dy: &Tensor, co: usize) -> Result<Tensor> {
    let d = dy.shape();
    let s = if d.len() == 4 {
        vec![1, co, 1, 1]
    } else {
        vec![1, co]
    };
    super::reduce::sum_to_shape(dy, &s)?.reshape(&[co])
}

fn check_inputs(
    op: &'static str,
    x: &Tensor,
    wt: &Tensor,
    bias: Option<&Tensor>,
    co: usize,
) -> Result<()> {
    x.expect_f32(op)?;
    wt.expect_f32(op)?;
    if let Some(b) = bias {
        b.expect_f32(op)?;
        if b.shape() != [co] {
            return Err(Error::shape(
                op,
                b.shape(),
                wt.shape(),
                format!("bias must be [{co}] (one value per output channel)"),
            ));
        }
    }
    Ok(())
}

/// Records the shared backward of conv2d and linear.
fn with_backward(
    out: Tensor,
    name: &'static str,
    x: &Tensor,
    wt: &Tensor,
    bias: Option<&Tensor>,
    g: ConvGeom,
    cfg: GemmConfig,
) -> Tensor {
    let x_shape = x.shape().to_vec();
    let w_shape = wt.shape().to_vec();
    Tensor::from_op_opt(out, name, [Some(x), Some(wt), bias], move |needs| {
        // dx needs only w, dw only x: through a frozen layer (D while G trains) the weight is
        // not kept, and for a first layer (input needs no grad) the input is not.
        let xd = needs[1].then(|| x.detach());
        let wd = needs[0].then(|| wt.detach());
        move |dy: &Tensor, needs: [bool; 3]| {
            let dx = match (&wd, needs[0]) {
                (Some(wd), true) => {
                    Some(conv2d_input_grad_raw(dy, wd, &g, &cfg)?.reshape(&x_shape)?)
                }
                _ => None,
            };
            let dw = match (&xd, needs[1]) {
                (Some(xd), true) => {
                    Some(conv2d_weight_grad_raw(dy, xd, &g, &cfg)?.reshape(&w_shape)?)
                }
                _ => None,
            };
            let db = if needs[2] {
                Some(bias_grad(dy, g.co)?)
            } else {
                None
            };
            Ok([dx, dw, db])
        }
    })
}

/// 2-d convolution, PyTorch semantics (zero padding, groups = 1):
/// x [N, Ci, H, W], w [Co, Ci, KH, KW], bias [Co] → [N, Co, OH, OW].
pub fn conv2d(x: &Tensor, wt: &Tensor, bias: Option<&Tensor>, p: &Conv2dParams) -> Result<Tensor> {
    conv2d_with(x, wt, bias, p, &GemmConfig::default())
}

/// [`conv2d`] with the kernel configuration overridden (tests, tuning).
pub fn conv2d_with(
    x: &Tensor,
    wt: &Tensor,
    bias: Option<&Tensor>,
    p: &Conv2dParams,
    cfg: &GemmConfig,
) -> Result<Tensor> {
    let g = ConvGeom::new(x.shape(), wt.shape(), p)?;
    check_inputs("conv2d", x, wt, bias, g.co)?;
    let act = super::split_grad::over(x, x.shape()) || super::split_grad::over(x, &g.out_shape());
    let grads = [Some(x), Some(wt), bias]
        .into_iter()
        .flatten()
        .any(|t| t.requires_grad());
    if act {
        // Batch chunks are exact (each image's GEMM is the unsplit one's); the channel groups
        // of inference reassociate the sum over input channels but fit a single huge image.
        let grad = crate::autograd::is_grad_enabled() && grads;
        if grad || g.image_bytes() <= x.gpu().binding_limit() || g.batch > 1 {
            return by_batch(x, wt, bias, p, &g, cfg, grad);
        }
        return super::split_act::conv(x, wt, bias, &g, cfg);
    }
    if super::split::needed(wt) {
        return super::split::out_features("conv2d", x, wt, bias, &g, &g.out_shape(), cfg);
    }
    let out = conv2d_forward_raw(x, wt, bias, &g, cfg)?;
    Ok(with_backward(out, "conv2d", x, wt, bias, g, *cfg))
}

/// conv2d on an input or output over one binding: batch chunks of as many
/// images as fit (the weight and bias whole, their gradients summed over chunks). A single
/// image over a binding is refused with gradients (the channel groups of inference record no
/// backward); without, it goes alone and by channel groups.
fn by_batch(
    x: &Tensor,
    wt: &Tensor,
    bias: Option<&Tensor>,
    p: &Conv2dParams,
    g: &ConvGeom,
    cfg: &GemmConfig,
    grad: bool,
) -> Result<Tensor> {
    use super::split_grad::{groups, run, Cut, Join};
    let per = g.image_bytes();
    let chunks = if !grad && per > x.gpu().binding_limit() {
        // One image per chunk, each then convolved by channel groups (inference only).
        (0..g.batch).map(|i| i..i + 1).collect()
    } else {
        groups("conv2d", x, g.batch, per as usize, || {
            format!(
                "one image of input {:?} / output {:?} with gradients",
                x.shape(),
                g.out_shape()
            )
        })?
    };
    let mut ins = vec![(x, Cut::Along(0)), (wt, Cut::Whole)];
    ins.extend(bias.map(|b| (b, Cut::Whole)));
    run(
        "conv2d",
        &ins,
        &chunks,
        Join::Along(0, g.out_shape().to_vec()),
        |t, _| conv2d_with(&t[0], &t[1], t.get(2), p, cfg),
    )
}

/// Fully connected layer: x [N, in], w [out, in], b [out] → x·wᵀ + b, [N, out].
pub fn linear(x: &Tensor, wt: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    linear_with(x, wt, bias, &GemmConfig::default())
}

/// [`linear`] with the kernel configuration overridden (tests, tuning).
pub fn linear_with(
    x: &Tensor,
    wt: &Tensor,
    bias: Option<&Tensor>,
    cfg: &GemmConfig,
) -> Result<Tensor> {
    const OP: &str = "linear";
    if x.ndim() != 2 || wt.ndim() != 2 || x.shape()[1] != wt.shape()[1] {
        return Err(Error::shape(
            OP,
            x.shape(),
            wt.shape(),
            "input must be [N, in] and weight [out, in]",
        ));
    }
    if x.numel() == 0 || wt.numel() == 0 {
        return Err(Error::shape(
            OP,
            x.shape(),
            wt.shape(),
            "empty input or weight",
        ));
    }
    let g = ConvGeom::linear(x.shape()[0], x.shape()[1], wt.shape()[0]);
    check_inputs(OP, x, wt, bias, g.co)?;
    if super::split::needed(wt) {
        return super::split::out_features(OP, x, wt, bias, &g, &[g.batch, g.co], cfg);
    }
    let out = forward_into(x, wt, bias, &g, &[g.batch, g.co], cfg)?;
    Ok(with_backward(out, OP, x, wt, bias, g, *cfg))
}

/// Parity-case evaluations of this module's ops by case op name (see `ops::cases`).
pub(crate) const CASES: Cases = &[
    ("conv2d", |c: &dyn CaseArgs| -> Result<Outputs> {
        let p = Conv2dParams {
            stride: c.pair("stride", Some([1, 1]))?,
            padding: c.pair("padding", Some([0, 0]))?,
            dilation: c.pair("dilation", Some([1, 1]))?,
        };
        let b = c.opt_input("bias")?;
        Ok(conv2d(&c.input("x")?, &c.input("weight")?, b.as_ref(), &p)?.into())
    }),
    ("linear", |c: &dyn CaseArgs| -> Result<Outputs> {
        let b = c.opt_input("bias")?;
        Ok(linear(&c.input("x")?, &c.input("weight")?, b.as_ref())?.into())
    }),
];
