//! Evaluation of a method's segmentation network over a split (confusion-matrix mIoU), and of
//! its own signals (D's confidence, the semi gate, thresholded CAMs: `metrics::signals`).

use super::event::{EvalResult, ProbeSnapshot};
use super::method::Method;
use crate::data::{AugConfig, Dataset, Loader, LoaderConfig};
use crate::gpu::Gpu;
use crate::metrics::signals::{probe_scores, ProbeMaps, SignalScores, BINS};
use crate::metrics::{ConfusionMatrix, Scores};
use crate::ops::signals::ConfHistGpu;
use crate::ops::softmax::argmax_channels;
use crate::tensor::Tensor;
use crate::train::error::Result;
use std::sync::Arc;

/// Runs the method's inference over the whole of `ds` (no augmentation, full images).
/// `batch` > 1 needs equally sized images.
pub fn evaluate(
    gpu: &Arc<Gpu>,
    method: &dyn Method,
    ds: &Arc<dyn Dataset>,
    batch: usize,
    step: usize,
    normalise: &crate::data::Normalise,
) -> Result<(EvalResult, Scores)> {
    let t0 = std::time::Instant::now();
    let loader = Loader::new(
        ds.clone(),
        None,
        LoaderConfig {
            batch,
            workers: 2,
            aug: AugConfig {
                normalise: normalise.clone(),
                ..AugConfig::default()
            },
            ..LoaderConfig::default()
        },
    )?;
    let classes = ds.num_classes();
    let ignore = ds.ignore_index() as i64;
    let mut cm = ConfusionMatrix::new(classes);
    // Filled only for methods that report the signal.
    let mut hist: Option<ConfHistGpu> = None;
    let mut cam_cm: Option<ConfusionMatrix> = None;
    let mut images = 0;
    for b in loader {
        let b = b?;
        let x = Tensor::from_f32(gpu, &b.images, &[b.n, 3, b.h, b.w])?;
        let y = Tensor::from_f32(gpu, &b.image_labels, &[b.n, b.num_classes])?;
        let (logits, sig) = method.eval_batch(&x, &y)?;
        let pred_t = argmax_channels(&logits)?;
        if let Some(conf) = &sig.d_confidence {
            if hist.is_none() {
                hist = Some(ConfHistGpu::new(gpu, BINS, sig.gate_t)?);
            }
            let labels = Tensor::from_i32(gpu, &b.labels, &[b.n, b.h, b.w])?;
            let h = hist.as_ref().expect("just set");
            h.add(conf, &pred_t, &labels, ignore as i32, classes)?;
        }
        if let Some(cs) = &sig.cam_scores {
            let cam_pred = argmax_channels(cs)?.to_vec_i32()?;
            cam_cm
                .get_or_insert_with(|| ConfusionMatrix::new(classes))
                .add(&b.labels, &cam_pred, ignore)?;
        }
        let pred = pred_t.to_vec_i32()?;
        cm.add(&b.labels, &pred, ignore)?;
        images += b.n;
    }
    let s = cm.scores();
    let mut signals = match &hist {
        Some(h) => SignalScores::from_hist(&h.read()?),
        None => SignalScores::default(),
    };
    signals.cam_miou = cam_cm.and_then(|m| m.scores().miou);
    Ok((
        EvalResult {
            step,
            split: ds.split().to_string(),
            miou: s.miou,
            pixel_acc: s.pixel_acc,
            mean_class_acc: s.mean_class_acc,
            per_class_iou: ds
                .class_names()
                .iter()
                .cloned()
                .zip(s.iou.iter().copied())
                .collect(),
            images,
            seconds: t0.elapsed().as_secs_f64(),
            confusion: cm.counts().to_vec(),
            signals: Box::new(signals),
        },
        s,
    ))
}

/// D's confidence (`d_confidence`) and gate (`semi_mask`) maps of the probes scored against
/// their labels; empty scores for methods without them.
pub fn probe_signals(
    probes: &[ProbeSnapshot],
    ignore: u8,
    classes: usize,
) -> crate::Result<SignalScores> {
    let items: Vec<ProbeMaps<'_>> = probes
        .iter()
        .filter_map(|p| {
            Some(ProbeMaps {
                conf: p.map("d_confidence")?,
                gate: p.map("semi_mask"),
                pred: &p.pred,
                gt: &p.gt,
            })
        })
        .collect();
    if items.is_empty() {
        return Ok(SignalScores::default());
    }
    probe_scores(&items, ignore, classes)
}

/// Evaluation batch for a dataset: synthetic images share one size, others may not.
pub fn eval_batch(ds: &dyn Dataset, configured: usize) -> usize {
    if ds.kind() == "synthetic" {
        configured.max(1)
    } else {
        1
    }
}
