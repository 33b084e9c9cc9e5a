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

use super::conv::ConvGeom;
use crate::error::{Error, Result};
use crate::gpu::{r, store_tex, tex, w, Gpu, GpuBuffer, GpuTexture};
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

const PACK: &str = "texpack";
const GEMM: &str = "texgemm";
/// Subgroup variant (`shaders/variants/texgemm_sg.wgsl`): lanes share A's fetches.
const GEMM_SG: &str = "texgemm_sg";
/// Subgroup width the variant is written for.
const SG_LANES: u32 = 8;
/// Taps a kernel can carry in its parameter block (7×7 and 8×8 kernels fit).
pub const MAX_TAPS: usize = 64;
/// Shortest reduction (in texels, 4 elements each) one split should walk.
const MIN_CHUNK: usize = 64;

type TapBlock = [[i32; 4]; MAX_TAPS / 2];

/// Mirrors `Params` in texpack.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PackParams {
    total: u32,
    c: u32,
    c4: u32,
    h: u32,
    w: u32,
    hp: u32,
    wp: u32,
    oy: i32,
    ox: i32,
    sm: u32,
    sr: u32,
    mp: u32,
    m: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
    taps: TapBlock,
}

crate::gpu::layout::params_layout!(pub(crate) fn pack_params_layout, "texpack", PackParams { total, c, c4, h, w, hp, wp, oy, ox, sm, sr, mp, m, pad0, pad1, pad2, taps });

/// Mirrors `Params` in texgemm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GemmParams {
    m: u32,
    mp: u32,
    ncol: u32,
    nn: u32,
    splits: u32,
    kt: u32,
    kchunk: u32,
    c4: u32,
    hp: u32,
    wp: u32,
    sy: u32,
    sx: u32,
    oy0: u32,
    ox0: u32,
    qh: u32,
    qw: u32,
    out_c: u32,
    out_h: u32,
    out_w: u32,
    osy: u32,
    osx: u32,
    ory: u32,
    orx: u32,
    has_bias: u32,
    vrows: u32,
    w4: u32,
    ci: u32,
    khw: u32,
    taps: TapBlock,
}

crate::gpu::layout::params_layout!(pub(crate) fn gemm_params_layout, "texgemm", GemmParams { m, mp, ncol, nn, splits, kt, kchunk, c4, hp, wp, sy, sx, oy0, ox0, qh, qw, out_c, out_h, out_w, osy, osx, ory, orx, has_bias, vrows, w4, ci, khw, taps });

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

/// One tap: texel offset in the image texture, tap index in the weight tensor.
#[derive(Clone, Copy, Debug)]
struct Tap {
    off: i32,
    src: i32,
}

fn tap_block(taps: &[Tap]) -> TapBlock {
    let mut b = [[0i32; 4]; MAX_TAPS / 2];
    for (i, t) in taps.iter().enumerate() {
        b[i / 2][(i % 2) * 2] = t.off;
        b[i / 2][(i % 2) * 2 + 1] = t.src;
    }
    b
}

fn u(v: usize, g: &ConvGeom) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        Error::invalid(
            "conv2d",
            format!("size {v} exceeds 32-bit indexing ({g:?})"),
        )
    })
}

/// Register-block rows for M output channels: the fewest padded rows, then the larger block
/// (fewer fetches per FMA).
fn pick_rm(m: usize) -> u32 {
    // Cost ∝ padded rows × (1 + 4/RM): RM + 4 fetches feed 16·RM FMAs.
    [32u32, 16, 8]
        .into_iter()
        .min_by(|&a, &b| {
            let cost = |rm: u32| m.next_multiple_of(rm as usize) as f64 * (1.0 + 4.0 / rm as f64);
            cost(a).total_cmp(&cost(b))
        })
        .expect("non-empty")
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

#[allow(clippy::too_many_arguments)]
fn pack(
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
fn pack_img(
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
fn pack_rows(
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

#[allow(clippy::too_many_arguments)]
fn run_gemm(
    gpu: &Arc<Gpu>,
    mode: u32,
    rm: u32,
    mut p: GemmParams,
    a: &GpuTexture,
    b: &GpuTexture,
    bias: Option<&GpuBuffer>,
    out: &GpuBuffer,
    cfg: &TexConfig,
    g: &ConvGeom,
) -> Result<()> {
    let sg = cfg.subgroups.unwrap_or(true) && gpu.subgroup_size() == Some(SG_LANES);
    if sg {
        // A subgroup's lanes must share one row block and one split.
        p.ncol = p.ncol.next_multiple_of(SG_LANES);
    }
    let shader = if sg { GEMM_SG } else { GEMM };
    let lanes = p.ncol as usize * (p.mp / rm) as usize;
    let kt = p.kt as usize;
    // Enough lanes to keep every core (CPU) or SM (GPU) busy; the partials cost M·nn each.
    // (A CPU driver runs a workgroup per thread: a few per core balance the load, more only
    // add partial traffic.)
    let target: usize = if gpu.summary.device_type == "Cpu" {
        1024
    } else {
        65536
    };
    let limit = gpu.summary.max_storage_buffer_binding_size as usize;
    let mn = p.m as usize * p.nn as usize;
    let max_splits = (limit / (mn * 4).max(1)).max(1);
    let splits = cfg
        .splits
        .unwrap_or_else(|| target.div_ceil(lanes.max(1)))
        .min(kt.div_ceil(MIN_CHUNK))
        .clamp(1, max_splits);
    let kchunk = kt.div_ceil(splits).max(1);
    let splits = kt.div_ceil(kchunk).max(1);
    p.splits = u(splits, g)?;
    p.kchunk = u(kchunk, g)?;
    p.has_bias = bias.is_some() as u32;
    let constants = [
        ("MODE", mode),
        ("RM", rm),
        ("TWS", gpu.texture_width_shift()),
    ];
    let grid = gpu.grid_1d((lanes * splits) as u64, 64);
    let bias_bind = || bias.map(r).unwrap_or_else(|| gpu.unused());
    if splits == 1 {
        return Ok(gpu.dispatch(
            shader,
            "gemm",
            &constants,
            &p,
            &[bias_bind(), w(out), tex(a), tex(b)],
            grid,
        )?);
    }
    let part = gpu.alloc("conv2d split-K", (splits * mn * 4) as u64)?;
    gpu.dispatch(
        shader,
        "gemm",
        &constants,
        &p,
        &[gpu.unused(), w(&part), tex(a), tex(b)],
        grid,
    )?;
    Ok(gpu.dispatch(
        GEMM,
        "splitk",
        &constants,
        &p,
        &[
            bias_bind(),
            w(out),
            gpu.unused_texture(),
            gpu.unused_texture(),
            r(&part),
        ],
        gpu.grid_1d(mn as u64, 64),
    )?)
}

fn rm_for(m: usize, cfg: &TexConfig) -> u32 {
    cfg.rm.unwrap_or_else(|| pick_rm(m))
}

/// The input of forward and weight gradient as a zero-padded image texture, with the texel
/// offset of every kernel tap from an output position's top-left input.
struct Padded {
    img: GpuTexture,
    hp: usize,
    wp: usize,
    c4: usize,
    taps: Vec<Tap>,
}

fn padded_input(x: &Tensor, g: &ConvGeom) -> Result<Padded> {
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

    #[test]
    fn block_rows_follow_padding_cost() {
        assert_eq!(pick_rm(256), 32);
        assert_eq!(pick_rm(8), 8);
        assert_eq!(pick_rm(3), 8);
        assert_eq!(pick_rm(16), 16);
    }
}
