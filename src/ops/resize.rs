//! Spatial resizing with PyTorch semantics: `upsample_bilinear2d` (both align_corners modes, up
//! and down) and `upsample_nearest2d`, each with a gather backward. Shader: `shaders/resize.wgsl`.

use super::cases::{CaseArgs, Cases, Outputs};
use crate::error::{Error, Result};
use crate::gpu::{r, w};
use crate::tensor::{DType, Tensor};

const SHADER: &str = "resize";

/// Mirrors `Params` in resize.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    ih: u32,
    iw: u32,
    oh: u32,
    ow: u32,
    align_corners: u32,
    scale_h: f32,
    scale_w: f32,
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "resize", Params { n, ih, iw, oh, ow, align_corners, scale_h, scale_w });

/// PyTorch's `area_pixel_compute_scale` for a size-given resize (no scale factor).
fn bilinear_scale(n_in: usize, n_out: usize, align_corners: bool) -> f32 {
    if align_corners {
        if n_out > 1 {
            (n_in as f32 - 1.0) / (n_out as f32 - 1.0)
        } else {
            0.0
        }
    } else {
        n_in as f32 / n_out as f32
    }
}

fn check(op: &'static str, x: &Tensor, size: [usize; 2]) -> Result<()> {
    x.expect_f32(op)?;
    x.expect_ndim(op, 4)?;
    if size.contains(&0) || x.shape()[2] == 0 || x.shape()[3] == 0 {
        return Err(Error::shape(
            op,
            x.shape(),
            &size,
            "input plane and output size must be non-empty",
        ));
    }
    Ok(())
}

fn run(entry: &'static str, src: &Tensor, out_shape: &[usize], p: Params) -> Result<Tensor> {
    let gpu = src.gpu();
    let out = Tensor::empty(gpu, entry, out_shape, DType::F32)?;
    let n = out.numel();
    let p = Params { n: n as u32, ..p };
    // bilinear_fwd writes four outputs of a row per invocation when rows are whole vec4s.
    let x4 = entry == "bilinear_fwd" && p.ow.is_multiple_of(4);
    let per = if x4 { 4 } else { 1 };
    gpu.dispatch(
        SHADER,
        entry,
        &[("ALIGN", p.align_corners), ("X4", x4 as u32)],
        &p,
        &[r(src.buffer()), w(out.buffer())],
        gpu.grid_1d(n.div_ceil(per) as u64, 256),
    )?;
    Ok(out)
}

fn resize(
    op: &'static str,
    fwd: &'static str,
    bwd: &'static str,
    x: &Tensor,
    size: [usize; 2],
    p: Params,
) -> Result<Tensor> {
    let s = x.shape();
    let y = run(fwd, x, &[s[0], s[1], size[0], size[1]], p)?;
    let in_shape = s.to_vec();
    Ok(Tensor::from_op(y, op, [x], move |_| {
        move |g: &Tensor, _: [bool; 1]| Ok([Some(run(bwd, g, &in_shape, p)?)])
    }))
}

/// Bilinear resize of NCHW `x` to `size` = [h, w], like
/// `F.interpolate(x, size, mode="bilinear", align_corners=...)`.
pub fn upsample_bilinear2d(x: &Tensor, size: [usize; 2], align_corners: bool) -> Result<Tensor> {
    const OP: &str = "upsample_bilinear2d";
    check(OP, x, size)?;
    let s = x.shape();
    let p = Params {
        n: 0,
        ih: s[2] as u32,
        iw: s[3] as u32,
        oh: size[0] as u32,
        ow: size[1] as u32,
        align_corners: align_corners as u32,
        scale_h: bilinear_scale(s[2], size[0], align_corners),
        scale_w: bilinear_scale(s[3], size[1], align_corners),
    };
    if big(x, size) {
        return super::split_grad::per_channel_or_image(OP, x, size, |xg| {
            upsample_bilinear2d(xg, size, align_corners)
        });
    }
    resize(OP, "bilinear_fwd", "bilinear_bwd", x, size, p)
}

/// Whether the input or output of a resize of `x` to `size` is larger than one binding
/// (then it runs by channel groups, within batch chunks where one channel of the batch is
/// over a binding; forward and backward, exact: each channel of each image is resized on its
/// own).
fn big(x: &Tensor, size: [usize; 2]) -> bool {
    let s = x.shape();
    super::split_grad::over(x, s) || super::split_grad::over(x, &[s[0], s[1], size[0], size[1]])
}

/// Nearest resize of NCHW `x` to `size`, like `F.interpolate(x, size, mode="nearest")`.
pub fn upsample_nearest2d(x: &Tensor, size: [usize; 2]) -> Result<Tensor> {
    const OP: &str = "upsample_nearest2d";
    check(OP, x, size)?;
    let s = x.shape();
    // f32 division exactly as PyTorch's compute_scales_value<float>, so floor() picks the same pixel.
    let p = Params {
        n: 0,
        ih: s[2] as u32,
        iw: s[3] as u32,
        oh: size[0] as u32,
        ow: size[1] as u32,
        align_corners: 0,
        scale_h: s[2] as f32 / size[0] as f32,
        scale_w: s[3] as f32 / size[1] as f32,
    };
    if big(x, size) {
        return super::split_grad::per_channel_or_image(OP, x, size, |xg| {
            upsample_nearest2d(xg, size)
        });
    }
    resize(OP, "nearest_fwd", "nearest_bwd", x, size, p)
}

/// Parity-case evaluations of this module's ops by case op name (see `ops::cases`).
pub(crate) const CASES: Cases = &[
    (
        "upsample_bilinear2d",
        |c: &dyn CaseArgs| -> Result<Outputs> {
            Ok(upsample_bilinear2d(
                &c.input("x")?,
                c.pair("size", None)?,
                c.bool("align_corners", Some(false))?,
            )?
            .into())
        },
    ),
    (
        "upsample_nearest2d",
        |c: &dyn CaseArgs| -> Result<Outputs> {
            Ok(upsample_nearest2d(&c.input("x")?, c.pair("size", None)?)?.into())
        },
    ),
];
