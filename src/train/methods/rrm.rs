//! `rrm`: Zhang et al. AAAI 2020, "Reliability Does Matter" (methods.md §4), end-to-end weakly
//! supervised segmentation from image-level labels only.
//!
//! Network (`--arch rrm-resnet50`, default, or `rrm-tiny`): a trunk with a CAM classification
//! branch (Dropout2d → GAP → fc8, no bias) and a parallel segmentation branch (`nn::rrm`).
//! Every step (§4.4 recipe B; with `cls_only_steps` > 0 the first steps train `L_cls` only, as
//! recipe A's first half):
//!
//! 1. `forward_all` at scale 1 (dropout seeded per step) → seg logits, image logits, features.
//! 2. Multi-scale CAM (§4.1): CAMs of the scale-1 features and of the trunk run without a graph
//!    on the input resized (bilinear, align_corners False, sizes rounded) to each other scale,
//!    each resized to the scale-1 map size and averaged. The labels built from them are
//!    non-differentiable, so scale 1 needs no graph either.
//! 3. Reliable labels (§4.2) on the GPU up to the CRF: CAMs upsampled to the crop, times the
//!    image labels, max-normalised `N_c`; `B_α = (1 − max_c N_c)^α` for α low/high; one batched
//!    `dense_crf_stacks` over both score stacks `[B_α; N]` (one operator per image on small crops) (absent classes stay in the stack with score
//!    0, i.e. clipped to 1e-5, where the official code drops them: they get ≈ 0 marginals and
//!    are excluded from every argmax). Then **one read-back per step** (the CRF marginals and
//!    `N`, in one transfer) and the sort/threshold rules on the host (`rrm_labels`), because
//!    the quantile rule needs per-class sorts; the maps are label-sized.
//! 4. `L = L_cls + CE(z, y_bg) + CE(z, y_fg) + L_dense` (§4.3): multilabel soft margin on the
//!    image logits; CE on the seg logits upsampled (bilinear, align_corners False) to the crop,
//!    split into background- and foreground-labelled pixels, each a mean over its own pixels;
//!    the gated dense energy loss on the softmax resized by `dense_scale` (bilinear), with the
//!    image (0–255), crop-validity mask and reliable labels resized by nearest neighbour.
//! 5. SGD with RRM/PSA's four groups: trunk weights ×1, trunk biases ×2, new-layer (`fc8*`)
//!    weights × `head_lr_mult`, new-layer biases × 2·`head_lr_mult`; weight decay on weights
//!    only. Poly decay by the trainer.
//!
//! Optimiser quirk of the official code (inherited from PSA's `PolyOptimizer`): `weight_decay`
//! lands in SGD's positional `momentum` slot, so the effective momentum equals the weight decay
//! (1e-5 in recipe B: practically none) and the intended 0.9 serves as the poly power.
//! `psa_momentum_quirk = true` reproduces that (momentum := weight_decay); the default uses the
//! shared `momentum` (0.9).
//!
//! Inference (§4.5): the segmentation branch upsampled (bilinear, align_corners False) to the
//! input; no CRF post-processing. Probe maps: `cam_<c>` (max-normalised CAM per foreground
//! class), `reliable_mask` (1 where the reliable label is set) and `reliable_labels` (class c
//! as c / 255, unreliable 1.0: the PNG holds raw ids, 255 = unreliable) built from the classes the classifier predicts present
//! (`cls_threshold`; probes have no image labels). Probe inputs use the run's normalisation, as
//! the trainer's probes and `predict` do. A probe larger than `crf_matrix_max_px` gets its
//! reliable labels from the label CRF at that many pixels, scaled back up (nearest): seconds,
//! where the full-size CRF took minutes.

use super::common::{channel_max, rgb255};
use super::rrm_labels;
use super::BuildEnv;
use crate::autograd::no_grad;
use crate::data::Normalise;
use crate::error::Error;
use crate::nn::arch::Model;
use crate::nn::cam::NORM_EPS;
use crate::nn::rrm::Rrm;
use crate::nn::{BnMode, Kind};
use crate::ops::crf::dense_crf_stacks;
use crate::ops::energy::{dense_energy_loss, DenseEnergyCfg};
use crate::ops::{self, concat::concat};
use crate::optim::{Optimizer, ParamGroup, Sgd, SgdConfig};
use crate::tensor::Tensor;
use crate::train::error::Result;
use crate::train::maps::{MapKind, ProbeMap};
use crate::train::method::{
    EvalSignals, Method, OptSlot, ProbeOut, StepCtx, StepLosses, StreamSpec, Subset,
};
use crate::train::models;

pub use super::rrm_config::{common_defaults, defaults, validate, RrmConfig};

/// Archs with RRM's two branches: a CAM classifier that is also a segmenter.
pub fn archs() -> Vec<&'static str> {
    crate::nn::registry::names_with(|a| a.caps.segmenter && a.caps.cam_classifier)
}

/// RRM/PSA parameter groups: [trunk weights ×1, trunk biases ×2, new weights ×m, new biases
/// ×2m]; biases without weight decay. New layers are the `fc8*` convs. Empty groups are left
/// out (rrm-resnet50's trunk convs have no biases; frozen BN parameters are skipped by SGD).
pub fn param_groups(m: &Model, new_mult: f32) -> Result<Vec<ParamGroup>> {
    let mut parts: [Vec<Tensor>; 4] = Default::default();
    for s in m.store.slots().iter().filter(|s| s.kind == Kind::Param) {
        let new = s.name.starts_with("fc8");
        let bias = s.name.ends_with(".bias");
        parts[usize::from(new) * 2 + usize::from(bias)].push(s.get()?);
    }
    let mults = [1.0, 2.0, new_mult, 2.0 * new_mult];
    Ok(parts
        .into_iter()
        .zip(mults)
        .enumerate()
        .filter(|(_, (p, _))| !p.is_empty())
        .map(|(i, (p, mult))| {
            let g = ParamGroup::new(p).lr_mult(mult);
            if i % 2 == 1 {
                g.weight_decay(0.0)
            } else {
                g
            }
        })
        .collect())
}

pub struct RrmMethod {
    cfg: RrmConfig,
    g: Model,
    bn: BnMode,
    opt: Sgd,
    lr: f32,
    seed: u64,
    classes: usize,
    ignore: i32,
    /// The run's input normalisation: probes get images without their batch's record of it.
    normalise: Normalise,
    last_maps: Vec<ProbeMap>,
}

pub fn build(env: &BuildEnv<'_>) -> Result<Box<dyn Method>> {
    let cfg: RrmConfig = env.cfg.method_config()?;
    let c = &env.cfg.common;
    if !archs().contains(&c.arch.as_str()) {
        return Err(Error::invalid(
            "rrm",
            format!(
                "arch {:?} has no RRM classification + segmentation branches; use one of {}",
                c.arch,
                archs().join(", ")
            ),
        )
        .into());
    }
    if env.classes < 2 {
        return Err(
            Error::invalid("rrm", "needs background + at least one foreground class").into(),
        );
    }
    let g = models::generator(env.gpu, &c.arch, env.classes, c.seed, false)?;
    (env.init)("G", &g)?;
    let bn = models::bn_mode(&c.bn_mode, &c.arch);
    g.apply_bn_mode(bn)?;
    let momentum = if cfg.psa_momentum_quirk {
        c.weight_decay
    } else {
        c.momentum
    };
    let opt = Sgd::new(
        param_groups(&g, c.head_lr_mult)?,
        SgdConfig {
            lr: c.lr,
            momentum,
            weight_decay: c.weight_decay,
            nesterov: false,
        },
    )?;
    Ok(Box::new(RrmMethod {
        g,
        bn,
        opt,
        lr: c.lr,
        seed: c.seed,
        classes: env.classes,
        ignore: env.ignore,
        normalise: env.cfg.normalise(),
        last_maps: Vec::new(),
        cfg,
    }))
}

/// What the label builder returns besides the labels.
struct Labels {
    /// [N·H·W] reliable labels on the host.
    host: Vec<i32>,
    /// Max-normalised CAMs [N, K, H, W] (GPU).
    norm: Tensor,
}

impl RrmMethod {
    fn net(&self) -> &Rrm {
        self.g.as_rrm().expect("build checks the arch")
    }

    /// Averaged multi-scale CAM [N, K, h, w] (no graph); `f1` are the scale-1 features.
    fn multiscale_cam(
        &self,
        x: &Tensor,
        f1: &Tensor,
        mode: BnMode,
        scales: &[f32],
    ) -> Result<Tensor> {
        no_grad(|| {
            let net = self.net();
            let base = net.cams(&f1.detach())?;
            let size = [base.shape()[2], base.shape()[3]];
            let (h, w) = (x.shape()[2] as f32, x.shape()[3] as f32);
            let mut sum = base.clone();
            let mut count = 1usize;
            for &s in scales.iter().filter(|&&s| s != 1.0) {
                let sz = [
                    ((h * s).round() as usize).max(1),
                    ((w * s).round() as usize).max(1),
                ];
                let xs = ops::upsample_bilinear2d(x, sz, false)?;
                let cam = net.cams(&net.features(&xs, mode)?)?;
                let cam = if [cam.shape()[2], cam.shape()[3]] == size {
                    cam
                } else {
                    ops::upsample_bilinear2d(&cam, size, false)?
                };
                sum = ops::add(&sum, &cam)?;
                count += 1;
            }
            Ok(ops::mul_scalar(&sum, 1.0 / count as f32)?)
        })
    }

    /// §4.2 for a batch: `cam` [N, K, h, w], `rgb` [N, 3, H, W] (0–255), `present` [N·K].
    /// One read-back.
    fn reliable(&self, cam: &Tensor, rgb: &Tensor, present: &[f32]) -> Result<Labels> {
        no_grad(|| {
            let gpu = cam.gpu().clone();
            let s = rgb.shape();
            let (n, h, w) = (s[0], s[2], s[3]);
            let k = self.classes - 1;
            let hw = h * w;
            let up = ops::upsample_bilinear2d(cam, [h, w], false)?;
            let pres = Tensor::from_f32(&gpu, present, &[n, k, 1, 1])?;
            let up = ops::mul(&up, &pres)?;
            let mx = ops::add_scalar(&ops::max_spatial(&up)?, NORM_EPS)?;
            let norm = ops::div(&up, &mx)?;
            let one_minus = ops::clamp(&ops::affine(&channel_max(&norm)?, -1.0, 1.0)?, 1e-30, 1.0)?;
            let bg = |alpha: f32| ops::exp(&ops::mul_scalar(&ops::log(&one_minus)?, alpha)?);
            let la = concat(&[&bg(self.cfg.alpha_low)?, &norm], 1)?;
            let ha = concat(&[&bg(self.cfg.alpha_high)?, &norm], 1)?;
            let q = dense_crf_stacks(&[&la, &ha], rgb, &self.cfg.crf())?;
            let flat = super::common::cat_batch(&[
                &q[0].reshape(&[q[0].numel()])?,
                &q[1].reshape(&[q[1].numel()])?,
                &norm.reshape(&[norm.numel()])?,
            ])?;
            let v = flat.to_vec_f32()?;
            let c = self.classes;
            let (qv, nv) = v.split_at(2 * n * c * hw);
            let rules = self.cfg.rules(self.ignore);
            let mut host = Vec::with_capacity(n * hw);
            for i in 0..n {
                let p: Vec<bool> = present[i * k..(i + 1) * k]
                    .iter()
                    .map(|&v| v > 0.5)
                    .collect();
                host.extend(rrm_labels::reliable_labels(
                    &nv[i * k * hw..(i + 1) * k * hw],
                    &qv[i * c * hw..(i + 1) * c * hw],
                    &qv[(n + i) * c * hw..(n + i + 1) * c * hw],
                    &p,
                    hw,
                    &rules,
                ));
            }
            Ok(Labels { host, norm })
        })
    }

    /// Seg logits upsampled (bilinear, align_corners False) to `size`.
    fn seg_up(&self, seg: &Tensor, size: [usize; 2]) -> Result<Tensor> {
        if seg.shape()[2..] == size {
            return Ok(seg.clone());
        }
        Ok(ops::upsample_bilinear2d(seg, size, false)?)
    }

    /// Display maps of reliable labels [N, H, W]: (mask 0/1, labels as id / 255 with 1.0 = unreliable).
    fn label_maps(
        &self,
        gpu: &std::sync::Arc<crate::gpu::Gpu>,
        labels: &[i32],
        [n, h, w]: [usize; 3],
    ) -> Result<[Tensor; 2]> {
        let mask: Vec<f32> = labels
            .iter()
            .map(|&l| f32::from(u8::from(l != self.ignore)))
            .collect();
        // The snapshot contract for label maps (the app's viewer, the run dir's 8-bit PNGs):
        // id / 255, unreliable = 1.0 (the ignore index 255), so the PNG holds the raw ids.
        let lab: Vec<f32> = labels
            .iter()
            .map(|&l| {
                if l == self.ignore {
                    1.0
                } else {
                    l as f32 / 255.0
                }
            })
            .collect();
        Ok([
            Tensor::from_f32(gpu, &mask, &[n, 1, h, w])?,
            Tensor::from_f32(gpu, &lab, &[n, 1, h, w])?,
        ])
    }
}

/// The class-balanced CE targets: (background-only, foreground-only) label maps.
pub fn split_bg_fg(labels: &[i32], ignore: i32) -> (Vec<i32>, Vec<i32>) {
    labels
        .iter()
        .map(|&l| match l {
            0 => (0, ignore),
            l if l == ignore => (ignore, ignore),
            l => (ignore, l),
        })
        .unzip()
}

impl Method for RrmMethod {
    fn name(&self) -> &'static str {
        "rrm"
    }
    fn streams(&self) -> Vec<StreamSpec> {
        vec![StreamSpec {
            name: "train",
            subset: Subset::All,
        }]
    }
    fn models(&self) -> Vec<(&'static str, &Model)> {
        vec![("G", &self.g)]
    }
    fn optimizers(&mut self) -> Vec<OptSlot<'_>> {
        vec![OptSlot {
            name: "G",
            opt: &mut self.opt,
            base_lr: self.lr,
        }]
    }

    /// Reads the CRF marginals back once per step (see the module doc).
    fn step(&mut self, ctx: &mut StepCtx<'_>) -> Result<StepLosses> {
        self.opt.zero_grad();
        let b = ctx.next("train")?;
        let x = &b.images;
        let gpu = x.gpu().clone();
        let s = x.shape().to_vec();
        let (n, h, w) = (s[0], s[2], s[3]);
        let k = self.classes - 1;
        let y = ops::concat::split(&b.image_labels, &[1, k], 1)?
            .pop()
            .expect("two parts");
        let seed = crate::rng::Rng::derive_named(self.seed, &format!("rrm_dropout_{}", ctx.step))
            .next_u64();
        let out = self.net().forward_all(x, self.bn, Some(seed))?;
        let l_cls = ops::loss::multilabel_soft_margin(&out.cls, &y)?;
        let mut losses: StepLosses = vec![("loss_cls".into(), l_cls.detach())];
        if ctx.step < self.cfg.cls_only_steps {
            l_cls.backward()?;
            self.opt.step()?;
            losses.push(("loss".into(), l_cls.detach()));
            return Ok(losses);
        }

        let present: Vec<f32> = (0..n)
            .flat_map(|i| {
                b.image_labels_host[i * self.classes + 1..(i + 1) * self.classes].to_vec()
            })
            .collect();
        let rgb = rgb255(x, &b.normalise)?;
        let cam = self.multiscale_cam(x, &out.features, self.bn, &self.cfg.cam_scales)?;
        let labels = self.reliable(&cam, &rgb, &present)?;
        let frac = rrm_labels::reliable_fraction(&labels.host, self.ignore);
        let fg_frac = rrm_labels::reliable_fg_fraction(&labels.host, self.ignore);
        let (y_bg, y_fg) = split_bg_fg(&labels.host, self.ignore);

        let z = self.seg_up(&out.seg, [h, w])?;
        let ce = |t: &[i32]| -> Result<Tensor> {
            let t = Tensor::from_i32(&gpu, t, &[n, h, w])?;
            Ok(ops::loss::cross_entropy(&z, &t, self.ignore, None)?)
        };
        let l_bg = ce(&y_bg)?;
        let l_fg = ce(&y_fg)?;

        let probs = ops::softmax::softmax(&z, 1)?;
        let sc = self.cfg.dense_scale;
        let (hh, ww) = (
            ((h as f32 * sc).floor() as usize).max(1),
            ((w as f32 * sc).floor() as usize).max(1),
        );
        let (s_d, rgb_d, roi_d, lab_d) = if (hh, ww) == (h, w) {
            (
                probs.clone(),
                rgb.clone(),
                b.roi_host.clone(),
                labels.host.clone(),
            )
        } else {
            (
                ops::upsample_bilinear2d(&probs, [hh, ww], false)?,
                ops::upsample_nearest2d(&rgb, [hh, ww])?,
                rrm_labels::resize_nearest_planes(&b.roi_host, n, (h, w), (hh, ww)),
                rrm_labels::resize_nearest_planes(&labels.host, n, (h, w), (hh, ww)),
            )
        };
        let l_dense = dense_energy_loss(
            &s_d,
            &rgb_d,
            &Tensor::from_f32(&gpu, &roi_d, &[n, hh, ww])?,
            Some(&Tensor::from_i32(&gpu, &lab_d, &[n, hh, ww])?),
            &DenseEnergyCfg {
                sigma_xy: self.cfg.sigma_xy * sc,
                sigma_rgb: self.cfg.sigma_rgb,
                weight: self.cfg.dense_weight,
                ignore: self.ignore,
                ..DenseEnergyCfg::default()
            },
        )?;
        let total = ops::add(&ops::add(&l_cls, &l_bg)?, &ops::add(&l_fg, &l_dense)?)?;
        total.backward()?;
        self.opt.step()?;

        let [mask, lab] = self.label_maps(&gpu, &labels.host, [n, h, w])?;
        // The dense loss's gate at full resolution: 1 − max prob on reliable pixels (0 in
        // padding), 1 on unreliable ones.
        let gate = no_grad(|| -> Result<Tensor> {
            let roi = Tensor::from_f32(&gpu, &b.roi_host, &[n, 1, h, w])?;
            let g = ops::relu(&ops::sub(&roi, &channel_max(&probs.detach())?)?)?;
            Ok(ops::add(
                &ops::mul(&g, &mask)?,
                &ops::affine(&mask, -1.0, 1.0)?,
            )?)
        })?;
        let cam1 = if k > 1 {
            ops::concat::split(&labels.norm, &[1, k - 1], 1)?.remove(0)
        } else {
            labels.norm.clone()
        };
        self.last_maps = vec![
            ProbeMap::new("reliable_mask", MapKind::Mask, mask),
            ProbeMap::new("reliable_labels", MapKind::Labels, lab),
            ProbeMap::new("gate", MapKind::Mask, gate),
            ProbeMap::new("cam_1", MapKind::Cam, cam1),
        ];

        losses.extend([
            ("loss_ce_bg".into(), l_bg.detach()),
            ("loss_ce_fg".into(), l_fg.detach()),
            ("loss_dense".into(), l_dense.detach()),
            ("loss".into(), total.detach()),
            ("reliable_frac".into(), Tensor::full(&gpu, &[1], frac)?),
            (
                "reliable_fg_frac".into(),
                Tensor::full(&gpu, &[1], fg_frac)?,
            ),
        ]);
        Ok(losses)
    }

    fn segment(&self, x: &Tensor) -> Result<Tensor> {
        no_grad(|| {
            let s = x.shape();
            let net = self.net();
            self.seg_up(
                &net.seg_head(&net.features(x, BnMode::Frozen)?)?,
                [s[2], s[3]],
            )
        })
    }

    /// The thresholded CAM is §4.2's CAM argmax map for the GT image classes:
    /// `argmax [B_high; N_1..N_K]` with `N_c` the max-normalised multi-scale CAM and
    /// `B_high = (1 − max_c N_c)^alpha_high` (α 32 by default).
    fn eval_signals(&self, x: &Tensor, y: &Tensor, _logits: &Tensor) -> Result<EvalSignals> {
        no_grad(|| {
            let s = x.shape();
            let (n, h, w) = (s[0], s[2], s[3]);
            let k = self.classes - 1;
            let f = self.net().features(x, BnMode::Frozen)?;
            let cam = self.multiscale_cam(x, &f, BnMode::Frozen, &self.cfg.eval_cam_scales)?;
            let fg = ops::concat::split(y, &[1, k], 1)?.pop().expect("two parts");
            let up = ops::upsample_bilinear2d(&cam, [h, w], false)?;
            let up = ops::mul(&up, &fg.reshape(&[n, k, 1, 1])?)?;
            let norm = ops::div(&up, &ops::add_scalar(&ops::max_spatial(&up)?, NORM_EPS)?)?;
            let one_minus = ops::clamp(&ops::affine(&channel_max(&norm)?, -1.0, 1.0)?, 1e-30, 1.0)?;
            let bg = ops::exp(&ops::mul_scalar(
                &ops::log(&one_minus)?,
                self.cfg.alpha_high,
            )?)?;
            Ok(EvalSignals {
                cam_scores: Some(concat(&[&bg, &norm], 1)?),
                ..EvalSignals::default()
            })
        })
    }

    /// Softmax of the segmentation, each foreground class's normalised CAM, and the reliable
    /// labels the training rules would build for the classes the classifier finds present
    /// (one read-back of the image logits and one of the CRF marginals).
    fn probe(&self, x: &Tensor) -> Result<ProbeOut> {
        no_grad(|| {
            let s = x.shape();
            let (n, h, w) = (s[0], s[2], s[3]);
            let k = self.classes - 1;
            let net = self.net();
            let out = net.forward_all(x, BnMode::Frozen, None)?;
            let probs = ops::softmax::softmax(&self.seg_up(&out.seg, [h, w])?, 1)?;
            let p = ops::sigmoid(&out.cls)?.to_vec_f32()?;
            let present: Vec<f32> = p
                .iter()
                .map(|&v| f32::from(u8::from(v > self.cfg.cls_threshold)))
                .collect();
            let rgb = rgb255(x, &self.normalise)?;
            let cam =
                self.multiscale_cam(x, &out.features, BnMode::Frozen, &self.cfg.cam_scales)?;
            // Every class's CAM for display, regardless of predicted presence.
            let up = ops::upsample_bilinear2d(&cam, [h, w], false)?;
            let shown = ops::div(&up, &ops::add_scalar(&ops::max_spatial(&up)?, NORM_EPS)?)?;
            // The label CRF of a full-size probe would take the gather path (minutes at
            // 360×480): it runs on the image scaled down to the matrix path's size, and the
            // labels are scaled back up (nearest) for display.
            let max_px = self.cfg.crf_matrix_max_px;
            let host = if max_px > 0 && h * w > max_px {
                let f = (max_px as f64 / (h * w) as f64).sqrt();
                let (rh, rw) = (
                    ((h as f64 * f) as usize).max(1),
                    ((w as f64 * f) as usize).max(1),
                );
                let small = ops::upsample_bilinear2d(&rgb, [rh, rw], false)?;
                let labels = self.reliable(&cam, &small, &present)?;
                rrm_labels::resize_nearest_planes(&labels.host, n, (rh, rw), (h, w))
            } else {
                self.reliable(&cam, &rgb, &present)?.host
            };
            let [mask, lab] = self.label_maps(x.gpu(), &host, [n, h, w])?;
            let mut maps: Vec<ProbeMap> = ops::concat::split(&shown, &vec![1; k], 1)?
                .into_iter()
                .enumerate()
                .map(|(c, t)| ProbeMap::new(format!("cam_{}", c + 1), MapKind::Cam, t))
                .collect();
            maps.push(ProbeMap::new("reliable_mask", MapKind::Mask, mask));
            maps.push(ProbeMap::new("reliable_labels", MapKind::Labels, lab));
            Ok(ProbeOut { probs, maps })
        })
    }

    fn train_maps(&self) -> Vec<ProbeMap> {
        self.last_maps.clone()
    }
}
