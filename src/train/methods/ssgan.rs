//! `ssgan`: Liu Kexin's SS-GAN on the basis of Luc et al. 2016 (methods.md §2). Fully
//! supervised; the image-conditioned adversary `d(S, x)` (`imgdisc`, §2.1 Table 2 fill-in)
//! exists only during training.
//!
//! Per iteration (one G and one D update, §2.1 "Training" [ASSUME]):
//! 1. D frozen (gradients pass through it): `L_G = CE(z, y) + λ_adv·BCE(d(S, x), 1)`, the
//!    non-saturating form of eq. 3 (§2.1, Luc's segmentor step §2.2);
//! 2. D: `L_D = BCE(d(Y, x), 1) + BCE(d(S.detach(), x), 0)` (eq. 6), every BCE the mean over
//!    D's output positions (eq. 7);
//! 3. `optG.step(); optD.step()`: Momentum-SGD + poly for G, Adam for D (§2.1 [ASSUME]).
//!
//! `encoding` (§2.2): `basic` (S / one-hot Y alone), `product` (3C channels `S_c ⊙ x_k`),
//! `concat` (`[S, x]`, default: §2.1's first reading of how x enters [ASSUME]). The image is
//! the normalised (mean-subtracted) network input. `gt_scaling` applies Luc's softened ground
//! truth (τ = 0.9 [MEM]) so one-hot-vs-soft is not a trivial cue; off by default (not in the
//! SS-GAN seed). `d_at_output` (default, Luc §2.2): D sees G's probabilities at G's output
//! stride, the one-hot ground truth and the image resized to it (nearest / bilinear); false:
//! at the input size (G's logits upsampled bilinearly, as the CE sees them).

use super::common::{channel_sum, parse_encoding, seg_logits};
use super::gan::{adv_bce, DAdam, DOnG, GanPair};
use super::{adam_betas, check, non_negative, table, BuildEnv};
use crate::autograd::no_grad;
use crate::nn::arch::Model;
use crate::nn::imgdisc::Encoding;
use crate::nn::BnMode;
use crate::ops::{self, loss::cross_entropy, softmax::softmax};
use crate::optim::Optimizer;
use crate::tensor::Tensor;
use crate::train::error::Result;
use crate::train::maps::{MapKind, ProbeMap};
use crate::train::method::{
    EvalSignals, Method, OptSlot, ProbeOut, StepCtx, StepLosses, StreamSpec, Subset,
};
use crate::train::models;
use serde::{Deserialize, Serialize};

/// SS-GAN settings. The seed's learning rates and λ are illegible (§2.1), so the defaults are
/// λ = 1 (§2.1 "treat it as λ = 1") and Adam 1e-4 (0.9, 0.999) for D [ASSUME].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SsGanConfig {
    /// Adversary input: `basic`, `product`, `concat`.
    pub encoding: String,
    /// λ of the adversarial term on G.
    pub lambda_adv: f32,
    /// Luc's GT scaling of real inputs (§2.2 "Scaling").
    pub gt_scaling: bool,
    /// D works at G's output resolution (Luc) instead of the input size.
    pub d_at_output: bool,
    /// Zero the predictions fed to D at ignored pixels, as the one-hot ground truth is.
    pub mask_ignored: bool,
    /// τ of the GT scaling.
    pub tau: f32,
    pub d_lr: f32,
    pub d_beta1: f32,
    pub d_beta2: f32,
}

impl Default for SsGanConfig {
    fn default() -> Self {
        SsGanConfig {
            encoding: "concat".into(),
            lambda_adv: 1.0,
            gt_scaling: false,
            d_at_output: true,
            mask_ignored: true,
            tau: 0.9,
            d_lr: 1e-4,
            d_beta1: 0.9,
            d_beta2: 0.999,
        }
    }
}

pub fn defaults() -> toml::Table {
    table(&SsGanConfig::default())
}

pub fn validate(t: &toml::Table) -> std::result::Result<(), String> {
    let c = check::<SsGanConfig>(t)?;
    parse_encoding(&c.encoding)?;
    non_negative(&[("lambda_adv", c.lambda_adv), ("d_lr", c.d_lr)])?;
    if !(0.0..=1.0).contains(&c.tau) {
        return Err(format!("tau = {} must be within [0, 1]", c.tau));
    }
    adam_betas(c.d_beta1, c.d_beta2)
}

/// Luc's softened ground truth: at a pixel with label l, `ȳ_l = max(τ, S_l)` and
/// `ȳ_c = S_c·(1 − ȳ_l)/(1 − S_l)` for c ≠ l; ignored pixels (all-zero `y1h`) stay zero.
/// `y1h`, `s`: [N, C, H, W]; `s` is used as a constant.
pub fn scale_gt(y1h: &Tensor, s: &Tensor, tau: f32) -> crate::Result<Tensor> {
    let gpu = s.gpu();
    let s = s.detach();
    let valid = channel_sum(y1h)?;
    let s_l = channel_sum(&ops::mul(y1h, &s)?)?;
    let y_l = ops::maximum(&s_l, &Tensor::full(gpu, &[1], tau)?)?;
    let eps = Tensor::full(gpu, &[1], 1e-6)?;
    let ratio = ops::div(
        &ops::affine(&y_l, -1.0, 1.0)?,
        &ops::maximum(&ops::affine(&s_l, -1.0, 1.0)?, &eps)?,
    )?;
    let others = ops::mul(&ops::mul(&s, &ratio)?, &ops::affine(y1h, -1.0, 1.0)?)?;
    ops::mul(&ops::add(&ops::mul(y1h, &y_l)?, &others)?, &valid)
}

pub struct SsGan {
    cfg: SsGanConfig,
    gan: GanPair,
    classes: usize,
    ignore: i32,
}

pub fn build(env: &BuildEnv<'_>) -> Result<Box<dyn Method>> {
    let cfg: SsGanConfig = env.cfg.method_config()?;
    let c = &env.cfg.common;
    let encoding = Encoding::parse(&cfg.encoding)?;
    let d = models::img_discriminator(env.gpu, env.classes, env.cfg.ndf(), encoding, c.seed)?;
    let gan = GanPair::new(
        env,
        d,
        DAdam {
            lr: cfg.d_lr,
            beta1: cfg.d_beta1,
            beta2: cfg.d_beta2,
        },
    )?;
    Ok(Box::new(SsGan {
        gan,
        classes: env.classes,
        ignore: env.ignore,
        cfg,
    }))
}

impl Method for SsGan {
    fn name(&self) -> &'static str {
        "ssgan"
    }
    fn streams(&self) -> Vec<StreamSpec> {
        vec![StreamSpec {
            name: "labelled",
            subset: Subset::Labelled,
        }]
    }
    fn models(&self) -> Vec<(&'static str, &Model)> {
        self.gan.models()
    }
    fn optimizers(&mut self) -> Vec<OptSlot<'_>> {
        self.gan.optimizers()
    }

    fn step(&mut self, ctx: &mut StepCtx<'_>) -> Result<StepLosses> {
        self.gan.zero_grad();
        let b = ctx.next("labelled")?;
        let x = &b.images;

        // D's weights record: its forward on G's output serves G's loss (into G only) and
        // D's loss on that fake (`DOnG`).
        models::set_trainable(&self.gan.d, true)?;
        let (g_params, d_params) = self.gan.params()?;
        let s = x.shape();
        let z = self.gan.g.forward(x, self.gan.bn)?;
        let pred = if z.shape()[2..] == s[2..] {
            z.clone()
        } else {
            ops::upsample_bilinear2d(&z, [s[2], s[3]], true)?
        };
        let probs = softmax(if self.cfg.d_at_output { &z } else { &pred }, 1)?;
        let mut real = ops::softmax::one_hot(&b.labels, self.classes, self.ignore)?;
        let ps = probs.shape();
        if ps[2..] != s[2..] {
            real = ops::upsample_nearest2d(&real, [ps[2], ps[3]])?;
        }
        // Real maps are all-zero at ignored pixels; zeroing the fakes there too keeps that
        // from being a trivial real/fake cue [ASSUME].
        let probs = if self.cfg.mask_ignored {
            ops::mul(&probs, &channel_sum(&real)?)?
        } else {
            probs
        };
        let l_seg = cross_entropy(&pred, &b.labels, self.ignore, None)?;
        let shared = DOnG::new(&probs, |p| Ok(self.gan.d.discriminate(p, Some(x))?))?;
        let l_adv = adv_bce(&shared.out, true, None)?;
        let loss_g = ops::add(&l_seg, &ops::mul_scalar(&l_adv, self.cfg.lambda_adv)?)?;
        shared.backward_g(&loss_g, &probs, &g_params)?;

        let probs = probs.detach();
        let d_fake = shared.out;
        let l_d_fake = adv_bce(&d_fake, false, None)?;
        if self.cfg.gt_scaling {
            real = scale_gt(&real, &probs, self.cfg.tau)?;
        }
        let d_real = self.gan.d.discriminate(&real, Some(x))?;
        let l_d_real = adv_bce(&d_real, true, None)?;
        let l_d = ops::add(&l_d_fake, &l_d_real)?;
        l_d.backward_into(&d_params, false)?;

        self.gan.opt_g.step()?;
        self.gan.opt_d.step()?;
        Ok(vec![
            ("loss_seg".into(), l_seg.detach()),
            ("loss_adv".into(), l_adv.detach()),
            ("loss_d".into(), l_d.detach()),
            ("loss_d_fake".into(), l_d_fake.detach()),
            ("loss_d_real".into(), l_d_real.detach()),
            (
                "d_fake_mean".into(),
                ops::mean(&ops::sigmoid(&d_fake.detach())?)?,
            ),
            (
                "d_real_mean".into(),
                ops::mean(&ops::sigmoid(&d_real.detach())?)?,
            ),
        ])
    }

    fn segment(&self, x: &Tensor) -> Result<Tensor> {
        no_grad(|| seg_logits(&self.gan.g, x, BnMode::Frozen))
    }

    /// D's confidence as [`Method::probe`] shows it (G runs again only when D sees G's
    /// output-size maps).
    fn eval_signals(&self, x: &Tensor, _y: &Tensor, logits: &Tensor) -> Result<EvalSignals> {
        no_grad(|| {
            let s = x.shape();
            let d_in = if self.cfg.d_at_output {
                softmax(&self.gan.g.forward(x, BnMode::Frozen)?, 1)?
            } else {
                softmax(logits, 1)?
            };
            let d = self.gan.d.discriminate(&d_in, Some(x))?;
            let conf = ops::sigmoid(&ops::upsample_bilinear2d(&d, [s[2], s[3]], false)?)?;
            Ok(EvalSignals {
                d_confidence: Some(conf),
                ..EvalSignals::default()
            })
        })
    }

    /// Probabilities and D's confidence that the prediction is real, upsampled from D's
    /// 1/4-size output to the input size.
    fn probe(&self, x: &Tensor) -> Result<ProbeOut> {
        no_grad(|| {
            let s = x.shape();
            let z = self.gan.g.forward(x, BnMode::Frozen)?;
            let up = ops::upsample_bilinear2d(&z, [s[2], s[3]], true)?;
            let probs = softmax(&up, 1)?;
            let d_in = if self.cfg.d_at_output {
                softmax(&z, 1)?
            } else {
                probs.clone()
            };
            let d = self.gan.d.discriminate(&d_in, Some(x))?;
            let conf = ops::sigmoid(&ops::upsample_bilinear2d(&d, [s[2], s[3]], false)?)?;
            Ok(ProbeOut {
                probs,
                maps: vec![ProbeMap::new("d_confidence", MapKind::Confidence, conf)],
            })
        })
    }
}
