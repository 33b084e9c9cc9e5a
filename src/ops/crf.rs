//! Dense CRF mean-field inference (Krähenbühl & Koltun 2011) on the GPU, forward only, with
//! pydensecrf's semantics as RRM calls it (methods.md §4.2, §4.5):
//!
//! * unary `U = −log clip(p)`, clip to [1e-5, 1] as pydensecrf's `unary_from_softmax` (used by
//!   PSA/RRM's `crf_inference`); `clip = None` keeps p (floored at 1e-30 so zero scores stay
//!   finite). Scores are not renormalised beforehand.
//! * `Q⁰ = softmax(−U)`; each iteration `Q = softmax(−U + Σ_m w_m · K̂_m Q)` with Potts
//!   compatibility (pydensecrf `compat = w_m`).
//! * Each kernel is symmetric-normalised as pydensecrf's default `NORMALIZE_SYMMETRIC`:
//!   `K̂ Q = D^{-1/2} K D^{-1/2} Q`, `D = diag(K·1)`.
//! * Kernels: Gaussian `exp(−|Δp|²/2σ_s²)` and bilateral `exp(−|Δp|²/2σ_a² − |ΔI|²/2σ_rgb²)`,
//!   positions in pixels of the given image, RGB in 0–255 (pass the un-normalised image).
//! * Self term: included by default, as pydensecrf's permutohedral lattice does (its splat/slice
//!   keeps a pixel's own contribution); `include_self = false` gives the paper's Σ_{j≠i}.
//!   Normalisation uses the same kernel (with or without self) as the messages.
//!
//! Filtering is `ops::bilateral` (default `Method::FAST`; see its measured error).
//! Shader: `shaders/crf.wgsl` (per-pixel steps) + `shaders/bilateral.wgsl`.

use crate::autograd;
use crate::error::{Error, Result};
use crate::gpu::{r, w};
use crate::ops::bilateral::{self, FilterCfg, Method};
use crate::ops::concat::{concat, split};
use crate::ops::crf_matrix;
use crate::tensor::{DType, Tensor};

const SHADER: &str = "crf";

/// Mirrors `Params` in crf.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_pos: u32,
    c: u32,
    hw: u32,
    n_el: u32,
    w_app: f32,
    w_smooth: f32,
    lo: f32,
    hi: f32,
}

impl Params {
    /// `n` maps of `c` classes over `hw` pixels; the unary clip as pydensecrf's.
    fn new(n: usize, c: usize, hw: usize, cfg: &CrfCfg) -> Self {
        Params {
            n_pos: (n * hw) as u32,
            c: c as u32,
            hw: hw as u32,
            n_el: (n * c * hw) as u32,
            w_app: cfg.app_w,
            w_smooth: cfg.smooth_w,
            lo: cfg.clip.unwrap_or(1e-30),
            hi: if cfg.clip.is_some() { 1.0 } else { f32::MAX },
        }
    }
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "crf", Params { n_pos, c, hw, n_el, w_app, w_smooth, lo, hi });

/// Mean-field settings. Defaults are RRM's label-generation CRF (methods.md §4.2, `tool/myTool.py`):
/// 10 iterations, Gaussian sxy 3 / compat 3, bilateral sxy 80 / srgb 13 / compat 10.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrfCfg {
    pub iters: usize,
    /// Gaussian (smoothness) kernel σ_xy in pixels and its Potts weight.
    pub smooth_sxy: f32,
    pub smooth_w: f32,
    /// Bilateral (appearance) kernel σ_xy in pixels, σ_rgb in 0–255 units and its Potts weight.
    pub app_sxy: f32,
    pub app_srgb: f32,
    pub app_w: f32,
    pub include_self: bool,
    /// Lower probability clip of the unary (upper clip 1); `None` = no clip.
    pub clip: Option<f32>,
    /// Filter method of the gather path.
    pub method: Method,
    /// Images of at most this many pixels take the matrix path (`ops::crf_matrix`: exact, one
    /// GEMM per iteration); larger ones the gather path with `method`. 0 = never.
    pub matrix_max_px: usize,
}

impl Default for CrfCfg {
    fn default() -> Self {
        CrfCfg::rrm_labels()
    }
}

impl CrfCfg {
    /// RRM reliable-label CRF (methods.md §4.2 step 3).
    pub fn rrm_labels() -> Self {
        CrfCfg {
            iters: 10,
            smooth_sxy: 3.0,
            smooth_w: 3.0,
            app_sxy: 80.0,
            app_srgb: 13.0,
            app_w: 10.0,
            include_self: true,
            clip: Some(1e-5),
            method: Method::FAST,
            matrix_max_px: 64 * 64,
        }
    }
    /// RRM optional inference post-processing (methods.md §4.5): bilateral sxy 83, srgb 5, compat 4.
    pub fn rrm_infer() -> Self {
        CrfCfg {
            app_sxy: 83.0,
            app_srgb: 5.0,
            app_w: 4.0,
            ..CrfCfg::rrm_labels()
        }
    }
    pub fn with_method(self, method: Method) -> Self {
        CrfCfg { method, ..self }
    }
    /// Forces the gather path (`false`) or allows the matrix path up to 64² pixels (`true`).
    pub fn with_matrix(self, on: bool) -> Self {
        CrfCfg {
            matrix_max_px: if on { 64 * 64 } else { 0 },
            ..self
        }
    }

    fn kernels(&self) -> (FilterCfg, FilterCfg) {
        let app = FilterCfg::bilateral(self.app_sxy, self.app_srgb)
            .with_self(self.include_self)
            .with_method(self.method);
        let smooth = FilterCfg::gaussian(self.smooth_sxy)
            .with_self(self.include_self)
            .with_method(self.method);
        (app, smooth)
    }
}

fn dispatch_px(
    entry: &'static str,
    p: &Params,
    n: u32,
    binds: &[crate::gpu::Bind<'_>],
    gpu: &std::sync::Arc<crate::gpu::Gpu>,
) -> Result<()> {
    Ok(gpu.dispatch(SHADER, entry, &[], p, binds, gpu.grid_1d(n as u64, 256))?)
}

/// Symmetric normaliser `1/sqrt(K·1)` of one kernel: [N, 1, H, W].
fn normaliser(image: &Tensor, kcfg: &FilterCfg, p: &Params, n: usize) -> Result<Tensor> {
    let gpu = image.gpu();
    let s = image.shape();
    let ones = Tensor::full(gpu, &[n, 1, s[2], s[3]], 1.0)?;
    let k1 = bilateral::filter_raw(&ones, image, kcfg)?;
    let nrm = Tensor::empty(gpu, "dense_crf", k1.shape(), DType::F32)?;
    let p = Params {
        n_el: p.n_pos,
        ..*p
    };
    dispatch_px(
        "norm",
        &p,
        p.n_el,
        &[
            r(k1.buffer()),
            gpu.unused(),
            gpu.unused(),
            gpu.unused(),
            gpu.unused(),
            w(nrm.buffer()),
        ],
        gpu,
    )?;
    Ok(nrm)
}

/// `K̂ Q = nrm · K(nrm · Q)`; the outer `nrm` is applied in `update`.
fn message(
    q: &Tensor,
    image: &Tensor,
    kcfg: &FilterCfg,
    nrm: &Tensor,
    p: &Params,
) -> Result<Tensor> {
    let gpu = q.gpu();
    let scaled = Tensor::empty(gpu, "dense_crf", q.shape(), DType::F32)?;
    dispatch_px(
        "scale",
        p,
        p.n_el,
        &[
            r(q.buffer()),
            r(nrm.buffer()),
            gpu.unused(),
            gpu.unused(),
            gpu.unused(),
            w(scaled.buffer()),
        ],
        gpu,
    )?;
    bilateral::filter_raw(&scaled, image, kcfg)
}

/// `logp = log(clip(p))` and `Q⁰ = softmax(logp)` of `probs` seen as [n, c, hw].
pub(super) fn init(
    probs: &Tensor,
    n: usize,
    c: usize,
    hw: usize,
    cfg: &CrfCfg,
) -> Result<(Tensor, Tensor)> {
    let gpu = probs.gpu();
    let p = Params::new(n, c, hw, cfg);
    let logp = Tensor::empty(gpu, "dense_crf", probs.shape(), DType::F32)?;
    let q = Tensor::empty(gpu, "dense_crf", probs.shape(), DType::F32)?;
    dispatch_px(
        "init",
        &p,
        p.n_pos,
        &[
            r(probs.buffer()),
            gpu.unused(),
            gpu.unused(),
            gpu.unused(),
            gpu.unused(),
            w(logp.buffer()),
            w(q.buffer()),
        ],
        gpu,
    )?;
    Ok((logp, q))
}

/// Refines class probabilities `probs` [N, C, H, W] (scores > 0; need not sum to 1) with a dense
/// CRF guided by `image` [N, 3, H, W] (RGB, 0–255). Returns the mean-field marginals
/// [N, C, H, W] (each pixel sums to 1). Forward only: the result is never part of a graph.
pub fn dense_crf(probs: &Tensor, image: &Tensor, cfg: &CrfCfg) -> Result<Tensor> {
    Ok(dense_crf_stacks(&[probs], image, cfg)?.remove(0))
}

/// [`dense_crf`] of several score stacks (each [N, C, H, W]) that share the guide `image`, e.g.
/// rrm's `[B_α; N]` at two α: the matrix path builds each image's operator once for all of
/// them. Returns the marginals of each stack, in order.
pub fn dense_crf_stacks(stacks: &[&Tensor], image: &Tensor, cfg: &CrfCfg) -> Result<Vec<Tensor>> {
    let op = "dense_crf";
    let first = stacks
        .first()
        .ok_or_else(|| Error::invalid(op, "no score stacks"))?;
    let (_, _, h, wd) = bilateral::check(op, first, image)?;
    if let Some(b) = stacks.iter().find(|t| t.shape() != first.shape()) {
        return Err(Error::shape(
            op,
            first.shape(),
            b.shape(),
            "every score stack must have the same shape",
        ));
    }
    if !(cfg.smooth_w.is_finite() && cfg.app_w.is_finite()) {
        return Err(Error::invalid(op, "Potts weights must be finite"));
    }
    if cfg.clip.is_some_and(|c| !(c > 0.0 && c < 1.0)) {
        return Err(Error::invalid(
            op,
            format!("clip must be in (0, 1), got {:?}", cfg.clip),
        ));
    }
    let (n, limit) = (first.shape()[0], image.gpu().binding_limit());
    // Both paths bind the G stacks of all images as one tensor: over a binding, images go in
    // chunks (exact: each image's CRF is its own).
    let per_image = stacks.len() * first.numel() / n.max(1) * 4;
    if n > 1 && (n * per_image) as u64 > limit {
        return by_images(stacks, image, cfg, per_image);
    }
    autograd::no_grad(|| {
        if crf_matrix::fits(cfg, h * wd, limit) {
            return crf_matrix::run(stacks, image, cfg);
        }
        if stacks.len() == 1 {
            return Ok(vec![gather(first, image, cfg)?]);
        }
        // One batch of G·N entries against the image repeated G times.
        let cat0 = |xs: &[&Tensor]| -> Result<Tensor> {
            let flat = xs
                .iter()
                .map(|t| t.reshape(&[1, t.numel()]))
                .collect::<Result<Vec<_>>>()?;
            let mut shape = xs[0].shape().to_vec();
            shape[0] *= xs.len();
            concat(&flat.iter().collect::<Vec<_>>(), 1)?.reshape(&shape)
        };
        let q = gather(&cat0(stacks)?, &cat0(&vec![image; stacks.len()])?, cfg)?;
        let per = first.numel();
        split(&q.reshape(&[1, q.numel()])?, &vec![per; stacks.len()], 1)?
            .into_iter()
            .map(|t| t.reshape(first.shape()))
            .collect()
    })
}

/// [`dense_crf_stacks`] by chunks of as many images as keep their `per_image` bytes of stacks
/// within one binding (at least one image per chunk: a single image's own limits are checked
/// by the paths it then takes).
fn by_images(
    stacks: &[&Tensor],
    image: &Tensor,
    cfg: &CrfCfg,
    per_image: usize,
) -> Result<Vec<Tensor>> {
    use super::split_grad::{put, take};
    let n = image.shape()[0];
    let k = ((image.gpu().binding_limit() as usize / per_image.max(1)).max(1)).min(n);
    let outs = stacks
        .iter()
        .map(|t| Tensor::empty(t.gpu(), "dense_crf", t.shape(), DType::F32))
        .collect::<Result<Vec<_>>>()?;
    for s0 in (0..n).step_by(k) {
        let r = s0..(s0 + k).min(n);
        let parts = stacks
            .iter()
            .map(|t| take(t, 0, &r))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = parts.iter().collect();
        let q = dense_crf_stacks(&refs, &take(image, 0, &r)?, cfg)?;
        for (qi, out) in q.iter().zip(&outs) {
            put(qi, out, 0, r.start);
        }
    }
    Ok(outs)
}

/// The gather path: every iteration filters `Q` with both kernels (`ops::bilateral`).
fn gather(probs: &Tensor, image: &Tensor, cfg: &CrfCfg) -> Result<Tensor> {
    let op = "dense_crf";
    let s = probs.shape();
    let (n, c, h, wd) = (s[0], s[1], s[2], s[3]);
    let gpu = probs.gpu();
    let (app, smooth) = cfg.kernels();
    let hw = h * wd;
    let p = Params::new(n, c, hw, cfg);
    let (logp, mut q) = init(probs, n, c, hw, cfg)?;
    let nrm_a = normaliser(image, &app, &p, n)?;
    let nrm_s = normaliser(image, &smooth, &p, n)?;
    for _ in 0..cfg.iters {
        let fa = message(&q, image, &app, &nrm_a, &p)?;
        let fs = message(&q, image, &smooth, &nrm_s, &p)?;
        let next = Tensor::empty(gpu, op, probs.shape(), DType::F32)?;
        dispatch_px(
            "update",
            &p,
            p.n_pos,
            &[
                r(logp.buffer()),
                r(fa.buffer()),
                r(nrm_a.buffer()),
                r(fs.buffer()),
                r(nrm_s.buffer()),
                w(next.buffer()),
            ],
            gpu,
        )?;
        q = next;
    }
    Ok(q)
}
