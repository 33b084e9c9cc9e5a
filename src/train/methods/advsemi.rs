//! `advsemi`: Hung et al., BMVC 2018 (AdvSemiSeg), the official BMVC code path
//! (methods.md §3.3–3.5). Per iteration, with D frozen (gradients pass through it into G):
//! 1. unlabelled batch: `λ_semi_adv·BCE(D(S), 1)` and, from `semi_start`, `λ_semi·L_semi` with
//!    the pseudo-label `argmax S` kept where `σ(D(S)) ≥ T_semi`;
//! 2. labelled batch: `CE(z, y) + λ_adv·BCE(D(S), 1)` over non-ignored pixels;
//!
//! then D (unfrozen): `½ BCE(D(S_fake), 0)` on the detached labelled (ignore-masked) and
//! unlabelled (unmasked) predictions, `½ BCE(D(onehot y'), 1)` on a separately drawn labelled
//! batch; finally `optG.step(); optD.step()` (SGD and Adam(0.9, 0.99), both poly).
//!
//! Everything stays on the GPU: the gate, the count of gated pixels and the official "no pixel
//! passes the gate → skip the unlabelled backward" rule are tensor ops, so a step reads nothing
//! back.

use super::common::{cat_batch, masked_mean, seg_logits, valid_mask};
use super::gan::{adv_bce, DAdam, GanPair};
use super::{adam_betas, check, non_negative, table, BuildEnv};
use crate::autograd::no_grad;
use crate::nn::arch::Model;
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

/// AdvSemiSeg's settings; defaults are the official `train.py` values.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdvSemiConfig {
    /// λ_adv on labelled images (code default 0.1; the README command uses 0.01).
    pub lambda_adv: f32,
    /// λ_semi on the gated pseudo-label CE.
    pub lambda_semi: f32,
    /// λ_semi_adv: adversarial term on unlabelled images (BMVC update).
    pub lambda_semi_adv: f32,
    /// T_semi, the confidence gate on σ(D(S)).
    pub mask_t: f32,
    /// Iteration from which L_semi is used.
    pub semi_start: usize,
    /// Iteration from which the unlabelled adversarial term (and batch) is used.
    pub semi_start_adv: usize,
    /// Also feed unlabelled predictions to D as fakes.
    pub d_remain: bool,
    pub d_lr: f32,
    pub d_beta1: f32,
    pub d_beta2: f32,
    /// Official quirk: when no pixel passes the gate, the unlabelled backward (including its
    /// adversarial term) is skipped.
    pub skip_empty_gate: bool,
}

impl Default for AdvSemiConfig {
    fn default() -> Self {
        AdvSemiConfig {
            lambda_adv: 0.1,
            lambda_semi: 0.1,
            lambda_semi_adv: 0.001,
            mask_t: 0.2,
            semi_start: 5000,
            semi_start_adv: 0,
            d_remain: true,
            d_lr: 1e-4,
            d_beta1: 0.9,
            d_beta2: 0.99,
            skip_empty_gate: true,
        }
    }
}

pub fn defaults() -> toml::Table {
    table(&AdvSemiConfig::default())
}

pub fn validate(t: &toml::Table) -> std::result::Result<(), String> {
    let c = check::<AdvSemiConfig>(t)?;
    non_negative(&[
        ("lambda_adv", c.lambda_adv),
        ("lambda_semi", c.lambda_semi),
        ("lambda_semi_adv", c.lambda_semi_adv),
        ("d_lr", c.d_lr),
    ])?;
    if !(0.0..=1.0).contains(&c.mask_t) {
        return Err(format!("mask_t = {} must be within [0, 1]", c.mask_t));
    }
    adam_betas(c.d_beta1, c.d_beta2)
}

/// The confidence gate: 1 where `conf ≥ t` (the official code ignores `conf < t`), else 0.
pub fn semi_gate(conf: &Tensor, t: f32) -> crate::Result<Tensor> {
    let tt = Tensor::full(conf.gpu(), &[1], t)?;
    ops::affine(&ops::gt(&tt, conf)?, -1.0, 1.0)
}

/// Gated pseudo-label loss: CE of `pred` [N, C, H, W] against `argmax pred`, averaged over the
/// pixels whose D confidence `conf` [N, 1, H, W] passes `t` (0 with zero gradient when none
/// does). Returns (loss [1], gate mask [N, 1, H, W], gated pixel count [1]).
pub fn semi_loss(pred: &Tensor, conf: &Tensor, t: f32) -> Result<(Tensor, Tensor, Tensor)> {
    let s = pred.shape().to_vec();
    let (n, h, w) = (s[0], s[2], s[3]);
    let mask = semi_gate(conf, t)?;
    let pseudo = ops::softmax::argmax_channels(&pred.detach())?;
    // CE with 0/1 pixel weights divides by all N·H·W pixels; rescale to the gated count.
    let ce = cross_entropy(pred, &pseudo, -1, Some(&mask.reshape(&[n, h, w])?))?;
    let count = ops::sum(&mask)?;
    let one = Tensor::full(pred.gpu(), &[1], 1.0)?;
    let loss = ops::div(
        &ops::mul_scalar(&ce, (n * h * w) as f32)?,
        &ops::maximum(&count, &one)?,
    )?;
    Ok((loss, mask, count))
}

pub struct AdvSemi {
    cfg: AdvSemiConfig,
    gan: GanPair,
    classes: usize,
    ignore: i32,
    last_mask: Option<Tensor>,
}

pub fn build(env: &BuildEnv<'_>) -> Result<Box<dyn Method>> {
    let cfg: AdvSemiConfig = env.cfg.method_config()?;
    let c = &env.cfg.common;
    let d = models::discriminator(env.gpu, &c.disc, env.classes, env.cfg.ndf(), c.seed)?;
    let gan = GanPair::new(
        env,
        d,
        DAdam {
            lr: cfg.d_lr,
            beta1: cfg.d_beta1,
            beta2: cfg.d_beta2,
        },
    )?;
    Ok(Box::new(AdvSemi {
        gan,
        classes: env.classes,
        ignore: env.ignore,
        last_mask: None,
        cfg,
    }))
}

impl AdvSemi {
    fn d_forward(&self, probs: &Tensor) -> Result<Tensor> {
        Ok(self.gan.d.forward(probs, BnMode::Train)?)
    }
}

impl Method for AdvSemi {
    fn name(&self) -> &'static str {
        "advsemi"
    }
    fn streams(&self) -> Vec<StreamSpec> {
        vec![
            StreamSpec {
                name: "labelled",
                subset: Subset::Labelled,
            },
            StreamSpec {
                name: "unlabelled",
                subset: Subset::Unlabelled,
            },
            StreamSpec {
                name: "gt",
                subset: Subset::Labelled,
            },
        ]
    }
    fn models(&self) -> Vec<(&'static str, &Model)> {
        self.gan.models()
    }
    fn optimizers(&mut self) -> Vec<OptSlot<'_>> {
        self.gan.optimizers()
    }

    fn step(&mut self, ctx: &mut StepCtx<'_>) -> Result<StepLosses> {
        let c = self.cfg.clone();
        let gpu = self.gan.g.store.slots()[0].get()?.gpu().clone();
        self.gan.zero_grad();
        models::set_trainable(&self.gan.d, false)?;
        let mut out: StepLosses = Vec::new();

        // 1. Unlabelled batch.
        let mut remain: Option<Tensor> = None;
        self.last_mask = None;
        if ctx.has("unlabelled")
            && (c.lambda_semi > 0.0 || c.lambda_semi_adv > 0.0)
            && ctx.step >= c.semi_start_adv
        {
            let ub = ctx.next("unlabelled")?;
            let pred = seg_logits(&self.gan.g, &ub.images, self.gan.bn)?;
            remain = Some(pred.detach());
            let d_out = self.d_forward(&softmax(&pred, 1)?)?;
            let l_semi_adv = adv_bce(&d_out, true, None)?;
            out.push(("loss_semi_adv".into(), l_semi_adv.detach()));
            let adv = ops::mul_scalar(&l_semi_adv, c.lambda_semi_adv)?;
            if c.lambda_semi > 0.0 && ctx.step >= c.semi_start {
                let conf = ops::sigmoid(&d_out.detach())?;
                let (l_semi, mask, count) = semi_loss(&pred, &conf, c.mask_t)?;
                let adv = if c.skip_empty_gate {
                    let zero = Tensor::zeros(&gpu, &[1], crate::DType::F32)?;
                    ops::mul(&adv, &ops::gt(&count, &zero)?)?
                } else {
                    adv
                };
                ops::add(&ops::mul_scalar(&l_semi, c.lambda_semi)?, &adv)?.backward()?;
                out.push(("loss_semi".into(), l_semi.detach()));
                out.push((
                    "semi_ratio".into(),
                    ops::mul_scalar(&count, 1.0 / mask.numel() as f32)?,
                ));
                self.last_mask = Some(mask);
            } else {
                adv.backward()?;
            }
        }

        // 2. Labelled batch.
        let lb = ctx.next("labelled")?;
        let pred = seg_logits(&self.gan.g, &lb.images, self.gan.bn)?;
        let l_seg = cross_entropy(&pred, &lb.labels, self.ignore, None)?;
        let valid = valid_mask(&lb.labels, self.classes, self.ignore)?;
        let d_out = self.d_forward(&softmax(&pred, 1)?)?;
        let l_adv = adv_bce(&d_out, true, Some(&valid))?;
        ops::add(&l_seg, &ops::mul_scalar(&l_adv, c.lambda_adv)?)?.backward()?;
        out.push(("loss_seg".into(), l_seg.detach()));
        out.push(("loss_adv".into(), l_adv.detach()));

        // 3. D on fakes (detached predictions) and on real one-hot ground truth.
        models::set_trainable(&self.gan.d, true)?;
        let pred = pred.detach();
        let (fake, fake_mask) = match (&remain, c.d_remain) {
            (Some(r), true) => {
                let ones = Tensor::full(&gpu, &[r.shape()[0], 1, r.shape()[2], r.shape()[3]], 1.0)?;
                (cat_batch(&[&pred, r])?, cat_batch(&[&valid, &ones])?)
            }
            _ => (pred, valid),
        };
        let d_fake = self.d_forward(&softmax(&fake, 1)?)?;
        let l_d_fake = adv_bce(&d_fake, false, Some(&fake_mask))?;
        ops::mul_scalar(&l_d_fake, 0.5)?.backward()?;
        let gb = ctx.next("gt")?;
        let real = ops::softmax::one_hot(&gb.labels, self.classes, self.ignore)?;
        let real_mask = valid_mask(&gb.labels, self.classes, self.ignore)?;
        let d_real = self.d_forward(&real)?;
        let l_d_real = adv_bce(&d_real, true, Some(&real_mask))?;
        ops::mul_scalar(&l_d_real, 0.5)?.backward()?;

        self.gan.opt_g.step()?;
        self.gan.opt_d.step()?;

        let (l_d_fake, l_d_real) = (l_d_fake.detach(), l_d_real.detach());
        out.push((
            "loss_d".into(),
            ops::mul_scalar(&ops::add(&l_d_fake, &l_d_real)?, 0.5)?,
        ));
        out.push(("loss_d_fake".into(), l_d_fake));
        out.push(("loss_d_real".into(), l_d_real));
        out.push((
            "d_fake_mean".into(),
            masked_mean(&ops::sigmoid(&d_fake.detach())?, &fake_mask)?,
        ));
        out.push((
            "d_real_mean".into(),
            masked_mean(&ops::sigmoid(&d_real.detach())?, &real_mask)?,
        ));
        Ok(out)
    }

    fn segment(&self, x: &Tensor) -> Result<Tensor> {
        no_grad(|| seg_logits(&self.gan.g, x, BnMode::Frozen))
    }

    fn eval_signals(&self, _x: &Tensor, _y: &Tensor, logits: &Tensor) -> Result<EvalSignals> {
        no_grad(|| {
            let conf = ops::sigmoid(&self.d_forward(&softmax(logits, 1)?)?)?;
            Ok(EvalSignals {
                d_confidence: Some(conf),
                gate_t: Some(self.cfg.mask_t),
                cam_scores: None,
            })
        })
    }

    fn probe(&self, x: &Tensor) -> Result<ProbeOut> {
        no_grad(|| {
            let probs = softmax(&self.segment(x)?, 1)?;
            let conf = ops::sigmoid(&self.d_forward(&probs)?)?;
            let gate = semi_gate(&conf, self.cfg.mask_t)?;
            Ok(ProbeOut {
                probs,
                maps: vec![
                    ProbeMap::new("d_confidence", MapKind::Confidence, conf),
                    ProbeMap::new("semi_mask", MapKind::Mask, gate),
                ],
            })
        })
    }

    fn train_maps(&self) -> Vec<ProbeMap> {
        self.last_mask
            .iter()
            .map(|m| ProbeMap::new("semi_mask_used", MapKind::Mask, m.clone()))
            .collect()
    }
}
