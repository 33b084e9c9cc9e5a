//! Synthetic dataset, spec parsing, augmentation alignment, loader determinism, semi splits and
//! prediction saving.

use advseg::data::augment::{augment, AugConfig, Jitter, Normalise, PadImage, ScaleRange};
use advseg::data::io::{read_label, RgbImage};
use advseg::data::save::{overlay, save_overlay, save_prediction};
use advseg::data::semi::{Amount, SemiSplit};
use advseg::data::{open, DataSpec, Dataset, LabelMap, Loader, LoaderConfig, Sample};
use advseg::rng::Rng;
use std::path::PathBuf;
use std::sync::Arc;

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("advseg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn synthetic(spec: &str, split: &str) -> Arc<dyn Dataset> {
    open(&spec.parse().unwrap(), split).unwrap()
}

#[test]
fn spec_parsing() {
    let s: DataSpec = "synthetic".parse().unwrap();
    assert!(
        matches!(s, DataSpec::Synthetic(ref c) if c.h == 64 && c.classes == 6 && c.n_train == 200)
    );
    let s: DataSpec = "synthetic:size=32,n=10,val=5,seed=3,classes=8,noise=0"
        .parse()
        .unwrap();
    match s {
        DataSpec::Synthetic(c) => {
            assert_eq!(
                (c.h, c.w, c.n_train, c.n_val, c.seed, c.classes),
                (32, 32, 10, 5, 3, 8)
            );
            assert_eq!(c.noise, 0.0);
        }
        _ => panic!(),
    }
    let s: DataSpec = "synthetic:h=16,w=24".parse().unwrap();
    assert!(matches!(s, DataSpec::Synthetic(ref c) if (c.h, c.w) == (16, 24)));
    assert_eq!(
        "camvid:/x/y".parse::<DataSpec>().unwrap(),
        DataSpec::CamVid("/x/y".into())
    );
    assert_eq!(
        "voc:v".parse::<DataSpec>().unwrap(),
        DataSpec::Voc("v".into())
    );
    assert_eq!(
        "cityscapes:c".parse::<DataSpec>().unwrap(),
        DataSpec::Cityscapes("c".into())
    );
    assert_eq!(
        "folder:f".parse::<DataSpec>().unwrap(),
        DataSpec::Folder("f".into())
    );
    // Config files: the same string.
    let j: DataSpec = serde_json::from_str("\"folder:/d\"").unwrap();
    assert_eq!(j, DataSpec::Folder("/d".into()));
    assert_eq!(serde_json::to_string(&j).unwrap(), "\"folder:/d\"");
    assert!(serde_json::from_str::<DataSpec>("\"nope:1\"")
        .unwrap_err()
        .to_string()
        .contains("nope"));
    // Display round-trips.
    let s: DataSpec = "synthetic:size=32,seed=9".parse().unwrap();
    assert_eq!(s.to_string().parse::<DataSpec>().unwrap(), s);

    for (bad, needle) in [
        ("imagenet:/x", "unknown dataset kind \"imagenet\""),
        ("synthetic:colour=3", "unknown synthetic key \"colour\""),
        ("synthetic:size", "\"size\" is not key=value"),
        ("synthetic:size=abc", "size=\"abc\""),
        ("synthetic:classes=12", "classes=12"),
        ("synthetic:size=2", "size 2x2"),
        ("camvid", "camvid needs a path"),
        ("voc:", "voc needs a path"),
    ] {
        let e = bad.parse::<DataSpec>().unwrap_err().to_string();
        assert!(e.contains(needle) && e.contains(bad), "{bad}: {e}");
    }
}

#[test]
fn synthetic_is_deterministic_and_varied() {
    let ds = synthetic("synthetic:size=64,n=60,val=10,seed=7", "train");
    assert_eq!(ds.len(), 60);
    assert_eq!(ds.num_classes(), 6);
    assert_eq!(ds.ignore_index(), 255);
    assert_eq!(ds.class_names()[0], "background");
    let a = ds.get(3).unwrap();
    let b = ds.get(3).unwrap();
    assert_eq!(a.image, b.image);
    assert_eq!(a.label, b.label);
    assert_ne!(ds.get(4).unwrap().image, a.image);
    let other_seed = synthetic("synthetic:size=64,n=60,seed=8", "train");
    assert_ne!(other_seed.get(3).unwrap().image, a.image);
    let val = synthetic("synthetic:size=64,n=60,val=10,seed=7", "val");
    assert_ne!(val.get(3).unwrap().image, a.image, "val differs from train");
    assert!(ds.get(60).is_err());
    assert!(open(&"synthetic".parse().unwrap(), "test")
        .unwrap_err()
        .to_string()
        .contains("unknown split"));
    assert!(open(&"synthetic:val=0".parse().unwrap(), "val")
        .unwrap_err()
        .to_string()
        .contains("empty"));

    // Every class shows up, background dominates but is not everything, image labels match.
    let mut pixels = [0usize; 6];
    let mut multi = 0;
    for i in 0..60 {
        let s = ds.get(i).unwrap();
        assert_eq!(
            (s.image.w, s.image.h, s.label.data.len()),
            (64, 64, 64 * 64)
        );
        let mut present = [false; 6];
        for &v in &s.label.data {
            assert!(v < 6);
            pixels[v as usize] += 1;
            present[v as usize] = true;
        }
        assert_eq!(s.image_labels, present.to_vec());
        if present[1..].iter().filter(|&&p| p).count() >= 2 {
            multi += 1;
        }
    }
    let total: usize = pixels.iter().sum();
    for (c, &p) in pixels.iter().enumerate() {
        let share = p as f64 / total as f64;
        assert!(share > 0.01, "class {c} share {share}");
    }
    assert!((pixels[0] as f64 / total as f64) < 0.9);
    assert!(multi >= 15, "scenes with several object classes: {multi}");

    // Non-square, 8 classes.
    let ds = synthetic("synthetic:h=24,w=40,classes=8,n=5", "train");
    let s = ds.get(0).unwrap();
    assert_eq!((s.image.h, s.image.w), (24, 40));
    assert_eq!(ds.num_classes(), 8);
}

#[test]
fn synthetic_colour_alone_is_ambiguous() {
    // Nearest-mean-colour classification per pixel must be far from perfect.
    let ds = synthetic("synthetic:size=64,n=40", "train");
    let mut sums = [[0f64; 3]; 6];
    let mut counts = [0f64; 6];
    let samples: Vec<Sample> = (0..40).map(|i| ds.get(i).unwrap()).collect();
    for s in &samples {
        for (px, &l) in s.image.data.chunks(3).zip(&s.label.data) {
            for k in 0..3 {
                sums[l as usize][k] += px[k] as f64;
            }
            counts[l as usize] += 1.0;
        }
    }
    let means: Vec<[f64; 3]> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| s.map(|v| v / c))
        .collect();
    let mut cm = advseg::metrics::ConfusionMatrix::new(6);
    for s in &samples {
        let pred: Vec<u8> = s
            .image
            .data
            .chunks(3)
            .map(|px| {
                let d = |m: &[f64; 3]| (0..3).map(|k| (px[k] as f64 - m[k]).powi(2)).sum::<f64>();
                (0..6)
                    .min_by(|&a, &b| d(&means[a]).total_cmp(&d(&means[b])))
                    .unwrap() as u8
            })
            .collect();
        cm.add(&s.label.data, &pred, 255).unwrap();
    }
    let sc = cm.scores();
    eprintln!(
        "colour-only: mIoU {:?}, mean class acc {:?}",
        sc.miou, sc.mean_class_acc
    );
    assert!(sc.miou.unwrap() < 0.5, "colour-only mIoU {:?}", sc.miou);
}

#[test]
fn synthetic_is_fast() {
    let ds = synthetic("synthetic:size=64,n=200", "train");
    let t = std::time::Instant::now();
    for i in 0..200 {
        ds.get(i).unwrap();
    }
    let per = t.elapsed().as_secs_f64() / 200.0;
    assert!(per < 0.005, "{:.3} ms per 64x64 sample", per * 1e3);
}

/// Label = block id of (x, y); image channel 0 = the same value, others 0.
fn position_sample(h: usize, w: usize) -> Sample {
    let f = |x: usize, y: usize| (10 * (x / 8) + y / 8) as u8;
    let mut img = vec![0u8; h * w * 3];
    let mut lab = vec![0u8; h * w];
    for y in 0..h {
        for x in 0..w {
            img[(y * w + x) * 3] = f(x, y);
            lab[y * w + x] = f(x, y);
        }
    }
    Sample {
        image: RgbImage { w, h, data: img },
        label: LabelMap { w, h, data: lab },
        name: "pos".into(),
        image_labels: vec![],
    }
}

#[test]
fn augmentation_keeps_image_and_label_aligned() {
    let s = position_sample(48, 64);
    let mut checked_interior = 0;
    for seed in 0..40u64 {
        let cfg = AugConfig {
            scale: Some(ScaleRange {
                min: 0.5,
                max: 1.5,
                step: if seed % 2 == 0 { 0.1 } else { 0.0 },
            }),
            crop: Some((40, 56)),
            flip: true,
            jitter: None,
            pad_image: PadImage::Zero,
            normalise: Normalise::None,
            crop_image_labels: false,
        };
        let a = augment(&s, &cfg, 255, &mut Rng::new(seed));
        assert_eq!(
            (a.h, a.w, a.image.len(), a.label.len()),
            (40, 56, 3 * 40 * 56, 40 * 56)
        );
        for y in 0..a.h {
            for x in 0..a.w {
                let l = a.label[y * a.w + x];
                let v = a.image[y * a.w + x];
                if l == 255 {
                    assert_eq!(v, 0.0, "padding: image 0 where the label is ignore");
                    continue;
                }
                // Where the full 3x3 label neighbourhood is uniform, bilinear = nearest exactly.
                let inside = y > 0 && x > 0 && y + 1 < a.h && x + 1 < a.w;
                let uniform = inside
                    && (y - 1..y + 2)
                        .all(|yy| (x - 1..x + 2).all(|xx| a.label[yy * a.w + xx] == l));
                if uniform {
                    assert!(
                        (v - l as f32).abs() < 0.51,
                        "seed {seed} ({x},{y}): image {v} label {l}"
                    );
                    checked_interior += 1;
                }
                assert_eq!(a.image[a.h * a.w + y * a.w + x], 0.0);
            }
        }
    }
    assert!(checked_interior > 40 * 40 * 56 / 3);

    // Without scaling, crop + flip move image and label identically, pixel for pixel.
    for seed in 0..10u64 {
        let cfg = AugConfig {
            scale: None,
            crop: Some((32, 70)),
            flip: true,
            pad_image: PadImage::Black,
            normalise: Normalise::None,
            ..AugConfig::default()
        };
        let a = augment(&s, &cfg, 255, &mut Rng::new(seed));
        for i in 0..a.h * a.w {
            if a.label[i] == 255 {
                assert_eq!(a.image[i], 0.0);
            } else {
                assert_eq!(a.image[i], a.label[i] as f32);
            }
        }
        // Width 70 > 64: six padded columns of ignore per row.
        assert_eq!(a.label.iter().filter(|&&l| l == 255).count(), 6 * 32);
    }
}

/// `crop_image_labels`: the classes of the crop's pixels, padding (ignore) excluded; off, the
/// whole image's labels pass through unchanged.
#[test]
fn crop_image_labels_name_only_the_classes_in_the_crop() {
    // Left half class 1, right half class 2, 8x16; the sample's own labels also claim class 3.
    let (h, w) = (8, 16);
    let lab: Vec<u8> = (0..h * w)
        .map(|i| if i % w < w / 2 { 1 } else { 2 })
        .collect();
    let s = Sample {
        image: RgbImage {
            w,
            h,
            data: vec![0; h * w * 3],
        },
        label: LabelMap { w, h, data: lab },
        name: "halves".into(),
        image_labels: vec![false, true, true, true],
    };
    let (mut left, mut right, mut both) = (0, 0, 0);
    for seed in 0..60 {
        let cfg = AugConfig {
            crop: Some((8, 6)),
            crop_image_labels: true,
            ..AugConfig::default()
        };
        let a = augment(&s, &cfg, 255, &mut Rng::new(seed));
        let want: Vec<bool> = (0..4u8).map(|c| a.label.contains(&c)).collect();
        assert_eq!(a.image_labels, want, "seed {seed}");
        match (a.image_labels[1], a.image_labels[2]) {
            (true, false) => left += 1,
            (false, true) => right += 1,
            (true, true) => both += 1,
            _ => panic!("seed {seed}: empty crop labels"),
        }
        let whole = augment(
            &s,
            &AugConfig {
                crop_image_labels: false,
                ..cfg
            },
            255,
            &mut Rng::new(seed),
        );
        assert_eq!(whole.image_labels, s.image_labels);
    }
    assert!(left > 0 && right > 0 && both > 0, "{left} {right} {both}");

    // A crop larger than the image: padding is ignore and names no class.
    let cfg = AugConfig {
        crop: Some((12, 8)),
        crop_image_labels: true,
        ..AugConfig::default()
    };
    let a = augment(&s, &cfg, 255, &mut Rng::new(0));
    assert!(a.label.contains(&255));
    assert!(!a.image_labels[0] && !a.image_labels[3]);
}

#[test]
fn flip_mirrors_and_normalisation_conventions() {
    let s = position_sample(16, 16);
    let cfg = AugConfig {
        flip: true,
        normalise: Normalise::None,
        ..AugConfig::default()
    };
    let mut flipped = 0;
    for seed in 0..20 {
        let a = augment(&s, &cfg, 255, &mut Rng::new(seed));
        if a.label[0] == s.label.data[15] {
            flipped += 1;
            assert_eq!(a.label[15], s.label.data[0]);
        } else {
            assert_eq!(a.label, s.label.data);
        }
    }
    assert!(
        (4..=16).contains(&flipped),
        "flip probability ~1/2: {flipped}/20"
    );

    // DeepLab: RGB order, minus the BGR mean reversed, no std.
    let px = Sample {
        image: RgbImage {
            w: 1,
            h: 1,
            data: vec![200, 100, 50],
        },
        label: LabelMap {
            w: 1,
            h: 1,
            data: vec![0],
        },
        name: "p".into(),
        image_labels: vec![],
    };
    let a = augment(&px, &AugConfig::default(), 255, &mut Rng::new(0));
    let want = [200.0 - 122.679, 100.0 - 116.669, 50.0 - 104.008];
    for (got, want) in a.image.iter().zip(want) {
        assert!((got - want).abs() < 1e-4, "{:?}", a.image);
    }
    let cfg = AugConfig {
        normalise: Normalise::imagenet(),
        crop: Some((2, 1)),
        pad_image: PadImage::Black,
        ..AugConfig::default()
    };
    let a = augment(&px, &cfg, 255, &mut Rng::new(0));
    assert!((a.image[0] - (200.0 / 255.0 - 0.485) / 0.229).abs() < 1e-4);
    assert!(
        (a.image[1] - (0.0 - 0.485) / 0.229).abs() < 1e-4,
        "black padding, normalised"
    );
    assert_eq!(a.label, vec![0, 255]);
    for c in 0..3 {
        let n = Normalise::imagenet();
        assert!((n.invert(c, n.apply(c, 77.0)) - 77.0).abs() < 1e-3);
    }
}

#[test]
fn jitter_is_seeded_and_bounded() {
    let ds = synthetic("synthetic:size=32,n=4", "train");
    let s = ds.get(0).unwrap();
    let cfg = AugConfig {
        jitter: Some(Jitter {
            brightness: 0.3,
            contrast: 0.3,
            saturation: 0.3,
        }),
        normalise: Normalise::None,
        ..AugConfig::default()
    };
    let a = augment(&s, &cfg, 255, &mut Rng::new(5));
    let b = augment(&s, &cfg, 255, &mut Rng::new(5));
    let c = augment(&s, &cfg, 255, &mut Rng::new(6));
    assert_eq!(a.image, b.image);
    assert_ne!(a.image, c.image);
    assert_eq!(a.label, s.label.data);
    assert!(a.image.iter().all(|&v| (0.0..=255.0).contains(&v)));
}

fn train_cfg(workers: usize) -> LoaderConfig {
    LoaderConfig {
        batch: 4,
        workers,
        prefetch: 2,
        shuffle: true,
        infinite: true,
        seed: 11,
        aug: AugConfig {
            scale: Some(ScaleRange {
                min: 0.75,
                max: 1.25,
                step: 0.25,
            }),
            crop: Some((24, 24)),
            flip: true,
            jitter: Some(Jitter {
                brightness: 0.2,
                contrast: 0.2,
                saturation: 0.2,
            }),
            ..AugConfig::default()
        },
        ..LoaderConfig::default()
    }
}

#[test]
fn loader_is_deterministic_whatever_the_threads() {
    let ds = synthetic("synthetic:size=32,n=10", "train");
    let take = |workers: usize| -> Vec<_> {
        Loader::new(ds.clone(), None, train_cfg(workers))
            .unwrap()
            .take(8)
            .map(|b| b.unwrap())
            .collect()
    };
    let one = take(1);
    let three = take(3);
    for (a, b) in one.iter().zip(&three) {
        assert_eq!(a.indices, b.indices);
        assert_eq!(a.images, b.images);
        assert_eq!(a.labels, b.labels);
    }
    let b = &one[0];
    assert_eq!((b.n, b.h, b.w), (4, 24, 24));
    assert_eq!(b.images.len(), 4 * 3 * 24 * 24);
    assert_eq!(b.labels.len(), 4 * 24 * 24);
    assert_eq!(b.image_labels.len(), 4 * 6);
    // Epochs of 10 over batches of 4: each epoch visits every index once, and reshuffles.
    let stream: Vec<usize> = one.iter().flat_map(|b| b.indices.clone()).collect();
    let mut e0 = stream[..10].to_vec();
    let mut e1 = stream[10..20].to_vec();
    assert_ne!(e0, e1, "epochs reshuffle");
    e0.sort();
    e1.sort();
    assert_eq!(e0, (0..10).collect::<Vec<_>>());
    assert_eq!(e1, (0..10).collect::<Vec<_>>());
    // A different seed gives a different order.
    let mut cfg = train_cfg(2);
    cfg.seed = 12;
    let other: Vec<usize> = Loader::new(ds.clone(), None, cfg)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .indices;
    assert_ne!(other, one[0].indices);
}

#[test]
fn finite_loader_matches_direct_augmentation() {
    let ds = synthetic("synthetic:size=16,n=7", "train");
    let cfg = LoaderConfig {
        batch: 3,
        workers: 2,
        aug: AugConfig::default(),
        ..LoaderConfig::default()
    };
    let batches: Vec<_> = Loader::new(ds.clone(), None, cfg.clone())
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    assert_eq!(
        batches.iter().map(|b| b.n).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    let s = ds.get(4).unwrap();
    let a = augment(&s, &cfg.aug, 255, &mut Rng::new(0));
    let b = &batches[1];
    assert_eq!(b.indices, vec![3, 4, 5]);
    assert_eq!(&b.images[3 * 16 * 16..2 * 3 * 16 * 16], &a.image[..]);
    let lab: Vec<i32> = a.label.iter().map(|&v| v as i32).collect();
    assert_eq!(&b.labels[16 * 16..2 * 16 * 16], &lab[..]);
    let mut cfg2 = cfg;
    cfg2.drop_last = true;
    assert_eq!(
        Loader::new(ds.clone(), Some(vec![0, 2, 4, 6]), cfg2)
            .unwrap()
            .count(),
        1
    );
    assert!(Loader::new(ds.clone(), Some(vec![9]), LoaderConfig::default()).is_err());
    assert!(Loader::new(ds, Some(vec![]), LoaderConfig::default()).is_err());
}

#[test]
fn semi_split_draw_save_load() {
    let ds = synthetic("synthetic:size=16,n=200", "train");
    let sp = SemiSplit::draw(ds.as_ref(), "1/8".parse().unwrap(), 3).unwrap();
    assert_eq!(sp.labelled.len(), 25);
    assert_eq!(sp.unlabelled.len(), 175);
    assert_eq!(
        sp,
        SemiSplit::draw(ds.as_ref(), Amount::Fraction(0.125), 3).unwrap()
    );
    assert_ne!(
        sp,
        SemiSplit::draw(ds.as_ref(), Amount::Fraction(0.125), 4).unwrap()
    );
    let mut all: Vec<usize> = sp.labelled.iter().chain(&sp.unlabelled).copied().collect();
    all.sort();
    assert_eq!(all, (0..200).collect::<Vec<_>>());
    assert_eq!(
        SemiSplit::draw(ds.as_ref(), "30".parse().unwrap(), 0)
            .unwrap()
            .labelled
            .len(),
        30
    );
    assert_eq!(
        SemiSplit::draw(ds.as_ref(), "0.5".parse().unwrap(), 0)
            .unwrap()
            .labelled
            .len(),
        100
    );
    assert_eq!(
        SemiSplit::draw(ds.as_ref(), "1/4".parse().unwrap(), 0)
            .unwrap()
            .labelled
            .len(),
        50
    );
    assert!(SemiSplit::draw(ds.as_ref(), Amount::Count(201), 0).is_err());
    for bad in ["0", "3/2", "x", "-0.5"] {
        assert!(bad.parse::<Amount>().is_err(), "{bad}");
    }

    let dir = tmp_dir("semi");
    let p = dir.join("split.txt");
    sp.save(&p, ds.as_ref(), "amount 1/8 seed 3").unwrap();
    assert_eq!(SemiSplit::load(&p, ds.as_ref()).unwrap(), sp);
    std::fs::write(&p, "# x\nlabelled synthetic_train_000001\nlabelled nope\n").unwrap();
    let e = SemiSplit::load(&p, ds.as_ref()).unwrap_err().to_string();
    assert!(e.contains("split.txt:3") && e.contains("nope"), "{e}");
    std::fs::write(
        &p,
        "labelled synthetic_train_000001\nunlabelled synthetic_train_000001\n",
    )
    .unwrap();
    assert!(SemiSplit::load(&p, ds.as_ref())
        .unwrap_err()
        .to_string()
        .contains("twice"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn predictions_saved_as_palette_and_overlay() {
    let dir = tmp_dir("save");
    let colours = [[10, 20, 30], [200, 0, 0], [0, 200, 0]];
    let pred: Vec<u8> = (0..12).map(|i| [0, 1, 2, 255][i % 4]).collect();
    let p = dir.join("sub").join("pred.png");
    save_prediction(&p, 4, 3, &pred, &colours).unwrap();
    let back = read_label(&p).unwrap();
    assert_eq!((back.w, back.h), (4, 3));
    assert_eq!(back.data, pred, "indices preserved");
    let dec = png::Decoder::new(std::fs::File::open(&p).unwrap());
    let r = dec.read_info().unwrap();
    let pal = r.info().palette.as_ref().unwrap();
    assert_eq!(&pal[3..6], &[200, 0, 0]);
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(dir.join("sub")).unwrap().count(), 1);

    let img = RgbImage {
        w: 4,
        h: 3,
        data: vec![100; 36],
    };
    let o = overlay(&img, &pred, &colours, 0.5).unwrap();
    assert_eq!(&o.data[3..6], &[150, 50, 50]);
    assert_eq!(&o.data[9..12], &[100, 100, 100], "ignore keeps the image");
    assert_eq!(overlay(&img, &pred, &colours, 0.0).unwrap().data, img.data);
    let q = dir.join("overlay.png");
    save_overlay(&q, &img, &pred, &colours, 0.5).unwrap();
    let decoded = image::open(&q).unwrap().to_rgb8();
    assert_eq!(decoded.into_raw(), o.data);
    assert!(overlay(&img, &pred[..5], &colours, 0.5).is_err());
    let _ = std::fs::remove_dir_all(dir);
}
