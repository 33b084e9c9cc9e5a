//! Evaluation of a method's segmentation network over a split (confusion-matrix mIoU).

use super::event::EvalResult;
use super::method::Method;
use crate::data::{AugConfig, Dataset, Loader, LoaderConfig};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::metrics::{ConfusionMatrix, Scores};
use crate::ops::softmax::argmax_channels;
use crate::tensor::Tensor;
use std::sync::Arc;

/// Runs the method's inference over the whole of `ds` (no augmentation, full images).
/// `batch` > 1 needs equally sized images.
pub fn evaluate(
    gpu: &Arc<Gpu>,
    method: &dyn Method,
    ds: &Arc<dyn Dataset>,
    batch: usize,
    step: usize,
) -> Result<(EvalResult, Scores)> {
    let t0 = std::time::Instant::now();
    let loader = Loader::new(
        ds.clone(),
        None,
        LoaderConfig {
            batch,
            workers: 2,
            aug: AugConfig::default(),
            ..LoaderConfig::default()
        },
    )?;
    let mut cm = ConfusionMatrix::new(ds.num_classes());
    let mut images = 0;
    for b in loader {
        let b = b?;
        let x = Tensor::from_f32(gpu, &b.images, &[b.n, 3, b.h, b.w])?;
        let y = Tensor::from_f32(gpu, &b.image_labels, &[b.n, b.num_classes])?;
        let pred = argmax_channels(&method.segment_labeled(&x, &y)?)?.to_vec_i32()?;
        cm.add(&b.labels, &pred, ds.ignore_index() as i64)?;
        images += b.n;
    }
    let s = cm.scores();
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
        },
        s,
    ))
}

/// Evaluation batch for a dataset: synthetic images share one size, others may not.
pub fn eval_batch(ds: &dyn Dataset, configured: usize) -> usize {
    if ds.kind() == "synthetic" {
        configured.max(1)
    } else {
        1
    }
}
