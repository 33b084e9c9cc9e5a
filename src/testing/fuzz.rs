//! Bounded mutation fuzzing of the readers of untrusted files: safetensors checkpoints, label
//! PNGs, images (PNG, JPEG), TOML configs, split files and parity cases.
//!
//! Each target starts from valid files made in memory and feeds mutated copies (bit flips,
//! boundary bytes, huge length fields, cuts, splices) to its reader. A reader may accept or
//! refuse a file; it must never panic, and what it allocates must stay within a budget set by
//! the input's length (a header's claims are not a reason to allocate). The caller measures
//! allocation (a counting global allocator lives in the test binary, not in the library).
//! Everything is seeded with the crate's [`Rng`], so a failing case replays from its number.

use crate::data::io::{decode_image, decode_label, RgbImage};
use crate::data::semi::SemiSplit;
use crate::data::Dataset;
use crate::nn::checkpoint::{parse_safetensors, to_safetensors, HostTensors};
use crate::rng::Rng;
use crate::train::checkpoint::{Checkpoint, CkptMeta};
use crate::train::config::RunConfig;
use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

/// Runs a reader on one input; `true` when it accepted it.
pub type Reader = Box<dyn Fn(&[u8]) -> bool>;

/// One reader and the valid inputs its mutations start from.
pub struct Target {
    pub name: &'static str,
    pub seeds: Vec<Vec<u8>>,
    pub read: Reader,
    /// Most bytes the reader may allocate for an input of this length.
    pub budget: fn(usize) -> usize,
}

/// What one target's run found.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub target: &'static str,
    pub cases: usize,
    pub accepted: usize,
    /// (case number, input length, panic message)
    pub panics: Vec<(usize, usize, String)>,
    /// (case number, input length, bytes allocated at peak) over the budget.
    pub over_budget: Vec<(usize, usize, usize)>,
    /// Largest peak allocation seen, and the length of that input.
    pub max_peak: (usize, usize),
}

fn small_budget(len: usize) -> usize {
    64 * len + (16 << 20)
}

fn image_budget(len: usize) -> usize {
    // `data::io` refuses headers claiming more than 1100 pixels per input byte; decoders hold
    // a few planes of that size (components, RGB output, a converted copy).
    8 * 1100 * len + (16 << 20)
}

fn png_rgb(w: usize, h: usize, rng: &mut Rng) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w as u32, h as u32, |_, _| {
        image::Rgb([rng.below(256) as u8, rng.below(256) as u8, 90])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encode PNG");
    out
}

/// A baseline JPEG of a smooth pattern with noise (so the scan is not trivially short).
pub fn jpeg_rgb(w: usize, h: usize, rng: &mut Rng) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let n = rng.below(40) as u32;
        image::Rgb([
            ((x * 255) / w as u32) as u8,
            ((y * 255) / h as u32) as u8,
            (n + 100) as u8,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .expect("encode JPEG");
    out
}

fn png_label(w: usize, h: usize, rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().expect("PNG header");
        let data: Vec<u8> = (0..w * h).map(|_| rng.below(6) as u8).collect();
        wr.write_image_data(&data).expect("PNG data");
    }
    out
}

fn checkpoint_bytes() -> Vec<u8> {
    let mut t: HostTensors = BTreeMap::new();
    t.insert("G.conv.weight".into(), (vec![2, 3, 1, 1], vec![0.5; 6]));
    t.insert("G.bn.running_mean".into(), (vec![2], vec![0.0, 1.0]));
    // PyTorch keeps `num_batches_tracked` as a 0-d tensor.
    t.insert("G.bn.num_batches_tracked".into(), (vec![], vec![3.0]));
    t.insert(
        "optim.G.groups.0.params.0.momentum".into(),
        (vec![2, 3, 1, 1], vec![0.1; 6]),
    );
    let meta = CkptMeta {
        method: "supervised".into(),
        arch: "tiny".into(),
        classes: 6,
        step: 7,
        positions: BTreeMap::from([("labelled".to_string(), 14)]),
        best: Some(("miou".into(), 0.25, 5)),
        config_toml: RunConfig::new("supervised")
            .expect("known method")
            .to_toml(),
    };
    to_safetensors(&t, &meta.to_map()).expect("serialise")
}

fn parity_case_bytes() -> Vec<u8> {
    let mut t: HostTensors = BTreeMap::new();
    t.insert(
        "in.x".into(),
        (vec![2, 3], vec![1.0, -2.0, 0.5, 4.0, 0.0, 1.5]),
    );
    t.insert("out".into(), (vec![], vec![5.0]));
    t.insert("upstream".into(), (vec![], vec![0.7]));
    t.insert("grad.x".into(), (vec![2, 3], vec![0.7; 6]));
    let meta = HashMap::from([
        ("op".to_string(), "sum".to_string()),
        ("params".to_string(), "{}".to_string()),
        ("atol".to_string(), "1e-5".to_string()),
        ("rtol".to_string(), "1e-4".to_string()),
    ]);
    to_safetensors(&t, &meta).expect("serialise")
}

/// Safetensors files whose header claims far more than they hold (the length field itself,
/// or a tensor's shape and offsets): reading them must cost about their own size.
pub fn hostile_safetensors() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut a = 1u64.wrapping_shl(40).to_le_bytes().to_vec();
    a.extend_from_slice(b"{\"__metadata__\":{}}");
    out.push(a);
    let header =
        br#"{"x":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}}"#;
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header);
    b.extend_from_slice(&[0u8; 64]);
    out.push(b);
    let mut c = 99_999_999u64.to_le_bytes().to_vec();
    c.extend_from_slice(b"{}");
    out.push(c);
    out
}

/// Every fuzz target with its seeds.
pub fn targets() -> Vec<Target> {
    let mut rng = Rng::new(1);
    let p = Path::new("fuzz-input");
    let ds: Arc<dyn Dataset> = crate::data::open(
        &"synthetic:size=8,n=12,val=2"
            .parse()
            .expect("valid synthetic spec"),
        "train",
    )
    .expect("synthetic dataset");
    let split_seed = {
        let mut s = String::from("# labeled_fraction 0.25 seed 0\n");
        for i in 0..ds.len() {
            let tag = if i % 4 == 0 { "labelled" } else { "unlabelled" };
            s += &format!("{tag} {}\n", ds.name(i));
        }
        s.into_bytes()
    };
    let mut ckpt_seeds = vec![checkpoint_bytes()];
    ckpt_seeds.extend(hostile_safetensors());
    let toml_seeds = vec![
        RunConfig::new("advsemi")
            .expect("known method")
            .to_toml()
            .into_bytes(),
        b"iters = 3\nbatch = 2\ncrop = [16, 16]\n[advsemi]\nlambda_adv = 0.01\nmask_t = 0.2\n"
            .to_vec(),
    ];
    vec![
        Target {
            name: "safetensors checkpoint",
            seeds: ckpt_seeds,
            read: Box::new(move |b| {
                let ok = Checkpoint::from_bytes(b, p).is_ok();
                // The plain reader (--load-from, `model --load`) has its own path.
                parse_safetensors(b, p).is_ok() || ok
            }),
            budget: small_budget,
        },
        Target {
            name: "label PNG",
            seeds: vec![png_label(13, 7, &mut rng), png_label(1, 1, &mut rng)],
            read: Box::new(move |b| decode_label(b, p).is_ok()),
            budget: image_budget,
        },
        Target {
            name: "image (PNG, JPEG)",
            seeds: vec![
                png_rgb(12, 9, &mut rng),
                jpeg_rgb(24, 16, &mut rng),
                jpeg_rgb(8, 8, &mut rng),
            ],
            read: Box::new(move |b| decode_image(b, p).is_ok_and(|i: RgbImage| i.w > 0)),
            budget: image_budget,
        },
        Target {
            name: "TOML config",
            seeds: toml_seeds,
            read: Box::new(move |b| {
                let Ok(text) = std::str::from_utf8(b) else {
                    return false;
                };
                let mut c = RunConfig::new("advsemi").expect("known method");
                let applied = c.apply_toml(text, p).is_ok() && c.validate().is_ok();
                RunConfig::from_toml(text, p).is_ok() || applied
            }),
            budget: small_budget,
        },
        Target {
            name: "split file",
            seeds: vec![split_seed],
            read: Box::new(move |b| {
                let Ok(text) = std::str::from_utf8(b) else {
                    return false;
                };
                SemiSplit::parse(text, p, ds.as_ref()).is_ok()
            }),
            budget: small_budget,
        },
        Target {
            name: "parity case",
            seeds: vec![parity_case_bytes()],
            read: Box::new(move |b| crate::testing::parity::parse_case(b, p).is_ok()),
            budget: small_budget,
        },
    ]
}

const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'{', b'}', b'"', b'[', b'=', b'\n', b'9',
];
const HUGE: &[u64] = &[1 << 40, u64::MAX, 1 << 31, 0xFFFF_FFFF, 65535, 0];

/// One mutated copy of `seed` (1–4 mutations; `other` is a donor for splices).
pub fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    let max_len = 2 * seed.len() + 1024;
    for _ in 0..1 + rng.below(4) {
        let pos = |rng: &mut Rng, v: &Vec<u8>| rng.below(v.len().max(1));
        match rng.below(9) {
            0 if !v.is_empty() => {
                let i = pos(rng, &v);
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = pos(rng, &v);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 if !v.is_empty() => {
                let i = pos(rng, &v);
                let n = (1 + rng.below(16)).min(v.len() - i);
                v.drain(i..i + n);
            }
            3 => {
                let i = rng.below(v.len() + 1);
                let n = 1 + rng.below(64);
                let bytes: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
                v.splice(i..i, bytes);
            }
            4 if !v.is_empty() => {
                let i = pos(rng, &v);
                v.truncate(i);
            }
            5 if v.len() >= 8 => {
                // Length and size fields: the safetensors header length sits at 0.
                let i = if rng.bool(0.5) {
                    0
                } else {
                    rng.below(v.len() - 7)
                };
                let x = HUGE[rng.below(HUGE.len())];
                v[i..i + 8].copy_from_slice(&x.to_le_bytes());
            }
            6 => {
                // Huge numbers in text formats (sizes, shapes, offsets).
                if let Some(i) = v.iter().position(|b| b.is_ascii_digit()) {
                    let big = b"99999999999999999999".to_vec();
                    v.splice(i..i + 1, big);
                }
            }
            7 if !other.is_empty() && !v.is_empty() => {
                let a = rng.below(other.len());
                let n = (1 + rng.below(128)).min(other.len() - a);
                let i = pos(rng, &v);
                v.splice(i..i, other[a..a + n].iter().copied());
            }
            _ if v.len() > 1 => {
                // Duplicate a range (repeated chunks, markers).
                let a = pos(rng, &v);
                let n = (1 + rng.below(32)).min(v.len() - a);
                let chunk: Vec<u8> = v[a..a + n].to_vec();
                let i = pos(rng, &v);
                v.splice(i..i, chunk);
            }
            _ => {}
        }
        v.truncate(max_len);
    }
    v
}

/// Runs `cases` inputs per target (the seeds themselves first). `measure(f)` runs `f` and
/// returns the peak bytes it allocated.
pub fn run(cases: usize, seed: u64, measure: &dyn Fn(&mut dyn FnMut()) -> usize) -> Vec<Report> {
    let mut reports = Vec::new();
    for t in targets() {
        let mut rng = Rng::derive_named(seed, t.name);
        let mut rep = Report {
            target: t.name,
            ..Default::default()
        };
        for case in 0..cases.max(t.seeds.len()) {
            let input = if case < t.seeds.len() {
                t.seeds[case].clone()
            } else {
                let s = &t.seeds[rng.below(t.seeds.len())];
                let o = &t.seeds[rng.below(t.seeds.len())];
                mutate(&mut rng, s, o)
            };
            let mut accepted = false;
            let mut panic = None;
            let peak = measure(
                &mut || match catch_unwind(AssertUnwindSafe(|| (t.read)(&input))) {
                    Ok(a) => accepted = a,
                    Err(e) => {
                        panic = Some(
                            e.downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| e.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "non-string panic".into()),
                        )
                    }
                },
            );
            rep.cases += 1;
            rep.accepted += usize::from(accepted);
            if let Some(m) = panic {
                rep.panics.push((case, input.len(), m));
            }
            if peak > (t.budget)(input.len()) {
                rep.over_budget.push((case, input.len(), peak));
            }
            if peak > rep.max_peak.0 {
                rep.max_peak = (peak, input.len());
            }
        }
        reports.push(rep);
    }
    reports
}
