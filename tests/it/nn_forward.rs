//! Forward/backward of the small architectures on the GPU: shapes, finite values, gradients
//! reach every trainable parameter, BN modes freeze what they should.

use advseg::nn::{arch, BnMode};
use advseg::{ops, Gpu, Tensor};

fn input(gpu: &std::sync::Arc<Gpu>, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    Tensor::from_f32(gpu, &v, shape).unwrap()
}

#[test]
fn tiny_forward_backward_reaches_all_params() {
    let gpu = Gpu::shared().unwrap();
    let m = arch::build("tiny", 5).unwrap();
    m.materialize(&gpu, 0).unwrap();
    let x = input(&gpu, &[2, 3, 33, 31]);
    let y = m.forward(&x, BnMode::Train).unwrap();
    assert_eq!(y.shape(), &[2, 5, 9, 8]);
    let loss = ops::mean(&ops::square(&y).unwrap()).unwrap();
    assert!(loss.item().unwrap().is_finite());
    loss.backward().unwrap();
    for s in m.store.slots() {
        if s.trainable() {
            let g = s
                .get()
                .unwrap()
                .grad()
                .unwrap_or_else(|| panic!("no grad for {}", s.name));
            assert!(
                g.to_vec_f32().unwrap().iter().all(|v| v.is_finite()),
                "{}",
                s.name
            );
        }
    }
}

#[test]
fn frozen_affine_bn_keeps_params_out_of_training() {
    let gpu = Gpu::shared().unwrap();
    let m = arch::build("tiny", 3).unwrap();
    m.materialize(&gpu, 1).unwrap();
    m.apply_bn_mode(BnMode::FrozenAffine).unwrap();
    let x = input(&gpu, &[2, 3, 16, 16]);
    let y = m.forward(&x, BnMode::FrozenAffine).unwrap();
    ops::mean(&y).unwrap().backward().unwrap();
    for s in m.store.slots() {
        let t = s.get().unwrap();
        if s.name.contains(".bn.") {
            assert!(t.grad().is_none(), "{} should be frozen", s.name);
        } else if s.name.ends_with("weight") {
            assert!(t.grad().is_some(), "{} should train", s.name);
        }
    }
}

#[test]
fn fcdisc_output_is_input_sized_logit_map() {
    let gpu = Gpu::shared().unwrap();
    let mut store = advseg::nn::ParamStore::new();
    let d = advseg::nn::disc::FcDiscriminator::new(&mut store, "", 4, 8);
    store.materialize(&gpu, 2).unwrap();
    let x = input(&gpu, &[1, 4, 64, 48]);
    assert_eq!(d.forward_logits(&x).unwrap().shape(), &[1, 1, 2, 1]);
    assert_eq!(d.forward(&x).unwrap().shape(), &[1, 1, 64, 48]);
}

/// `tiny-cls` is GAP + linear on its features, so the mean over positions of its un-ReLU'd
/// class maps plus the bias equals the logits: what makes its CAMs (EADER, weak methods) mean
/// what they should. Gradients reach every parameter.
#[test]
fn tiny_cls_cams_average_to_logits() {
    let gpu = Gpu::shared().unwrap();
    let m = arch::build("tiny-cls", 4).unwrap();
    m.materialize(&gpu, 2).unwrap();
    let x = input(&gpu, &[2, 3, 20, 24]);
    let (f, logits) = m.features_and_logits(&x, BnMode::Train, None).unwrap();
    assert_eq!(f.shape(), &[2, 32, 5, 6]);
    assert_eq!(logits.shape(), &[2, 4]);
    let w = m.cam_weight().unwrap();
    assert_eq!(w.shape(), &[4, 32]);
    let maps = ops::conv2d(
        &f,
        &w.reshape(&[4, 32, 1, 1]).unwrap(),
        None,
        &ops::Conv2dParams::new(1, 0, 1),
    )
    .unwrap();
    let avg = ops::mean_dims(&maps, &[2, 3])
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let bias = m
        .store
        .slots()
        .iter()
        .find(|s| s.name == "fc.bias")
        .unwrap()
        .get()
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let l = logits.to_vec_f32().unwrap();
    for (i, (a, z)) in avg.iter().zip(&l).enumerate() {
        let want = a + bias[i % 4];
        assert!(
            (want - z).abs() <= 1e-5 + 1e-4 * z.abs(),
            "{i}: {want} vs {z}"
        );
    }
    ops::mean(&ops::square(&logits).unwrap())
        .unwrap()
        .backward()
        .unwrap();
    for s in m.store.slots() {
        if s.trainable() {
            assert!(s.get().unwrap().grad().is_some(), "no grad for {}", s.name);
        }
    }
}
