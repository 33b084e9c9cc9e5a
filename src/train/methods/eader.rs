//! `eader`: Stammes et al. 2021, "Find it if you can: end-to-end adversarial erasing"
//! (methods.md §5), from image-level labels only.
//!
//! * Localizer L: a torchvision ResNet (`--arch resnet18|50|101`, fc → the C − 1 foreground
//!   classes; class 0 of the data is background), optionally dilated (`output_stride` 8/16, the
//!   code's "resnet101deeplab" option; default 32). `p = σ(L(x))`.
//! * Attention (§5.1): Grad-CAM on the last stage (`attention = "gradcam"`, default) or CAM:
//!   `A = ReLU(Σ_k α_k F_k)` with `α = GAP(∂s_c/∂F)` constant, upsampled (align_corners
//!   False), min–max normalised; one map per (image, positive class) pair, in rounds (round r
//!   takes the r-th positive label of every image; images with fewer get an all-zero row that
//!   every term masks out).
//! * Soft erasing mask `M = σ(ω(A − σ_t))`, erased image `x̃ = x ⊙ (1 − M)` in normalised space.
//! * Adversary D_a: ResNet-18 (`adversary`), fc → C − 1, `q = σ(D_a(x̃))`.
//! * Losses (§5.2): `L_loc = BCE(p, y) + β·mean(A) + α·mean_pairs q_{n,c}`;
//!   `L_adv = BCE(q, y_full)` over the pairs' rows.
//! * Schedule (§5.3): step g updates only L when `g mod (S_L + S_A) < S_L`, else only D_a
//!   (its input detached). SGD lr 0.01, momentum 0.9, wd 1e-4 for both, no schedule: these are
//!   this method's defaults of the shared `lr`, `momentum`, `weight_decay`, `power = 0`.
//!
//! Evaluation (§5.4) scores pseudo-labels, not a segmentation network: attention maps of every
//! foreground class, kept for the image's ground-truth classes as the official code does
//! (`eval_classes = "gt"`; `predicted` keeps `p > cls_threshold` instead, which is also what
//! inference on unlabelled images does), values below `seed_threshold` (0.3) zeroed, a
//! constant background channel 1e-5, argmax. The reported mIoU is therefore the seed quality of
//! the localizer's maps.

use super::{check, non_negative, table, BuildEnv};
use crate::autograd::{self, no_grad};
use crate::error::Error;
use crate::nn::arch::{ArchOpts, Model};
use crate::nn::cam::{cam, minmax_normalize, NORM_EPS};
use crate::nn::{registry, BnMode};
use crate::ops::{self, concat::concat, loss::bce_with_logits};
use crate::optim::{Optimizer, ParamGroup, Sgd, SgdConfig};
use crate::tensor::Tensor;
use crate::train::error::Result;
use crate::train::maps::{MapKind, ProbeMap};
use crate::train::method::{
    EvalSignals, Method, OptSlot, ProbeOut, StepCtx, StepLosses, StreamSpec, Subset,
};
use crate::train::models;
use serde::{Deserialize, Serialize};

/// EADER settings; defaults are the official `train.py` values (methods.md §5.3).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EaderConfig {
    /// α on the adversary's scores of the erased classes.
    pub alpha: f32,
    /// β on the mean attention (area regulariser).
    pub beta: f32,
    /// ω, the mask's steepness.
    pub omega: f32,
    /// σ_t, the mask's threshold.
    pub sigma_t: f32,
    /// Steps per localizer phase (S_L) and adversary phase (S_A).
    pub loc_steps: usize,
    pub adv_steps: usize,
    /// `gradcam` or `cam`.
    pub attention: String,
    /// Adversary network: resnet18 / resnet50 / resnet101.
    pub adversary: String,
    /// Localizer output stride: 32 (torchvision), 16 or 8 (dilated).
    pub output_stride: usize,
    /// Seed threshold of the evaluation pseudo-labels.
    pub seed_threshold: f32,
    /// Which classes' maps the evaluation keeps: `gt` (the image's ground-truth classes, as
    /// the official code) or `predicted` (`p > cls_threshold`, for images without labels).
    pub eval_classes: String,
    /// Presence threshold on p where the image labels are not known (inference, `predicted`).
    pub cls_threshold: f32,
}

impl Default for EaderConfig {
    fn default() -> Self {
        EaderConfig {
            alpha: 0.05,
            beta: 1e-5,
            omega: 100.0,
            sigma_t: 0.5,
            loc_steps: 200,
            adv_steps: 200,
            attention: "gradcam".into(),
            adversary: "resnet18".into(),
            output_stride: 32,
            seed_threshold: 0.3,
            eval_classes: "gt".into(),
            cls_threshold: 0.5,
        }
    }
}

pub fn defaults() -> toml::Table {
    table(&EaderConfig::default())
}

/// The official optimiser settings (§5.3) as this method's shared defaults.
pub fn common_defaults(c: &mut crate::train::TrainConfig) {
    c.arch = "resnet18".into();
    c.lr = 0.01;
    c.momentum = 0.9;
    c.weight_decay = 1e-4;
    c.power = 0.0;
    c.head_lr_mult = 1.0;
    c.labeled_fraction = 1.0;
}

pub fn validate(t: &toml::Table) -> std::result::Result<(), String> {
    let c = check::<EaderConfig>(t)?;
    if !["gradcam", "cam"].contains(&c.attention.as_str()) {
        return Err(format!(
            "attention {:?} is not one of gradcam, cam",
            c.attention
        ));
    }
    if !classifiers().contains(&c.adversary.as_str()) {
        return Err(format!(
            "adversary {:?} is not one of {}",
            c.adversary,
            classifiers().join(", ")
        ));
    }
    if !["gt", "predicted"].contains(&c.eval_classes.as_str()) {
        return Err(format!(
            "eval_classes {:?} is not one of gt, predicted",
            c.eval_classes
        ));
    }
    if ![8, 16, 32].contains(&c.output_stride) {
        return Err(format!(
            "output_stride {} is not 8, 16 or 32",
            c.output_stride
        ));
    }
    if c.loc_steps == 0 {
        return Err("loc_steps must be at least 1".into());
    }
    non_negative(&[
        ("alpha", c.alpha),
        ("beta", c.beta),
        ("omega", c.omega),
        ("sigma_t", c.sigma_t),
        ("seed_threshold", c.seed_threshold),
        ("cls_threshold", c.cls_threshold),
    ])
}

/// Soft erasing mask `σ(ω (A − σ_t))`.
pub fn erase_mask(a: &Tensor, omega: f32, sigma_t: f32) -> crate::Result<Tensor> {
    ops::sigmoid(&ops::affine(a, omega, -omega * sigma_t)?)
}

/// Erased image `x ⊙ (1 − M)` for images [N, 3, H, W] and masks [N, 1, H, W].
pub fn erase(x: &Tensor, m: &Tensor) -> crate::Result<Tensor> {
    ops::mul(x, &ops::affine(m, -1.0, 1.0)?)
}

/// Whether step `g` (0-based) is a localizer step of the alternating schedule.
pub fn localizer_phase(g: usize, loc_steps: usize, adv_steps: usize) -> bool {
    g % (loc_steps + adv_steps) < loc_steps
}

/// Grad-CAM rounds from host multi-hot labels [N, C] (class 0 = background): for each round,
/// the one-hot foreground selection [N × K] (an all-zero row where an image has no r-th
/// positive) and the row validity [N]. Returns (selections, validities).
pub fn pair_rounds(labels: &[f32], n: usize, classes: usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let k = classes - 1;
    let pos: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            (1..classes)
                .filter(|&c| labels[i * classes + c] > 0.5)
                .collect()
        })
        .collect();
    let rounds = pos.iter().map(Vec::len).max().unwrap_or(0);
    let mut sels = Vec::new();
    let mut valid = Vec::new();
    for r in 0..rounds {
        let mut s = vec![0f32; n * k];
        let mut v = vec![0f32; n];
        for (i, p) in pos.iter().enumerate() {
            if let Some(&c) = p.get(r) {
                s[i * k + c - 1] = 1.0;
                v[i] = 1.0;
            }
        }
        sels.push(s);
        valid.push(v);
    }
    (sels, valid)
}

/// Networks that can be the localizer or the adversary: image-level CAM classifiers without
/// a segmentation branch.
fn classifiers() -> Vec<&'static str> {
    registry::names_with(is_classifier)
}

fn is_classifier(a: &registry::ArchSpec) -> bool {
    a.caps.cam_classifier && !a.caps.segmenter
}

/// An image-level classifier with a `k`-way fc: a torchvision ResNet (dilated to
/// `output_stride` below 32) or `tiny-cls` (output stride 4 whatever `output_stride` says).
fn classifier(
    env: &BuildEnv<'_>,
    arch: &str,
    k: usize,
    output_stride: usize,
    seed: u64,
) -> Result<Model> {
    if !registry::find(arch).is_some_and(is_classifier) {
        return Err(Error::invalid(
            "eader",
            format!(
                "{arch:?} has no image-level classifier; use one of {}",
                classifiers().join(", ")
            ),
        )
        .into());
    }
    let opts = ArchOpts {
        backbone_stride: Some(output_stride),
        ..ArchOpts::default()
    };
    let m = crate::nn::arch::build_with(arch, k, &opts)?;
    m.materialize(env.gpu, seed)?;
    Ok(m)
}

pub struct Eader {
    cfg: EaderConfig,
    loc: Model,
    adv: Model,
    bn: BnMode,
    opt_l: Sgd,
    opt_a: Sgd,
    lr: f32,
    classes: usize,
    last_maps: Vec<ProbeMap>,
}

pub fn build(env: &BuildEnv<'_>) -> Result<Box<dyn Method>> {
    let cfg: EaderConfig = env.cfg.method_config()?;
    let c = &env.cfg.common;
    if env.classes < 2 {
        return Err(
            Error::invalid("eader", "needs background + at least one foreground class").into(),
        );
    }
    let k = env.classes - 1;
    let loc = classifier(env, &c.arch, k, cfg.output_stride, c.seed)?;
    (env.init)("G", &loc)?;
    let adv = classifier(env, &cfg.adversary, k, 32, c.seed ^ 0xad5)?;
    (env.init)("D", &adv)?;
    let bn = models::bn_mode(&c.bn_mode, &c.arch);
    loc.apply_bn_mode(bn)?;
    adv.apply_bn_mode(bn)?;
    let sgd = |m: &Model| -> Result<Sgd> {
        Ok(Sgd::new(
            vec![ParamGroup::new(m.store.trainable()?)],
            SgdConfig {
                lr: c.lr,
                momentum: c.momentum,
                weight_decay: c.weight_decay,
                nesterov: false,
            },
        )?)
    };
    Ok(Box::new(Eader {
        opt_l: sgd(&loc)?,
        opt_a: sgd(&adv)?,
        loc,
        adv,
        bn,
        lr: c.lr,
        classes: env.classes,
        last_maps: Vec::new(),
        cfg,
    }))
}

impl Eader {
    /// Attention maps [N, 1, H, W] of the selected class per row (`sel` [N, K] one-hot or 0).
    fn attention(
        &self,
        f: &Tensor,
        logits: &Tensor,
        sel: &Tensor,
        size: [usize; 2],
    ) -> Result<Tensor> {
        let k = sel.shape()[1];
        let a = if self.cfg.attention == "cam" {
            let maps = cam(f, &self.loc.cam_weight()?)?;
            let sel4 = sel.reshape(&[sel.shape()[0], k, 1, 1])?;
            ops::sum_dims(&ops::mul(&maps, &sel4)?, &[1])?
        } else {
            let score = ops::sum(&ops::mul(logits, sel)?)?;
            let g = autograd::grad(&score, &[f], true)?
                .pop()
                .flatten()
                .ok_or_else(|| Error::invalid("eader", "logits do not depend on the features"))?;
            let alpha = ops::mean_dims(&g.detach(), &[2, 3])?;
            ops::relu(&ops::sum_dims(&ops::mul(f, &alpha)?, &[1])?)?
        };
        let fs = f.shape();
        let a = if [fs[2], fs[3]] != size {
            ops::upsample_bilinear2d(&a, size, false)?
        } else {
            a
        };
        Ok(minmax_normalize(&a, NORM_EPS)?)
    }

    /// Attention maps of every foreground class [N, K, H, W] (needs the graph for Grad-CAM).
    fn all_maps(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let s = x.shape();
        let (n, k) = (s[0], self.classes - 1);
        let (f, logits) = self.loc.features_and_logits(x, BnMode::Frozen, None)?;
        let maps = (0..k)
            .map(|c| {
                let mut sel = vec![0f32; n * k];
                (0..n).for_each(|i| sel[i * k + c] = 1.0);
                let sel = Tensor::from_f32(x.gpu(), &sel, &[n, k])?;
                Ok(self.attention(&f, &logits, &sel, [s[2], s[3]])?.detach())
            })
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = maps.iter().collect();
        Ok((concat(&refs, 1)?, logits.detach()))
    }
}

/// Pseudo-label scores [N, C, H, W]: a constant 1e-5 background channel and the maps [N, K,
/// H, W] of the classes present (`present` [N, K] 0/1), zeroed below `thr`.
pub fn seed_scores(maps: &Tensor, present: &Tensor, thr: f32) -> crate::Result<Tensor> {
    let s = maps.shape();
    let gpu = maps.gpu();
    let p4 = present.reshape(&[s[0], s[1], 1, 1])?;
    let keep = ops::gt(maps, &Tensor::full(gpu, &[1], thr)?)?;
    let fg = ops::mul(&ops::mul(maps, &keep)?, &p4)?;
    let bg = Tensor::full(gpu, &[s[0], 1, s[2], s[3]], 1e-5)?;
    concat(&[&bg, &fg], 1)
}

impl Method for Eader {
    fn name(&self) -> &'static str {
        "eader"
    }
    fn streams(&self) -> Vec<StreamSpec> {
        vec![StreamSpec {
            name: "train",
            subset: Subset::All,
        }]
    }
    fn models(&self) -> Vec<(&'static str, &Model)> {
        vec![("G", &self.loc), ("D", &self.adv)]
    }
    fn optimizers(&mut self) -> Vec<OptSlot<'_>> {
        vec![
            OptSlot {
                name: "L",
                opt: &mut self.opt_l,
                base_lr: self.lr,
            },
            OptSlot {
                name: "A",
                opt: &mut self.opt_a,
                base_lr: self.lr,
            },
        ]
    }

    fn step(&mut self, ctx: &mut StepCtx<'_>) -> Result<StepLosses> {
        let c = self.cfg.clone();
        self.opt_l.zero_grad();
        self.opt_a.zero_grad();
        let b = ctx.next("train")?;
        let x = &b.images;
        let gpu = x.gpu().clone();
        let s = x.shape().to_vec();
        let (n, k) = (s[0], self.classes - 1);
        let loc_phase = localizer_phase(ctx.step, c.loc_steps, c.adv_steps);
        let y = ops::concat::split(&b.image_labels, &[1, k], 1)?
            .pop()
            .expect("two parts");

        let (f, logits) = self.loc.features_and_logits(x, self.bn, None)?;
        let l_cls = bce_with_logits(&logits, &y, None)?;
        let (sels, valids) = pair_rounds(&b.image_labels_host, n, self.classes);
        let mut out: StepLosses = vec![("loss_cls".into(), l_cls.detach())];
        if sels.is_empty() {
            // No foreground in the batch: only the classification term can learn.
            if loc_phase {
                l_cls.backward()?;
                self.opt_l.step()?;
            }
            return Ok(out);
        }
        let rounds = sels.len();
        // Pair rows are image-major (row n·R + r): a channel concat of the rounds reshaped,
        // since concat works along channels only.
        let mut sel_all = vec![0f32; n * rounds * k];
        let mut row_mask = vec![0f32; n * rounds * k];
        for i in 0..n {
            for r in 0..rounds {
                let row = (i * rounds + r) * k;
                sel_all[row..row + k].copy_from_slice(&sels[r][i * k..(i + 1) * k]);
                row_mask[row..row + k].fill(valids[r][i]);
            }
        }
        let pairs: f32 = valids.iter().flatten().sum();
        let sel_all = Tensor::from_f32(&gpu, &sel_all, &[n * rounds, k])?;
        let row_mask = Tensor::from_f32(&gpu, &row_mask, &[n * rounds, k])?;
        let mut maps = Vec::new();
        let mut masks = Vec::new();
        let mut erased = Vec::new();
        for sel in &sels {
            let sel = Tensor::from_f32(&gpu, sel, &[n, k])?;
            let a = self.attention(&f, &logits, &sel, [s[2], s[3]])?;
            let m = erase_mask(&a, c.omega, c.sigma_t)?;
            erased.push(erase(x, &m)?);
            maps.push(a);
            masks.push(m);
        }
        let rows = |v: &[Tensor], c: usize, h: usize, w: usize| -> Result<Tensor> {
            Ok(concat(&v.iter().collect::<Vec<_>>(), 1)?.reshape(&[n * rounds, c, h, w])?)
        };
        let a_all = rows(&maps, 1, s[2], s[3])?;
        let mut x_er = rows(&erased, 3, s[2], s[3])?;
        let y4 = y.reshape(&[n, k, 1, 1])?;
        let y_full = rows(&vec![y4; rounds], k, 1, 1)?.reshape(&[n * rounds, k])?;

        if loc_phase {
            models::set_trainable(&self.adv, false)?;
            let q = self.adv.forward(&x_er, self.bn)?;
            let l_am = ops::mul_scalar(
                &ops::sum(&ops::mul(&ops::sigmoid(&q)?, &sel_all)?)?,
                1.0 / pairs,
            )?;
            let area = ops::mul_scalar(&ops::sum(&a_all)?, 1.0 / (pairs * (s[2] * s[3]) as f32))?;
            let l_loc = ops::add(
                &l_cls,
                &ops::add(
                    &ops::mul_scalar(&area, c.beta)?,
                    &ops::mul_scalar(&l_am, c.alpha)?,
                )?,
            )?;
            l_loc.backward()?;
            models::set_trainable(&self.adv, true)?;
            self.opt_l.step()?;
            out.push(("loss_am".into(), l_am.detach()));
            out.push(("attention_mean".into(), area.detach()));
            out.push(("loss_loc".into(), l_loc.detach()));
        } else {
            x_er = x_er.detach();
            let q = self.adv.forward(&x_er, self.bn)?;
            let l_adv = bce_with_logits(&q, &y_full, Some(&row_mask))?;
            l_adv.backward()?;
            self.opt_a.step()?;
            out.push(("loss_adv".into(), l_adv.detach()));
        }
        out.push((
            "phase_localizer".into(),
            Tensor::full(&gpu, &[1], f32::from(u8::from(loc_phase)))?,
        ));
        // First image's first erased pair, shown at snapshot time.
        self.last_maps = vec![
            ProbeMap::new("mask", MapKind::Mask, masks[0].detach()),
            ProbeMap::new("attention", MapKind::Cam, maps[0].detach()),
            ProbeMap::new(
                "erased",
                MapKind::Image,
                ops::mean_dims(&ops::sigmoid(&erased[0].detach())?, &[1])?,
            ),
        ];
        Ok(out)
    }

    fn segment(&self, x: &Tensor) -> Result<Tensor> {
        let (maps, logits) = self.all_maps(x)?;
        Ok(no_grad(|| {
            let p = ops::sigmoid(&logits)?;
            let present = ops::gt(&p, &Tensor::full(x.gpu(), &[1], self.cfg.cls_threshold)?)?;
            seed_scores(&maps, &present, self.cfg.seed_threshold)
        })?)
    }

    fn segment_labeled(&self, x: &Tensor, image_labels: &Tensor) -> Result<Tensor> {
        if self.cfg.eval_classes != "gt" {
            return self.segment(x);
        }
        let (maps, _) = self.all_maps(x)?;
        Ok(no_grad(|| {
            let k = self.classes - 1;
            let fg = ops::concat::split(image_labels, &[1, k], 1)?
                .pop()
                .expect("two parts");
            seed_scores(&maps, &fg, self.cfg.seed_threshold)
        })?)
    }

    /// The thresholded CAM is §5.4's seed: the GT classes' maps zeroed below
    /// `seed_threshold` against a 1e-5 background, which is what `segment_labeled` scores
    /// when `eval_classes = "gt"`. With `predicted`, the logits keep the predicted classes'
    /// maps and the signal the GT classes' maps of the same attention maps, computed once.
    fn eval_batch(&self, x: &Tensor, image_labels: &Tensor) -> Result<(Tensor, EvalSignals)> {
        let (logits, cam_scores) = if self.cfg.eval_classes == "gt" {
            let logits = self.segment_labeled(x, image_labels)?;
            (logits.clone(), logits)
        } else {
            let (maps, cls) = self.all_maps(x)?;
            no_grad(|| -> crate::Result<(Tensor, Tensor)> {
                let p = ops::sigmoid(&cls)?;
                let thr = Tensor::full(x.gpu(), &[1], self.cfg.cls_threshold)?;
                let predicted = seed_scores(&maps, &ops::gt(&p, &thr)?, self.cfg.seed_threshold)?;
                let k = self.classes - 1;
                let fg = ops::concat::split(image_labels, &[1, k], 1)?
                    .pop()
                    .expect("two parts");
                Ok((predicted, seed_scores(&maps, &fg, self.cfg.seed_threshold)?))
            })?
        };
        let sig = EvalSignals {
            cam_scores: Some(cam_scores),
            ..EvalSignals::default()
        };
        Ok((logits, sig))
    }

    /// Pseudo-label "probabilities" (softmax of the seed scores, for the palette and
    /// confidence views), every class's attention map, and the erasing mask and erased image
    /// of the most likely class.
    fn probe(&self, x: &Tensor) -> Result<ProbeOut> {
        let (maps, logits) = self.all_maps(x)?;
        no_grad(|| {
            let gpu = x.gpu();
            let p = ops::sigmoid(&logits)?;
            let present = ops::gt(&p, &Tensor::full(gpu, &[1], self.cfg.cls_threshold)?)?;
            let scores = seed_scores(&maps, &present, self.cfg.seed_threshold)?;
            let probs = ops::softmax::softmax(&ops::mul_scalar(&scores, 10.0)?, 1)?;
            let k = self.classes - 1;
            let parts = ops::concat::split(&maps, &vec![1; k], 1)?;
            let pv = p.to_vec_f32()?;
            let top = (0..k).max_by(|&a, &b| pv[a].total_cmp(&pv[b])).unwrap_or(0);
            let m = erase_mask(&parts[top], self.cfg.omega, self.cfg.sigma_t)?;
            let erased = ops::mean_dims(&ops::sigmoid(&erase(x, &m)?)?, &[1])?;
            let mut out: Vec<ProbeMap> = parts
                .into_iter()
                .enumerate()
                .map(|(c, t)| ProbeMap::new(format!("cam_{}", c + 1), MapKind::Cam, t))
                .collect();
            out.push(ProbeMap::new("mask", MapKind::Mask, m));
            out.push(ProbeMap::new("erased", MapKind::Image, erased));
            Ok(ProbeOut { probs, maps: out })
        })
    }

    fn train_maps(&self) -> Vec<ProbeMap> {
        self.last_maps.clone()
    }
}
