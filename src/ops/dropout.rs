//! Dropout (`dropout`, element-wise) and channel dropout (`dropout2d`, whole NCHW planes) with a
//! seeded counter-based hash RNG; the backward regenerates the mask from the seed.
//! Shader: `shaders/dropout.wgsl`.

use crate::error::{Error, Result};
use crate::gpu::{r_elems, w_elems};
use crate::tensor::{DType, Tensor};

const SHADER: &str = "dropout";

/// Mirrors `Params` in dropout.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    group: u32,
    seed_lo: u32,
    seed_hi: u32,
    threshold: u32,
    scale: f32,
    base: u32,
    _pad: u32,
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "dropout", Params { n, group, seed_lo, seed_hi, threshold, scale, base, _pad });

/// One dispatch per binding-sized piece (`Gpu::chunks`): `base` keeps each element's RNG
/// index global, so the mask is the same however the tensor is bound.
fn apply(src: &Tensor, p: Params) -> Result<Tensor> {
    let gpu = src.gpu();
    let out = Tensor::empty(gpu, "dropout", src.shape(), DType::F32)?;
    for c in gpu.chunks(src.numel(), 4) {
        let p = Params {
            n: c.len() as u32,
            base: c.start as u32,
            ..p
        };
        gpu.dispatch(
            SHADER,
            "apply",
            &[],
            &p,
            &[r_elems(src.buffer(), &c, 4), w_elems(out.buffer(), &c, 4)],
            gpu.grid_1d(c.len() as u64, 256),
        )?;
    }
    Ok(out)
}

fn dropout_impl(
    op: &'static str,
    x: &Tensor,
    prob: f32,
    training: bool,
    seed: u64,
    group: usize,
) -> Result<Tensor> {
    x.expect_f32(op)?;
    if !(0.0..=1.0).contains(&prob) {
        return Err(Error::invalid(
            op,
            format!("probability must be in [0, 1], got {prob}"),
        ));
    }
    if !training || prob == 0.0 {
        return Ok(x.clone());
    }
    let p = Params {
        n: x.numel() as u32,
        group: group.max(1) as u32,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        // 24-bit resolution; p = 1 drops everything.
        threshold: (prob as f64 * (1u64 << 24) as f64).round() as u32,
        scale: if prob < 1.0 { 1.0 / (1.0 - prob) } else { 0.0 },
        base: 0,
        _pad: 0,
    };
    let y = apply(x, p)?;
    Ok(Tensor::from_op(y, op, [x], move |_| {
        move |g: &Tensor, _: [bool; 1]| Ok([Some(apply(g, p)?)])
    }))
}

/// Zeroes each element with probability `p` and scales survivors by 1/(1−p) when `training`;
/// identity otherwise. The mask is a pure function of (`seed`, element index).
pub fn dropout(x: &Tensor, p: f32, training: bool, seed: u64) -> Result<Tensor> {
    dropout_impl("dropout", x, p, training, seed, 1)
}

/// Zeroes whole channels (H×W planes of NCHW `x`) with probability `p`, like `F.dropout2d`.
pub fn dropout2d(x: &Tensor, p: f32, training: bool, seed: u64) -> Result<Tensor> {
    x.expect_ndim("dropout2d", 4)?;
    let s = x.shape();
    dropout_impl("dropout2d", x, p, training, seed, s[2] * s[3])
}
