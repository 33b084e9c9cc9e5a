//! Saving predictions: palette PNGs (class indices preserved, the dataset's colours) and colour
//! overlays on the input image. Both are written atomically.

use super::error::{DataError, DataResult};
use super::io::{write_palette_png, write_rgb_png, RgbImage};
use std::path::Path;

/// Writes `pred` (HxW class ids; `ignore` or ids without a colour are drawn as the palette's
/// entry for that index) as an indexed PNG.
pub fn save_prediction(
    path: &Path,
    w: usize,
    h: usize,
    pred: &[u8],
    colours: &[[u8; 3]],
) -> DataResult<()> {
    write_palette_png(path, w, h, pred, colours)
}

/// Blends class colours over `image` with opacity `alpha` (0 = image only); pixels whose id
/// has no colour (e.g. ignore) keep the image.
pub fn overlay(
    image: &RgbImage,
    pred: &[u8],
    colours: &[[u8; 3]],
    alpha: f32,
) -> DataResult<RgbImage> {
    if pred.len() != image.w * image.h {
        return Err(DataError::invalid(
            "overlay",
            format!(
                "{} predictions for a {}x{} image",
                pred.len(),
                image.w,
                image.h
            ),
        ));
    }
    let a = alpha.clamp(0.0, 1.0);
    let mut data = image.data.clone();
    for (px, &p) in data.chunks_exact_mut(3).zip(pred) {
        if let Some(c) = colours.get(p as usize) {
            for k in 0..3 {
                px[k] = (px[k] as f32 * (1.0 - a) + c[k] as f32 * a).round() as u8;
            }
        }
    }
    Ok(RgbImage {
        w: image.w,
        h: image.h,
        data,
    })
}

/// Writes the overlay of `pred` on `image` as an RGB PNG.
pub fn save_overlay(
    path: &Path,
    image: &RgbImage,
    pred: &[u8],
    colours: &[[u8; 3]],
    alpha: f32,
) -> DataResult<()> {
    write_rgb_png(path, &overlay(image, pred, colours, alpha)?)
}
