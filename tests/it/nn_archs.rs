//! The segmentation/adversary architectures beyond the backbones: names, output shapes from
//! shape inference (checked against real forwards at small sizes), and the method-specific
//! accessors (RRM branches and CAMs, image-conditioned adversary encodings, Grad-CAM on a ResNet).

use advseg::nn::arch::{self, ArchOpts, Model};
use advseg::nn::cam::{self, GradCamCfg};
use advseg::nn::imgdisc::Encoding;
use advseg::nn::BnMode;
use advseg::{ops, Gpu, Tensor};
use std::sync::Arc;

fn input(gpu: &Arc<Gpu>, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    Tensor::from_f32(gpu, &v, shape).unwrap()
}

fn names(m: &Model) -> Vec<&str> {
    m.store.slots().iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn output_stride_8_gives_41_from_321() {
    // Shape inference walks the same Conv2d / pool geometry the forward uses (checked below
    // against real forwards), so the 321 case costs nothing on a software GPU.
    for a in ["deeplabv2-resnet101", "deeplabv2-resnet50"] {
        let m = arch::build(a, 21).unwrap();
        assert_eq!(m.output_size(321, 321), Some((41, 41)), "{a}");
    }
    for a in ["deeplabv3-resnet50", "deeplabv3-resnet18", "rrm-resnet50"] {
        let m = arch::build(a, 21).unwrap();
        assert_eq!(m.output_size(321, 321), Some((41, 41)), "{a}");
    }
    let os16 = ArchOpts {
        output_stride: 16,
        ..ArchOpts::default()
    };
    let m = arch::build_with("deeplabv3-resnet50", 21, &os16).unwrap();
    assert_eq!(m.output_size(321, 321), Some((21, 21)));
    assert!(arch::build_with(
        "deeplabv3-resnet50",
        21,
        &ArchOpts {
            output_stride: 32,
            ..ArchOpts::default()
        }
    )
    .is_err());
    let m = arch::build("fcn32-vgg16", 21).unwrap();
    assert_eq!(m.output_size(320, 256), Some((10, 8)));
}

#[test]
fn shape_inference_matches_real_forward() {
    let gpu = Gpu::shared().unwrap();
    // DeepLab-v2 (Caffe trunk, ceil-mode stem pool) on ResNet-50: odd size exercises ceil.
    let m = arch::build("deeplabv2-resnet50", 3).unwrap();
    m.materialize(&gpu, 0).unwrap();
    let y = advseg::autograd::no_grad(|| m.forward(&input(&gpu, &[1, 3, 41, 41]), BnMode::Frozen))
        .unwrap();
    let (h, w) = m.output_size(41, 41).unwrap();
    assert_eq!(y.shape(), &[1, 3, h, w]);
    assert_eq!((h, w), (6, 6));
    // DeepLab-v3 on ResNet-18 at OS 8 and 16, with train-mode BN and dropout.
    for os in [8, 16] {
        let o = ArchOpts {
            output_stride: os,
            ..ArchOpts::default()
        };
        let m = arch::build_with("deeplabv3-resnet18", 4, &o).unwrap();
        m.materialize(&gpu, 1).unwrap();
        let x = input(&gpu, &[2, 3, 35, 29]);
        let y = m.forward_opts(&x, BnMode::Train, Some(7)).unwrap();
        let (h, w) = m.output_size(35, 29).unwrap();
        assert_eq!(y.shape(), &[2, 4, h, w], "os {os}");
    }
    let m = arch::build("tiny", 2).unwrap();
    m.materialize(&gpu, 2).unwrap();
    let y = m
        .forward(&input(&gpu, &[1, 3, 21, 18]), BnMode::Train)
        .unwrap();
    let (h, w) = m.output_size(21, 18).unwrap();
    assert_eq!(y.shape(), &[1, 2, h, w]);
}

#[test]
fn deeplabv3_uses_torchvision_names() {
    let m = arch::build("deeplabv3-resnet50", 21).unwrap();
    let n = names(&m);
    for want in [
        "backbone.conv1.weight",
        "backbone.layer4.2.bn3.running_var",
        "classifier.0.convs.0.0.weight",
        "classifier.0.convs.0.1.running_mean",
        "classifier.0.convs.3.0.weight",
        "classifier.0.convs.4.1.weight",
        "classifier.0.convs.4.2.bias",
        "classifier.0.project.0.weight",
        "classifier.0.project.1.weight",
        "classifier.4.weight",
        "classifier.4.bias",
    ] {
        assert!(n.contains(&want), "missing {want}");
    }
    assert!(!n.iter().any(|s| s.starts_with("backbone.fc")));
    let s = m.store.find("classifier.0.convs.2.0.weight").unwrap();
    assert_eq!(s.shape, vec![256, 2048, 3, 3]);
    assert_eq!(
        m.store.find("classifier.0.project.0.weight").unwrap().shape,
        vec![256, 1280, 1, 1]
    );
    // torchvision deeplabv3_resnet50 (21 classes) has 42,004,074 parameters; minus its aux head
    // (FCNHead 1024→256→21: 2,365,205) and classifier.1/2 (3×3 conv 256 + BN), which advseg
    // leaves out.
    let torchvision_main = 42_004_074 - 2_365_205;
    let dropped = 256 * 256 * 9 + 2 * 256;
    assert_eq!(m.store.num_params(), torchvision_main - dropped);
}

#[test]
fn fcn32_names_and_forward() {
    let m = arch::build("fcn32-vgg16", 21).unwrap();
    let n = names(&m);
    for want in [
        "features.0.weight",
        "features.28.bias",
        "fc6.weight",
        "fc7.weight",
        "score_fr.weight",
    ] {
        assert!(n.contains(&want), "missing {want}");
    }
    assert_eq!(
        m.store.find("fc6.weight").unwrap().shape,
        vec![4096, 512, 7, 7]
    );
    assert!(!n.iter().any(|s| s.starts_with("classifier")));
    // A narrow FCN-32s exercises the real forward (the 4096-wide one is 120M parameters).
    let gpu = Gpu::shared().unwrap();
    let mut store = advseg::nn::ParamStore::new();
    let f = advseg::nn::fcn::Fcn32::with_width(&mut store, 3, 8);
    store.materialize(&gpu, 0).unwrap();
    let y = f.forward(&input(&gpu, &[1, 3, 64, 96]), Some(3)).unwrap();
    assert_eq!(y.shape(), &[1, 3, 2, 3]);
}

#[test]
fn rrm_branches_and_cams() {
    let m = arch::build("rrm-resnet50", 21).unwrap();
    let n = names(&m);
    for want in [
        "conv1.weight",
        "layer4.2.conv3.weight",
        "fc8.weight",
        "fc8_seg_conv1.weight",
        "fc8_seg_conv1.bias",
        "fc8_seg_conv2.weight",
    ] {
        assert!(n.contains(&want), "missing {want}");
    }
    assert!(!n.contains(&"fc8.bias"));
    assert_eq!(
        m.store.find("fc8.weight").unwrap().shape,
        vec![20, 2048, 1, 1]
    );
    assert_eq!(
        m.store.find("fc8_seg_conv2.weight").unwrap().shape,
        vec![21, 512, 3, 3]
    );
    let advseg::nn::arch::Net::Rrm(r) = &m.net else {
        panic!("rrm")
    };
    assert_eq!(r.seg1.dilation, [12, 12]);
    assert_eq!(r.seg1.padding, [12, 12]);
    assert!(arch::build("rrm-resnet50", 1).is_err());
}

#[test]
fn imgdisc_encodings() {
    let gpu = Gpu::shared().unwrap();
    let (c, h, w) = (3, 16, 12);
    let probs = ops::softmax::softmax(&input(&gpu, &[2, c, h, w]), 1).unwrap();
    let image = input(&gpu, &[2, 3, 2 * h, 2 * w]);
    for (enc, cin) in [
        (Encoding::Basic, c),
        (Encoding::Product, 3 * c),
        (Encoding::Concat, c + 3),
    ] {
        let o = ArchOpts {
            encoding: enc,
            ..ArchOpts::default()
        };
        let m = arch::build_with("imgdisc", c, &o).unwrap();
        assert_eq!(m.store.find("conv1.weight").unwrap().shape[1], cin);
        m.materialize(&gpu, 4).unwrap();
        let y = m.discriminate(&probs, Some(&image)).unwrap();
        assert_eq!(y.shape(), &[2, 1, h / 4, w / 4], "{enc:?}");
        assert_eq!(m.output_size(h, w), Some((h / 4, w / 4)));
        if enc != Encoding::Basic {
            assert!(m.discriminate(&probs, None).is_err());
        }
    }
    // Product encoding layout: channel k·C + c is S_c · x_k.
    let mut store = advseg::nn::ParamStore::new();
    let d = advseg::nn::imgdisc::ImgDisc::new(&mut store, "", c, 2, Encoding::Product);
    let img = input(&gpu, &[2, 3, h, w]);
    let e = d.encode(&probs, Some(&img)).unwrap().to_vec_f32().unwrap();
    let (p, x) = (probs.to_vec_f32().unwrap(), img.to_vec_f32().unwrap());
    let hw = h * w;
    let (n, k, ci, q) = (1, 2, 1, 37);
    let got = e[((n * 3 * c) + k * c + ci) * hw + q];
    let want = p[(n * c + ci) * hw + q] * x[(n * 3 + k) * hw + q];
    assert!((got - want).abs() < 1e-6);
}

#[test]
fn grad_cam_on_resnet18_classifier() {
    // EADER's adversarial classifier / localizer: a ResNet with a new fc.
    let gpu = Gpu::shared().unwrap();
    let m = arch::build("resnet18", 20).unwrap();
    m.materialize(&gpu, 5).unwrap();
    let x = input(&gpu, &[2, 3, 64, 64]);
    let (f, logits) = m.features_and_logits(&x, BnMode::Train, None).unwrap();
    assert_eq!(f.shape(), &[2, 512, 2, 2]);
    assert_eq!(logits.shape(), &[2, 20]);
    let cfg = GradCamCfg {
        size: Some([64, 64]),
        ..GradCamCfg::default()
    };
    let a = cam::grad_cam(&f, &logits, &[3, 17], &cfg).unwrap();
    assert_eq!(a.shape(), &[2, 1, 64, 64]);
    let v = a.to_vec_f32().unwrap();
    assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
    // Differentiable into the localizer's parameters (GAIN-style training through the map).
    ops::mean(&a).unwrap().backward().unwrap();
    let conv1 = m.store.find("conv1.weight").unwrap().get().unwrap();
    assert!(conv1.grad().is_some());
    // CAM from the same classifier weights.
    let c = cam::cam(&f, &m.cam_weight().unwrap()).unwrap();
    assert_eq!(c.shape(), &[2, 20, 2, 2]);
}
