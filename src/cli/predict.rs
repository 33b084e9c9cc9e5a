//! `advseg predict`: a checkpoint's segmentation of an image or a folder of images as palette
//! PNGs and overlays, with `--maps` the confidence and the method's maps.

use advseg::data;
use advseg::data::io::{read_image, write_gray_png};
use advseg::data::save::{save_overlay, save_prediction};
use advseg::train::checkpoint;
use advseg::{Gpu, Tensor};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct PredictArgs {
    /// Training checkpoint.
    #[arg(long)]
    checkpoint: PathBuf,
    /// An image or a directory of images (.png, .jpg, .jpeg).
    #[arg(long)]
    input: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Also write the confidence and the method's maps (e.g. D confidence) as grayscale PNGs.
    #[arg(long)]
    maps: bool,
    /// Use the live weights of a run trained with `ema_decay` instead of their average.
    #[arg(long)]
    raw_weights: bool,
}

fn images_in(p: &Path) -> Result<Vec<PathBuf>> {
    if p.is_file() {
        return Ok(vec![p.to_path_buf()]);
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(p)
        .with_context(|| format!("reading {}", p.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| {
            f.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    v.sort();
    if v.is_empty() {
        bail!("{}: no .png/.jpg images", p.display());
    }
    Ok(v)
}

/// The smallest square input side every network of `method` accepts (searched with tiny
/// probes, so a too-small image is refused by name before it fails deep inside a conv).
fn min_side(gpu: &Arc<Gpu>, method: &dyn advseg::train::Method) -> Result<usize> {
    let ok = |s: usize| -> Result<bool> {
        let x = Tensor::zeros(gpu, &[1, 3, s, s], advseg::DType::F32)?;
        Ok(method.probe(&x).is_ok())
    };
    let mut hi = 1;
    while !ok(hi)? {
        if hi >= 1024 {
            bail!("the checkpoint's networks accept no input of side up to 1024");
        }
        hi *= 2;
    }
    let mut lo = hi / 2;
    // Invariant: `lo` fails (or is 0), `hi` works.
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if ok(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

pub fn run_predict(a: PredictArgs) -> Result<()> {
    let gpu = Gpu::shared()?;
    let (method, cfg, meta) =
        checkpoint::load_method_with(&gpu, &a.checkpoint, &[], a.raw_weights)?;
    let colours: Vec<[u8; 3]> = data::open(&cfg.common.data, "train")
        .map(|d| d.colours().to_vec())
        .unwrap_or_else(|_| (0..meta.classes).map(data::palette::voc_colour).collect());
    let files = images_in(&a.input)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let min = min_side(&gpu, method.as_ref())?;
    // One bad file must not cost the rest of a directory: failures are collected and listed.
    let mut failed: Vec<String> = Vec::new();
    for f in &files {
        let net = Net {
            method: method.as_ref(),
            classes: meta.classes,
            colours: &colours,
            min,
            norm: cfg.normalise(),
        };
        if let Err(e) = predict_one(&gpu, &net, f, &a) {
            let why = match too_large(&e) {
                Some(e) => format!("the image is too large for this device ({e}); downscale it"),
                None => format!("{e:#}"),
            };
            // Decoding errors already start with the file's path.
            let file = f.display().to_string();
            let why = if why.contains(&file) {
                why
            } else {
                format!("{file}: {why}")
            };
            eprintln!("error: {why}");
            failed.push(why);
        }
    }
    outln!(
        "wrote predictions of {} image(s) to {}",
        files.len() - failed.len(),
        a.out.display()
    )?;
    if !failed.is_empty() {
        eprintln!("{} of {} image(s) failed:", failed.len(), files.len());
        for why in &failed {
            eprintln!("  {why}");
        }
        bail!("{} of {} image(s) failed", failed.len(), files.len());
    }
    Ok(())
}

/// What `predict` knows about the checkpoint's networks.
struct Net<'a> {
    method: &'a dyn advseg::train::Method,
    classes: usize,
    colours: &'a [[u8; 3]],
    /// The smallest input side they accept ([`min_side`]).
    min: usize,
    /// The normalisation the run trained with (its config's).
    norm: advseg::data::Normalise,
}

fn predict_one(gpu: &Arc<Gpu>, net: &Net<'_>, f: &Path, a: &PredictArgs) -> Result<()> {
    let Net {
        method,
        classes,
        colours,
        min,
        ref norm,
    } = *net;
    let img = read_image(f)?;
    let (h, w) = (img.h, img.w);
    if h < min || w < min {
        bail!("{w}x{h} (WxH) is smaller than the {min}x{min} the checkpoint's networks need");
    }
    let mut x = vec![0f32; 3 * h * w];
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            x[c * h * w + i] = norm.apply(c, px[c] as f32);
        }
    }
    let out = method.probe(&Tensor::from_f32(gpu, &x, &[1, 3, h, w])?)?;
    let probs = out.probs.to_vec_f32()?;
    let pred = advseg::metrics::argmax_chw(&probs, classes, h, w);
    let stem = f
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "image".into());
    save_prediction(&a.out.join(format!("{stem}.png")), w, h, &pred, colours)?;
    save_overlay(
        &a.out.join(format!("{stem}_overlay.png")),
        &img,
        &pred,
        colours,
        0.5,
    )?;
    if a.maps {
        let hw = h * w;
        let conf: Vec<u8> = (0..hw)
            .map(|j| {
                let m = (0..classes).map(|c| probs[c * hw + j]).fold(0.0, f32::max);
                (m.clamp(0.0, 1.0) * 255.0).round() as u8
            })
            .collect();
        write_gray_png(&a.out.join(format!("{stem}_confidence.png")), w, h, &conf)?;
        for m in &out.maps {
            let name = &m.name;
            let v: Vec<u8> = m.tensor.to_vec_f32()?[..hw]
                .iter()
                .map(|x| (x.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect();
            let path = a.out.join(format!("{stem}_{name}.png"));
            // Label maps (RRM's reliable labels) travel as id / 255: a palette PNG keeps
            // the raw ids (255 = unreliable, white) and shows the class colours.
            if m.kind == advseg::train::MapKind::Labels {
                save_prediction(&path, w, h, &v, colours)?;
            } else {
                write_gray_png(&path, w, h, &v)?;
            }
        }
    }
    Ok(())
}

/// The error in `e`'s chain that is a device size limit (buffer, texture or binding), from
/// whichever layer reported it.
fn too_large(e: &anyhow::Error) -> Option<&(dyn std::error::Error + 'static)> {
    e.chain().find(|c| {
        c.downcast_ref::<advseg::train::TrainError>()
            .is_some_and(|t| t.is_too_large())
            || c.downcast_ref::<advseg::nn::NnError>()
                .is_some_and(|t| t.is_too_large())
            || c.downcast_ref::<advseg::Error>()
                .is_some_and(|t| t.is_too_large())
            || c.downcast_ref::<advseg::gpu::GpuError>()
                .is_some_and(|t| t.is_too_large())
    })
}
