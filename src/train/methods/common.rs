//! Pieces several methods share.

use crate::error::{Error, Result};
use crate::nn::arch::Model;
use crate::nn::imgdisc::Encoding;
use crate::nn::BnMode;
use crate::ops;
use crate::tensor::{DType, Tensor};

/// Logits of `g` upsampled bilinearly (align_corners = True) to the input size, as
/// AdvSemiSeg does before every loss.
pub fn seg_logits(g: &Model, x: &Tensor, mode: BnMode) -> crate::train::error::Result<Tensor> {
    let s = x.shape();
    let z = g.forward(x, mode)?;
    if z.shape()[2..] == s[2..] {
        return Ok(z);
    }
    Ok(ops::upsample_bilinear2d(&z, [s[2], s[3]], true)?)
}

/// 1 at labelled pixels, 0 at ignored ones: [N, H, W] labels → [N, 1, H, W].
pub fn valid_mask(labels: &Tensor, classes: usize, ignore: i32) -> Result<Tensor> {
    let oh = ops::softmax::one_hot(labels, classes, ignore)?;
    // The channel sum as a 1×1 conv with unit weights: the GEMM path is far faster on
    // software GPUs than the generic middle-dim reduction.
    let ones = Tensor::full(labels.gpu(), &[1, classes, 1, 1], 1.0)?;
    ops::conv2d(&oh, &ones, None, &ops::Conv2dParams::new(1, 0, 1))
}

/// Concatenates tensors along the batch dim (no gradient: used on detached predictions).
pub fn cat_batch(xs: &[&Tensor]) -> Result<Tensor> {
    let first = xs
        .first()
        .ok_or_else(|| Error::invalid("cat_batch", "no tensors"))?;
    let rest = &first.shape()[1..];
    if let Some(b) = xs.iter().find(|t| &t.shape()[1..] != rest) {
        return Err(Error::shape(
            "cat_batch",
            first.shape(),
            b.shape(),
            "all but the batch dim must match",
        ));
    }
    let n: usize = xs.iter().map(|t| t.shape()[0]).sum();
    let mut shape = first.shape().to_vec();
    shape[0] = n;
    let gpu = first.gpu();
    let out = Tensor::empty(gpu, "cat_batch", &shape, DType::F32)?;
    let mut off = 0u64;
    for t in xs {
        let bytes = (t.numel() * 4) as u64;
        gpu.copy(t.buffer(), 0, out.buffer(), off, bytes);
        off += bytes;
    }
    Ok(out)
}

/// Mean of `x` over pixels where `mask` is 1 (0 when the mask is empty) → [1].
pub fn masked_mean(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let one = Tensor::full(x.gpu(), &[1], 1.0)?;
    ops::div(
        &ops::sum(&ops::mul(x, mask)?)?,
        &ops::maximum(&ops::sum(mask)?, &one)?,
    )
}

/// The input encodings of a discriminator over class maps (methods.md §1.2 item 2, §2.2):
/// `basic` = the C-channel map itself (probabilities S, or one-hot Y for real inputs),
/// `product` = every class channel times every RGB channel (3C channels, channel k·C + c is
/// `S_c ⊙ x_k`, as `imgdisc`), `concat` = `[S, x]` (C + 3 channels).
pub fn encode_maps(encoding: Encoding, s: &Tensor, x: &Tensor) -> Result<Tensor> {
    match encoding {
        Encoding::Basic => Ok(s.clone()),
        Encoding::Concat => ops::concat::concat(&[s, x], 1),
        Encoding::Product => {
            let rgb = ops::concat::split(x, &[1, 1, 1], 1)?;
            let prods = rgb
                .iter()
                .map(|k| ops::mul(s, k))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Tensor> = prods.iter().collect();
            ops::concat::concat(&refs, 1)
        }
    }
}

/// Parses an encoding setting (`basic`, `product`, `concat`) for a config check.
pub fn parse_encoding(s: &str) -> std::result::Result<Encoding, String> {
    Encoding::parse(s).map_err(|_| format!("encoding {s:?} is not one of basic, product, concat"))
}

/// Per-pixel channel sum [N, C, H, W] → [N, 1, H, W] as a 1×1 conv (see [`valid_mask`]).
pub fn channel_sum(x: &Tensor) -> Result<Tensor> {
    let ones = Tensor::full(x.gpu(), &[1, x.shape()[1], 1, 1], 1.0)?;
    ops::conv2d(x, &ones, None, &ops::Conv2dParams::new(1, 0, 1))
}

/// 1 where `argmax pred` equals the label, 0 elsewhere and at ignored pixels → [N, 1, H, W].
pub fn correct_mask(pred: &Tensor, labels: &Tensor, ignore: i32) -> Result<Tensor> {
    let c = pred.shape()[1];
    let am = ops::softmax::argmax_channels(&pred.detach())?;
    channel_sum(&ops::mul(
        &ops::softmax::one_hot(&am, c, -1)?,
        &ops::softmax::one_hot(labels, c, ignore)?,
    )?)
}

/// Normalised images [N, 3, H, W] back to RGB 0–255 (what CRFs and bilateral kernels take):
/// every normalisation is per-channel affine, so its inverse is `a_c·x + b_c`.
pub fn rgb255(x: &Tensor, norm: &crate::data::Normalise) -> Result<Tensor> {
    let b: Vec<f32> = (0..3).map(|c| norm.invert(c, 0.0)).collect();
    let a: Vec<f32> = (0..3).map(|c| norm.invert(c, 1.0) - b[c]).collect();
    let gpu = x.gpu();
    ops::add(
        &ops::mul(x, &Tensor::from_f32(gpu, &a, &[1, 3, 1, 1])?)?,
        &Tensor::from_f32(gpu, &b, &[1, 3, 1, 1])?,
    )
}

/// Per-pixel maximum over channels [N, C, H, W] → [N, 1, H, W] (a fold of elementwise maxima:
/// C is a class count, small).
pub fn channel_max(x: &Tensor) -> Result<Tensor> {
    let parts = ops::concat::split(x, &vec![1; x.shape()[1]], 1)?;
    let mut m = parts[0].clone();
    for p in &parts[1..] {
        m = ops::maximum(&m, p)?;
    }
    Ok(m)
}
