//! RRM's reliable-label rules (methods.md §4.2) on hand-made host arrays, plus the GPU helpers
//! and parameter groups the method builds on.

use advseg::data::Normalise;
use advseg::nn::arch;
use advseg::train::methods::common::{channel_max, rgb255};
use advseg::train::methods::rrm::{param_groups, split_bg_fg};
use advseg::train::methods::rrm_labels::*;
use advseg::{Gpu, Tensor};

const IG: i32 = 255;

fn close_all(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
    }
}

#[test]
fn background_score_is_one_minus_max_to_the_alpha() {
    // K = 2 classes, 3 pixels.
    let norm = [0.5, 0.0, 1.0, /* class 2 */ 0.2, 0.0, 0.3];
    let b = bg_score(&norm, 3, 4.0);
    close_all(&b, &[0.0625, 1.0, 0.0], 1e-7);
    let b = bg_score(&norm, 3, 32.0);
    close_all(&b, &[0.5f32.powi(32), 1.0, 0.0], 1e-12);
    // No foreground classes: all background.
    close_all(&bg_score(&[], 2, 4.0), &[1.0, 1.0], 0.0);
}

#[test]
fn argmaxes_take_the_first_maximum_and_respect_allowed_channels() {
    // C = 3, 3 pixels.
    let s = [
        0.2, 0.5, 0.1, /* c1 */ 0.2, 0.1, 0.3, /* c2 */ 0.6, 0.5, 0.2,
    ];
    assert_eq!(argmax_allowed(&s, 3, None), [2, 0, 1]);
    assert_eq!(argmax_allowed(&s, 3, Some(&[true, true, false])), [0, 0, 1]);
    // CAM argmax over [B_high, N_1, N_2].
    let bg = [0.9, 0.0, 0.1];
    let norm = [0.1, 1.0, 0.0, /* c2 */ 0.0, 0.5, 0.05];
    assert_eq!(cam_argmax(&bg, &norm, 3), [0, 1, 0]);
}

#[test]
fn quantile_threshold_keeps_about_the_top_40_percent() {
    // Ten values above the floor 0.1: index ⌊0.6·10⌋ = 6 of the sorted list.
    let v: Vec<f32> = (1..=10).rev().map(|i| i as f32 / 10.0 + 0.01).collect();
    let th = quantile_threshold(&[&v[..], &[0.05, 0.1]].concat(), 0.6, 0.1).unwrap();
    assert!((th - 0.71).abs() < 1e-6, "{th}");
    let above = v.iter().filter(|&&x| x > th).count();
    assert_eq!(above, 3);
    // The empty-list guard: nothing above the floor.
    assert_eq!(quantile_threshold(&[0.05, 0.1, 0.0], 0.6, 0.1), None);
    assert_eq!(quantile_threshold(&[], 0.6, 0.1), None);
    // q = 1 does not index past the end.
    assert_eq!(quantile_threshold(&[0.3, 0.9], 1.0, 0.1), Some(0.9));
}

#[test]
fn low_and_high_alpha_combination() {
    // la fg → la's class; la bg → ignore; ha bg → background, winning over la.
    let la = [2, 0, 0, 1, 3];
    let ha = [2, 1, 0, 0, 3];
    assert_eq!(combine_la_ha(&la, &ha, IG), [2, IG, 0, 0, 3]);
}

#[test]
fn cam_confident_region_per_class_and_background() {
    // K = 1, 8 pixels. CAM argmax: class 1 at pixels 0..5, background at 5..8.
    let norm = [0.9, 0.8, 0.7, 0.6, 0.05, 0.0, 0.0, 0.01];
    let bg = [0.0, 0.0, 0.0, 0.0, 0.0, 0.95, 0.5, 0.81];
    let arg = cam_argmax(&bg, &norm, 8);
    assert_eq!(arg, [1, 1, 1, 1, 1, 0, 0, 0]);
    let rules = LabelRules::default();
    // Class-1 values above 0.1: [0.6, 0.7, 0.8, 0.9], threshold at index 2 = 0.8 → only 0.9.
    let conf = cam_confident(&norm, &bg, &arg, &[true, true], &rules);
    assert_eq!(conf, [true, false, false, false, false, true, false, true]);
    // Background absent from la's labels: no background confidence.
    let conf = cam_confident(&norm, &bg, &arg, &[false, true], &rules);
    assert_eq!(
        conf,
        [true, false, false, false, false, false, false, false]
    );
    // A class whose pixels are all below the floor contributes nothing (guarded).
    let low = [0.05; 8];
    let arg = vec![1; 8];
    let conf = cam_confident(&low, &[0.0; 8], &arg, &[false, true], &rules);
    assert!(conf.iter().all(|&c| !c));
}

#[test]
fn crf_confidence_uses_ha_background_and_la_foreground() {
    // C = 2, 3 pixels.
    let la = [0.9, 0.15, 0.5, /* fg */ 0.1, 0.85, 0.5];
    let ha = [0.85, 0.0, 0.3, /* fg */ 0.15, 1.0, 0.7];
    assert_eq!(crf_confident(&la, &ha, 3, 0.8), [true, true, false]);
}

#[test]
fn merge_keeps_labels_only_where_both_are_confident() {
    let init = [0, 1, IG, 2];
    let m = merge(
        &init,
        &[true, true, true, false],
        &[true, false, true, true],
        IG,
    );
    assert_eq!(m, [0, IG, IG, IG]);
    assert_eq!(reliable_fraction(&m, IG), 0.25);
    assert_eq!(reliable_fg_fraction(&m, IG), 0.0);
    assert_eq!(reliable_fg_fraction(&[0, 2, IG, 1], IG), 0.5);
    assert_eq!(reliable_fg_fraction(&[], IG), 0.0);
}

#[test]
fn whole_rule_chain_on_a_two_region_image() {
    // One foreground class (K = 1) on pixels 0..3 of 6; strong CAM there, zero elsewhere.
    let norm = [1.0, 0.9, 0.2, 0.0, 0.0, 0.0];
    // CRF marginals [C = 2, 6]: both CRFs agree and are confident except at pixel 2.
    let la = [
        0.05, 0.05, 0.6, 0.95, 0.95, 0.95, 0.95, 0.95, 0.4, 0.05, 0.05, 0.05,
    ];
    let ha = [
        0.05, 0.05, 0.5, 0.95, 0.95, 0.95, 0.95, 0.95, 0.5, 0.05, 0.05, 0.05,
    ];
    let l = reliable_labels(&norm, &la, &ha, &[true], 6, &LabelRules::default());
    // Class-1 CAM values > 0.1 are [0.2, 0.9, 1.0]; ⌊0.6·3⌋ = 1 → threshold 0.9 → pixel 0 only
    // is CAM-confident; pixel 2 also fails the CRF confidence (0.5 < 0.8).
    assert_eq!(l, [1, IG, IG, 0, 0, 0]);
    // An absent class never wins an argmax even with a large marginal.
    let la2 = [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1];
    let l = reliable_labels(&[0.0; 6], &la2, &la2, &[false], 6, &LabelRules::default());
    assert_eq!(l, [0; 6]);
}

#[test]
fn bg_fg_split_and_nearest_planes() {
    let (bg, fg) = split_bg_fg(&[0, 3, IG, 1], IG);
    assert_eq!(bg, [0, IG, IG, IG]);
    assert_eq!(fg, [IG, 3, IG, 1]);
    // 1 × 4 × 4 → 2 × 2: rows/cols 0 and 2.
    let x: Vec<i32> = (0..16).collect();
    assert_eq!(resize_nearest_planes(&x, 1, (4, 4), (2, 2)), [0, 2, 8, 10]);
}

#[test]
fn gpu_helpers_rgb_and_channel_max() {
    let gpu = Gpu::shared().unwrap();
    let norm = Normalise::imagenet();
    let raw = [10.0f32, 200.0, 30.0, 128.0];
    let x: Vec<f32> = (0..3).flat_map(|c| raw.map(|v| norm.apply(c, v))).collect();
    let t = Tensor::from_f32(&gpu, &x, &[1, 3, 2, 2]).unwrap();
    let rgb = rgb255(&t, &norm).unwrap().to_vec_f32().unwrap();
    close_all(&rgb, &[raw, raw, raw].concat(), 1e-3);
    let s = Tensor::from_f32(&gpu, &[0.1, 0.9, 0.5, 0.2, 0.3, 0.1], &[1, 3, 1, 2]).unwrap();
    close_all(
        &channel_max(&s).unwrap().to_vec_f32().unwrap(),
        &[0.5, 0.9],
        0.0,
    );
}

#[test]
fn parameter_groups_follow_psa() {
    let m = arch::build("rrm-tiny", 4).unwrap();
    m.materialize(&Gpu::shared().unwrap(), 0).unwrap();
    let g = param_groups(&m, 10.0).unwrap();
    // Tiny's convs have no bias: [trunk weights (conv + BN γ), trunk biases (BN β), fc8 + seg
    // weights, seg biases].
    let mults: Vec<f32> = g.iter().map(|g| g.lr_mult).collect();
    assert_eq!(mults, [1.0, 2.0, 10.0, 20.0]);
    let wds: Vec<Option<f32>> = g.iter().map(|g| g.weight_decay).collect();
    assert_eq!(wds, [None, Some(0.0), None, Some(0.0)]);
    assert_eq!(g[2].params.len(), 3); // fc8, fc8_seg_conv1, fc8_seg_conv2 weights
    assert_eq!(g[3].params.len(), 2);
    assert_eq!(g[0].params.len(), 6); // 3 convs + 3 BN weights
}
