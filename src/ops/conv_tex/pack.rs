//! Operand packing of the texture family: NCHW tensors relaid into rgba32float textures by
//! `shaders/texpack.wgsl` (images as NHWC4, weights and pixel rows as the GEMM's A operand),
//! and the kernel taps as texel offsets.

use super::{u, MAX_TAPS};
use crate::error::Result;
use crate::gpu::{r, store_tex, Gpu, GpuBuffer, GpuTexture};
use crate::ops::conv::ConvGeom;
use crate::tensor::Tensor;
use std::sync::Arc;

const PACK: &str = "texpack";

pub(super) type TapBlock = [[i32; 4]; MAX_TAPS / 2];

/// Mirrors `Params` in texpack.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct PackParams {
    pub(super) total: u32,
    pub(super) c: u32,
    pub(super) c4: u32,
    pub(super) h: u32,
    pub(super) w: u32,
    pub(super) hp: u32,
    pub(super) wp: u32,
    pub(super) oy: i32,
    pub(super) ox: i32,
    pub(super) sm: u32,
    pub(super) sr: u32,
    pub(super) mp: u32,
    pub(super) m: u32,
    pub(super) pad0: u32,
    pub(super) pad1: u32,
    pub(super) pad2: u32,
    pub(super) taps: TapBlock,
}

crate::gpu::layout::params_layout!(pub(crate) fn pack_params_layout, "texpack", PackParams { total, c, c4, h, w, hp, wp, oy, ox, sm, sr, mp, m, pad0, pad1, pad2, taps });

/// One tap: texel offset in the image texture, tap index in the weight tensor.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tap {
    pub(super) off: i32,
    pub(super) src: i32,
}

pub(super) fn tap_block(taps: &[Tap]) -> TapBlock {
    let mut b = [[0i32; 4]; MAX_TAPS / 2];
    for (i, t) in taps.iter().enumerate() {
        b[i / 2][(i % 2) * 2] = t.off;
        b[i / 2][(i % 2) * 2 + 1] = t.src;
    }
    b
}

#[allow(clippy::too_many_arguments)]
pub(super) fn pack(
    gpu: &Arc<Gpu>,
    entry: &'static str,
    src: &GpuBuffer,
    mut prm: PackParams,
    texels: usize,
    g: &ConvGeom,
) -> Result<GpuTexture> {
    let t = gpu.alloc_texels("conv2d operand", texels as u64)?;
    prm.total = u(texels, g)?;
    gpu.dispatch(
        PACK,
        entry,
        &[("TWS", gpu.texture_width_shift())],
        &prm,
        &[r(src), store_tex(&t)],
        gpu.grid_1d(texels as u64, 64),
    )?;
    Ok(t)
}

/// NCHW `src` [b, c, h, w] as an NHWC4 image texture of `hp`×`wp` pixels whose pixel (y, x)
/// holds source pixel (y − oy, x − ox) (zero outside).
#[allow(clippy::too_many_arguments)]
pub(super) fn pack_img(
    gpu: &Arc<Gpu>,
    src: &GpuBuffer,
    [b, c, h, wd]: [usize; 4],
    [hp, wp]: [usize; 2],
    [oy, ox]: [i32; 2],
    g: &ConvGeom,
) -> Result<GpuTexture> {
    let mut p: PackParams = bytemuck::Zeroable::zeroed();
    p.c = u(c, g)?;
    p.c4 = u(c.div_ceil(4), g)?;
    p.h = u(h, g)?;
    p.w = u(wd, g)?;
    p.hp = u(hp, g)?;
    p.wp = u(wp, g)?;
    p.oy = oy;
    p.ox = ox;
    pack(gpu, "pack_img", src, p, b * hp * wp * c.div_ceil(4), g)
}

/// Weights as A[k = (tap, channel group)][m]: row m, reduction channel c of tap t is
/// `src[m·sm + c·sr + taps[t].src]`.
#[allow(clippy::too_many_arguments)]
pub(super) fn pack_rows(
    gpu: &Arc<Gpu>,
    src: &GpuBuffer,
    m: usize,
    mp: usize,
    c: usize,
    [sm, sr]: [usize; 2],
    taps: &[Tap],
    g: &ConvGeom,
) -> Result<GpuTexture> {
    let mut p: PackParams = bytemuck::Zeroable::zeroed();
    p.c = u(c, g)?;
    p.c4 = u(c.div_ceil(4), g)?;
    p.h = u(taps.len(), g)?;
    p.sm = u(sm, g)?;
    p.sr = u(sr, g)?;
    p.mp = u(mp, g)?;
    p.m = u(m, g)?;
    p.taps = tap_block(taps);
    pack(
        gpu,
        "pack_rows",
        src,
        p,
        (taps.len() * c.div_ceil(4) * mp).max(1),
        g,
    )
}

/// The input of forward and weight gradient as a zero-padded image texture, with the texel
/// offset of every kernel tap from an output position's top-left input.
pub(super) struct Padded {
    pub(super) img: GpuTexture,
    pub(super) hp: usize,
    pub(super) wp: usize,
    pub(super) c4: usize,
    pub(super) taps: Vec<Tap>,
}

pub(super) fn padded_input(x: &Tensor, g: &ConvGeom) -> Result<Padded> {
    let [ph, pw] = g.p.padding;
    let (hp, wp) = (g.h + 2 * ph, g.w + 2 * pw);
    let c4 = g.ci.div_ceil(4);
    let taps = (0..g.kh * g.kw)
        .map(|t| {
            let (ky, kx) = (t / g.kw, t % g.kw);
            Tap {
                off: ((ky * g.p.dilation[0] * wp + kx * g.p.dilation[1]) * c4) as i32,
                src: t as i32,
            }
        })
        .collect();
    let img = pack_img(
        x.gpu(),
        x.buffer(),
        [g.batch, g.ci, g.h, g.w],
        [hp, wp],
        [ph as i32, pw as i32],
        g,
    )?;
    Ok(Padded {
        img,
        hp,
        wp,
        c4,
        taps,
    })
}
