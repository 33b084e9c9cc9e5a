//! Procedurally generated scenes: the embedded default dataset (no files needed).
//!
//! Each sample is a function of (seed, split, index) only. A scene is a textured background with
//! 1–5 shapes drawn in order (later shapes occlude earlier ones), then Gaussian noise. Every
//! class has a preferred colour and texture, but a quarter of the shapes borrow another class's
//! colour and 30% another texture, and backgrounds take any colour: a network has to use shape,
//! not colour alone, so a tiny one learns quickly but does not reach 100% at once.

use super::error::{DataError, DataResult};
use super::io::{LabelMap, RgbImage};
use super::palette::voc_colour;
use super::{image_labels, ClassInfo, Dataset, Sample};
use crate::rng::Rng;

pub const CLASS_NAMES: [&str; 8] = [
    "background",
    "disc",
    "rectangle",
    "triangle",
    "ring",
    "bar",
    "cross",
    "diamond",
];

/// Preferred colour of each object class (index 1..).
const BASE_COLOURS: [[f32; 3]; 8] = [
    [0.0, 0.0, 0.0],
    [200.0, 60.0, 60.0],
    [60.0, 160.0, 60.0],
    [60.0, 80.0, 200.0],
    [200.0, 170.0, 50.0],
    [170.0, 60.0, 180.0],
    [50.0, 170.0, 170.0],
    [220.0, 120.0, 40.0],
];

#[derive(Clone, Copy)]
enum Texture {
    Flat,
    Stripes,
    Checker,
    Dots,
}

/// Preferred texture of each object class (index 1..).
const BASE_TEXTURES: [Texture; 8] = [
    Texture::Flat,
    Texture::Flat,
    Texture::Checker,
    Texture::Flat,
    Texture::Dots,
    Texture::Stripes,
    Texture::Checker,
    Texture::Stripes,
];

#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticConfig {
    pub h: usize,
    pub w: usize,
    /// Number of train samples.
    pub n_train: usize,
    /// Number of val samples.
    pub n_val: usize,
    pub seed: u64,
    /// Number of classes including background (2..=8).
    pub classes: usize,
    /// Standard deviation of the additive Gaussian pixel noise (0..255 scale).
    pub noise: f32,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            h: 64,
            w: 64,
            n_train: 200,
            n_val: 50,
            seed: 0,
            classes: 6,
            noise: 12.0,
        }
    }
}

impl SyntheticConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(8..=4096).contains(&self.h) || !(8..=4096).contains(&self.w) {
            return Err(format!(
                "size {}x{} must be within 8..=4096",
                self.h, self.w
            ));
        }
        if !(2..=CLASS_NAMES.len()).contains(&self.classes) {
            return Err(format!(
                "classes={} must be within 2..={}",
                self.classes,
                CLASS_NAMES.len()
            ));
        }
        Ok(())
    }
}

pub struct Synthetic {
    cfg: SyntheticConfig,
    split: String,
    split_tag: u64,
    len: usize,
    classes: ClassInfo,
}

impl Synthetic {
    pub fn new(cfg: SyntheticConfig, split: &str) -> DataResult<Self> {
        cfg.validate()
            .map_err(|why| DataError::invalid("synthetic dataset", why))?;
        let (split_tag, len) = match split {
            "train" => (0, cfg.n_train),
            "val" => (1, cfg.n_val),
            _ => {
                return Err(DataError::UnknownSplit {
                    dataset: "synthetic".into(),
                    split: split.into(),
                    known: "train, val".into(),
                })
            }
        };
        if len == 0 {
            return Err(DataError::EmptySplit {
                dataset: "synthetic".into(),
                split: split.into(),
                path: "(generated)".into(),
            });
        }
        let classes = ClassInfo {
            names: CLASS_NAMES[..cfg.classes]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            colours: (0..cfg.classes).map(voc_colour).collect(),
            ignore: 255,
        };
        Ok(Synthetic {
            cfg,
            split: split.into(),
            split_tag,
            len,
            classes,
        })
    }

    pub fn config(&self) -> &SyntheticConfig {
        &self.cfg
    }
}

struct Shape {
    class: usize,
    cx: f32,
    cy: f32,
    r: f32,
    /// Rotation as (cos, sin).
    rot: (f32, f32),
    /// Shape-specific proportions.
    a: f32,
    b: f32,
    /// Triangle vertices (absolute coordinates).
    tri: [(f32, f32); 3],
    colour: [f32; 3],
    texture: Texture,
    tex_period: f32,
    tex_amp: f32,
}

impl Shape {
    fn random(rng: &mut Rng, classes: usize, h: usize, w: usize) -> Shape {
        let class = 1 + rng.below(classes - 1);
        let m = h.min(w) as f32;
        let r = m * rng.range(0.1, 0.3);
        let cx = w as f32 * rng.range(0.1, 0.9);
        let cy = h as f32 * rng.range(0.1, 0.9);
        let th = rng.range(0.0, std::f32::consts::TAU);
        let (a, b) = match class {
            2 => (1.0, rng.range(0.5, 1.0)),
            4 => (rng.range(0.45, 0.7), 0.0),
            5 => (1.6, rng.range(0.18, 0.3)),
            6 => (1.0, 0.25),
            7 => (1.0, rng.range(0.6, 1.0)),
            _ => (1.0, 1.0),
        };
        let mut tri = [(0.0, 0.0); 3];
        for (k, v) in tri.iter_mut().enumerate() {
            let ang = th + k as f32 * std::f32::consts::TAU / 3.0;
            let rr = r * rng.range(1.1, 1.6);
            *v = (cx + rr * ang.cos(), cy + rr * ang.sin());
        }
        let src = if rng.bool(0.25) {
            1 + rng.below(classes - 1)
        } else {
            class
        };
        let mut colour = BASE_COLOURS[src];
        for c in &mut colour {
            *c = (*c + 35.0 * rng.normal()).clamp(0.0, 255.0);
        }
        let texture = if rng.bool(0.3) {
            [
                Texture::Flat,
                Texture::Stripes,
                Texture::Checker,
                Texture::Dots,
            ][rng.below(4)]
        } else {
            BASE_TEXTURES[class]
        };
        Shape {
            class,
            cx,
            cy,
            r,
            rot: (th.cos(), th.sin()),
            a,
            b,
            tri,
            colour,
            texture,
            tex_period: rng.range(3.0, 7.0),
            tex_amp: rng.range(20.0, 50.0),
        }
    }

    fn extent(&self) -> f32 {
        self.r * 1.7
    }

    fn contains(&self, x: f32, y: f32) -> bool {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let (u, v) = (
            dx * self.rot.0 + dy * self.rot.1,
            -dx * self.rot.1 + dy * self.rot.0,
        );
        let r = self.r;
        match self.class {
            1 => dx * dx + dy * dy <= r * r,
            2 => u.abs() <= r * self.a && v.abs() <= r * self.b,
            3 => {
                let s = |p: (f32, f32), q: (f32, f32)| {
                    (q.0 - p.0) * (y - p.1) - (q.1 - p.1) * (x - p.0)
                };
                let [p0, p1, p2] = self.tri;
                let (d0, d1, d2) = (s(p0, p1), s(p1, p2), s(p2, p0));
                (d0 >= 0.0 && d1 >= 0.0 && d2 >= 0.0) || (d0 <= 0.0 && d1 <= 0.0 && d2 <= 0.0)
            }
            4 => {
                let d2 = dx * dx + dy * dy;
                d2 <= r * r && d2 >= (r * self.a) * (r * self.a)
            }
            5 => u.abs() <= r * self.a && v.abs() <= r * self.b,
            6 => {
                let (l, t) = (r, r * self.b);
                (u.abs() <= l && v.abs() <= t) || (v.abs() <= l && u.abs() <= t)
            }
            _ => u.abs() / (r * self.a) + v.abs() / (r * self.b) <= 1.0,
        }
    }

    fn shade(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let u = dx * self.rot.0 + dy * self.rot.1;
        let v = -dx * self.rot.1 + dy * self.rot.0;
        let p = self.tex_period;
        match self.texture {
            Texture::Flat => 0.0,
            Texture::Stripes => self.tex_amp * (std::f32::consts::TAU * u / p).sin().signum(),
            Texture::Checker => {
                let c = ((u / p).floor() as i32 + (v / p).floor() as i32) & 1;
                self.tex_amp * if c == 0 { 1.0 } else { -1.0 }
            }
            Texture::Dots => {
                let fu = (u / p).rem_euclid(1.0) - 0.5;
                let fv = (v / p).rem_euclid(1.0) - 0.5;
                if fu * fu + fv * fv < 0.09 {
                    -self.tex_amp
                } else {
                    0.0
                }
            }
        }
    }
}

/// Generates one scene; deterministic in (cfg, split_tag, index).
pub fn generate(cfg: &SyntheticConfig, split_tag: u64, index: u64) -> (RgbImage, LabelMap) {
    let (h, w) = (cfg.h, cfg.w);
    let mut rng = Rng::derive(cfg.seed, &[split_tag, index]);
    let mut img = vec![0f32; h * w * 3];
    let mut lab = vec![0u8; h * w];

    // Background: any colour, a linear gradient and a low-frequency wave.
    let base: [f32; 3] = [
        rng.range(20.0, 235.0),
        rng.range(20.0, 235.0),
        rng.range(20.0, 235.0),
    ];
    let (gx, gy) = (rng.range(-60.0, 60.0), rng.range(-60.0, 60.0));
    let (fx, fy) = (rng.range(0.5, 3.0), rng.range(0.5, 3.0));
    let wave = rng.range(0.0, 30.0);
    let phase = rng.range(0.0, std::f32::consts::TAU);
    for y in 0..h {
        let ty = y as f32 / h as f32;
        for x in 0..w {
            let tx = x as f32 / w as f32;
            let s = gx * (tx - 0.5)
                + gy * (ty - 0.5)
                + wave * (std::f32::consts::TAU * (fx * tx + fy * ty) + phase).sin();
            let o = (y * w + x) * 3;
            for c in 0..3 {
                img[o + c] = base[c] + s;
            }
        }
    }

    let n = 1 + rng.below(5);
    for _ in 0..n {
        let s = Shape::random(&mut rng, cfg.classes, h, w);
        let e = s.extent();
        let x0 = ((s.cx - e).floor().max(0.0)) as usize;
        let x1 = ((s.cx + e).ceil().max(0.0) as usize).min(w);
        let y0 = ((s.cy - e).floor().max(0.0)) as usize;
        let y1 = ((s.cy + e).ceil().max(0.0) as usize).min(h);
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                if s.contains(px, py) {
                    let sh = s.shade(px, py);
                    let o = (y * w + x) * 3;
                    for c in 0..3 {
                        img[o + c] = s.colour[c] + sh;
                    }
                    lab[y * w + x] = s.class as u8;
                }
            }
        }
    }

    let data = img
        .iter()
        .map(|&v| (v + cfg.noise * rng.normal()).round().clamp(0.0, 255.0) as u8)
        .collect();
    (RgbImage { w, h, data }, LabelMap { w, h, data: lab })
}

impl Dataset for Synthetic {
    fn kind(&self) -> &str {
        "synthetic"
    }
    fn split(&self) -> &str {
        &self.split
    }
    fn len(&self) -> usize {
        self.len
    }
    fn classes(&self) -> &ClassInfo {
        &self.classes
    }
    fn name(&self, i: usize) -> String {
        format!("synthetic_{}_{i:06}", self.split)
    }
    fn get(&self, i: usize) -> DataResult<Sample> {
        if i >= self.len {
            return Err(DataError::invalid(
                format!("synthetic/{}", self.split),
                format!("index {i} out of range (len {})", self.len),
            ));
        }
        let (image, label) = generate(&self.cfg, self.split_tag, i as u64);
        let image_labels = image_labels(&label.data, self.classes.len());
        Ok(Sample {
            image,
            label,
            name: self.name(i),
            image_labels,
        })
    }
}
