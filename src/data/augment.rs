//! Seeded augmentation: random scale, colour jitter, normalisation, padding, random crop and
//! horizontal flip, in that order (the order of the official DeepLab-based training code:
//! scale → mean subtraction → pad → crop → flip). Images are resized bilinearly, labels with
//! nearest neighbour, both with half-pixel centres so they stay aligned.

use super::Sample;
use crate::rng::Rng;

/// The BGR mean of the official DeepLab/AdvSemiSeg code, given here in RGB order because the
/// code reverses the channel axis after subtracting it (methods.md §3.5).
pub const DEEPLAB_MEAN_RGB: [f32; 3] = [122.679, 116.669, 104.008];

/// Maps 0..255 RGB to the network's input values.
#[derive(Clone, Debug, PartialEq)]
pub enum Normalise {
    /// Raw 0..255 values.
    None,
    /// `(x/255 - mean) / std` per RGB channel (torchvision convention).
    MeanStd { mean: [f32; 3], std: [f32; 3] },
    /// DeepLab convention: `x - DEEPLAB_MEAN_RGB` on the 0..255 scale, no std division, RGB order.
    BgrMean,
}

impl Normalise {
    pub fn imagenet() -> Self {
        Normalise::MeanStd {
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }
    #[inline]
    pub fn apply(&self, c: usize, x: f32) -> f32 {
        match self {
            Normalise::None => x,
            Normalise::MeanStd { mean, std } => (x / 255.0 - mean[c]) / std[c],
            Normalise::BgrMean => x - DEEPLAB_MEAN_RGB[c],
        }
    }
    /// Inverse of `apply` (for overlays of augmented inputs and tests).
    pub fn invert(&self, c: usize, y: f32) -> f32 {
        match self {
            Normalise::None => y,
            Normalise::MeanStd { mean, std } => (y * std[c] + mean[c]) * 255.0,
            Normalise::BgrMean => y + DEEPLAB_MEAN_RGB[c],
        }
    }
}

/// What padded image pixels hold when a crop is larger than the (scaled) image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PadImage {
    /// 0 in the normalised tensor: the mean colour under mean-subtracting normalisations
    /// (what the DeepLab code does, padding after subtracting the mean).
    Zero,
    /// A black pixel (raw 0), normalised like the image.
    Black,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScaleRange {
    pub min: f32,
    pub max: f32,
    /// Scales are drawn from `min, min+step, …, ≤max`; 0 = continuous uniform.
    pub step: f32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Jitter {
    /// Factors drawn from `[1-x, 1+x]`.
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AugConfig {
    pub scale: Option<ScaleRange>,
    /// (height, width) of the random crop; `None` keeps the whole (scaled) image.
    pub crop: Option<(usize, usize)>,
    pub flip: bool,
    pub jitter: Option<Jitter>,
    pub pad_image: PadImage,
    pub normalise: Normalise,
    /// Image-level labels of the crop (the classes of its labelled pixels) instead of the
    /// whole source image's.
    pub crop_image_labels: bool,
}

impl Default for AugConfig {
    /// Evaluation settings: no randomness, DeepLab normalisation.
    fn default() -> Self {
        AugConfig {
            scale: None,
            crop: None,
            flip: false,
            jitter: None,
            pad_image: PadImage::Zero,
            normalise: Normalise::BgrMean,
            crop_image_labels: false,
        }
    }
}

/// A sample ready for batching.
#[derive(Clone, Debug)]
pub struct Augmented {
    pub h: usize,
    pub w: usize,
    /// CHW normalised image.
    pub image: Vec<f32>,
    /// HxW class ids / ignore.
    pub label: Vec<u8>,
    /// HxW: 1 inside the (scaled) image, 0 in crop padding (RRM's crop-validity mask).
    pub roi: Vec<u8>,
    /// Image-level labels: of the whole source image, or of the crop with
    /// [`AugConfig::crop_image_labels`].
    pub image_labels: Vec<bool>,
    pub name: String,
}

/// Bilinear resize of an HWC f32 image with `c` channels (half-pixel centres, edge clamp; the
/// `cv2.INTER_LINEAR` / `align_corners=False` convention).
pub fn resize_bilinear(
    src: &[f32],
    h: usize,
    w: usize,
    c: usize,
    nh: usize,
    nw: usize,
) -> Vec<f32> {
    let mut out = vec![0f32; nh * nw * c];
    let coords = |n: usize, src_n: usize| -> Vec<(usize, usize, f32)> {
        (0..n)
            .map(|d| {
                let s = ((d as f32 + 0.5) * src_n as f32 / n as f32 - 0.5)
                    .clamp(0.0, (src_n - 1) as f32);
                let i0 = s.floor() as usize;
                let i1 = (i0 + 1).min(src_n - 1);
                (i0, i1, s - i0 as f32)
            })
            .collect()
    };
    let xs = coords(nw, w);
    let ys = coords(nh, h);
    for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
        for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
            for k in 0..c {
                let p = |yy: usize, xx: usize| src[(yy * w + xx) * c + k];
                let top = p(y0, x0) * (1.0 - fx) + p(y0, x1) * fx;
                let bot = p(y1, x0) * (1.0 - fx) + p(y1, x1) * fx;
                out[(y * nw + x) * c + k] = top * (1.0 - fy) + bot * fy;
            }
        }
    }
    out
}

/// Nearest-neighbour resize of a label map (half-pixel centres, matching `resize_bilinear`).
pub fn resize_nearest(src: &[u8], h: usize, w: usize, nh: usize, nw: usize) -> Vec<u8> {
    let idx = |d: usize, n: usize, src_n: usize| {
        (((d as f64 + 0.5) * src_n as f64 / n as f64) as usize).min(src_n - 1)
    };
    let xs: Vec<usize> = (0..nw).map(|x| idx(x, nw, w)).collect();
    let mut out = Vec::with_capacity(nh * nw);
    for y in 0..nh {
        let row = &src[idx(y, nh, h) * w..];
        out.extend(xs.iter().map(|&sx| row[sx]));
    }
    out
}

fn jitter(img: &mut [f32], j: &Jitter, rng: &mut Rng) {
    let b = rng.range(1.0 - j.brightness, 1.0 + j.brightness);
    let c = rng.range(1.0 - j.contrast, 1.0 + j.contrast);
    let s = rng.range(1.0 - j.saturation, 1.0 + j.saturation);
    let gray = |p: &[f32]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    let n = (img.len() / 3).max(1);
    let mean = img.chunks_exact(3).map(gray).sum::<f32>() / n as f32 * b;
    for p in img.chunks_exact_mut(3) {
        for v in p.iter_mut() {
            *v *= b;
        }
        for v in p.iter_mut() {
            *v = (*v - mean) * c + mean;
        }
        let g = gray(p);
        for v in p.iter_mut() {
            *v = ((*v - g) * s + g).clamp(0.0, 255.0);
        }
    }
}

/// Applies `cfg` to `sample` with randomness drawn from `rng` only.
pub fn augment(sample: &Sample, cfg: &AugConfig, ignore: u8, rng: &mut Rng) -> Augmented {
    let (mut h, mut w) = (sample.image.h, sample.image.w);
    let mut img: Vec<f32> = sample.image.data.iter().map(|&v| v as f32).collect();
    let mut lab = sample.label.data.clone();

    if let Some(sr) = &cfg.scale {
        let s = if sr.step > 0.0 {
            let n = ((sr.max - sr.min) / sr.step + 1e-4).floor() as usize + 1;
            sr.min + sr.step * rng.below(n) as f32
        } else {
            rng.range(sr.min, sr.max)
        };
        let nh = ((h as f32 * s).round() as usize).max(1);
        let nw = ((w as f32 * s).round() as usize).max(1);
        if (nh, nw) != (h, w) {
            img = resize_bilinear(&img, h, w, 3, nh, nw);
            lab = resize_nearest(&lab, h, w, nh, nw);
            (h, w) = (nh, nw);
        }
    }
    if let Some(j) = &cfg.jitter {
        jitter(&mut img, j, rng);
    }

    // Pad (bottom/right) to the crop size, then crop.
    let (oh, ow) = cfg.crop.unwrap_or((h, w));
    let (ph, pw) = (h.max(oh), w.max(ow));
    let y_off = rng.below(ph - oh + 1);
    let x_off = rng.below(pw - ow + 1);
    let flip = cfg.flip && rng.bool(0.5);
    let pad_val: [f32; 3] = match cfg.pad_image {
        PadImage::Zero => [0.0; 3],
        PadImage::Black => [0, 1, 2].map(|c| cfg.normalise.apply(c, 0.0)),
    };
    let mut out = vec![0f32; 3 * oh * ow];
    let mut out_lab = vec![ignore; oh * ow];
    let mut roi = vec![0u8; oh * ow];
    for y in 0..oh {
        let sy = y + y_off;
        for x in 0..ow {
            let sx = x + x_off;
            let dx = if flip { ow - 1 - x } else { x };
            let o = y * ow + dx;
            if sy < h && sx < w {
                let i = sy * w + sx;
                for c in 0..3 {
                    out[c * oh * ow + o] = cfg.normalise.apply(c, img[i * 3 + c]);
                }
                out_lab[o] = lab[i];
                roi[o] = 1;
            } else {
                for c in 0..3 {
                    out[c * oh * ow + o] = pad_val[c];
                }
            }
        }
    }
    let image_labels = if cfg.crop_image_labels {
        super::image_labels(&out_lab, sample.image_labels.len())
    } else {
        sample.image_labels.clone()
    };
    Augmented {
        h: oh,
        w: ow,
        image: out,
        label: out_lab,
        roi,
        image_labels,
        name: sample.name.clone(),
    }
}
