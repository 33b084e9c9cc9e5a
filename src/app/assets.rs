//! Files under `assets/` that the app embeds: the window icon and the Inference tab's sample
//! images. Both are generated here (the icon procedurally, the samples from the built-in
//! synthetic dataset); `tests/app_views.rs` checks the committed PNGs match and rewrites them
//! with `ADVSEG_REGEN_ASSETS=1`.

use crate::data::synthetic::{generate, SyntheticConfig};
use crate::data::RgbImage;
use std::path::PathBuf;

/// The committed icon (`assets/icon.png`, RGBA).
pub const ICON_PNG: &[u8] = include_bytes!("../../assets/icon.png");
pub const ICON_SIZE: usize = 64;

/// (file name, PNG bytes) of the sample images.
pub const SAMPLES: &[(&str, &[u8])] = &[
    (
        "synthetic_val_000000.png",
        include_bytes!("../../assets/samples/synthetic_val_000000.png"),
    ),
    (
        "synthetic_val_000001.png",
        include_bytes!("../../assets/samples/synthetic_val_000001.png"),
    ),
    (
        "synthetic_val_000002.png",
        include_bytes!("../../assets/samples/synthetic_val_000002.png"),
    ),
];

/// The synthetic scene a sample is made from: the default dataset's val split (what
/// `synthetic` probes show), at 64×64.
pub fn sample_image(i: usize) -> RgbImage {
    generate(&SyntheticConfig::default(), 1, i as u64).0
}

/// The icon's RGBA pixels: a segmentation in miniature, a disc and a triangle in the
/// palette's class colours on a dark tile with rounded corners.
pub fn icon_rgba() -> Vec<u8> {
    let n = ICON_SIZE;
    let mut px = vec![0u8; n * n * 4];
    let c = crate::data::palette::voc_colour;
    for y in 0..n {
        for x in 0..n {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            // Rounded-square tile: outside the corner radius stays transparent.
            let r = 12.0;
            let (qx, qy) = (
                (fx - n as f32 / 2.0).abs() - (n as f32 / 2.0 - r),
                (fy - n as f32 / 2.0).abs() - (n as f32 / 2.0 - r),
            );
            let outside = qx.max(0.0).hypot(qy.max(0.0)) - r;
            if outside > 0.0 {
                continue;
            }
            let mut col = [30u8, 34, 42];
            let disc = (fx - 24.0).hypot(fy - 26.0) < 15.0;
            // Triangle with apex (44, 18) and base y = 54 from x = 28 to 60.
            let tri = fy < 54.0 && fy > 18.0 && (fx - 44.0).abs() < (fy - 18.0) * 16.0 / 36.0;
            if tri {
                col = c(3);
            } else if disc {
                col = c(1);
            }
            // A stripe of "prediction" along the bottom: the classes side by side.
            if fy > 56.0 && fy < 60.0 && fx > 8.0 && fx < 56.0 {
                col = c(1 + ((fx as usize - 8) / 12) % 5);
            }
            let o = (y * n + x) * 4;
            px[o..o + 4].copy_from_slice(&[col[0], col[1], col[2], 255]);
        }
    }
    px
}

/// The committed icon decoded for the window.
pub fn icon() -> Option<egui::IconData> {
    let img = image::load_from_memory_with_format(ICON_PNG, image::ImageFormat::Png).ok()?;
    let rgba = img.to_rgba8();
    Some(egui::IconData {
        width: rgba.width(),
        height: rgba.height(),
        rgba: rgba.into_raw(),
    })
}

/// Writes a sample to a temporary folder (the embedded bytes, so the app works from any
/// folder) and returns its path for the image field.
pub fn sample_path(name: &str) -> Result<PathBuf, String> {
    let (_, bytes) = SAMPLES
        .iter()
        .find(|s| s.0 == name)
        .ok_or_else(|| format!("no sample {name}"))?;
    let dir = std::env::temp_dir().join("advseg_samples");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let p = dir.join(name);
    crate::nn::write_atomic(&p, bytes).map_err(|e| e.to_string())?;
    Ok(p)
}
