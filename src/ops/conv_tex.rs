//! The texture GEMM family of conv2d / linear: forward, input gradient and weight gradient.
//! Shaders: `shaders/texpack.wgsl` (operand relayout into rgba32float textures) and
//! `shaders/texgemm.wgsl` (barrier-free register-blocked GEMM; its header explains the design).
//!
//! Why a second family: on CPU Vulkan drivers (lavapipe) the tiled shared-memory kernel of
//! `conv.rs` spends most of its time in storage-buffer and workgroup loads and barriers; texel
//! fetches cost a fraction of that, and a 32×4 register block per invocation needs one fetch
//! per 14 FMAs. `conv.rs` chooses between the families per shape (see `Family`).
//!
//! The input gradient of a strided convolution is split into stride phases: output rows
//! `y ≡ r (mod s)` only meet the taps `k` with `(r + pad − k·dil) ≡ 0 (mod s)`, so each phase is
//! a stride-1 GEMM over its own taps and no multiply meets an inserted zero.

mod gemm;
mod pack;

use super::conv::ConvGeom;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTexture};
use crate::tensor::{DType, Tensor};
use gemm::{rm_for, run_gemm, GemmParams};
use pack::{pack, pack_img, pack_rows, padded_input, tap_block, PackParams, Padded, Tap};

pub(crate) use gemm::gemm_params_layout;
pub(crate) use pack::pack_params_layout;

/// Taps a kernel can carry in its parameter block (7×7 and 8×8 kernels fit).
pub const MAX_TAPS: usize = 64;

/// Overrides of this family's automatic configuration (tests and tuning).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TexConfig {
    /// Rows of the register block: 8, 16 or 32.
    pub rm: Option<u32>,
    /// Split-K factor (clamped to what the reduction allows).
    pub splits: Option<usize>,
    /// Use the subgroup variant where the adapter allows it (default true).
    pub subgroups: Option<bool>,
}

fn u(v: usize, g: &ConvGeom) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        Error::invalid(
            "conv2d",
            format!("size {v} exceeds 32-bit indexing ({g:?})"),
        )
    })
}

/// Whether this family can run `g` on `gpu`: at most [`MAX_TAPS`] taps and every operand
/// texture within the device's texture limits.
pub fn supported(gpu: &Gpu, g: &ConvGeom) -> bool {
    if g.kh * g.kw > MAX_TAPS {
        return false;
    }
    let max = gpu.max_texels() as usize;
    let c4 = |c: usize| c.div_ceil(4);
    let img_x = g.batch * (g.h + 2 * g.p.padding[0]) * (g.w + 2 * g.p.padding[1]) * c4(g.ci);
    // The input-gradient image (dy plus its phase padding) is at most this large.
    let span = |k: usize, d: usize| d * (k - 1) + 1;
    let img_dy = g.batch
        * (g.oh + span(g.kh, g.p.dilation[0]) + g.h)
        * (g.ow + span(g.kw, g.p.dilation[1]) + g.w)
        * c4(g.co);
    let khw = g.kh * g.kw;
    let a_fwd = khw * c4(g.ci) * g.co.next_multiple_of(32);
    let a_dgrad = khw * c4(g.co) * g.ci.next_multiple_of(32);
    let a_wgrad =
        g.batch * g.oh * g.ow.div_ceil(4) * g.co.next_multiple_of(32) + g.batch * g.oh * g.ow;
    [img_x, img_dy, a_fwd, a_dgrad, a_wgrad]
        .iter()
        .all(|&t| t <= max)
}

/// Forward: y = conv(x, w) + bias, [N, Co, OH, OW].
pub fn forward(
    x: &Tensor,
    wt: &Tensor,
    bias: Option<&Tensor>,
    g: &ConvGeom,
    out_shape: &[usize],
    cfg: &TexConfig,
) -> Result<Tensor> {
    let gpu = x.gpu();
    let padded = padded_input(x, g)?;
    let rm = rm_for(g.co, cfg);
    let mp = g.co.next_multiple_of(rm as usize);
    let khw = g.kh * g.kw;
    let a = pack_rows(
        gpu,
        wt.buffer(),
        g.co,
        mp,
        g.ci,
        [g.ci * khw, khw],
        &padded.taps,
        g,
    )?;
    forward_packed(&padded, &a, rm, mp, bias, g, out_shape, cfg)
}

/// The forward GEMM on an already packed input image and weight.
#[allow(clippy::too_many_arguments)]
fn forward_packed(
    padded: &Padded,
    a: &GpuTexture,
    rm: u32,
    mp: usize,
    bias: Option<&Tensor>,
    g: &ConvGeom,
    out_shape: &[usize],
    cfg: &TexConfig,
) -> Result<Tensor> {
    let gpu = a.gpu();
    let khw = g.kh * g.kw;
    let nn = g.batch * g.oh * g.ow;
    let mut p: GemmParams = bytemuck::Zeroable::zeroed();
    p.m = u(g.co, g)?;
    p.mp = u(mp, g)?;
    p.nn = u(nn, g)?;
    p.ncol = u(nn.div_ceil(4), g)?;
    p.kt = u(khw * padded.c4, g)?;
    p.c4 = u(padded.c4, g)?;
    p.hp = u(padded.hp, g)?;
    p.wp = u(padded.wp, g)?;
    p.sy = u(g.p.stride[0], g)?;
    p.sx = u(g.p.stride[1], g)?;
    p.qh = u(g.oh, g)?;
    p.qw = u(g.ow, g)?;
    p.out_c = p.m;
    p.out_h = p.qh;
    p.out_w = p.qw;
    p.osy = 1;
    p.osx = 1;
    p.taps = tap_block(&padded.taps);
    let out = Tensor::empty(gpu, "conv2d", out_shape, DType::F32)?;
    run_gemm(
        gpu,
        0,
        rm,
        p,
        a,
        &padded.img,
        bias.map(|b| b.buffer()),
        out.buffer(),
        cfg,
        g,
    )?;
    Ok(out)
}

/// A linear map's weight [M, K] packed once as the GEMM's A operand, for a map applied many
/// times: the CRF's matrix path multiplies by one [HW, HW] operator per image every
/// iteration, and repacking it (21 MB at 48²) cost more than the GEMM.
pub struct PackedLinear {
    a: GpuTexture,
    m: usize,
    k: usize,
    rm: u32,
    mp: usize,
}

impl PackedLinear {
    /// Packs `wt` [M, K]. Fails like [`forward`] where this family cannot hold the operands.
    pub fn new(wt: &Tensor, cfg: &TexConfig) -> Result<Self> {
        let (m, k) = (wt.shape()[0], wt.shape()[1]);
        let g = ConvGeom::linear(1, k, m);
        if !supported(wt.gpu(), &g) {
            return Err(Error::invalid(
                "linear",
                format!("weight {:?} exceeds the texture limits", wt.shape()),
            ));
        }
        let rm = rm_for(m, cfg);
        let mp = m.next_multiple_of(rm as usize);
        let taps = [Tap { off: 0, src: 0 }];
        let a = pack_rows(wt.gpu(), wt.buffer(), m, mp, k, [k, 1], &taps, &g)?;
        Ok(PackedLinear { a, m, k, rm, mp })
    }

    /// `x · wtᵀ` for `x` [N, K] → [N, M] (no graph node).
    pub fn apply(&self, x: &Tensor, cfg: &TexConfig) -> Result<Tensor> {
        if x.ndim() != 2 || x.shape()[1] != self.k {
            return Err(Error::shape(
                "linear",
                x.shape(),
                &[self.m, self.k],
                "input must be [N, in] for a packed weight [out, in]",
            ));
        }
        let g = ConvGeom::linear(x.shape()[0], self.k, self.m);
        let padded = padded_input(x, &g)?;
        forward_packed(
            &padded,
            &self.a,
            self.rm,
            self.mp,
            None,
            &g,
            &[g.batch, self.m],
            cfg,
        )
    }
}

/// One spatial dimension of the input gradient's stride phases: for output phase r, the
/// number of output positions and the taps (k, dy offset) that reach them.
struct Phase {
    r: usize,
    q: usize,
    taps: Vec<(usize, i64)>,
}

fn phases(size: usize, out: usize, k: usize, s: usize, pad: usize, d: usize) -> Vec<Phase> {
    (0..s)
        .map(|r| {
            let q = if r < size { (size - r).div_ceil(s) } else { 0 };
            let taps = (0..k)
                .filter_map(|kk| {
                    let v = r as i64 + pad as i64 - (kk * d) as i64;
                    (v.rem_euclid(s as i64) == 0).then(|| (kk, v.div_euclid(s as i64)))
                })
                // Taps whose dy rows all fall outside [0, out) contribute nothing.
                .filter(|&(_, off)| off < out as i64 && off + q as i64 > 0)
                .collect();
            Phase { r, q, taps }
        })
        .collect()
}

/// Image offset and padded extent that keep every phase's reads of dy inside the texture.
fn phase_extent(ph: &[Phase], out: usize) -> (usize, usize) {
    let used = || {
        ph.iter()
            .filter(|p| p.q > 0)
            .flat_map(|p| p.taps.iter().map(move |t| (p.q, t.1)))
    };
    let lo = used().map(|(_, off)| off).min().unwrap_or(0);
    let o0 = (-lo).max(0) as usize;
    let hi = used()
        .map(|(q, off)| q as i64 - 1 + off + o0 as i64 + 1)
        .max()
        .unwrap_or(0)
        .max((out + o0) as i64) as usize;
    (o0, hi.max(1))
}

/// Input gradient: dL/dx [N, Ci, H, W] from dL/dy, one GEMM per stride phase.
pub fn input_grad(dy: &Tensor, wt: &Tensor, g: &ConvGeom, cfg: &TexConfig) -> Result<Tensor> {
    let gpu = dy.gpu();
    let [sh, sw] = g.p.stride;
    let [dh, dw] = g.p.dilation;
    let py = phases(g.h, g.oh, g.kh, sh, g.p.padding[0], dh);
    let px = phases(g.w, g.ow, g.kw, sw, g.p.padding[1], dw);
    let (oy0, hp) = phase_extent(&py, g.oh);
    let (ox0, wp) = phase_extent(&px, g.ow);
    let c4 = g.co.div_ceil(4);
    let rm = rm_for(g.ci, cfg);
    let mp = g.ci.next_multiple_of(rm as usize);
    let khw = g.kh * g.kw;
    let img = pack_img(
        gpu,
        dy.buffer(),
        [g.batch, g.co, g.oh, g.ow],
        [hp, wp],
        [oy0 as i32, ox0 as i32],
        g,
    )?;
    let out = Tensor::empty(gpu, "conv2d", &[g.batch, g.ci, g.h, g.w], DType::F32)?;
    for fy in py.iter().filter(|p| p.q > 0) {
        for fx in px.iter().filter(|p| p.q > 0) {
            let taps: Vec<Tap> = fy
                .taps
                .iter()
                .flat_map(|&(ky, oy)| {
                    fx.taps.iter().map(move |&(kx, ox)| Tap {
                        off: ((oy * wp as i64 + ox) * c4 as i64) as i32,
                        src: (ky * g.kw + kx) as i32,
                    })
                })
                .collect();
            // A phase without taps still runs: its GEMM has an empty reduction and writes
            // the zeros its positions need.
            let a = pack_rows(
                gpu,
                wt.buffer(),
                g.ci,
                mp,
                g.co,
                [khw, g.ci * khw],
                &taps,
                g,
            )?;
            let nn = g.batch * fy.q * fx.q;
            let mut p: GemmParams = bytemuck::Zeroable::zeroed();
            p.m = u(g.ci, g)?;
            p.mp = u(mp, g)?;
            p.nn = u(nn, g)?;
            p.ncol = u(nn.div_ceil(4), g)?;
            p.kt = u(taps.len() * c4, g)?;
            p.c4 = u(c4, g)?;
            p.hp = u(hp, g)?;
            p.wp = u(wp, g)?;
            p.sy = 1;
            p.sx = 1;
            p.oy0 = u(oy0, g)?;
            p.ox0 = u(ox0, g)?;
            p.qh = u(fy.q, g)?;
            p.qw = u(fx.q, g)?;
            p.out_c = p.m;
            p.out_h = u(g.h, g)?;
            p.out_w = u(g.w, g)?;
            p.osy = u(sh, g)?;
            p.osx = u(sw, g)?;
            p.ory = u(fy.r, g)?;
            p.orx = u(fx.r, g)?;
            p.taps = tap_block(&taps);
            run_gemm(gpu, 0, rm, p, &a, &img, None, out.buffer(), cfg, g)?;
        }
    }
    Ok(out)
}

/// Weight gradient: dL/dw [Co, Ci, KH, KW] = Σ over pixels of dy ⊗ im2col(x).
pub fn weight_grad(dy: &Tensor, x: &Tensor, g: &ConvGeom, cfg: &TexConfig) -> Result<Tensor> {
    let gpu = dy.gpu();
    let Padded {
        img,
        hp,
        wp,
        c4,
        taps,
    } = padded_input(x, g)?;
    let rm = rm_for(g.co, cfg);
    let mp = g.co.next_multiple_of(rm as usize);
    let khw = g.kh * g.kw;
    let ohw = g.oh * g.ow;
    // A pointwise stride-1 convolution (and a linear layer) reads its pixels contiguously:
    // one view row over all of them wastes no row padding.
    let flat = g.p.stride == [1, 1] && g.p.padding == [0, 0] && khw == 1;
    let (rows, len, vrows) = if flat {
        (1, g.batch * ohw, 1)
    } else {
        (g.batch * g.oh, g.ow, g.oh)
    };
    let w4 = len.div_ceil(4);
    let mut pp: PackParams = bytemuck::Zeroable::zeroed();
    pp.c = u(g.co, g)?;
    pp.c4 = u(mp, g)?;
    pp.h = u(len, g)?;
    pp.w = u(w4, g)?;
    pp.sm = u(ohw, g)?;
    let a = pack(gpu, "pack_pix", dy.buffer(), pp, rows * w4 * mp, g)?;
    let ncol = khw * c4;
    let mut p: GemmParams = bytemuck::Zeroable::zeroed();
    p.m = u(g.co, g)?;
    p.mp = u(mp, g)?;
    p.ncol = u(ncol, g)?;
    p.nn = u(4 * ncol, g)?;
    p.kt = u(rows * w4, g)?;
    p.c4 = u(c4, g)?;
    p.hp = u(hp, g)?;
    p.wp = u(wp, g)?;
    p.sy = u(g.p.stride[0], g)?;
    p.sx = u(g.p.stride[1], g)?;
    p.vrows = u(vrows, g)?;
    p.w4 = u(w4, g)?;
    p.ci = u(g.ci, g)?;
    p.khw = u(khw, g)?;
    p.taps = tap_block(&taps);
    let out = Tensor::empty(gpu, "conv2d", &[g.co, g.ci, g.kh, g.kw], DType::F32)?;
    run_gemm(gpu, 1, rm, p, &a, &img, None, out.buffer(), cfg, g)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_cover_every_tap_once() {
        // 4×4 kernel, stride 2, pad 1: each output phase meets two taps.
        let ph = phases(8, 4, 4, 2, 1, 1);
        assert_eq!(ph.len(), 2);
        let taps: usize = ph.iter().map(|p| p.taps.len()).sum();
        assert_eq!(taps, 4);
        assert!(ph.iter().all(|p| p.q == 4));
    }
}
