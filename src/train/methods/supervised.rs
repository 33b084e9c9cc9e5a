//! `supervised`: the baseline. Cross-entropy with the ignore label on logits upsampled to the
//! crop, SGD (momentum 0.9, weight decay 5e-4) with poly decay and the head at ×10 lr —
//! AdvSemiSeg's segmentation branch without the adversary. Trains on the labelled subset.

use super::common::seg_logits;
use super::{check, table, BuildEnv};
use crate::autograd::no_grad;
use crate::nn::arch::Model;
use crate::nn::BnMode;
use crate::ops;
use crate::optim::{Optimizer, Sgd, SgdConfig};
use crate::tensor::Tensor;
use crate::train::error::Result;
use crate::train::method::{Method, OptSlot, ProbeOut, StepCtx, StepLosses, StreamSpec, Subset};
use crate::train::models;
use serde::{Deserialize, Serialize};

/// The baseline has no settings beyond the shared ones.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisedConfig {}

pub fn defaults() -> toml::Table {
    table(&SupervisedConfig::default())
}

pub fn validate(t: &toml::Table) -> std::result::Result<(), String> {
    check::<SupervisedConfig>(t).map(|_| ())
}

pub struct Supervised {
    g: Model,
    bn: BnMode,
    opt: Sgd,
    lr: f32,
    ignore: i32,
}

/// The segmentation network with its SGD optimiser, as both methods here build it.
pub fn generator_and_sgd(env: &BuildEnv<'_>) -> Result<(Model, BnMode, Sgd)> {
    let c = &env.cfg.common;
    let g = models::generator(env.gpu, &c.arch, env.classes, c.seed, c.aspp_quirk)?;
    (env.init)("G", &g)?;
    let bn = models::bn_mode(&c.bn_mode, &c.arch);
    g.apply_bn_mode(bn)?;
    let opt = Sgd::new(
        models::groups(&g, c.head_lr_mult)?,
        SgdConfig {
            lr: c.lr,
            momentum: c.momentum,
            weight_decay: c.weight_decay,
            nesterov: false,
        },
    )?;
    Ok((g, bn, opt))
}

pub fn build(env: &BuildEnv<'_>) -> Result<Box<dyn Method>> {
    let (g, bn, opt) = generator_and_sgd(env)?;
    Ok(Box::new(Supervised {
        g,
        bn,
        opt,
        lr: env.cfg.common.lr,
        ignore: env.ignore,
    }))
}

impl Method for Supervised {
    fn name(&self) -> &'static str {
        "supervised"
    }
    fn streams(&self) -> Vec<StreamSpec> {
        vec![StreamSpec {
            name: "labelled",
            subset: Subset::Labelled,
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
    fn step(&mut self, ctx: &mut StepCtx<'_>) -> Result<StepLosses> {
        self.opt.zero_grad();
        let b = ctx.next("labelled")?;
        let pred = seg_logits(&self.g, &b.images, self.bn)?;
        let loss = ops::loss::cross_entropy(&pred, &b.labels, self.ignore, None)?;
        loss.backward()?;
        self.opt.step()?;
        Ok(vec![("loss_seg".into(), loss.detach())])
    }
    fn segment(&self, x: &Tensor) -> Result<Tensor> {
        no_grad(|| seg_logits(&self.g, x, BnMode::Frozen))
    }
    fn probe(&self, x: &Tensor) -> Result<ProbeOut> {
        let logits = self.segment(x)?;
        Ok(ProbeOut {
            probs: no_grad(|| ops::softmax::softmax(&logits, 1))?,
            maps: Vec::new(),
        })
    }
}
