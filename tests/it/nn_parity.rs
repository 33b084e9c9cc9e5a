//! Network-level parity with PyTorch (fixtures from `scripts/make_nn_fixtures.py`): the fixture's
//! weights are loaded into our modules BY NAME with a strict load (so the state_dict names are the
//! originals'), then the forward output, the input gradient, every parameter gradient and the
//! BatchNorm running statistics after the (train-mode) forward are compared.
//!
//! Tolerance: |ours − ref| ≤ atol + rtol·|ref| with the atol/rtol stored in each fixture
//! (1e-4 / 1e-4; the reference is float64, ours float32 on the GPU).

use advseg::nn::checkpoint::HostTensors;
use advseg::nn::deeplab::AsppV2;
use advseg::nn::deeplabv3::DeepLabV3Head;
use advseg::nn::disc::FcDiscriminator;
use advseg::nn::error::Result;
use advseg::nn::resnet::{Block, BlockGeom, BlockKind};
use advseg::nn::{arch, read_safetensors, BnMode, ParamStore};
use advseg::{ops, Gpu, Tensor};
use std::path::PathBuf;

type Fwd = Box<dyn Fn(&Tensor) -> Result<Tensor>>;

fn fixture(name: &str) -> (PathBuf, HostTensors, f32, f32) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nn")
        .join(format!("{name}.safetensors"));
    let (t, meta) = read_safetensors(&path).unwrap();
    let atol = meta["atol"].parse().unwrap();
    let rtol = meta["rtol"].parse().unwrap();
    (path, t, atol, rtol)
}

fn with_prefix(t: &HostTensors, prefix: &str) -> HostTensors {
    t.iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|n| (n.to_string(), v.clone())))
        .collect()
}

fn close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= atol + rtol * w.abs(),
            "{what}[{i}]: got {g}, want {w} (|err| {err})"
        );
        worst = worst.max(err / (atol + rtol * w.abs()));
    }
    worst
}

fn run(name: &str, store: &ParamStore, fwd: Fwd) {
    let gpu = Gpu::shared().unwrap();
    let (path, t, atol, rtol) = fixture(name);
    // Strict: every name and shape of our store must be in the file and vice versa.
    let rep = store
        .load_host(&gpu, &with_prefix(&t, "param."), true, &path)
        .unwrap();
    assert!(rep.is_exact(), "{name}: {rep}");
    let (xs, xv) = &t["input"];
    let x = Tensor::from_f32(&gpu, xv, xs).unwrap().into_param();
    let y = fwd(&x).unwrap();
    let (os, ov) = &t["output"];
    assert_eq!(y.shape(), os.as_slice(), "{name}: output shape");
    let mut worst = close(
        &format!("{name} output"),
        &y.to_vec_f32().unwrap(),
        ov,
        atol,
        rtol,
    );
    let (gs, gv) = &t["gout"];
    let gout = Tensor::from_f32(&gpu, gv, gs).unwrap();
    ops::sum(&ops::mul(&y, &gout).unwrap())
        .unwrap()
        .backward()
        .unwrap();
    worst = worst.max(close(
        &format!("{name} grad.input"),
        &x.grad().unwrap().to_vec_f32().unwrap(),
        &t["grad.input"].1,
        atol,
        rtol,
    ));
    let grads = with_prefix(&t, "grad.");
    let after = with_prefix(&t, "after.");
    for s in store.slots() {
        let v = s.get().unwrap();
        if let Some((_, want)) = after.get(&s.name) {
            worst = worst.max(close(
                &format!("{name} running stat {}", s.name),
                &v.to_vec_f32().unwrap(),
                want,
                atol,
                rtol,
            ));
        }
        match (grads.get(&s.name), v.grad()) {
            (Some((_, want)), Some(g)) => {
                worst = worst.max(close(
                    &format!("{name} grad.{}", s.name),
                    &g.to_vec_f32().unwrap(),
                    want,
                    atol,
                    rtol,
                ))
            }
            (Some(_), None) => panic!("{name}: no gradient for {}", s.name),
            // PyTorch gives no gradient (unused branch of the ASPP quirk): neither may we.
            (None, Some(g)) => assert!(
                g.to_vec_f32().unwrap().iter().all(|&v| v == 0.0),
                "{name}: unexpected gradient for {}",
                s.name
            ),
            (None, None) => {}
        }
    }
    eprintln!("{name}: worst error {worst:.3} of the tolerance");
}

#[test]
fn fcdisc_matches_advsemiseg() {
    let mut s = ParamStore::new();
    let d = FcDiscriminator::new(&mut s, "", 3, 4);
    run("fcdisc", &s, Box::new(move |x| d.forward(x)));
}

fn bottleneck(name: &str, g: BlockGeom) {
    let mut s = ParamStore::new();
    // Named as the first block of a stage, as inside a ResNet.
    let b = Block::new(&mut s, "layer3.0", BlockKind::Bottleneck, 8, 4, g);
    run(name, &s, Box::new(move |x| b.forward(x, BnMode::Train)));
}

#[test]
fn dilated_bottleneck_matches_torchvision() {
    bottleneck(
        "bottleneck_dil2",
        BlockGeom {
            stride: 1,
            dilation: 2,
            stride_on_1x1: false,
        },
    );
}

#[test]
fn caffe_bottleneck_matches_advsemiseg() {
    bottleneck(
        "bottleneck_caffe_s2",
        BlockGeom {
            stride: 2,
            dilation: 1,
            stride_on_1x1: true,
        },
    );
}

fn aspp_v2(name: &str, quirk: bool) {
    let mut s = ParamStore::new();
    let mut a = AsppV2::new(&mut s, "layer5", 8, 3, &[6, 12, 18, 24]);
    a.official_quirk = quirk;
    run(name, &s, Box::new(move |x| a.forward(x)));
}

#[test]
fn aspp_v2_sum_matches_advsemiseg() {
    aspp_v2("aspp_v2_sum", false);
}

#[test]
fn aspp_v2_quirk_matches_advsemiseg() {
    aspp_v2("aspp_v2_quirk", true);
}

#[test]
fn aspp_v3_head_matches_torchvision() {
    let mut s = ParamStore::new();
    let h = DeepLabV3Head::new(&mut s, "", 8, 4, &[2, 3, 4], 3);
    run(
        "aspp_v3_head",
        &s,
        Box::new(move |x| h.forward(x, BnMode::Train, None)),
    );
}

#[test]
fn tiny_matches_reference() {
    let m = arch::build("tiny", 5).unwrap();
    let store = m.store.clone();
    run(
        "tiny",
        &store,
        Box::new(move |x| m.forward(x, BnMode::Train)),
    );
}
