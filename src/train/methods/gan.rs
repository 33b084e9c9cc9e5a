//! The generator–adversary pair the GAN-style methods (`advsemi`, `gan-cegu`, `ssgan`) share:
//! G with its SGD (head ×10, poly) and D with its Adam, their checkpoint and optimiser names.

use super::supervised::generator_and_sgd;
use super::BuildEnv;
use crate::nn::arch::Model;
use crate::nn::BnMode;
use crate::ops::loss::bce_with_logits;
use crate::optim::{Adam, AdamConfig, Optimizer, ParamGroup, Sgd};
use crate::tensor::Tensor;
use crate::train::error::Result;
use crate::train::method::OptSlot;

/// D's Adam settings (each method has its own defaults for them).
#[derive(Clone, Copy, Debug)]
pub struct DAdam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
}

pub struct GanPair {
    pub g: Model,
    pub d: Model,
    /// G's BatchNorm mode (D has none or trains its own).
    pub bn: BnMode,
    pub opt_g: Sgd,
    pub opt_d: Adam,
    lr_g: f32,
    lr_d: f32,
}

impl GanPair {
    /// G from the shared settings, and the already built discriminator `d` (loaded from a
    /// resumed checkpoint here, before Adam holds its parameters).
    pub fn new(env: &BuildEnv<'_>, d: Model, adam: DAdam) -> Result<GanPair> {
        let (g, bn, opt_g) = generator_and_sgd(env)?;
        (env.init)("D", &d)?;
        let opt_d = Adam::new(
            vec![ParamGroup::new(d.store.trainable()?)],
            AdamConfig {
                lr: adam.lr,
                beta1: adam.beta1,
                beta2: adam.beta2,
                eps: 1e-8,
                weight_decay: 0.0,
            },
        )?;
        Ok(GanPair {
            g,
            d,
            bn,
            opt_g,
            opt_d,
            lr_g: env.cfg.common.lr,
            lr_d: adam.lr,
        })
    }

    pub fn models(&self) -> Vec<(&'static str, &Model)> {
        vec![("G", &self.g), ("D", &self.d)]
    }

    pub fn optimizers(&mut self) -> Vec<OptSlot<'_>> {
        vec![
            OptSlot {
                name: "G",
                opt: &mut self.opt_g,
                base_lr: self.lr_g,
            },
            OptSlot {
                name: "D",
                opt: &mut self.opt_d,
                base_lr: self.lr_d,
            },
        ]
    }

    pub fn zero_grad(&mut self) {
        self.opt_g.zero_grad();
        self.opt_d.zero_grad();
    }
}

/// An adversary's BCE against a constant target (1 = real, 0 = fake), the mean over `mask`'s
/// pixels (all positions if `None`).
pub fn adv_bce(d_out: &Tensor, real: bool, mask: Option<&Tensor>) -> crate::Result<Tensor> {
    let target = Tensor::full(d_out.gpu(), d_out.shape(), if real { 1.0 } else { 0.0 })?;
    bce_with_logits(d_out, &target, mask)
}
