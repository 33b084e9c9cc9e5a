//! Per-plane minimum / maximum over H×W (per (n, c) map), for min–max normalising CAMs.
//! The gradient goes to the first extremum of each plane, like `torch.max(x.flatten(2), 2)`.
//! Shader: `shaders/minmax.wgsl`.

use super::cases::{CaseArgs, Cases, Outputs};
use crate::error::{Error, Result};
use crate::gpu::{r, w};
use crate::tensor::{DType, Tensor};

const SHADER: &str = "minmax";

/// Mirrors `Params` in minmax.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    planes: u32,
    hw: u32,
    is_max: u32,
    n: u32,
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "minmax", Params { planes, hw, is_max, n });

fn extreme(x: &Tensor, is_max: bool) -> Result<Tensor> {
    let op = if is_max { "max_spatial" } else { "min_spatial" };
    x.expect_f32(op)?;
    x.expect_ndim(op, 4)?;
    let s = x.shape().to_vec();
    let planes = s[0] * s[1];
    let hw = s[2] * s[3];
    if hw == 0 {
        return Err(Error::invalid(op, format!("empty planes in input {s:?}")));
    }
    if super::split_grad::over(x, &s) {
        // Planes are reduced on their own: exact by batch chunks.
        return super::split_grad::per_image(op, x, &[s[0], s[1], 1, 1], |t| extreme(t, is_max));
    }
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, op, &[s[0], s[1], 1, 1], DType::F32)?;
    let arg = Tensor::empty(gpu, op, &[planes], DType::I32)?;
    let p = Params {
        planes: planes as u32,
        hw: hw as u32,
        is_max: is_max as u32,
        n: 0,
    };
    gpu.dispatch(
        SHADER,
        "extreme_fwd",
        &[],
        &p,
        &[r(x.buffer()), w(y.buffer()), w(arg.buffer())],
        gpu.grid_1d((planes * 256) as u64, 256),
    )?;
    Ok(Tensor::from_op(y, op, [x], move |_| {
        move |g: &Tensor, _: [bool; 1]| {
            let gpu = g.gpu();
            let dx = Tensor::empty(gpu, op, &s, DType::F32)?;
            let n = dx.numel();
            let p = Params { n: n as u32, ..p };
            gpu.dispatch(
                SHADER,
                "extreme_bwd",
                &[],
                &p,
                &[r(g.buffer()), w(dx.buffer()), gpu.unused(), r(arg.buffer())],
                gpu.grid_1d(n as u64, 256),
            )?;
            Ok([Some(dx)])
        }
    }))
}

/// Maximum of each (n, c) plane of NCHW `x`: [N, C, 1, 1].
pub fn max_spatial(x: &Tensor) -> Result<Tensor> {
    extreme(x, true)
}

/// Minimum of each (n, c) plane of NCHW `x`: [N, C, 1, 1].
pub fn min_spatial(x: &Tensor) -> Result<Tensor> {
    extreme(x, false)
}

/// Parity-case evaluations of this module's ops by case op name (see `ops::cases`).
pub(crate) const CASES: Cases = &[
    ("max_spatial", |c: &dyn CaseArgs| -> Result<Outputs> {
        Ok(max_spatial(&c.input("x")?)?.into())
    }),
    ("min_spatial", |c: &dyn CaseArgs| -> Result<Outputs> {
        Ok(min_spatial(&c.input("x")?)?.into())
    }),
];
