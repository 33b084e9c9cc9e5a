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

    /// G's and D's trainable parameters, for [`Tensor::backward_into`].
    pub fn params(&self) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        Ok((self.g.store.trainable()?, self.d.store.trainable()?))
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

/// D's forward on G's output, shared by G's adversarial loss and D's loss on that fake.
///
/// The papers' step runs D twice on one prediction with the same weights: frozen, for G's loss,
/// then on the detached prediction, for D's. One forward serves both here. D runs on a detached
/// copy of G's output made a gradient leaf, its weights recording. G's loss reaches G through
/// that leaf ([`DOnG::backward_g`]) and leaves D's graph in place; D's loss on [`DOnG::out`]
/// then backpropagates into D's weights alone ([`Tensor::backward_into`]). G's graph is not
/// kept for it. Exact for discriminators without batch statistics (`fcdisc`, `imgdisc`), whose
/// output for an image does not depend on the batch it runs in: gan-cegu and ssgan train
/// bitwise as with two forwards, with 8% and 5% fewer GEMM FLOP and 6% and 7% fewer
/// dispatches per step (`bench step`, tiny, batch 4, 128²).
///
/// advsemi keeps its two forwards. Its D sees the fake as one batch of labelled and unlabelled
/// predictions; shared forwards would be one per batch, and D's weight gradients through two
/// graphs cost it 71 more dispatches per step than the 8% of FLOP saved (a net loss on
/// lavapipe); a single forward of both batches would hold both of G's graphs at once, twice
/// the official peak memory.
pub struct DOnG {
    input: Tensor,
    /// D's logits, differentiable w.r.t. D's weights and the leaf input.
    pub out: Tensor,
}

impl DOnG {
    /// Runs `d` (D's forward, trainable) on a leaf copy of `g_out`.
    pub fn new(g_out: &Tensor, d: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<DOnG> {
        let input = g_out.detach().into_param();
        let out = d(&input)?;
        Ok(DOnG { input, out })
    }

    /// Backpropagates G's `loss`, a function of G's graph and of [`DOnG::out`], into
    /// `g_params`: through D into the leaf, keeping D's graph, then from `g_out` (the tensor
    /// given to [`DOnG::new`]) into G with the gradient D passed back, together with the
    /// loss's direct terms. D's weights get nothing.
    pub fn backward_g(&self, loss: &Tensor, g_out: &Tensor, g_params: &[Tensor]) -> Result<()> {
        let through_d = crate::autograd::grad(loss, &[&self.input], true)?.remove(0);
        let mut roots = vec![(loss, None)];
        if let Some(gi) = through_d {
            roots.push((g_out, Some(gi)));
        }
        Ok(crate::autograd::backward_many_into(
            &roots, g_params, false,
        )?)
    }
}
