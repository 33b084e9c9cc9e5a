//! Pure pixel work for the map viewer: overlays, colormaps and the live T_semi gate. No egui
//! types beyond plain RGBA bytes, so it is unit-testable and shared with PNG export.

/// Jet colormap (the convention for CAMs), `v` in [0, 1].
pub fn jet(v: f32) -> [u8; 3] {
    let v = v.clamp(0.0, 1.0);
    let f = |x: f32| ((1.5 - (4.0 * v - x).abs()).clamp(0.0, 1.0) * 255.0).round() as u8;
    [f(3.0), f(2.0), f(1.0)]
}

/// Grey ramp for scalar maps that are not CAMs (confidences, gates).
pub fn grey(v: f32) -> [u8; 3] {
    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    [g, g, g]
}

pub fn rgb_to_rgba(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect()
}

fn mix(a: u8, b: u8, t: f32) -> u8 {
    (a as f32 * (1.0 - t) + b as f32 * t).round() as u8
}

/// Label colours over the image; hidden classes and the ignore index show the image only.
pub fn label_overlay(
    input_rgb: &[u8],
    labels: &[u8],
    colours: &[[u8; 3]],
    opacity: f32,
    hidden: &[usize],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(labels.len() * 4);
    for (i, &l) in labels.iter().enumerate() {
        let px = &input_rgb[3 * i..3 * i + 3];
        let c = colours
            .get(l as usize)
            .filter(|_| !hidden.contains(&(l as usize)));
        match c {
            Some(c) => out.extend([
                mix(px[0], c[0], opacity),
                mix(px[1], c[1], opacity),
                mix(px[2], c[2], opacity),
                255,
            ]),
            None => out.extend([px[0], px[1], px[2], 255]),
        }
    }
    out
}

/// Labels in their colours alone (the ignore index black).
pub fn label_image(labels: &[u8], colours: &[[u8; 3]], hidden: &[usize]) -> Vec<u8> {
    let black = [0u8; 3];
    labels
        .iter()
        .flat_map(|&l| {
            let c = if hidden.contains(&(l as usize)) {
                &black
            } else {
                colours.get(l as usize).unwrap_or(&black)
            };
            [c[0], c[1], c[2], 255]
        })
        .collect()
}

/// A scalar map through `cmap`, blended over the image with `alpha` (1: map only).
pub fn map_over(input_rgb: &[u8], map: &[f32], cmap: fn(f32) -> [u8; 3], alpha: f32) -> Vec<u8> {
    map.iter()
        .enumerate()
        .flat_map(|(i, &v)| {
            let c = cmap(v);
            let px = &input_rgb[3 * i..3 * i + 3];
            [
                mix(px[0], c[0], alpha),
                mix(px[1], c[1], alpha),
                mix(px[2], c[2], alpha),
                255,
            ]
        })
        .collect()
}

/// The AdvSemiSeg gate at threshold `t`: a pixel passes when its D confidence is ≥ t (as the
/// trainer's `semi_gate`). Returns the mask and how many pass.
pub fn semi_gate(conf: &[f32], t: f32) -> (Vec<bool>, usize) {
    let m: Vec<bool> = conf.iter().map(|&c| c >= t).collect();
    let n = m.iter().filter(|&&b| b).count();
    (m, n)
}

/// Passing pixels show the image, the rest are dimmed and tinted red.
pub fn gate_image(input_rgb: &[u8], mask: &[bool]) -> Vec<u8> {
    mask.iter()
        .enumerate()
        .flat_map(|(i, &pass)| {
            let px = &input_rgb[3 * i..3 * i + 3];
            if pass {
                [px[0], px[1], px[2], 255]
            } else {
                [mix(px[0], 160, 0.7), px[1] / 4, px[2] / 4, 255]
            }
        })
        .collect()
}

/// The `k` most probable classes at pixel `i` of a CxHxW probability tensor.
pub fn top_classes(
    probs: &[f32],
    classes: usize,
    hw: usize,
    i: usize,
    k: usize,
) -> Vec<(usize, f32)> {
    let mut v: Vec<(usize, f32)> = (0..classes).map(|c| (c, probs[c * hw + i])).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v.truncate(k);
    v
}

/// Writes RGBA pixels as a PNG atomically (temporary file, then rename), so a crash never
/// leaves a truncated export.
pub fn write_png_atomic(
    path: &std::path::Path,
    w: usize,
    h: usize,
    rgba: &[u8],
) -> crate::Result<()> {
    let io = |source| crate::Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(io)?;
    }
    let tmp = path.with_extension("png.tmp");
    let img = image::RgbaImage::from_raw(w as u32, h as u32, rgba.to_vec())
        .ok_or_else(|| crate::Error::invalid("export", "pixel buffer does not match its size"))?;
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| crate::Error::File {
            path: tmp.clone(),
            why: e.to_string(),
        })?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_counts_at_threshold() {
        let c = [0.1, 0.2, 0.5, 0.9];
        assert_eq!(semi_gate(&c, 0.2).1, 3);
        assert_eq!(semi_gate(&c, 0.95).1, 0);
        assert_eq!(semi_gate(&c, 0.0).1, 4);
    }

    #[test]
    fn jet_ends() {
        assert_eq!(jet(0.0), [0, 0, 128]);
        assert_eq!(jet(1.0), [128, 0, 0]);
    }

    #[test]
    fn top_is_sorted() {
        // 3 classes, 2 pixels.
        let p = [0.1, 0.5, 0.7, 0.2, 0.2, 0.3];
        assert_eq!(top_classes(&p, 3, 2, 0, 2), vec![(1, 0.7), (2, 0.2)]);
    }

    #[test]
    fn overlay_hides_classes() {
        let img = [10u8, 10, 10, 10, 10, 10];
        let o = label_overlay(&img, &[0, 1], &[[255, 0, 0], [0, 255, 0]], 1.0, &[1]);
        assert_eq!(&o[..4], &[255, 0, 0, 255]);
        assert_eq!(&o[4..], &[10, 10, 10, 255]);
    }
}
