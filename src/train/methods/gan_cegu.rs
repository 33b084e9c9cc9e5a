//! `gan-cegu`: Zhang et al., PIC 2021, "Image Semantic Segmentation Based on the GAN Auxiliary
//! Network" (methods.md §1). Only the abstract is known, so everything below follows the
//! reconstruction of §1.2 [ASSUME], with each unknown choice a setting:
//!
//! * D = AdvSemiSeg's per-pixel `fcdisc` over an encoding of G's probabilities (`encoding`:
//!   `basic` = S / one-hot Y (default, §1.2 item 2a), `product`, `concat`);
//! * uncertainty `u = 1 − σ(D(S))`, detached (item 4). `uncertainty = "realness"` (default): D
//!   is trained GT-vs-prediction, `L_D = BCE(D(Y), 1) + BCE(D(S), 0)` over valid pixels (item 6);
//!   `"correctness"`: D is trained to tell where `argmax S` is right (the "flaw-detector"
//!   reading of §1.2 "Unclear"), `L_D = BCE(D(S), [argmax S = y])`;
//! * CEGU weights (item 5): `weight = "one_plus"`: `w = 1 + λ_u·u` (default, λ_u = 1) or
//!   `"normalized"`: `w = u / mean_Ω(u)`; `L_CEGU = Σ_Ω w·CE / |Ω|`;
//! * `cegu_start` (not in §1.2; default 0): G trains with plain CE (every weight 1) before this
//!   step while D already learns, so an untrained D's noise does not steer G's first steps;
//! * optional adversarial term on G, `λ_adv·BCE(D(S), 1)` (item 7; off by default, ≈ 0.01 when
//!   used);
//! * per iteration: D frozen (gradients pass through it), G's backward; then D's backward on the
//!   detached prediction; `optG.step(); optD.step()` — SGD + poly for G, Adam (0.9, 0.99) + poly
//!   for D as in §3 (item 7);
//! * D is not used at inference (item 8): `segment` is G alone.

use super::common::{
    correct_mask, encode_maps, masked_mean, parse_encoding, seg_logits, valid_mask,
};
use super::gan::{adv_bce, DAdam, DOnG, GanPair};
use super::{adam_betas, check, non_negative, table, BuildEnv};
use crate::autograd::no_grad;
use crate::nn::arch::Model;
use crate::nn::imgdisc::Encoding;
use crate::nn::BnMode;
use crate::ops::{self, loss::bce_with_logits, loss::cross_entropy, softmax::softmax};
use crate::optim::Optimizer;
use crate::tensor::Tensor;
use crate::train::error::Result;
use crate::train::maps::{MapKind, ProbeMap};
use crate::train::method::{
    EvalSignals, Method, OptSlot, ProbeOut, StepCtx, StepLosses, StreamSpec, Subset,
};
use crate::train::models;
use serde::{Deserialize, Serialize};

/// CEGU settings; every default is methods.md §1.2's reconstruction [ASSUME].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GanCeguConfig {
    /// D's input encoding: `basic`, `product`, `concat` (§1.2 item 2; default basic).
    pub encoding: String,
    /// What D learns: `realness` (GT vs prediction, item 6) or `correctness`.
    pub uncertainty: String,
    /// CEGU weight form: `one_plus` (`1 + λ_u·u`, item 5) or `normalized` (`u / mean_Ω u`).
    pub weight: String,
    /// λ_u of the `one_plus` form (item 5: 1).
    pub lambda_u: f32,
    /// Optional adversarial term on G (item 7: off; ≈ 0.01 when used).
    pub lambda_adv: f32,
    /// First step at which the CEGU weights apply; before it G's loss is plain CE and only D
    /// learns from the uncertainty (default 0: weights from the first step, as §1.2).
    pub cegu_start: usize,
    /// D's Adam (§3: lr 1e-4, betas 0.9 / 0.99, poly).
    pub d_lr: f32,
    pub d_beta1: f32,
    pub d_beta2: f32,
}

impl Default for GanCeguConfig {
    fn default() -> Self {
        GanCeguConfig {
            encoding: "basic".into(),
            uncertainty: "realness".into(),
            weight: "one_plus".into(),
            lambda_u: 1.0,
            lambda_adv: 0.0,
            cegu_start: 0,
            d_lr: 1e-4,
            d_beta1: 0.9,
            d_beta2: 0.99,
        }
    }
}

pub fn defaults() -> toml::Table {
    table(&GanCeguConfig::default())
}

pub fn validate(t: &toml::Table) -> std::result::Result<(), String> {
    let c = check::<GanCeguConfig>(t)?;
    parse_encoding(&c.encoding)?;
    WeightForm::parse(&c.weight)?;
    if !["realness", "correctness"].contains(&c.uncertainty.as_str()) {
        return Err(format!(
            "uncertainty {:?} is not one of realness, correctness",
            c.uncertainty
        ));
    }
    non_negative(&[
        ("lambda_u", c.lambda_u),
        ("lambda_adv", c.lambda_adv),
        ("d_lr", c.d_lr),
    ])?;
    adam_betas(c.d_beta1, c.d_beta2)
}

/// How the uncertainty becomes a CE pixel weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightForm {
    /// `w = 1 + λ_u·u`: plain CE stays the floor.
    OnePlus(f32),
    /// `w = u / mean_Ω(u)`: weights average 1 over the valid pixels.
    Normalized,
}

impl WeightForm {
    fn parse(s: &str) -> std::result::Result<(), String> {
        match s {
            "one_plus" | "normalized" => Ok(()),
            _ => Err(format!("weight {s:?} is not one of one_plus, normalized")),
        }
    }
}

/// Uncertainty `1 − σ(d_logits)`, detached → [N, 1, H, W] in [0, 1].
pub fn uncertainty(d_logits: &Tensor) -> crate::Result<Tensor> {
    ops::affine(&ops::sigmoid(&d_logits.detach())?, -1.0, 1.0)
}

/// CEGU pixel weights [N, 1, H, W] from the uncertainty `u` and the valid-pixel mask (both
/// [N, 1, H, W]); constants (no gradient). Ignored pixels get weight 0.
pub fn cegu_weights(u: &Tensor, valid: &Tensor, form: WeightForm) -> crate::Result<Tensor> {
    let w = match form {
        WeightForm::OnePlus(l) => ops::affine(u, l, 1.0)?,
        WeightForm::Normalized => {
            let m = masked_mean(u, valid)?;
            let eps = Tensor::full(u.gpu(), &[1], 1e-6)?;
            ops::div(u, &ops::maximum(&m, &eps)?)?
        }
    };
    ops::mul(&w, valid).map(|w| w.detach())
}

/// `L_CEGU = Σ_Ω w_i·(−log S_{i,y_i}) / |Ω|` for logits [N, C, H, W] and weights [N, 1, H, W].
pub fn cegu_loss(
    logits: &Tensor,
    labels: &Tensor,
    ignore: i32,
    w: &Tensor,
) -> crate::Result<Tensor> {
    let s = logits.shape();
    cross_entropy(
        logits,
        labels,
        ignore,
        Some(&w.reshape(&[s[0], s[2], s[3]])?),
    )
}

pub struct GanCegu {
    cfg: GanCeguConfig,
    encoding: Encoding,
    form: WeightForm,
    gan: GanPair,
    classes: usize,
    ignore: i32,
    last_w: Option<Tensor>,
}

pub fn build(env: &BuildEnv<'_>) -> Result<Box<dyn Method>> {
    let cfg: GanCeguConfig = env.cfg.method_config()?;
    let c = &env.cfg.common;
    let encoding = Encoding::parse(&cfg.encoding)?;
    let form = if cfg.weight == "normalized" {
        WeightForm::Normalized
    } else {
        WeightForm::OnePlus(cfg.lambda_u)
    };
    let d = models::discriminator(
        env.gpu,
        "fcdisc",
        encoding.channels(env.classes),
        env.cfg.ndf(),
        c.seed,
    )?;
    let gan = GanPair::new(
        env,
        d,
        DAdam {
            lr: cfg.d_lr,
            beta1: cfg.d_beta1,
            beta2: cfg.d_beta2,
        },
    )?;
    Ok(Box::new(GanCegu {
        encoding,
        form,
        gan,
        classes: env.classes,
        ignore: env.ignore,
        last_w: None,
        cfg,
    }))
}

impl GanCegu {
    fn d_forward(&self, maps: &Tensor, x: &Tensor) -> Result<Tensor> {
        Ok(self
            .gan
            .d
            .forward(&encode_maps(self.encoding, maps, x)?, BnMode::Train)?)
    }
}

impl Method for GanCegu {
    fn name(&self) -> &'static str {
        "gan-cegu"
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
        let mut out: StepLosses = Vec::new();
        let b = ctx.next("labelled")?;
        let x = &b.images;

        // G: CEGU (+ optional adversarial term through D), into G's parameters only; D's one
        // forward on the prediction also serves D's loss below (`DOnG`).
        models::set_trainable(&self.gan.d, true)?;
        let (g_params, d_params) = self.gan.params()?;
        let pred = seg_logits(&self.gan.g, x, self.gan.bn)?;
        let valid = valid_mask(&b.labels, self.classes, self.ignore)?;
        let probs = softmax(&pred, 1)?;
        let shared = DOnG::new(&probs, |p| self.d_forward(p, x))?;
        let d_fake = &shared.out;
        let u = uncertainty(d_fake)?;
        let w = if ctx.step >= self.cfg.cegu_start {
            cegu_weights(&u, &valid, self.form)?
        } else {
            valid.detach()
        };
        let l_cegu = cegu_loss(&pred, &b.labels, self.ignore, &w)?;
        let l_ce = no_grad(|| cross_entropy(&pred.detach(), &b.labels, self.ignore, None))?;
        let loss_g = if self.cfg.lambda_adv > 0.0 {
            let l_adv = adv_bce(d_fake, true, Some(&valid))?;
            out.push(("loss_adv".into(), l_adv.detach()));
            ops::add(&l_cegu, &ops::mul_scalar(&l_adv, self.cfg.lambda_adv)?)?
        } else {
            l_cegu.clone()
        };
        shared.backward_g(&loss_g, &probs, &g_params)?;
        out.push(("loss_cegu".into(), l_cegu.detach()));
        out.push(("loss_ce".into(), l_ce));
        out.push(("uncertainty_mean".into(), masked_mean(&u, &valid)?));

        // D on the prediction (the forward above) and the ground truth.
        if self.cfg.uncertainty == "correctness" {
            let correct = correct_mask(&pred, &b.labels, self.ignore)?;
            let l_d = bce_with_logits(d_fake, &correct, Some(&valid))?;
            l_d.backward_into(&d_params, false)?;
            out.push(("loss_d".into(), l_d.detach()));
            out.push(("acc_train".into(), masked_mean(&correct, &valid)?));
        } else {
            let l_d_fake = adv_bce(d_fake, false, Some(&valid))?;
            let real = ops::softmax::one_hot(&b.labels, self.classes, self.ignore)?;
            let d_real = self.d_forward(&real, x)?;
            let l_d_real = adv_bce(&d_real, true, Some(&valid))?;
            let l_d = ops::add(&l_d_fake, &l_d_real)?;
            l_d.backward_into(&d_params, false)?;
            out.push(("loss_d".into(), l_d.detach()));
            out.push(("loss_d_fake".into(), l_d_fake.detach()));
            out.push(("loss_d_real".into(), l_d_real.detach()));
            out.push((
                "d_real_mean".into(),
                masked_mean(&ops::sigmoid(&d_real.detach())?, &valid)?,
            ));
        }
        out.push((
            "d_fake_mean".into(),
            masked_mean(&ops::sigmoid(&d_fake.detach())?, &valid)?,
        ));
        self.gan.opt_g.step()?;
        self.gan.opt_d.step()?;
        self.last_w = Some(w);
        Ok(out)
    }

    fn segment(&self, x: &Tensor) -> Result<Tensor> {
        no_grad(|| seg_logits(&self.gan.g, x, BnMode::Frozen))
    }

    fn eval_signals(&self, x: &Tensor, _y: &Tensor, logits: &Tensor) -> Result<EvalSignals> {
        no_grad(|| {
            let d = self.d_forward(&softmax(logits, 1)?, x)?;
            Ok(EvalSignals {
                d_confidence: Some(ops::sigmoid(&d)?),
                ..EvalSignals::default()
            })
        })
    }

    fn probe(&self, x: &Tensor) -> Result<ProbeOut> {
        no_grad(|| {
            let probs = softmax(&self.segment(x)?, 1)?;
            let d = self.d_forward(&probs, x)?;
            let u = uncertainty(&d)?;
            Ok(ProbeOut {
                maps: vec![
                    ProbeMap::new("d_confidence", MapKind::Confidence, ops::sigmoid(&d)?),
                    ProbeMap::new("uncertainty", MapKind::Confidence, u),
                ],
                probs,
            })
        })
    }

    /// The CEGU weights of the last training batch, scaled to [0, 1] by their maximum
    /// possible value (1 + λ_u for `one_plus`; the batch maximum for `normalized`).
    fn train_maps(&self) -> Vec<ProbeMap> {
        let Some(w) = &self.last_w else {
            return Vec::new();
        };
        let scaled = no_grad(|| match self.form {
            WeightForm::OnePlus(l) => ops::mul_scalar(w, 1.0 / (1.0 + l)),
            WeightForm::Normalized => {
                let eps = Tensor::full(w.gpu(), &[1], 1e-6)?;
                ops::div(w, &ops::maximum(&ops::max_spatial(w)?, &eps)?)
            }
        });
        scaled
            .ok()
            .map(|t| ProbeMap::new("cegu_weight", MapKind::Scalar, t))
            .into_iter()
            .collect()
    }
}
