//! Metrics against hand-computed confusion matrices, and the TTA helpers.

use advseg::metrics::tta::{flip_chw, predict_tta};
use advseg::metrics::{argmax_chw, ConfusionMatrix};

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-12)
}

#[test]
fn hand_computed_matrix_and_scores() {
    // 4 classes; class 3 is absent from both ground truth and prediction.
    let gt: [u8; 6] = [0, 0, 1, 1, 2, 255];
    let pred: [u8; 6] = [0, 1, 1, 1, 0, 2];
    let mut cm = ConfusionMatrix::new(4);
    cm.add(&gt, &pred, 255).unwrap();
    #[rustfmt::skip]
    let expect = [
        1, 1, 0, 0,
        0, 2, 0, 0,
        1, 0, 0, 0,
        0, 0, 0, 0,
    ];
    assert_eq!(cm.counts(), &expect);
    let s = cm.scores();
    assert_eq!(s.pixels, 5);
    assert!(close(s.iou[0], 1.0 / 3.0));
    assert!(close(s.iou[1], 2.0 / 3.0));
    assert!(close(s.iou[2], 0.0));
    assert_eq!(s.iou[3], None, "absent class has no IoU");
    assert!(
        close(s.miou, 1.0 / 3.0),
        "mIoU over the 3 defined classes: {:?}",
        s.miou
    );
    assert!(close(s.pixel_acc, 3.0 / 5.0));
    assert!(close(s.class_acc[0], 0.5));
    assert!(close(s.class_acc[1], 1.0));
    assert!(close(s.class_acc[2], 0.0));
    assert_eq!(s.class_acc[3], None);
    assert!(close(s.mean_class_acc, 0.5));
    assert!(close(
        s.fw_iou,
        2.0 / 5.0 * (1.0 / 3.0) + 2.0 / 5.0 * (2.0 / 3.0)
    ));
}

#[test]
fn predicted_but_absent_class_counts_as_zero() {
    let mut cm = ConfusionMatrix::new(4);
    cm.add(&[0i32, 0], &[0i32, 3], 255).unwrap();
    let s = cm.scores();
    assert!(close(s.iou[0], 0.5));
    assert_eq!(s.iou[1], None);
    assert_eq!(s.iou[2], None);
    assert!(
        close(s.iou[3], 0.0),
        "false positives only: IoU 0, included in the mean"
    );
    assert!(close(s.miou, 0.25));
    assert_eq!(s.class_acc[3], None);
}

#[test]
fn accumulates_over_batches_like_one_pass() {
    let gt: Vec<i32> = (0..100).map(|i: i32| i * 7 % 5).collect();
    let pred: Vec<i32> = (0..100).map(|i: i32| i * 3 % 5).collect();
    let mut one = ConfusionMatrix::new(5);
    one.add(&gt, &pred, 255).unwrap();
    let mut parts = ConfusionMatrix::new(5);
    for (g, p) in gt.chunks(17).zip(pred.chunks(17)) {
        parts.add(g, p, 255).unwrap();
    }
    assert_eq!(one, parts);
    let mut merged = ConfusionMatrix::new(5);
    merged.merge(&parts).unwrap();
    assert_eq!(merged.scores(), one.scores());
}

#[test]
fn empty_matrix_has_no_scores() {
    let s = ConfusionMatrix::new(3).scores();
    assert_eq!(s.miou, None);
    assert_eq!(s.pixel_acc, None);
    assert_eq!(s.fw_iou, None);
    assert_eq!(s.pixels, 0);
}

#[test]
fn bad_values_are_errors() {
    let mut cm = ConfusionMatrix::new(3);
    let e = cm.add(&[0u8, 7], &[0u8, 0], 255).unwrap_err().to_string();
    assert!(e.contains("ground truth 7") && e.contains("pixel 1"), "{e}");
    let e = cm.add(&[0u8], &[3u8], 255).unwrap_err().to_string();
    assert!(e.contains("prediction 3"), "{e}");
    assert!(cm.add(&[0u8, 1], &[0u8], 255).is_err());
    assert!(cm.merge(&ConfusionMatrix::new(4)).is_err());
}

#[test]
fn perfect_prediction() {
    let gt: Vec<u8> = (0..60).map(|i| (i % 3) as u8).collect();
    let mut cm = ConfusionMatrix::new(3);
    cm.add(&gt, &gt, 255).unwrap();
    let s = cm.scores();
    assert!(close(s.miou, 1.0) && close(s.pixel_acc, 1.0) && close(s.fw_iou, 1.0));
}

#[test]
fn argmax_picks_largest_channel() {
    // 2 classes, 1x3 image.
    let p = [0.9, 0.2, 0.5, 0.1, 0.8, 0.5];
    assert_eq!(argmax_chw(&p, 2, 1, 3), vec![0, 1, 0]);
}

#[test]
fn tta_flip_undoes_the_mirror() {
    let (h, w) = (4, 6);
    let img = vec![0.0f32; 3 * h * w];
    // A position-dependent "network": class-0 score = x. Averaging it with its mirrored pass
    // (mirrored back) must give (w-1)/2 everywhere.
    let out = predict_tta(&img, h, w, 1, &[1.0], true, |_, hh, ww| {
        Ok((0..hh * ww).map(|i| (i % ww) as f32).collect())
    })
    .unwrap();
    assert!(out.iter().all(|&v| (v - 2.5).abs() < 1e-6), "{out:?}");
}

#[test]
fn tta_of_pixelwise_net_is_identity() {
    let (h, w) = (8, 8);
    let img: Vec<f32> = (0..3 * h * w)
        .map(|i| ((i * 37) % 11) as f32 / 10.0)
        .collect();
    let net = |x: &[f32], hh: usize, ww: usize| -> advseg::Result<Vec<f32>> {
        let c0 = &x[..hh * ww];
        Ok(c0
            .iter()
            .copied()
            .chain(c0.iter().map(|v| 1.0 - v))
            .collect())
    };
    let plain = predict_tta(&img, h, w, 2, &[1.0], false, net).unwrap();
    let flipped = predict_tta(&img, h, w, 2, &[1.0], true, net).unwrap();
    for (a, b) in plain.iter().zip(&flipped) {
        assert!((a - b).abs() < 1e-6);
    }
    let ms = predict_tta(&img, h, w, 2, &[0.5, 1.0, 2.0], true, net).unwrap();
    assert_eq!(ms.len(), 2 * h * w);
    // Probabilities stay probabilities.
    for i in 0..h * w {
        assert!((ms[i] + ms[h * w + i] - 1.0).abs() < 1e-5);
    }
    assert_eq!(flip_chw(&flip_chw(&img, 3, h, w), 3, h, w), img);
    assert!(predict_tta(&img, h, w, 2, &[1.0], false, |_, _, _| Ok(vec![0.0; 3])).is_err());
}
