//! The confidence-histogram kernel (`ops::signals`) and the signal metrics against
//! `tests/fixtures/signals/conf_hist.json` (`scripts/make_signals_fixture.py`: float32 bins,
//! pairwise Mann–Whitney AUROC, direct gate comparison). Counts must match exactly; the AUROC
//! to 1e-12 against the pairwise one over the same bins, and to 1e-4 against the unbinned one
//! (the quantisation error of 1000 bins on this data is 6e-6).

use advseg::gpu::Gpu;
use advseg::metrics::signals::{ConfidenceHist, SignalScores};
use advseg::ops::signals::ConfHistGpu;
use advseg::tensor::Tensor;

const CLASSES: usize = 4;
const IGNORE: i32 = 255;

/// The fixture script's hash.
fn h(i: u64, salt: u64) -> u64 {
    let mut x = (i * 2654435761 + salt * 40503 + 12345) & 0xFFFF_FFFF;
    x ^= x >> 15;
    x = (x * 2246822519) & 0xFFFF_FFFF;
    x ^= x >> 13;
    x
}

/// The fixture script's pixels: (conf, pred, gt).
fn pixels(n: usize, t: f32) -> (Vec<f32>, Vec<i32>, Vec<i32>) {
    let (mut conf, mut pred, mut gt) = (vec![], vec![], vec![]);
    for i in 0..n as u64 {
        let mut c = (h(i, 1) % 65536) as f32 / 65536.0;
        if i % 97 == 0 {
            c = t;
        }
        if i % 89 == 0 {
            c = 1.0;
        }
        let g = (h(i, 2) % (CLASSES as u64 + 1)) as i32;
        let g = if g == CLASSES as i32 { IGNORE } else { g };
        let right = (h(i, 3) % 65536) < (65536.0 * (0.2 + 0.7 * c as f64)) as u64;
        let p = if right && g != IGNORE {
            g
        } else {
            (h(i, 4) % CLASSES as u64) as i32
        };
        conf.push(c);
        pred.push(p);
        gt.push(g);
    }
    (conf, pred, gt)
}

fn fixture() -> serde_json::Value {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/signals/conf_hist.json"
    );
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn counts(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// Fills the GPU histogram in batches of `parts` pixels (accumulating across dispatches).
fn gpu_hist(conf: &[f32], pred: &[i32], gt: &[i32], t: f32, parts: &[usize]) -> ConfidenceHist {
    let gpu = Gpu::shared().expect("GPU adapter");
    let acc = ConfHistGpu::new(&gpu, 1000, Some(t)).unwrap();
    let mut at = 0;
    for &n in parts {
        let r = at..at + n;
        let c = Tensor::from_f32(&gpu, &conf[r.clone()], &[1, 1, 1, n]).unwrap();
        let p = Tensor::from_i32(&gpu, &pred[r.clone()], &[1, 1, n]).unwrap();
        let g = Tensor::from_i32(&gpu, &gt[r], &[1, 1, n]).unwrap();
        acc.add(&c, &p, &g, IGNORE, CLASSES).unwrap();
        at += n;
    }
    assert_eq!(at, conf.len());
    acc.read().unwrap()
}

#[test]
fn kernel_and_host_match_the_fixture() {
    let f = fixture();
    let t = f["t"].as_f64().unwrap() as f32;
    let (conf, pred, gt) = pixels(f["n"].as_u64().unwrap() as usize, t);
    let mut host = ConfidenceHist::new(1000, Some(t));
    host.add(&conf, &pred, &gt, IGNORE as i64, CLASSES).unwrap();
    let dev = gpu_hist(&conf, &pred, &gt, t, &[1234, 1766]);
    for (name, hist) in [("host", &host), ("gpu", &dev)] {
        assert_eq!(hist.correct, counts(&f["hist_right"]), "{name} right");
        assert_eq!(hist.wrong, counts(&f["hist_wrong"]), "{name} wrong");
        let g = hist.gate.unwrap();
        assert_eq!(g.gated, f["gated"].as_u64().unwrap(), "{name} gated");
        assert_eq!(
            g.gated_correct,
            f["gated_right"].as_u64().unwrap(),
            "{name}"
        );
        let a = hist.auroc().unwrap();
        assert!(
            (a - f["auroc_binned"].as_f64().unwrap()).abs() < 1e-12,
            "{name} {a}"
        );
        assert!(
            (a - f["auroc_raw"].as_f64().unwrap()).abs() < 1e-4,
            "{name} {a}"
        );
    }
    let s = SignalScores::from_hist(&dev);
    let (gated, right) = (
        f["gated"].as_f64().unwrap(),
        f["gated_right"].as_f64().unwrap(),
    );
    assert!((s.gate_precision.unwrap() - right / gated).abs() < 1e-12);
    assert_eq!(s.gate_curve.len(), 19);
}

/// Many workgroups (chunks of 16384 pixels) and a ragged last one: the GPU equals the host.
#[test]
fn kernel_over_many_workgroups() {
    let (conf, pred, gt) = pixels(70_001, 0.5);
    let mut host = ConfidenceHist::new(1000, Some(0.5));
    host.add(&conf, &pred, &gt, IGNORE as i64, CLASSES).unwrap();
    assert_eq!(gpu_hist(&conf, &pred, &gt, 0.5, &[70_001]), host);
}

#[test]
fn kernel_refuses_mismatched_shapes() {
    let gpu = Gpu::shared().expect("GPU adapter");
    let acc = ConfHistGpu::new(&gpu, 1000, None).unwrap();
    let c = Tensor::from_f32(&gpu, &[0.5; 6], &[1, 1, 2, 3]).unwrap();
    let p = Tensor::from_i32(&gpu, &[0; 4], &[1, 2, 2]).unwrap();
    let err = acc
        .add(&c, &p, &p, IGNORE, CLASSES)
        .unwrap_err()
        .to_string();
    assert!(err.contains("conf_hist") && err.contains("differ"), "{err}");
    let err = acc
        .add(&c, &c, &c, IGNORE, CLASSES)
        .unwrap_err()
        .to_string();
    assert!(err.contains("I32"), "{err}");
    assert!(ConfHistGpu::new(&gpu, 5000, None).is_err());
}
