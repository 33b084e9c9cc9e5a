//! Loss pieces of `gan-cegu`, `ssgan` and `eader` on hand-made tensors.

use advseg::nn::imgdisc::Encoding;
use advseg::train::methods::common::{correct_mask, encode_maps};
use advseg::train::methods::gan::adv_bce;
use advseg::train::methods::gan_cegu::{cegu_loss, cegu_weights, uncertainty, WeightForm};
use advseg::train::methods::ssgan::scale_gt;
use advseg::{Gpu, Tensor};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_f32(&Gpu::shared().unwrap(), data, shape).unwrap()
}

fn ti(data: &[i32], shape: &[usize]) -> Tensor {
    Tensor::from_i32(&Gpu::shared().unwrap(), data, shape).unwrap()
}

fn close_all(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
    }
}

#[test]
fn uncertainty_is_one_minus_d_confidence() {
    let d = t(&[0.0, 50.0, -50.0, 2.0], &[1, 1, 2, 2]);
    let u = uncertainty(&d).unwrap().to_vec_f32().unwrap();
    close_all(&u, &[0.5, 0.0, 1.0, 1.0 - 1.0 / (1.0 + (-2f32).exp())]);
}

#[test]
fn cegu_weights_one_plus_and_normalized() {
    let u = t(&[0.0, 0.5, 1.0, 0.2], &[1, 1, 2, 2]);
    let valid = t(&[1.0, 1.0, 1.0, 0.0], &[1, 1, 2, 2]);
    let w = cegu_weights(&u, &valid, WeightForm::OnePlus(2.0)).unwrap();
    close_all(&w.to_vec_f32().unwrap(), &[1.0, 2.0, 3.0, 0.0]);
    // mean over the valid pixels is 0.5: weights u / 0.5, ignored pixel 0.
    let w = cegu_weights(&u, &valid, WeightForm::Normalized).unwrap();
    close_all(&w.to_vec_f32().unwrap(), &[0.0, 1.0, 2.0, 0.0]);
}

#[test]
fn cegu_loss_weights_each_pixel_and_divides_by_valid_count() {
    // 2 classes, 3 pixels; the third is ignored.
    let z = t(&[1.0, 0.0, 0.0, 0.0, 2.0, 1.0], &[1, 2, 1, 3]);
    let y = ti(&[0, 1, 255], &[1, 1, 3]);
    let w = t(&[2.0, 0.5, 7.0], &[1, 1, 1, 3]);
    let ce = |a: f32, b: f32, l: usize| {
        let m = a.max(b);
        let lse = m + ((a - m).exp() + (b - m).exp()).ln();
        lse - [a, b][l]
    };
    let want = (2.0 * ce(1.0, 0.0, 0) + 0.5 * ce(0.0, 2.0, 1)) / 2.0;
    let l = cegu_loss(&z, &y, 255, &w).unwrap().to_vec_f32().unwrap();
    close_all(&l, &[want]);
}

#[test]
fn correct_mask_marks_right_argmax_on_valid_pixels() {
    let z = t(&[1.0, 0.0, 0.0, 0.0, 2.0, 1.0], &[1, 2, 1, 3]);
    let y = ti(&[0, 0, 255], &[1, 1, 3]);
    let m = correct_mask(&z, &y, 255).unwrap().to_vec_f32().unwrap();
    close_all(&m, &[1.0, 0.0, 0.0]);
}

#[test]
fn encodings_basic_product_concat() {
    // 2 classes, 1 pixel.
    let s = t(&[0.25, 0.75], &[1, 2, 1, 1]);
    let x = t(&[1.0, -2.0, 4.0], &[1, 3, 1, 1]);
    let b = encode_maps(Encoding::Basic, &s, &x).unwrap();
    close_all(&b.to_vec_f32().unwrap(), &[0.25, 0.75]);
    let p = encode_maps(Encoding::Product, &s, &x).unwrap();
    assert_eq!(p.shape(), &[1, 6, 1, 1]);
    close_all(
        &p.to_vec_f32().unwrap(),
        &[0.25, 0.75, -0.5, -1.5, 1.0, 3.0],
    );
    let c = encode_maps(Encoding::Concat, &s, &x).unwrap();
    close_all(&c.to_vec_f32().unwrap(), &[0.25, 0.75, 1.0, -2.0, 4.0]);
}

#[test]
fn adversarial_targets() {
    let d = t(&[0.0, 0.0], &[1, 1, 1, 2]);
    let ln2 = 2f32.ln();
    close_all(
        &adv_bce(&d, true, None).unwrap().to_vec_f32().unwrap(),
        &[ln2],
    );
    let d = t(&[3.0, -1.0], &[1, 1, 1, 2]);
    let real = ((1.0 + (-3f32).exp()).ln() + (1.0 + 1f32.exp()).ln()) / 2.0;
    let fake = ((1.0 + 3f32.exp()).ln() + (1.0 + (-1f32).exp()).ln()) / 2.0;
    close_all(
        &adv_bce(&d, true, None).unwrap().to_vec_f32().unwrap(),
        &[real],
    );
    close_all(
        &adv_bce(&d, false, None).unwrap().to_vec_f32().unwrap(),
        &[fake],
    );
}

#[test]
fn luc_gt_scaling() {
    // 3 classes, 3 pixels: label 0 with S_0 = 0.5; label 1 with S_1 = 0.95; ignored.
    let s = t(
        &[0.5, 0.02, 0.3, 0.3, 0.95, 0.3, 0.2, 0.03, 0.4],
        &[1, 3, 1, 3],
    );
    let y = t(
        &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        &[1, 3, 1, 3],
    );
    let g = scale_gt(&y, &s, 0.9).unwrap().to_vec_f32().unwrap();
    // Pixel 0: ȳ_0 = 0.9, others S_c·0.1/0.5. Pixel 1: S_1 ≥ τ keeps S. Pixel 2: zero.
    close_all(&g, &[0.9, 0.02, 0.0, 0.06, 0.95, 0.0, 0.04, 0.03, 0.0]);
}

use advseg::train::methods::eader::{erase, erase_mask, localizer_phase, pair_rounds, seed_scores};

#[test]
fn erasing_mask_is_a_steep_sigmoid_around_sigma_t() {
    let a = t(&[0.0, 0.5, 0.51, 1.0], &[1, 1, 2, 2]);
    let m = erase_mask(&a, 100.0, 0.5).unwrap();
    let s = |v: f32| 1.0 / (1.0 + (-v).exp());
    close_all(&m.to_vec_f32().unwrap(), &[s(-50.0), 0.5, s(1.0), s(50.0)]);
    // x ⊙ (1 − M): erased where attention is high, per pixel for every channel.
    let x = t(&[1.0; 12], &[1, 3, 2, 2]);
    let e = erase(&x, &m).unwrap().to_vec_f32().unwrap();
    for c in 0..3 {
        close_all(
            &e[c * 4..c * 4 + 4],
            &[1.0 - s(-50.0), 0.5, 1.0 - s(1.0), 1.0 - s(50.0)],
        );
    }
}

#[test]
fn alternating_phases() {
    let p: Vec<bool> = (0..7).map(|g| localizer_phase(g, 2, 3)).collect();
    assert_eq!(p, [true, true, false, false, false, true, true]);
}

#[test]
fn pairs_are_rounds_of_positive_foreground_labels() {
    // 3 images, 4 classes (0 = background): {1, 3}, {}, {2}.
    let l = [1., 1., 0., 1., 1., 0., 0., 0., 0., 0., 1., 0.];
    let (sels, valid) = pair_rounds(&l, 3, 4);
    assert_eq!(sels.len(), 2);
    assert_eq!(sels[0], [1., 0., 0., 0., 0., 0., 0., 1., 0.]);
    assert_eq!(valid[0], [1., 0., 1.]);
    assert_eq!(sels[1], [0., 0., 1., 0., 0., 0., 0., 0., 0.]);
    assert_eq!(valid[1], [1., 0., 0.]);
}

#[test]
fn seed_scores_threshold_and_background() {
    // 2 foreground maps of 2 pixels; class 2 absent.
    let maps = t(&[0.2, 0.9, 0.8, 0.4], &[1, 2, 1, 2]);
    let present = t(&[1.0, 0.0], &[1, 2]);
    let s = seed_scores(&maps, &present, 0.3).unwrap();
    assert_eq!(s.shape(), &[1, 3, 1, 2]);
    close_all(&s.to_vec_f32().unwrap(), &[1e-5, 1e-5, 0.0, 0.9, 0.0, 0.0]);
}

#[test]
fn defaults_and_keys_of_the_new_methods() {
    use advseg::train::RunConfig;
    let c = RunConfig::new("gan-cegu").unwrap();
    assert_eq!(c.method["encoding"].as_str(), Some("basic"));
    assert_eq!(c.method["weight"].as_str(), Some("one_plus"));
    assert_eq!(c.method["lambda_u"].as_float(), Some(1.0));
    assert_eq!(c.method["lambda_adv"].as_float(), Some(0.0));
    let mut c = RunConfig::new("ssgan").unwrap();
    assert_eq!(c.method["encoding"].as_str(), Some("concat"));
    assert_eq!(c.method["lambda_adv"].as_float(), Some(1.0));
    c.set("encoding", "product".into()).unwrap();
    assert!(c.set("encoding", "sum".into()).is_err());
    assert!(
        c.set("lambda_u", 2.0.into()).is_err(),
        "gan-cegu key on ssgan"
    );
    let mut c = RunConfig::new("eader").unwrap();
    assert_eq!(c.common.arch, "resnet18");
    assert_eq!(c.common.lr, 0.01);
    assert_eq!(c.common.weight_decay, 1e-4);
    assert_eq!(c.common.power, 0.0);
    assert_eq!(c.method["alpha"].as_float(), Some(0.05f32 as f64));
    assert_eq!(c.method["omega"].as_float(), Some(100.0));
    assert_eq!(c.method["loc_steps"].as_integer(), Some(200));
    c.set("attention", "cam".into()).unwrap();
    assert!(c.set("attention", "saliency".into()).is_err());
    // Other methods keep the AdvSemiSeg optimiser defaults.
    assert_eq!(RunConfig::new("ssgan").unwrap().common.lr, 2.5e-4);
}

/// EADER's evaluation keeps only the ground-truth image classes (§5.4, `eval_classes = "gt"`):
/// every pixel's pseudo-label is the background or one of them, whatever the localizer thinks.
#[test]
fn eader_eval_uses_gt_image_classes() {
    use advseg::nn::arch::Model;
    use advseg::ops::softmax::argmax_channels;
    use advseg::train::methods::{find, BuildEnv};
    use advseg::train::RunConfig;
    let gpu = Gpu::shared().unwrap();
    let mut cfg = RunConfig::new("eader").unwrap();
    cfg.common.arch = "tiny-cls".into();
    cfg.set("adversary", "tiny-cls".into()).unwrap();
    let init = |_: &str, _: &Model| Ok(());
    let env = BuildEnv {
        gpu: &gpu,
        cfg: &cfg,
        classes: 5,
        ignore: 255,
        init: &init,
    };
    let m = (find("eader").unwrap().build)(&env).unwrap();
    let x: Vec<f32> = (0..2 * 3 * 16 * 16)
        .map(|i| ((i * 29 % 97) as f32 / 48.0) - 1.0)
        .collect();
    let x = Tensor::from_f32(&gpu, &x, &[2, 3, 16, 16]).unwrap();
    // Image 0 holds class 2, image 1 classes 1 and 4.
    let y = Tensor::from_f32(&gpu, &[1., 0., 1., 0., 0., 1., 1., 0., 0., 1.], &[2, 5]).unwrap();
    let pred = argmax_channels(&m.segment_labeled(&x, &y).unwrap())
        .unwrap()
        .to_vec_i32()
        .unwrap();
    let (a, b) = pred.split_at(256);
    assert!(a.iter().all(|&c| c == 0 || c == 2), "{a:?}");
    assert!(b.iter().all(|&c| [0, 1, 4].contains(&c)), "{b:?}");
    // A min–max normalised map exceeds the 0.3 seed threshold somewhere: foreground appears.
    assert!(a.contains(&2) && (b.contains(&1) || b.contains(&4)));
}

/// With `eval_classes = "predicted"` one evaluation batch computes the attention maps once
/// and scores two things with them: the logits are `segment`'s (predicted classes) and the
/// thresholded-CAM signal is what `eval_classes = "gt"` would score (the GT classes).
#[test]
fn eader_eval_batch_with_predicted_classes() {
    use advseg::nn::arch::Model;
    use advseg::train::methods::{find, BuildEnv};
    use advseg::train::RunConfig;
    let gpu = Gpu::shared().unwrap();
    let build = |eval_classes: &str| {
        let mut cfg = RunConfig::new("eader").unwrap();
        cfg.common.arch = "tiny-cls".into();
        cfg.set("adversary", "tiny-cls".into()).unwrap();
        cfg.set("eval_classes", eval_classes.into()).unwrap();
        let init = |_: &str, _: &Model| Ok(());
        let env = BuildEnv {
            gpu: &gpu,
            cfg: &cfg,
            classes: 5,
            ignore: 255,
            init: &init,
        };
        (find("eader").unwrap().build)(&env).unwrap()
    };
    let (pred, gt) = (build("predicted"), build("gt"));
    let x: Vec<f32> = (0..2 * 3 * 16 * 16)
        .map(|i| ((i * 29 % 97) as f32 / 48.0) - 1.0)
        .collect();
    let x = Tensor::from_f32(&gpu, &x, &[2, 3, 16, 16]).unwrap();
    let y = Tensor::from_f32(&gpu, &[1., 0., 1., 0., 0., 1., 1., 0., 0., 1.], &[2, 5]).unwrap();
    let v = |t: &Tensor| t.to_vec_f32().unwrap();
    // Same initialisation in both, so the two methods' maps are the same.
    assert_eq!(v(&pred.segment(&x).unwrap()), v(&gt.segment(&x).unwrap()));
    let (logits, sig) = pred.eval_batch(&x, &y).unwrap();
    assert_eq!(v(&logits), v(&pred.segment(&x).unwrap()));
    let cam = sig.cam_scores.expect("eader reports the thresholded CAM");
    assert_eq!(v(&cam), v(&gt.segment_labeled(&x, &y).unwrap()));
    let (gt_logits, gt_sig) = gt.eval_batch(&x, &y).unwrap();
    assert_eq!(v(&gt_logits), v(&cam));
    assert_eq!(v(&gt_sig.cam_scores.unwrap()), v(&cam));
}
