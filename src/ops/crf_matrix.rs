//! Dense CRF mean field, matrix path: for images of at most [`super::crf::CrfCfg::matrix_max_px`]
//! pixels, both pairwise kernels, their symmetric normalisers and Potts weights are folded into
//! one [HW, HW] operator per image, built once per call; each iteration is then one GEMM
//! (`Q · M` by [`crate::ops::linear`], so on CPU drivers the texture GEMM family) and a softmax.
//! Exact (no cell quadrature), and on rrm's 48² crops ~20× faster than re-filtering every
//! iteration (docs/PERFORMANCE.md, "rrm's label CRF"). Memory: N·HW² floats, e.g. 85 MB for
//! 4 images of 48². Several score stacks that share a guide image (rrm's `[B_α; N]`) go through
//! one GEMM per image. Shader: `shaders/crf_matrix.wgsl`; the unary/init step is crf.wgsl's.

use super::crf::{init, CrfCfg};
use crate::error::Result;
use crate::gpu::{r, w};
use crate::ops::concat::{concat, narrow_channels, split};
use crate::ops::conv::GemmConfig;
use crate::ops::conv_tex::PackedLinear;
use crate::tensor::{DType, Tensor};

const SHADER: &str = "crf_matrix";

/// Mirrors `Params` in crf_matrix.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_pos: u32,
    hw: u32,
    w: u32,
    c: u32,
    img: u32,
    flags: u32,
    _p0: u32,
    _p1: u32,
    inv2sxy_a: f32,
    inv2srgb_a: f32,
    inv2sxy_s: f32,
    w_app: f32,
    w_smooth: f32,
    _f0: f32,
    _f1: f32,
    _f2: f32,
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "crf_matrix", Params { n_pos, hw, w, c, img, flags, _p0, _p1, inv2sxy_a, inv2srgb_a, inv2sxy_s, w_app, w_smooth, _f0, _f1, _f2 });

/// Whether an image of `hw` pixels takes the matrix path: within the configured size and with
/// one image's operator inside one storage binding.
pub fn fits(cfg: &CrfCfg, hw: usize, binding_limit: u64) -> bool {
    hw <= cfg.matrix_max_px && (hw * hw * 4) as u64 <= binding_limit
}

/// Mean field for `stacks` (each [N, C, H, W]) against `image` [N, 3, H, W]; shapes already
/// checked by the caller. Returns one marginal tensor per stack.
pub(super) fn run(stacks: &[&Tensor], image: &Tensor, cfg: &CrfCfg) -> Result<Vec<Tensor>> {
    const OP: &str = "dense_crf";
    let gpu = image.gpu();
    let s = stacks[0].shape();
    let (n, c, h, wd) = (s[0], s[1], s[2], s[3]);
    let (hw, g) = (h * wd, stacks.len());
    let p = Params {
        n_pos: (n * hw) as u32,
        hw: hw as u32,
        w: wd as u32,
        c: c as u32,
        img: 0,
        flags: cfg.include_self as u32,
        _p0: 0,
        _p1: 0,
        inv2sxy_a: 1.0 / (2.0 * cfg.app_sxy * cfg.app_sxy),
        inv2srgb_a: 1.0 / (2.0 * cfg.app_srgb * cfg.app_srgb),
        inv2sxy_s: 1.0 / (2.0 * cfg.smooth_sxy * cfg.smooth_sxy),
        w_app: cfg.app_w,
        w_smooth: cfg.smooth_w,
        _f0: 0.0,
        _f1: 0.0,
        _f2: 0.0,
    };
    let nrm = Tensor::empty(gpu, OP, &[n, 2, hw], DType::F32)?;
    gpu.dispatch(
        SHADER,
        "rowsum",
        &[],
        &p,
        &[
            r(image.buffer()),
            gpu.unused(),
            gpu.unused(),
            gpu.unused(),
            w(nrm.buffer()),
        ],
        gpu.grid_1d((n * hw) as u64, 256),
    )?;
    let mats = (0..n)
        .map(|i| {
            let m = Tensor::empty(gpu, OP, &[hw, hw], DType::F32)?;
            let p = Params { img: i as u32, ..p };
            gpu.dispatch(
                SHADER,
                "build",
                &[],
                &p,
                &[
                    r(image.buffer()),
                    r(nrm.buffer()),
                    gpu.unused(),
                    gpu.unused(),
                    w(m.buffer()),
                ],
                gpu.grid_1d((hw * hw.div_ceil(16)) as u64, 256),
            )?;
            PackedLinear::new(&m, &GemmConfig::default().tex())
        })
        .collect::<Result<Vec<_>>>()?;

    // [N, G·C, H, W] is [N·G, C, HW] in memory: the per-pixel steps see N·G entries of C
    // classes, the GEMM one [G·C, HW] block per image.
    let probs = if g == 1 {
        stacks[0].clone()
    } else {
        concat(stacks, 1)?
    };
    let (logp, mut q) = init(&probs, n * g, c, hw, cfg)?;
    let gc = g * c;
    let tex = GemmConfig::default().tex();
    let up = Params {
        n_pos: (n * g * hw) as u32,
        ..p
    };
    for _ in 0..cfg.iters {
        let flat = q.reshape(&[1, n * gc * hw])?;
        let msgs = mats
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let qi = narrow_channels(&flat, i * gc * hw, gc * hw)?.reshape(&[gc, hw])?;
                m.apply(&qi, &tex)?.reshape(&[1, gc * hw])
            })
            .collect::<Result<Vec<_>>>()?;
        let msg = if n == 1 {
            msgs[0].clone()
        } else {
            concat(&msgs.iter().collect::<Vec<_>>(), 1)?
        };
        let next = Tensor::empty(gpu, OP, probs.shape(), DType::F32)?;
        gpu.dispatch(
            SHADER,
            "update",
            &[],
            &up,
            &[
                gpu.unused(),
                gpu.unused(),
                r(logp.buffer()),
                r(msg.buffer()),
                w(next.buffer()),
            ],
            gpu.grid_1d((n * g * hw) as u64, 256),
        )?;
        q = next;
    }
    if g == 1 {
        Ok(vec![q])
    } else {
        split(&q, &vec![c; g], 1)
    }
}
