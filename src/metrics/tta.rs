//! Test-time augmentation: average class probabilities over horizontal flips and input scales.

use crate::data::augment::resize_bilinear;
use crate::error::{Error, Result};

/// Resizes each channel of a CHW map bilinearly.
pub fn resize_chw(x: &[f32], c: usize, h: usize, w: usize, nh: usize, nw: usize) -> Vec<f32> {
    if (h, w) == (nh, nw) {
        return x.to_vec();
    }
    let mut out = Vec::with_capacity(c * nh * nw);
    for k in 0..c {
        out.extend(resize_bilinear(
            &x[k * h * w..(k + 1) * h * w],
            h,
            w,
            1,
            nh,
            nw,
        ));
    }
    out
}

/// Mirrors each channel of a CHW map left-right.
pub fn flip_chw(x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; c * h * w];
    for row in 0..c * h {
        for x_ in 0..w {
            out[row * w + x_] = x[row * w + w - 1 - x_];
        }
    }
    out
}

/// Averages `predict`'s probabilities over `scales` (and their mirrored inputs when `flip`).
/// `image` is a normalised 3×h×w input; `predict(input, h, w)` returns `num_classes`×h×w
/// probabilities for an input of that size. The result is num_classes×h×w at the input size.
pub fn predict_tta<F>(
    image: &[f32],
    h: usize,
    w: usize,
    num_classes: usize,
    scales: &[f32],
    flip: bool,
    mut predict: F,
) -> Result<Vec<f32>>
where
    F: FnMut(&[f32], usize, usize) -> Result<Vec<f32>>,
{
    if scales.is_empty() {
        return Err(Error::invalid("predict_tta", "no scales given"));
    }
    let mut acc = vec![0f32; num_classes * h * w];
    let mut count = 0;
    for &s in scales {
        let nh = ((h as f32 * s).round() as usize).max(1);
        let nw = ((w as f32 * s).round() as usize).max(1);
        let x = resize_chw(image, 3, h, w, nh, nw);
        let passes = if flip { 2 } else { 1 };
        for pass in 0..passes {
            let input = if pass == 1 {
                flip_chw(&x, 3, nh, nw)
            } else {
                x.clone()
            };
            let mut p = predict(&input, nh, nw)?;
            if p.len() != num_classes * nh * nw {
                return Err(Error::shape(
                    "predict_tta",
                    &[p.len()],
                    &[num_classes, nh, nw],
                    "prediction closure returned the wrong number of values",
                ));
            }
            if pass == 1 {
                p = flip_chw(&p, num_classes, nh, nw);
            }
            let p = resize_chw(&p, num_classes, nh, nw, h, w);
            for (a, b) in acc.iter_mut().zip(&p) {
                *a += b;
            }
            count += 1;
        }
    }
    let inv = 1.0 / count as f32;
    acc.iter_mut().for_each(|v| *v *= inv);
    Ok(acc)
}
