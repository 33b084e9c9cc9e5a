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
