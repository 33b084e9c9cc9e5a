//! The interface between the trainer and a training method. A method owns its networks and
//! optimisers and performs one iteration given its data streams; the trainer owns everything
//! else (schedule, evaluation, probes, checkpoints, events). New methods are new impls plus a
//! line in [`super::methods::METHODS`].

use super::maps::ProbeMap;
use super::streams::{GpuBatch, Streams};
use crate::nn::arch::Model;
use crate::optim::Optimizer;
use crate::tensor::Tensor;
use crate::train::error::Result;

/// Which part of the training split a stream serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subset {
    Labelled,
    Unlabelled,
    All,
}

/// A data stream a method draws batches from. Streams are independent, seeded, resumable.
#[derive(Clone, Debug)]
pub struct StreamSpec {
    pub name: &'static str,
    pub subset: Subset,
}

/// An optimiser with the base learning rate its schedule decays.
pub struct OptSlot<'a> {
    pub name: &'static str,
    pub opt: &'a mut dyn Optimizer,
    pub base_lr: f32,
}

/// What a method sees of the trainer during a step.
pub struct StepCtx<'a> {
    /// 0-based index of the iteration being run.
    pub step: usize,
    pub iters: usize,
    pub(crate) streams: &'a mut Streams,
}

impl StepCtx<'_> {
    /// The next batch of a stream.
    pub fn next(&mut self, stream: &str) -> Result<GpuBatch> {
        self.streams.next(stream)
    }
    /// Whether a stream exists (an empty subset, e.g. no unlabelled data at fraction 1, has none).
    pub fn has(&self, stream: &str) -> bool {
        self.streams.has(stream)
    }
}

/// Scalars of a step as GPU tensors of shape [1]; the trainer reads them back in one transfer.
pub type StepLosses = Vec<(String, Tensor)>;

/// Probabilities and method maps for probe images (and inference).
pub struct ProbeOut {
    /// Softmax of the logits at input size [N, C, H, W].
    pub probs: Tensor,
    /// Per-pixel maps [N, 1, H, W] in [0, 1] with their kinds (D confidence, gates, CAMs …).
    pub maps: Vec<ProbeMap>,
}

/// A method's signals for one evaluation batch, scored against the ground truth by
/// `train::eval` (`metrics::signals`). Kept on the GPU.
#[derive(Default)]
pub struct EvalSignals {
    /// D's confidence σ(D) [N, 1, H, W] at input size, for methods with a per-pixel
    /// confidence discriminator.
    pub d_confidence: Option<Tensor>,
    /// T_semi, where the method gates a loss on `d_confidence ≥ T_semi`.
    pub gate_t: Option<f32>,
    /// Scores [N, C, H, W] whose channel argmax is the thresholded-CAM segmentation (weak
    /// methods; the rule is the method's).
    pub cam_scores: Option<Tensor>,
}

pub trait Method {
    fn name(&self) -> &'static str;
    /// Streams the method draws from (all from the training split).
    fn streams(&self) -> Vec<StreamSpec>;
    /// Named networks in checkpoint order; the first is the segmentation network.
    fn models(&self) -> Vec<(&'static str, &Model)>;
    /// Named optimisers; the trainer sets their poly-scheduled lr before every step.
    fn optimizers(&mut self) -> Vec<OptSlot<'_>>;
    /// One iteration: zero grads, forward/backward, optimiser steps. Returns every loss term
    /// (unscaled) and diagnostic scalars. Must not read anything back from the GPU.
    fn step(&mut self, ctx: &mut StepCtx<'_>) -> Result<StepLosses>;
    /// Segmentation logits at the input's size (inference mode, no graph).
    fn segment(&self, x: &Tensor) -> Result<Tensor>;
    /// [`Method::segment`] for images whose image-level labels [N, C] (multi-hot, class 0 =
    /// background) are known. Evaluation calls this: weak methods that score pseudo-labels
    /// restricted to the ground-truth image classes (EADER §5.4) use them; others ignore them.
    fn segment_labeled(&self, x: &Tensor, image_labels: &Tensor) -> Result<Tensor> {
        let _ = image_labels;
        self.segment(x)
    }
    /// The signals to score at evaluation, given the batch's image labels and the logits
    /// [`Method::segment_labeled`] just returned (inference mode, no graph). None by default.
    fn eval_signals(
        &self,
        x: &Tensor,
        image_labels: &Tensor,
        logits: &Tensor,
    ) -> Result<EvalSignals> {
        let _ = (x, image_labels, logits);
        Ok(EvalSignals::default())
    }
    /// One evaluation batch: [`Method::segment_labeled`]'s logits and then
    /// [`Method::eval_signals`] on them. A method whose logits and signals share costly work
    /// (eader's attention maps) overrides this to do that work once.
    fn eval_batch(&self, x: &Tensor, image_labels: &Tensor) -> Result<(Tensor, EvalSignals)> {
        let logits = self.segment_labeled(x, image_labels)?;
        let sig = self.eval_signals(x, image_labels, &logits)?;
        Ok((logits, sig))
    }
    /// Probabilities and method maps for probe images (inference mode, no graph).
    fn probe(&self, x: &Tensor) -> Result<ProbeOut>;
    /// Maps of the last training batch worth showing (e.g. the semi mask actually used),
    /// [N, 1, H, W]. Kept on the GPU; read back only at snapshot time.
    fn train_maps(&self) -> Vec<ProbeMap> {
        Vec::new()
    }
}
