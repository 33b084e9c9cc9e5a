//! End-to-end: `advseg train` logs the signal metrics (`metrics::signals`) at every
//! evaluation in `metrics.jsonl`, the probes' in `probe_signals` lines, the whole-split
//! confusion matrix in every eval line, and a `signals:` line in the CLI log. Few iterations
//! each: these check presence and ranges, not learning.

use crate::common;
use crate::common::*;
use std::path::Path;

fn unit(v: &serde_json::Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!((0.0..=1.0).contains(&x), "{what} = {x} outside [0, 1]");
    x
}

/// Runs `method` for `iters` with an eval at start and end; returns (log text, lines).
fn run(
    name: &str,
    method: &str,
    data: &str,
    iters: &str,
    extra: &[&str],
) -> (String, Vec<serde_json::Value>, std::path::PathBuf) {
    let dir = common::tmp("signals", name);
    let d = dir.to_str().unwrap();
    let mut args = vec![
        "train",
        "--method",
        method,
        "--data",
        data,
        "--iters",
        iters,
        "--eval-every",
        iters,
        "--log-every",
        "1",
        "--out",
        d,
        "--set",
        "eval_at_start=true",
    ];
    args.extend(extra);
    let text = ok(&args);
    let m = lines(&dir);
    (text, m, dir)
}

fn eval_lines(m: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    let e: Vec<_> = m.iter().filter(|v| v["type"] == "eval").collect();
    assert_eq!(e.len(), 2, "an eval at start and at the end");
    e
}

/// Every labelled val pixel is in the matrix once: its sum is the pixel count the IoU came
/// from, and its diagonal gives the logged pixel accuracy.
fn check_confusion(e: &serde_json::Value, classes: usize) {
    let rows = e["confusion"].as_array().expect("confusion rows");
    assert_eq!(rows.len(), classes);
    let m: Vec<Vec<u64>> = rows
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect()
        })
        .collect();
    let total: u64 = m.iter().flatten().sum();
    let diag: u64 = (0..classes).map(|c| m[c][c]).sum();
    assert!(total > 0);
    let acc = e["pixel_acc"].as_f64().unwrap();
    assert!(
        (diag as f64 / total as f64 - acc).abs() < 1e-12,
        "{diag}/{total} vs {acc}"
    );
}

fn check_d_signals(e: &serde_json::Value, gate: bool) {
    unit(&e["d_auroc"], "d_auroc");
    let c = &e["gate_curve"];
    let cov: Vec<f64> = c["coverage"]
        .as_array()
        .expect("gate_curve.coverage")
        .iter()
        .map(|x| unit(x, "coverage"))
        .collect();
    assert_eq!(cov.len(), 19);
    assert!(
        cov.windows(2).all(|w| w[1] <= w[0]),
        "coverage falls with T: {cov:?}"
    );
    for p in c["precision"].as_array().unwrap() {
        if !p.is_null() {
            unit(p, "curve precision");
        }
    }
    if gate {
        assert!((e["gate_t"].as_f64().unwrap() - 0.2).abs() < 1e-6);
        unit(&e["gate_coverage"], "gate_coverage");
        if !e["gate_precision"].is_null() {
            unit(&e["gate_precision"], "gate_precision");
        }
    } else {
        assert!(e.get("gate_t").is_none(), "{e}");
    }
}

#[test]
fn advsemi_logs_d_signals_gate_and_confusion() {
    let (text, m, dir) = run(
        "advsemi",
        "advsemi",
        DATA,
        "4",
        &[
            "--batch",
            "4",
            "--ndf",
            "4",
            "--set",
            "semi_start=0",
            "--set",
            "mask_t=0.2",
        ],
    );
    assert!(text.contains("signals: D-uncertainty AUROC"), "{text}");
    assert!(text.contains("gate T 0.20: precision"), "{text}");
    for e in eval_lines(&m) {
        check_d_signals(e, true);
        check_confusion(e, 6);
    }
    // `advseg eval --json` on the last checkpoint reproduces the last evaluation's signals
    // and matrix (integer counts: bit for bit).
    let last = *eval_lines(&m).last().unwrap();
    let j = eval_json(&dir.join("last.safetensors"));
    assert_eq!(j["signals"]["d_auroc"], last["d_auroc"]);
    assert_eq!(j["signals"]["gate_curve"], last["gate_curve"]);
    assert_eq!(j["confusion"], last["confusion"]);
    // "Open run dir" reads them back for the Plots tab.
    #[cfg(feature = "app")]
    {
        let h = advseg::app::history::History::load_metrics(&dir).unwrap();
        let last = h.evals.last().unwrap();
        assert_eq!(last.confusion.len(), 36);
        assert_eq!(last.signals.gate_curve.len(), 19);
        assert_eq!(
            last.signals.d_auroc,
            m.iter().rev().find(|v| v["type"] == "eval").unwrap()["d_auroc"].as_f64()
        );
        assert!(advseg::app::signals::signal_series(&h).len() >= 3);
        // A reopened run plots its probes' AUROC as the live run did.
        let r = advseg::app::history::History::load_run(&dir, None).unwrap();
        let logged: Vec<(u64, Option<f64>)> = m
            .iter()
            .filter(|v| v["type"] == "probe_signals")
            .map(|v| (v["step"].as_u64().unwrap(), v["d_auroc"].as_f64()))
            .collect();
        let read: Vec<(u64, Option<f64>)> = r
            .snapshots
            .iter()
            .filter(|s| logged.iter().any(|l| l.0 == s.step as u64))
            .map(|s| (s.step as u64, s.signals.d_auroc))
            .collect();
        assert_eq!(read, logged, "probe scores of the reopened run");
        let series = advseg::app::signals::signal_series(&r);
        assert!(
            series.iter().any(|s| s.0 == "D-uncertainty AUROC, probes"),
            "reopened run lacks the probes' AUROC series"
        );
    }
    let probes: Vec<_> = m.iter().filter(|v| v["type"] == "probe_signals").collect();
    assert_eq!(probes.len(), 2, "probe signals at each eval snapshot");
    for p in probes {
        unit(&p["gate_coverage"], "probe gate_coverage");
        assert_eq!(p["gate_curve"]["t"].as_array().unwrap().len(), 19);
    }
    remove(&dir);
}

#[test]
fn ssgan_and_gan_cegu_log_d_signals_without_gate() {
    for method in ["ssgan", "gan-cegu"] {
        let (_, m, dir) = run(method, method, DATA, "2", &["--batch", "4", "--ndf", "4"]);
        for e in eval_lines(&m) {
            check_d_signals(e, false);
            assert!(e.get("cam_miou").is_none());
        }
        remove(&dir);
    }
}

/// gan-cegu with the correctness D for two steps, plus `sets` (each a `--set key=value`).
fn run_gan_cegu(name: &str, sets: &[&str]) -> (Vec<serde_json::Value>, std::path::PathBuf) {
    let mut extra = vec![
        "--batch",
        "4",
        "--ndf",
        "4",
        "--set",
        "uncertainty=correctness",
    ];
    for kv in sets {
        extra.extend(["--set", kv]);
    }
    let (_, m, dir) = run(name, "gan-cegu", DATA, "2", &extra);
    (m, dir)
}

/// `uncertainty = "correctness"`: D is trained on where G's argmax is right (no ground-truth
/// forward), so the step logs the batch accuracy D's target came from and none of the
/// real-vs-fake terms; D's signals are logged as for the default reading.
#[test]
fn gan_cegu_correctness_trains_d_on_where_g_is_right() {
    let (m, dir) = run_gan_cegu("gan-cegu-correctness", &["weight=normalized"]);
    for e in eval_lines(&m) {
        check_d_signals(e, false);
    }
    let steps: Vec<_> = m.iter().filter(|v| v.get("loss_d").is_some()).collect();
    assert_eq!(steps.len(), 2, "a step line per step");
    for s in steps {
        unit(&s["acc_train"], "acc_train");
        unit(&s["uncertainty_mean"], "uncertainty_mean");
        assert!(s["loss_d"].as_f64().unwrap().is_finite(), "{s}");
        assert!(
            s.get("loss_d_real").is_none() && s.get("d_real_mean").is_none(),
            "{s}"
        );
    }
    remove(&dir);
}

/// `cegu_start`: before it G's loss is plain CE (every valid pixel weighted 1, so the logged
/// CEGU loss is the CE), from it the `1 + u` weights apply: with u ∈ [0, 1] the loss lies
/// between 1 and 2 times the CE, and an untrained D's u ≈ 0.5 puts it near 1.5 times. (The
/// `normalized` form cannot show the switch here: an untrained D's u is nearly constant, so
/// its weights are ≈ 1.) D trains on both steps.
#[test]
fn gan_cegu_weights_start_at_cegu_start() {
    let (m, dir) = run_gan_cegu("gan-cegu-start", &["weight=one_plus", "cegu_start=1"]);
    let steps: Vec<_> = m.iter().filter(|v| v.get("loss_cegu").is_some()).collect();
    assert_eq!(steps.len(), 2, "a step line per step");
    let ratio = |s: &serde_json::Value| {
        let (w, ce) = (
            s["loss_cegu"].as_f64().unwrap(),
            s["loss_ce"].as_f64().unwrap(),
        );
        assert!(w.is_finite() && ce > 0.0, "{s}");
        w / ce
    };
    assert!(
        (ratio(steps[0]) - 1.0).abs() < 1e-5,
        "before cegu_start: {}",
        steps[0]
    );
    let r = ratio(steps[1]);
    assert!(r > 1.2 && r < 2.0, "from cegu_start: {r}, {}", steps[1]);
    for s in steps {
        assert!(s["loss_d"].as_f64().unwrap().is_finite(), "{s}");
    }
    remove(&dir);
}

#[test]
fn supervised_logs_confusion_only() {
    let (text, m, dir) = run("supervised", "supervised", DATA, "2", &["--batch", "4"]);
    assert!(!text.contains("signals:"), "{text}");
    for e in eval_lines(&m) {
        check_confusion(e, 6);
        assert!(
            e.get("d_auroc").is_none() && e.get("gate_curve").is_none(),
            "{e}"
        );
    }
    assert!(!m.iter().any(|v| v["type"] == "probe_signals"));
    remove(&dir);
}

/// EADER scores its §5.4 seeds (which its eval mIoU is with `eval_classes = "gt"`); RRM its
/// §4.2 CAM argmax map for the GT classes.
#[test]
fn cam_methods_log_thresholded_cam_miou() {
    let (text, m, dir) = run(
        "eader",
        "eader",
        DATA,
        "2",
        &[
            "--arch",
            "tiny-cls",
            "--batch",
            "2",
            "--set",
            "adversary=tiny-cls",
        ],
    );
    assert!(text.contains("thresholded-CAM mIoU"), "{text}");
    for e in eval_lines(&m) {
        let c = unit(&e["cam_miou"], "eader cam_miou");
        assert!((c - e["miou"].as_f64().unwrap()).abs() < 1e-12);
        assert!(e.get("d_auroc").is_none());
    }
    remove(&dir);
    let (_, m, dir) = run(
        "rrm",
        "rrm",
        "synthetic:size=32,n=16,val=8,classes=4",
        "2",
        &["--arch", "rrm-tiny", "--batch", "2", "--set", "crf_iters=2"],
    );
    for e in eval_lines(&m) {
        unit(&e["cam_miou"], "rrm cam_miou");
        check_confusion(e, 4);
    }
    remove(&dir);
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
