//! Segmentation metrics from a confusion matrix accumulated over a split.
//!
//! Rows are ground truth, columns predictions; pixels whose ground truth is the ignore index are
//! not counted. Per-class IoU is `TP / (TP + FP + FN)`.
//!
//! **Classes absent from the split.** A class with neither ground-truth nor predicted pixels has
//! no IoU (`None`, printed as NaN) and is left out of the mean: mIoU is the mean over the classes
//! with a defined IoU (numpy's `nanmean`, as the reference evaluation code does). A class absent
//! from the ground truth but predicted somewhere has IoU 0 and counts. Likewise class accuracy is
//! `None` for classes without ground-truth pixels and mean class accuracy skips them, and
//! frequency-weighted IoU weighs by ground-truth frequency so such classes weigh nothing.

pub mod signals;
pub mod tta;

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct ConfusionMatrix {
    n: usize,
    /// n×n counts, row = ground truth, column = prediction.
    m: Vec<u64>,
}

/// Everything derived from a confusion matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    pub iou: Vec<Option<f64>>,
    pub miou: Option<f64>,
    pub pixel_acc: Option<f64>,
    pub class_acc: Vec<Option<f64>>,
    pub mean_class_acc: Option<f64>,
    pub fw_iou: Option<f64>,
    /// Pixels counted (ignore excluded).
    pub pixels: u64,
}

fn mean_defined(v: &[Option<f64>]) -> Option<f64> {
    let d: Vec<f64> = v.iter().flatten().copied().collect();
    (!d.is_empty()).then(|| d.iter().sum::<f64>() / d.len() as f64)
}

impl ConfusionMatrix {
    pub fn new(num_classes: usize) -> Self {
        ConfusionMatrix {
            n: num_classes,
            m: vec![0; num_classes * num_classes],
        }
    }

    pub fn num_classes(&self) -> usize {
        self.n
    }

    /// Count of pixels with ground truth `gt` predicted as `pred`.
    pub fn get(&self, gt: usize, pred: usize) -> u64 {
        self.m[gt * self.n + pred]
    }

    pub fn counts(&self) -> &[u64] {
        &self.m
    }

    /// Accumulates one batch. Ground truth values must be classes or `ignore`; predictions must
    /// be classes. Works for any integer label type (u8 masks, i32 batches).
    pub fn add<G, P>(&mut self, gt: &[G], pred: &[P], ignore: i64) -> Result<()>
    where
        G: Copy + Into<i64>,
        P: Copy + Into<i64>,
    {
        if gt.len() != pred.len() {
            return Err(Error::shape(
                "confusion matrix",
                &[gt.len()],
                &[pred.len()],
                "ground truth and prediction differ in pixel count",
            ));
        }
        let n = self.n as i64;
        for (i, (&g, &p)) in gt.iter().zip(pred).enumerate() {
            let (g, p) = (g.into(), p.into());
            if g == ignore {
                continue;
            }
            if !(0..n).contains(&g) {
                return Err(Error::invalid(
                    "confusion matrix",
                    format!("ground truth {g} at pixel {i} is neither a class (0..{n}) nor ignore ({ignore})"),
                ));
            }
            if !(0..n).contains(&p) {
                return Err(Error::invalid(
                    "confusion matrix",
                    format!("prediction {p} at pixel {i} is not a class (0..{n})"),
                ));
            }
            self.m[(g * n + p) as usize] += 1;
        }
        Ok(())
    }

    pub fn merge(&mut self, other: &ConfusionMatrix) -> Result<()> {
        if other.n != self.n {
            return Err(Error::shape(
                "confusion matrix merge",
                &[self.n],
                &[other.n],
                "class counts differ",
            ));
        }
        for (a, b) in self.m.iter_mut().zip(&other.m) {
            *a += b;
        }
        Ok(())
    }

    pub fn scores(&self) -> Scores {
        let n = self.n;
        let total: u64 = self.m.iter().sum();
        let mut iou = Vec::with_capacity(n);
        let mut class_acc = Vec::with_capacity(n);
        let mut fw = 0.0;
        let mut diag = 0u64;
        for c in 0..n {
            let tp = self.get(c, c);
            let gt: u64 = (0..n).map(|p| self.get(c, p)).sum();
            let pr: u64 = (0..n).map(|g| self.get(g, c)).sum();
            let union = gt + pr - tp;
            diag += tp;
            let i = (union > 0).then(|| tp as f64 / union as f64);
            if let (Some(v), true) = (i, total > 0) {
                fw += gt as f64 / total as f64 * v;
            }
            iou.push(i);
            class_acc.push((gt > 0).then(|| tp as f64 / gt as f64));
        }
        Scores {
            miou: mean_defined(&iou),
            mean_class_acc: mean_defined(&class_acc),
            pixel_acc: (total > 0).then(|| diag as f64 / total as f64),
            fw_iou: (total > 0).then_some(fw),
            iou,
            class_acc,
            pixels: total,
        }
    }
}

/// Index of the largest value per pixel of a CHW probability/logit map (first on ties).
pub fn argmax_chw(probs: &[f32], c: usize, h: usize, w: usize) -> Vec<u8> {
    let hw = h * w;
    (0..hw)
        .map(|i| {
            let mut best = 0;
            for k in 1..c {
                if probs[k * hw + i] > probs[best * hw + i] {
                    best = k;
                }
            }
            best as u8
        })
        .collect()
}
