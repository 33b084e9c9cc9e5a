//! End-to-end `advseg train` / `eval` / `predict` on synthetic data with the `tiny` arch
//! (lavapipe-sized), and the CLI's error messages.

use crate::common;
use crate::common::*;
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp("train", name)
}

fn end_to_end(method: &str, extra: &[&str], iters: u64, maps: &[&str]) {
    common::end_to_end("train", method, extra, iters, maps, &[]);
}

#[test]
fn supervised_learns_resumes_evals_predicts() {
    end_to_end(
        "supervised",
        &[
            "--batch",
            "8",
            "--labeled-fraction",
            "1",
            "--set",
            "lr=0.025",
        ],
        120,
        &[],
    );
}

#[test]
fn advsemi_learns_resumes_evals_predicts() {
    end_to_end(
        "advsemi",
        &[
            "--batch",
            "4",
            "--labeled-fraction",
            "1/2",
            "--ndf",
            "4",
            "--set",
            "lr=0.025",
            "--set",
            "semi_start=40",
        ],
        80,
        &["d_confidence", "semi_mask"],
    );
}

#[test]
fn errors_are_clear() {
    let dir = tmp("errors");
    let d = dir.to_str().unwrap();
    let base = [
        "train",
        "--data",
        "synthetic:size=16,n=8,val=4",
        "--out",
        d,
        "--quiet",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |extra: &[&str], needle: &str| {
        let a = with(extra);
        fails(&a.iter().map(String::as_str).collect::<Vec<_>>(), needle)
    };
    run(&["--method", "nosuch"], "unknown method \"nosuch\"");
    run(
        &["--method", "rrm", "--arch", "tiny"],
        "arch \"tiny\" has no RRM classification + segmentation branches; use one of rrm-resnet50, rrm-tiny",
    );
    run(
        &["--method", "supervised", "--arch", "nosuch"],
        "unknown arch \"nosuch\"",
    );
    run(
        &["--method", "advsemi", "--set", "lamda_adv=1"],
        "unknown setting \"lamda_adv\"",
    );
    run(
        &["--method", "supervised", "--set", "lambda_adv=0.1"],
        "belongs to method advsemi; it does not apply to method supervised",
    );
    run(
        &["--method", "supervised", "--set", "advsemi.mask_t=0.3"],
        "does not apply to method supervised",
    );
    run(&["--method", "advsemi", "--set", "mask_t=abc"], "mask_t");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, "iters = 3\n[advsemi]\nlambda_adv = 0.01\n").unwrap();
    run(
        &["--method", "supervised", "--config", cfg.to_str().unwrap()],
        "does not apply to method supervised",
    );
    std::fs::remove_file(&cfg).unwrap();
    run(&["--method", "advsemi", "--set", "iters=0"], "iters");

    // A checkpoint of another arch.
    ok(
        &with(&["--method", "supervised", "--iters", "2", "--batch", "2"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    run(
        &[
            "--method",
            "supervised",
            "--resume",
            "auto",
            "--arch",
            "deeplabv2-resnet50",
        ],
        "holds arch \"tiny\" but the run uses --arch \"deeplabv2-resnet50\"",
    );
    let other = tmp("errors_other");
    let ck = dir.join("last.safetensors");
    fails(
        &[
            "train",
            "--data",
            "synthetic:size=16,n=8,val=4",
            "--quiet",
            "--method",
            "supervised",
            "--out",
            other.to_str().unwrap(),
            "--arch",
            "deeplabv2-resnet50",
            "--load-from",
            ck.to_str().unwrap(),
        ],
        "holds arch \"tiny\" but the run uses --arch \"deeplabv2-resnet50\"",
    );
    fails(
        &[
            "eval",
            "--checkpoint",
            dir.join("config.toml").to_str().unwrap(),
        ],
        "not a safetensors checkpoint",
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

/// Stopping and resuming gives bit-identical networks and optimiser states to one
/// uninterrupted run (constant lr so the schedule does not depend on --iters).
#[test]
fn resume_is_bit_exact() {
    let (a, b) = (tmp("exact_a"), tmp("exact_b"));
    let args = |dir: &Path, iters: &str| -> Vec<String> {
        [
            "train",
            "--method",
            "advsemi",
            "--data",
            "synthetic:size=32,n=12,val=2",
            "--batch",
            "2",
            "--ndf",
            "2",
            "--labeled-fraction",
            "1/2",
            "--set",
            "power=0",
            "--set",
            "semi_start=2",
            "--set",
            "lr=0.01",
            "--quiet",
            "--iters",
            iters,
            "--out",
            dir.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |v: Vec<String>| ok(&v.iter().map(String::as_str).collect::<Vec<_>>());
    run(args(&a, "6"));
    run(args(&b, "3"));
    let mut r = args(&b, "6");
    r.extend(["--resume".to_string(), "auto".to_string()]);
    run(r);
    let ta = advseg::nn::read_safetensors(&a.join("last.safetensors"))
        .unwrap()
        .0;
    let tb = advseg::nn::read_safetensors(&b.join("last.safetensors"))
        .unwrap()
        .0;
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    assert!(ta.keys().any(|k| k.starts_with("optim.D.")));
    for (k, v) in &ta {
        assert!(v == &tb[k], "{k} differs after resume");
    }
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

/// A diverging loss stops the run with the term's name and keeps the last good checkpoint.
#[test]
fn non_finite_loss_stops_and_keeps_last_good_checkpoint() {
    let dir = tmp("nan");
    let d = dir.to_str().unwrap();
    fails(
        &[
            "train", "--method", "supervised", "--data", "synthetic:size=32,n=16,val=4",
            "--iters", "20", "--batch", "2", "--out", d, "--quiet", "--set", "lr=1e20", "--set",
            "checkpoint_every=1",
        ],
        "loss term \"loss_seg\" is NaN at step 2: training stopped; the last good checkpoint (step 1)",
    );
    assert_eq!(eval_json(&dir.join("last.safetensors"))["step"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ctrl-C (SIGINT) saves `last` and exits with 130; the run resumes from there.
#[test]
fn interrupt_saves_last() {
    let dir = tmp("sigint");
    let (code, err) = common::signal_run(&dir, "-INT", 3);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("--resume auto"), "{err}");
    let step = eval_json(&dir.join("last.safetensors"))["step"]
        .as_u64()
        .unwrap();
    assert!(step >= 3, "saved step {step}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rrm-resnet50` keeps BN frozen as RRM does on pretrained weights; from random init that
/// diverges (loss_cls 270 → 8e5 in two steps, measured), so the CLI says what to do. The bad
/// data path then stops the run before any training.
#[test]
fn frozen_bn_from_scratch_warns() {
    let o = advseg(&[
        "train",
        "--method",
        "rrm",
        "--data",
        "camvid:/nonexistent/camvid",
        "--out",
        tmp("frozen_bn").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("rrm-resnet50 keeps BatchNorm frozen") && err.contains("--load-from"),
        "{err}"
    );
}

/// A preset is a `train --config` file on its own: without `--method` it trains the method
/// it names (it used to fail with "method = ... but the run's method is advsemi").
#[test]
fn config_file_names_the_method() {
    let dir = tmp("config_method");
    let preset = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/presets/demo/ssgan.toml"
    );
    let out = dir.display().to_string();
    ok(&[
        "train",
        "--config",
        preset,
        "--iters",
        "1",
        "--set",
        "eval_every=0",
        "--set",
        "snapshot_every=0",
        "--out",
        &out,
    ]);
    let cfg = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(cfg.contains("method = \"ssgan\""), "{cfg}");
    // --method still wins, and a mismatch with the file is named.
    let dir2 = tmp("config_method_mismatch");
    let out2 = dir2.display().to_string();
    let o = common::advseg(&[
        "train", "--config", preset, "--method", "gan-cegu", "--iters", "1", "--out", &out2,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("ssgan"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}
