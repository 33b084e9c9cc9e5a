//! Training unit tests: AdvSemiSeg loss pieces on hand-made tensors, config rules, resumable
//! data streams.

use advseg::train::methods::advsemi::{semi_gate, semi_loss, AdvSemiConfig};
use advseg::train::methods::common::{cat_batch, masked_mean, valid_mask};
use advseg::train::methods::gan::adv_bce;
use advseg::train::{RunConfig, TrainError};
use advseg::{Gpu, Tensor};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_f32(&Gpu::shared().unwrap(), data, shape).unwrap()
}

fn close(a: f32, b: f32) {
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");
}

#[test]
fn gate_keeps_confidence_at_or_above_t() {
    let conf = t(&[0.1, 0.2, 0.25, 0.9, 0.19999, 0.0], &[1, 1, 2, 3]);
    let m = semi_gate(&conf, 0.2).unwrap().to_vec_f32().unwrap();
    assert_eq!(m, vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
}

/// CE of a 2-class logit against its own argmax at one pixel.
fn ce_self(z: [f32; 2]) -> f32 {
    let m = z[0].max(z[1]);
    let lse = m + ((z[0] - m).exp() + (z[1] - m).exp()).ln();
    lse - m
}

#[test]
fn semi_loss_averages_over_gated_pixels_only() {
    // 1 image, 2 classes, 1x3 pixels; logits channel-major.
    let z = [[2.0f32, 0.5], [0.1, 0.3], [-1.0, 1.5]];
    let mut data = vec![0f32; 6];
    for (p, v) in z.iter().enumerate() {
        data[p] = v[0];
        data[3 + p] = v[1];
    }
    let logits = t(&data, &[1, 2, 1, 3]).into_param();
    let conf = t(&[0.9, 0.05, 0.3], &[1, 1, 1, 3]);
    let (loss, mask, count) = semi_loss(&logits, &conf, 0.2).unwrap();
    assert_eq!(mask.to_vec_f32().unwrap(), vec![1.0, 0.0, 1.0]);
    assert_eq!(count.item().unwrap(), 2.0);
    close(loss.item().unwrap(), (ce_self(z[0]) + ce_self(z[2])) / 2.0);
    // The gated-out pixel gets no gradient; pseudo-labels are constants.
    loss.backward().unwrap();
    let g = logits.grad().unwrap().to_vec_f32().unwrap();
    assert_eq!((g[1], g[4]), (0.0, 0.0));
    // d/dz_k = (softmax_k − onehot(argmax)_k) / 2 at a gated pixel.
    let p0 = 1.0 / (1.0 + (z[0][1] - z[0][0]).exp());
    close(g[0], (p0 - 1.0) / 2.0);
}

#[test]
fn semi_loss_with_empty_gate_is_zero() {
    let logits = t(&[1.0, 2.0, 3.0, 4.0], &[1, 2, 1, 2]).into_param();
    let conf = t(&[0.1, 0.1], &[1, 1, 1, 2]);
    let (loss, _, count) = semi_loss(&logits, &conf, 0.2).unwrap();
    assert_eq!(count.item().unwrap(), 0.0);
    assert_eq!(loss.item().unwrap(), 0.0);
    loss.backward().unwrap();
    assert!(logits
        .grad()
        .unwrap()
        .to_vec_f32()
        .unwrap()
        .iter()
        .all(|&v| v == 0.0));
}

#[test]
fn valid_mask_zeroes_ignored_pixels() {
    let gpu = Gpu::shared().unwrap();
    let y = Tensor::from_i32(&gpu, &[0, 255, 2, 1], &[1, 2, 2]).unwrap();
    let m = valid_mask(&y, 3, 255).unwrap();
    assert_eq!(m.shape(), &[1, 1, 2, 2]);
    assert_eq!(m.to_vec_f32().unwrap(), vec![1.0, 0.0, 1.0, 1.0]);
}

fn bce(x: f32, target: f32) -> f32 {
    x.max(0.0) - x * target + (1.0 + (-x.abs()).exp()).ln()
}

#[test]
fn d_targets_and_ignore_mask() {
    let x = [0.5f32, -1.0, 2.0, 0.0];
    let d = t(&x, &[1, 1, 2, 2]);
    let mask = t(&[1.0, 0.0, 1.0, 1.0], &[1, 1, 2, 2]);
    // Real (target 1) over the three valid pixels.
    close(
        adv_bce(&d, true, Some(&mask)).unwrap().item().unwrap(),
        (bce(x[0], 1.0) + bce(x[2], 1.0) + bce(x[3], 1.0)) / 3.0,
    );
    // Fake (target 0), no mask: all four.
    close(
        adv_bce(&d, false, None).unwrap().item().unwrap(),
        x.iter().map(|&v| bce(v, 0.0)).sum::<f32>() / 4.0,
    );
    close(
        masked_mean(&d, &mask).unwrap().item().unwrap(),
        (x[0] + x[2] + x[3]) / 3.0,
    );
}

#[test]
fn fake_batch_concatenates_labelled_then_unlabelled() {
    let a = t(&[1.0, 2.0], &[1, 1, 1, 2]);
    let b = t(&[3.0, 4.0, 5.0, 6.0], &[2, 1, 1, 2]);
    let c = cat_batch(&[&a, &b]).unwrap();
    assert_eq!(c.shape(), &[3, 1, 1, 2]);
    assert_eq!(c.to_vec_f32().unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert!(cat_batch(&[&a, &t(&[1.0; 3], &[1, 1, 1, 3])]).is_err());
}

#[test]
fn defaults_are_the_official_values() {
    let c = AdvSemiConfig::default();
    assert_eq!(
        (c.lambda_adv, c.lambda_semi, c.lambda_semi_adv, c.mask_t),
        (0.1, 0.1, 0.001, 0.2)
    );
    assert_eq!(
        (c.semi_start, c.semi_start_adv, c.d_remain),
        (5000, 0, true)
    );
    assert_eq!((c.d_lr, c.d_beta1, c.d_beta2), (1e-4, 0.9, 0.99));
    let r = RunConfig::new("advsemi").unwrap();
    let k = &r.common;
    assert_eq!(
        (k.lr, k.momentum, k.weight_decay, k.power),
        (2.5e-4, 0.9, 5e-4, 0.9)
    );
    assert_eq!((k.head_lr_mult, k.iters, k.batch), (10.0, 20_000, 10));
    assert_eq!(r.crop(), [64, 64]); // synthetic default size; 321x321 for datasets on disk
}

#[test]
fn set_resolves_keys_per_method() {
    let v = |s: &str| advseg::train::config::parse_value(s);
    let mut r = RunConfig::new("advsemi").unwrap();
    r.set("lambda_adv", v("0.01")).unwrap();
    r.set("advsemi.mask_t", v("0.3")).unwrap();
    r.set("crop", v("[48, 40]")).unwrap();
    r.set("iters", v("7")).unwrap();
    let c: AdvSemiConfig = r.method_config().unwrap();
    assert_eq!((c.lambda_adv, c.mask_t), (0.01, 0.3));
    assert_eq!((r.crop(), r.common.iters), ([48, 40], 7));
    // The resolved TOML round-trips.
    let back = RunConfig::from_toml(&r.to_toml(), std::path::Path::new("x")).unwrap();
    assert_eq!(back, r);

    let mut s = RunConfig::new("supervised").unwrap();
    assert!(matches!(
        s.set("lambda_semi", v("1")),
        Err(TrainError::KeyNotForMethod { .. })
    ));
    assert!(matches!(
        s.set("nosuch", v("1")),
        Err(TrainError::UnknownKey { .. })
    ));
    assert!(matches!(
        r.set("semi_start", v("\"soon\"")),
        Err(TrainError::BadValue { .. })
    ));
    assert!(matches!(
        RunConfig::new("no-such-method"),
        Err(TrainError::UnknownMethod { .. })
    ));
    let file = "iters = 5\n[supervised]\n";
    s.apply_toml(file, std::path::Path::new("f.toml")).unwrap();
    assert_eq!(s.common.iters, 5);
    // A key error in a file names the file (and still says whose key it is).
    let wrong = "[advsemi]\nlambda_adv = 0.1\n";
    assert!(matches!(
        s.apply_toml(wrong, std::path::Path::new("f.toml")),
        Err(TrainError::ConfigFile { path, why })
            if path.ends_with("f.toml") && why.contains("belongs to method advsemi")
    ));
}

/// `image_labels = "crop"` reaches the loader: each batch row's image labels are the classes
/// of its own crop. The setting round-trips through TOML and a bad value names the choices.
#[test]
fn crop_image_labels_through_config_and_loader() {
    use advseg::data::{open, AugConfig, Loader, LoaderConfig};
    use advseg::train::config::ImageLabels;
    let mut cfg = RunConfig::new("eader").unwrap();
    assert_eq!(cfg.common.image_labels, ImageLabels::Image);
    cfg.set("image_labels", toml::Value::String("crop".into()))
        .unwrap();
    assert_eq!(cfg.common.image_labels, ImageLabels::Crop);
    let back = RunConfig::from_toml(&cfg.to_toml(), std::path::Path::new("x")).unwrap();
    assert_eq!(back, cfg);
    let e = cfg
        .set("image_labels", toml::Value::String("pixels".into()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("image_labels") && e.contains("image, crop"),
        "{e}"
    );

    let ds = open(&"synthetic:size=32,n=6".parse().unwrap(), "train").unwrap();
    let c = ds.num_classes();
    let batches = |crop_image_labels| {
        let cfg = LoaderConfig {
            batch: 3,
            workers: 2,
            shuffle: true,
            infinite: true,
            seed: 2,
            aug: AugConfig {
                crop: Some((8, 8)),
                crop_image_labels,
                ..AugConfig::default()
            },
            ..LoaderConfig::default()
        };
        Loader::new(ds.clone(), None, cfg)
            .unwrap()
            .take(4)
            .map(|b| b.unwrap())
            .collect::<Vec<_>>()
    };
    let mut narrower = 0;
    for (crop, whole) in batches(true).iter().zip(&batches(false)) {
        assert_eq!(crop.labels, whole.labels);
        for n in 0..3 {
            let lab = &crop.labels[n * 64..(n + 1) * 64];
            let want: Vec<f32> = (0..c)
                .map(|k| if lab.contains(&(k as i32)) { 1.0 } else { 0.0 })
                .collect();
            assert_eq!(crop.image_labels[n * c..(n + 1) * c], want[..]);
            let full = &whole.image_labels[n * c..(n + 1) * c];
            assert!(want.iter().zip(full).all(|(a, b)| a <= b), "crop ⊆ image");
            narrower += (want[..] != full[..]) as usize;
        }
    }
    assert!(
        narrower > 0,
        "some 8x8 crop of a 32x32 image misses a class"
    );
}

/// A loader started at item k serves exactly what an uninterrupted one serves from k on.
#[test]
fn loader_new_at_continues_the_stream() {
    use advseg::data::{open, AugConfig, Loader, LoaderConfig};
    let ds = open(&"synthetic:size=16,n=7".parse().unwrap(), "train").unwrap();
    let cfg = LoaderConfig {
        batch: 2,
        workers: 3,
        shuffle: true,
        infinite: true,
        seed: 5,
        aug: AugConfig {
            flip: true,
            crop: Some((8, 8)),
            ..AugConfig::default()
        },
        ..LoaderConfig::default()
    };
    let whole: Vec<_> = Loader::new(ds.clone(), None, cfg.clone())
        .unwrap()
        .take(6)
        .map(|b| b.unwrap())
        .collect();
    let mut l = Loader::new_at(ds, None, cfg, 4).unwrap();
    assert_eq!(l.position(), 4);
    let rest: Vec<_> = (&mut l).take(4).map(|b| b.unwrap()).collect();
    assert_eq!(l.position(), 12);
    for (a, b) in whole[2..].iter().zip(&rest) {
        assert_eq!(
            (&a.images, &a.labels, &a.indices),
            (&b.images, &b.labels, &b.indices)
        );
    }
}

/// Freezing D (AdvSemiSeg's G step) leaves its parameters without gradients while the
/// adversarial gradient still reaches G's output through it; unfreezing restores training.
#[test]
fn frozen_discriminator_passes_gradients_through() {
    use advseg::nn::{BnMode, Kind};
    use advseg::train::models;
    let gpu = Gpu::shared().unwrap();
    let d = models::discriminator(&gpu, "fcdisc", 3, 2, 0).unwrap();
    let pred = t(
        &(0..3 * 32 * 32)
            .map(|i| (i % 7) as f32 * 0.1)
            .collect::<Vec<_>>(),
        &[1, 3, 32, 32],
    )
    .into_param();
    let adv = |d: &advseg::nn::arch::Model| {
        let s = advseg::ops::softmax::softmax(&pred, 1).unwrap();
        adv_bce(&d.forward(&s, BnMode::Train).unwrap(), true, None).unwrap()
    };
    let params: Vec<Tensor> = d
        .store
        .slots()
        .iter()
        .filter(|s| s.kind == Kind::Param)
        .map(|s| s.get().unwrap())
        .collect();
    models::set_trainable(&d, false).unwrap();
    adv(&d).backward().unwrap();
    assert!(params.iter().all(|p| p.grad().is_none()));
    let g = pred.grad().unwrap().to_vec_f32().unwrap();
    assert!(g.iter().any(|&v| v != 0.0) && g.iter().all(|v| v.is_finite()));
    models::set_trainable(&d, true).unwrap();
    adv(&d).backward().unwrap();
    assert!(params.iter().all(|p| p.grad().is_some()));
}
