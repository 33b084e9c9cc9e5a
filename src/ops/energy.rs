//! RRM's gated dense (CRF) energy loss (methods.md §4.3; Tang et al. 2018, RRM
//! `DenseEnergyLoss.py`), differentiable w.r.t. the segmentation probabilities.
//!
//! The caller does the resizing: `seg` is the softmax of the upsampled logits already resized
//! by 0.5 (bilinear, align_corners = False), `image` (RGB 0–255), `roi` and `labels` resized by
//! nearest-neighbour to the same H×W. With `R` = roi, `G_i = max(0, R_i − max_k S_ik)` on
//! reliably-labelled pixels and 1 where the label is `ignore` (255), `S̃ = R·S`,
//! `A0 = W S̃` (bilateral kernel, unnormalised, self term included, σ_xy in pixels of the half-res
//! grid, i.e. 100·0.5 = 50 for RRM) and `A = G·A0`:
//!
//! `L = λ · (−1/N) Σ_{n,k,i} S̃_ik A_ik`   (negative; λ = 1e-7 in RRM).
//!
//! Gradient ([`EnergyGrad`]): `Rloss` (default) is what RRM's code returns,
//! `∂L/∂S = −2λ A R / N` (gate constant, W taken as symmetric). `Exact` is the true gradient of
//! the forward above, `−λ/N · (R (G·A0 + W(G·S̃)) − 1{argmax, gate open} Σ_k S̃ A0)`, exact for the
//! symmetric `Method::Exact` filter (the fast filter is only nearly symmetric).
//! Filter: `ops::bilateral` (default `Method::FAST`). Measured against the exact filter
//! (tests/crf.rs `energy_fast_filter_error`, 40×40 rectangles image, σ_xy 12, σ_rgb 15, K = 3):
//! loss within 0.97 % (fast is smaller in magnitude: cells mixing three colours are
//! under-counted), rloss gradient error mean 0.3 % / max 3 % of max |∂L/∂S|.
//! Shaders: `shaders/energy.wgsl` + `shaders/bilateral.wgsl`.

use crate::error::{Error, Result};
use crate::gpu::{r, w};
use crate::ops::bilateral::{self, FilterCfg, Method};
use crate::ops::reduce;
use crate::tensor::{DType, Tensor};

const SHADER: &str = "energy";
const OP: &str = "dense_energy_loss";

/// Mirrors `Params` in energy.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_pos: u32,
    k: u32,
    hw: u32,
    n_el: u32,
    has_lab: u32,
    ignore: i32,
    coef: f32,
    _pad: u32,
}

crate::gpu::layout::params_layout!(pub(crate) fn params_layout, "energy", Params { n_pos, k, hw, n_el, has_lab, ignore, coef, _pad });

/// Which gradient the backward returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EnergyGrad {
    /// RRM / rloss code: `−2λ A R / N`.
    #[default]
    Rloss,
    /// The exact gradient of the forward (gate through max included).
    Exact,
}

/// Loss settings; defaults are RRM's (`train_from_cls_weight.py`: σ_xy 100 · scale 0.5,
/// σ_rgb 15, λ 1e-7).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DenseEnergyCfg {
    /// Spatial σ in pixels of the grid `seg` lives on (already multiplied by the 0.5 scale).
    pub sigma_xy: f32,
    pub sigma_rgb: f32,
    /// λ_d.
    pub weight: f32,
    /// Label value of unreliable pixels.
    pub ignore: i32,
    pub grad: EnergyGrad,
    pub method: Method,
}

impl Default for DenseEnergyCfg {
    fn default() -> Self {
        DenseEnergyCfg {
            sigma_xy: 50.0,
            sigma_rgb: 15.0,
            weight: 1e-7,
            ignore: 255,
            grad: EnergyGrad::Rloss,
            method: Method::FAST,
        }
    }
}

fn kernel(cfg: &DenseEnergyCfg) -> FilterCfg {
    FilterCfg::bilateral(cfg.sigma_xy, cfg.sigma_rgb)
        .with_self(true)
        .with_method(cfg.method)
}

fn check_plane(t: &Tensor, n: usize, h: usize, w: usize, what: &str) -> Result<()> {
    let s = t.shape();
    let ok = s == [n, h, w] || s == [n, 1, h, w];
    if !ok {
        return Err(Error::shape(
            OP,
            s,
            &[n, h, w],
            format!("{what} must be [N, H, W] or [N, 1, H, W] matching seg"),
        ));
    }
    Ok(())
}

fn run(
    entry: &'static str,
    p: &Params,
    n: u32,
    binds: &[crate::gpu::Bind<'_>],
    gpu: &std::sync::Arc<crate::gpu::Gpu>,
) -> Result<()> {
    Ok(gpu.dispatch(SHADER, entry, &[], p, binds, gpu.grid_1d(n as u64, 256))?)
}

/// Gated dense energy loss → shape [] (0-d). `seg` [N, K, H, W] probabilities (differentiable);
/// `image` [N, 3, H, W] RGB 0–255; `roi` f32 [N, H, W] (1 inside the image, 0 in padding);
/// `labels` i32 [N, H, W] reliable labels (`cfg.ignore` = unreliable), `None` = all unreliable.
pub fn dense_energy_loss(
    seg: &Tensor,
    image: &Tensor,
    roi: &Tensor,
    labels: Option<&Tensor>,
    cfg: &DenseEnergyCfg,
) -> Result<Tensor> {
    let (n, k, h, wd) = bilateral::check(OP, seg, image)?;
    roi.expect_f32(OP)?;
    check_plane(roi, n, h, wd, "roi")?;
    if let Some(l) = labels {
        if l.dtype() != DType::I32 {
            return Err(Error::invalid(OP, "labels must be I32"));
        }
        check_plane(l, n, h, wd, "labels")?;
    }
    if !cfg.weight.is_finite() {
        return Err(Error::invalid(OP, "weight must be finite"));
    }
    let kcfg = kernel(cfg);
    let gpu = seg.gpu();
    let hw = h * wd;
    let p = Params {
        n_pos: (n * hw) as u32,
        k: k as u32,
        hw: hw as u32,
        n_el: (n * k * hw) as u32,
        has_lab: labels.is_some() as u32,
        ignore: cfg.ignore,
        coef: -cfg.weight / n as f32,
        _pad: 0,
    };
    let st = Tensor::empty(gpu, OP, seg.shape(), DType::F32)?;
    let gate = Tensor::empty(gpu, OP, &[n, hw], DType::F32)?;
    run(
        "prep",
        &p,
        p.n_pos,
        &[
            r(seg.buffer()),
            r(roi.buffer()),
            labels.map_or_else(|| gpu.unused(), |t| r(t.buffer())),
            gpu.unused(),
            gpu.unused(),
            gpu.unused(),
            w(st.buffer()),
            w(gate.buffer()),
        ],
        gpu,
    )?;
    let a0 = bilateral::filter_raw(&st, image, &kcfg)?;
    let terms = Tensor::empty(gpu, OP, seg.shape(), DType::F32)?;
    let a = Tensor::empty(gpu, OP, seg.shape(), DType::F32)?;
    run(
        "terms",
        &p,
        p.n_el,
        &[
            r(st.buffer()),
            gpu.unused(),
            gpu.unused(),
            r(a0.buffer()),
            r(gate.buffer()),
            gpu.unused(),
            w(terms.buffer()),
            w(a.buffer()),
        ],
        gpu,
    )?;
    let loss = crate::autograd::no_grad(|| reduce::sum(&terms))?;

    let seg_d = seg.detach();
    let image = image.detach();
    let roi = roi.detach();
    let labels = labels.map(Tensor::detach);
    let grad_mode = cfg.grad;
    Ok(Tensor::from_op(loss, OP, [seg], move |_| {
        move |g: &Tensor, _: [bool; 1]| {
            let gpu = g.gpu();
            let ds = Tensor::empty(gpu, OP, seg_d.shape(), DType::F32)?;
            match grad_mode {
                EnergyGrad::Rloss => run(
                    "grad_rloss",
                    &p,
                    p.n_el,
                    &[
                        gpu.unused(),
                        r(roi.buffer()),
                        gpu.unused(),
                        r(a.buffer()),
                        gpu.unused(),
                        r(g.buffer()),
                        w(ds.buffer()),
                    ],
                    gpu,
                )?,
                EnergyGrad::Exact => {
                    let gs = Tensor::empty(gpu, OP, seg_d.shape(), DType::F32)?;
                    run(
                        "gate_mul",
                        &p,
                        p.n_el,
                        &[
                            r(st.buffer()),
                            gpu.unused(),
                            gpu.unused(),
                            gpu.unused(),
                            r(gate.buffer()),
                            gpu.unused(),
                            w(gs.buffer()),
                        ],
                        gpu,
                    )?;
                    let b = bilateral::filter_raw(&gs, &image, &kcfg)?;
                    let lb = labels
                        .as_ref()
                        .map_or_else(|| gpu.unused(), |t| r(t.buffer()));
                    run(
                        "grad_exact",
                        &p,
                        p.n_pos,
                        &[
                            r(seg_d.buffer()),
                            r(roi.buffer()),
                            lb,
                            r(a0.buffer()),
                            r(b.buffer()),
                            r(g.buffer()),
                            w(ds.buffer()),
                        ],
                        gpu,
                    )?;
                }
            }
            Ok([Some(ds)])
        }
    }))
}
