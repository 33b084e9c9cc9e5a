//! Class activation maps: CAM (`ReLU(W_c · F)`, RRM) and Grad-CAM (EADER), both built from
//! differentiable ops so losses on the maps train the network that produced `F`.

use super::error::{NnError, Result};
use crate::autograd;
use crate::ops;
use crate::tensor::Tensor;

/// Default ε of [`minmax_normalize`]: keeps an all-zero map at zero instead of 0/0.
pub const NORM_EPS: f32 = 1e-5;

/// CAMs `ReLU(conv1x1(F, W))` [N, K, h, w] for features F [N, C, h, w] and classifier weights
/// W as [K, C] (linear) or [K, C, 1, 1] (1×1 conv); no bias, as in CAM.
pub fn cam(features: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let ws = weight.shape();
    let w = match ws.len() {
        2 => weight.reshape(&[ws[0], ws[1], 1, 1])?,
        4 if ws[2] == 1 && ws[3] == 1 => weight.clone(),
        _ => {
            return Err(NnError::shape(
                "cam",
                features.shape(),
                ws,
                "classifier weight must be [K, C] or [K, C, 1, 1]",
            ))
        }
    };
    let y = ops::conv2d(features, &w, None, &ops::Conv2dParams::new(1, 0, 1))?;
    Ok(ops::relu(&y)?)
}

/// `(x − min) / (max − min + eps)` per (n, c) map: each map spans [0, 1).
pub fn minmax_normalize(x: &Tensor, eps: f32) -> Result<Tensor> {
    let lo = ops::min_spatial(x)?;
    let hi = ops::max_spatial(x)?;
    let range = ops::add_scalar(&ops::sub(&hi, &lo)?, eps)?;
    Ok(ops::div(&ops::sub(x, &lo)?, &range)?)
}

/// Grad-CAM options.
#[derive(Clone, Copy, Debug)]
pub struct GradCamCfg {
    /// Output size (usually the input image's); `None` keeps the feature map's size.
    pub size: Option<[usize; 2]>,
    /// EADER upsamples with align_corners = False.
    pub align_corners: bool,
    /// Min–max normalise each map ([`minmax_normalize`]).
    pub normalize: bool,
    pub eps: f32,
}

impl Default for GradCamCfg {
    fn default() -> Self {
        GradCamCfg {
            size: None,
            align_corners: false,
            normalize: true,
            eps: NORM_EPS,
        }
    }
}

/// Grad-CAM of class `classes[n]` for every sample n: `A = ReLU(Σ_k α_k F_k)` with
/// `α = GAP(∂ logits[n, c_n] / ∂F)`, resized and min–max normalised → [N, 1, H, W].
///
/// `logits` [N, K] must have been computed from `features` [N, C, h, w] with the graph kept;
/// the graph is retained so a later backward can still pass through the same forward. The
/// channel weights are constants (no second-order terms), as in the official code; A stays
/// differentiable w.r.t. `features`. Samples must not interact between `features` and `logits`
/// (true for GAP + fc heads), since one backward of Σ_n logits[n, c_n] serves the whole batch.
pub fn grad_cam(
    features: &Tensor,
    logits: &Tensor,
    classes: &[usize],
    cfg: &GradCamCfg,
) -> Result<Tensor> {
    let ls = logits.shape();
    let fs = features.shape();
    if ls.len() != 2 || fs.len() != 4 || ls[0] != fs[0] || classes.len() != ls[0] {
        return Err(NnError::shape(
            "grad_cam",
            fs,
            ls,
            format!(
                "need features [N, C, h, w], logits [N, K] and N classes, got {} classes",
                classes.len()
            ),
        ));
    }
    let (n, k) = (ls[0], ls[1]);
    let mut sel = vec![0f32; n * k];
    for (i, &c) in classes.iter().enumerate() {
        if c >= k {
            return Err(NnError::invalid(
                "grad_cam",
                format!("class {c} of sample {i} is out of range for {k} logits"),
            ));
        }
        sel[i * k + c] = 1.0;
    }
    let sel = Tensor::from_f32(logits.gpu(), &sel, ls)?;
    let score = ops::sum(&ops::mul(logits, &sel)?)?;
    let g = autograd::grad(&score, &[features], true)?
        .pop()
        .flatten()
        .ok_or_else(|| NnError::invalid("grad_cam", "the logits do not depend on the features"))?;
    let alpha = ops::mean_dims(&g.detach(), &[2, 3])?;
    let a = ops::relu(&ops::sum_dims(&ops::mul(features, &alpha)?, &[1])?)?;
    let a = match cfg.size {
        Some(size) if size != [fs[2], fs[3]] => {
            ops::upsample_bilinear2d(&a, size, cfg.align_corners)?
        }
        _ => a,
    };
    if cfg.normalize {
        minmax_normalize(&a, cfg.eps)
    } else {
        Ok(a)
    }
}
