//! 2-d batch normalisation with PyTorch semantics: batch statistics and an in-place running-stat
//! update in training mode, running statistics in eval mode; gradients for x, weight and bias
//! (each only when asked for, so frozen affine parameters cost nothing).
//! Shader: `shaders/batchnorm.wgsl`.

use super::cases::{CaseArgs, Cases, Outputs};
use crate::error::{Error, Result};
use crate::gpu::{r, w, GpuBuffer};
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

const SHADER: &str = "batchnorm";
const OP: &str = "batch_norm2d";

const TRAIN: u32 = 1;
const HAS_WEIGHT: u32 = 2;
const HAS_BIAS: u32 = 4;
const UPDATE_RUNNING: u32 = 8;

/// Mirrors `Params` in batchnorm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    c: u32,
    hw: u32,
    m: u32,
    eps: f32,
    momentum: f32,
    flags: u32,
    use_g: u32,
    om: u32,
    oa: u32,
    ob: u32,
    ok: u32,
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "batchnorm", Params { n, c, hw, m, eps, momentum, flags, use_g, om, oa, ob, ok });

fn check_param(name: &str, t: &Tensor, c: usize) -> Result<()> {
    t.expect_f32(OP)?;
    if t.shape() != [c] {
        return Err(Error::shape(
            OP,
            t.shape(),
            &[c],
            format!("{name} must have one value per channel"),
        ));
    }
    Ok(())
}

/// The shader's V4 constant: vec4 reads when every image's channel plane is whole vec4s.
fn v4(hw: u32) -> u32 {
    hw.is_multiple_of(4) as u32
}

/// Per-element pass `out = (x − T[om]) · T[oa] + T[ok] (+ g · T[ob])`, channel-indexed.
fn channel_affine(x: &Tensor, g: Option<&Tensor>, table: &GpuBuffer, p: Params) -> Result<Tensor> {
    let gpu = x.gpu();
    let out = Tensor::empty(gpu, OP, x.shape(), DType::F32)?;
    let p = Params {
        use_g: g.is_some() as u32,
        ..p
    };
    let gb = match g {
        Some(g) => r(g.buffer()),
        None => gpu.unused(),
    };
    gpu.dispatch(
        SHADER,
        "channel_affine",
        &[("V4", v4(p.hw)), ("USE_G", p.use_g)],
        &p,
        &[
            r(x.buffer()),
            w(out.buffer()),
            gpu.unused(),
            gpu.unused(),
            gpu.unused(),
            gpu.unused(),
            r(table),
            gb,
        ],
        // One vec4 per invocation.
        gpu.grid_1d(x.numel().div_ceil(4) as u64, 256),
    )?;
    Ok(out)
}

/// A `[c]` tensor copied out of a per-channel table at row `row`.
fn table_row(table: &GpuBuffer, row: usize, c: usize, gpu: &Arc<crate::Gpu>) -> Result<Tensor> {
    let t = Tensor::empty(gpu, OP, &[c], DType::F32)?;
    gpu.copy(table, (row * c * 4) as u64, t.buffer(), 0, (c * 4) as u64);
    Ok(t)
}

/// [`batch_norm2d`] on `x` over one binding, by channel groups (both modes, with or without
/// gradients): every statistic is per channel, so each group is the unsplit op on its channels.
/// A group's running statistics are gathered copies, so training's update is copied back into
/// the originals' channel range.
#[allow(clippy::too_many_arguments)]
fn by_channels(
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    running_mean: &Tensor,
    running_var: &Tensor,
    training: bool,
    momentum: f32,
    eps: f32,
) -> Result<Tensor> {
    use super::split_grad::{groups, put, run, take, Cut, Join};
    let s = x.shape();
    let cs = groups(OP, x, s[1], s[0] * s[2] * s[3] * 4, || {
        format!("one channel of {s:?}")
    })?;
    let mut ins = vec![(x, Cut::Along(1))];
    let wi = weight.map(|t| {
        ins.push((t, Cut::Along(0)));
        ins.len() - 1
    });
    let bi = bias.map(|t| {
        ins.push((t, Cut::Along(0)));
        ins.len() - 1
    });
    run(OP, &ins, &cs, Join::Along(1, s.to_vec()), |t, r| {
        let (rm, rv) = (take(running_mean, 0, r)?, take(running_var, 0, r)?);
        let y = batch_norm2d(
            &t[0],
            wi.map(|i| &t[i]),
            bi.map(|i| &t[i]),
            &rm,
            &rv,
            training,
            momentum,
            eps,
        )?;
        if training {
            put(&rm, running_mean, 0, r.start);
            put(&rv, running_var, 0, r.start);
        }
        Ok(y)
    })
}

/// `F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)` for NCHW
/// `x`. In training mode the running statistics are updated in place on the GPU
/// (`running = (1 − m)·running + m·batch`, unbiased variance for `running_var`); they never
/// receive gradients.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d(
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    running_mean: &Tensor,
    running_var: &Tensor,
    training: bool,
    momentum: f32,
    eps: f32,
) -> Result<Tensor> {
    x.expect_f32(OP)?;
    x.expect_ndim(OP, 4)?;
    let s = x.shape().to_vec();
    let (c, hw) = (s[1], s[2] * s[3]);
    let m = s[0] * hw;
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if let Some(t) = t {
            check_param(name, t, c)?;
        }
    }
    check_param("running_mean", running_mean, c)?;
    check_param("running_var", running_var, c)?;
    if training && m <= 1 {
        return Err(Error::invalid(
            OP,
            format!("training needs more than 1 value per channel, got input shape {s:?}"),
        ));
    }
    if x.numel() == 0 {
        return Err(Error::invalid(OP, format!("empty input of shape {s:?}")));
    }
    if super::split_grad::over(x, &s) {
        return by_channels(
            x,
            weight,
            bias,
            running_mean,
            running_var,
            training,
            momentum,
            eps,
        );
    }
    let gpu = x.gpu();
    let mut flags = 0;
    if training {
        flags |= TRAIN | UPDATE_RUNNING;
    }
    if weight.is_some() {
        flags |= HAS_WEIGHT;
    }
    if bias.is_some() {
        flags |= HAS_BIAS;
    }
    let base = Params {
        n: x.numel() as u32,
        c: c as u32,
        hw: hw as u32,
        m: m as u32,
        eps,
        momentum,
        flags,
        use_g: 0,
        om: 0,
        oa: 0,
        ob: 0,
        ok: 0,
    };
    let wb = weight.map_or_else(|| gpu.unused(), |t| r(t.buffer()));
    let bb = bias.map_or_else(|| gpu.unused(), |t| r(t.buffer()));
    // Forward table [mean | invstd | scale | shift]; kept for the backward (in eval mode it is a
    // snapshot, so a later running-stat update cannot change this step's gradient).
    let table = Arc::new(gpu.alloc(OP, (4 * c * 4) as u64)?);
    let binds = [
        gpu.unused(),
        w(&table),
        w(running_mean.buffer()),
        w(running_var.buffer()),
        wb,
        bb,
        gpu.unused(),
        gpu.unused(), // g: `batch_stats` shares its summing loop with `bwd_reduce`
    ];
    if training {
        let mut binds = binds;
        binds[0] = r(x.buffer());
        gpu.dispatch(
            SHADER,
            "batch_stats",
            &[("V4", v4(hw as u32))],
            &base,
            &binds,
            gpu.grid_1d(c as u64 * 64, 64),
        )?;
    } else {
        gpu.dispatch(
            SHADER,
            "running_stats",
            &[],
            &base,
            &binds,
            gpu.grid_1d(c as u64, 256),
        )?;
    }
    let fwd = Params {
        om: 0,
        oa: (2 * c) as u32,
        ok: (3 * c) as u32,
        ..base
    };
    let y = channel_affine(x, None, &table, fwd)?;

    let xd = x.detach();
    let wd = weight.map(Tensor::detach);
    Ok(Tensor::from_op_opt(
        y,
        OP,
        [Some(x), weight, bias],
        move |_| {
            move |g: &Tensor, needs: [bool; 3]| {
                let gpu = g.gpu();
                // Backward table [Σg | Σg·x̂ | mean | k_x | k_g | k_0].
                let bt = gpu.alloc(OP, (6 * c * 4) as u64)?;
                let wb = wd.as_ref().map_or_else(|| gpu.unused(), |t| r(t.buffer()));
                gpu.dispatch(
                    SHADER,
                    "bwd_reduce",
                    &[("V4", v4(hw as u32))],
                    &base,
                    &[
                        r(xd.buffer()),
                        w(&bt),
                        gpu.unused(),
                        gpu.unused(),
                        wb,
                        gpu.unused(),
                        r(&table),
                        r(g.buffer()),
                    ],
                    gpu.grid_1d(c as u64 * 64, 64),
                )?;
                let gx = if needs[0] {
                    let p = Params {
                        om: (2 * c) as u32,
                        oa: (3 * c) as u32,
                        ob: (4 * c) as u32,
                        ok: (5 * c) as u32,
                        ..base
                    };
                    Some(channel_affine(&xd, Some(g), &bt, p)?)
                } else {
                    None
                };
                let gw = if needs[1] {
                    Some(table_row(&bt, 1, c, gpu)?)
                } else {
                    None
                };
                let gb = if needs[2] {
                    Some(table_row(&bt, 0, c, gpu)?)
                } else {
                    None
                };
                Ok([gx, gw, gb])
            }
        },
    ))
}

/// Parity-case evaluations of this module's ops by case op name (see `ops::cases`).
pub(crate) const CASES: Cases = &[("batch_norm2d", |c: &dyn CaseArgs| -> Result<Outputs> {
    let x = c.input("x")?;
    let weight = c.opt_input("weight")?;
    let bias = c.opt_input("bias")?;
    let rm = c.input("running_mean")?;
    let rv = c.input("running_var")?;
    let out = batch_norm2d(
        &x,
        weight.as_ref(),
        bias.as_ref(),
        &rm,
        &rv,
        c.bool("training", None)?,
        c.f32("momentum", Some(0.1))?,
        c.f32("eps", Some(1e-5))?,
    )?;
    Ok(Outputs {
        out,
        extra: vec![("running_mean".into(), rm), ("running_var".into(), rv)],
    })
})];
