//! `ema_decay`: the weight average of G through the CLI. Checkpoints keep it (`ema.G.*`) and
//! it follows its recurrence step by step; resuming continues it bit-exactly; keeping it never
//! changes training; the run's evaluations and snapshots, `eval` and `predict` use it, and
//! `--raw-weights` the live weights.

use crate::common;
use crate::common::*;
use advseg::nn::checkpoint::HostTensors;
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp("ema", name)
}

/// Trains supervised `tiny` on a small synthetic set at a constant lr (so a resumed run and
/// an uninterrupted one see the same schedule), evaluating after every step so every step
/// swaps the average in and out.
fn train(dir: &Path, iters: usize, ema: &str, resume: bool) -> HostTensors {
    let (it, e) = (iters.to_string(), format!("ema_decay={ema}"));
    let mut a = vec![
        "train",
        "--method",
        "supervised",
        "--data",
        "synthetic:size=32,n=12,val=4",
        "--batch",
        "2",
        "--set",
        "power=0",
        "--set",
        "lr=0.02",
        "--set",
        &e,
        "--eval-every",
        "1",
        "--quiet",
        "--iters",
        &it,
        "--out",
        dir.to_str().unwrap(),
    ];
    if resume {
        a.extend(["--resume", "auto"]);
    }
    ok(&a);
    advseg::nn::read_safetensors(&dir.join("last.safetensors"))
        .unwrap()
        .0
}

#[test]
fn average_follows_its_recurrence_resumes_exactly_and_leaves_training_alone() {
    let (c, u, off) = (tmp("chain"), tmp("whole"), tmp("off"));
    let decay = 0.5f32;
    // Step by step through resumes: the checkpoint after each of steps 1..3.
    let ck: Vec<HostTensors> = (1..=3).map(|t| train(&c, t, "0.5", t > 1)).collect();
    let g_keys: Vec<&String> = ck[2].keys().filter(|k| k.starts_with("G.")).collect();
    assert!(!g_keys.is_empty());
    for k in &g_keys {
        assert!(ck[2].contains_key(&format!("ema.{k}")), "ema.{k} missing");
    }
    let mut lagging = 0;
    for t in 2..=3usize {
        let d = advseg::optim::ema::decay_at(decay, t);
        let (prev, now) = (&ck[t - 2], &ck[t - 1]);
        for k in &g_keys {
            let e0 = &prev[&format!("ema.{k}")].1;
            let (e1, g1) = (&now[&format!("ema.{k}")].1, &now[*k].1);
            let scale = g1
                .iter()
                .chain(e0)
                .fold(0f32, |m, v| m.max(v.abs()))
                .max(1e-6);
            for i in 0..g1.len() {
                let want = e0[i] + (1.0 - d) * (g1[i] - e0[i]);
                assert!(
                    (e1[i] - want).abs() <= 2e-6 * scale,
                    "step {t} ema.{k}[{i}]: {} vs {want}",
                    e1[i]
                );
            }
            if e1 != g1 {
                lagging += 1;
            }
        }
    }
    assert!(lagging > 0, "the average never differed from the weights");
    // Resumed twice == uninterrupted, average included.
    let whole = train(&u, 3, "0.5", false);
    assert_eq!(
        whole.keys().collect::<Vec<_>>(),
        ck[2].keys().collect::<Vec<_>>()
    );
    for (k, v) in &whole {
        assert!(
            v == &ck[2][k],
            "{k} differs between resumed and uninterrupted runs"
        );
    }
    // No average: the same network and optimiser state, bit for bit, and no ema.* tensors.
    let plain = train(&off, 3, "0", false);
    assert!(!plain.keys().any(|k| k.starts_with("ema.")));
    for (k, v) in &plain {
        assert!(v == &whole[k], "{k}: keeping the average changed training");
    }
    for d in [c, u, off] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn gray(p: &Path) -> Vec<u8> {
    image::open(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .to_luma8()
        .into_raw()
}

#[test]
fn runs_eval_and_predict_use_the_average_unless_raw_weights() {
    let dir = tmp("eval");
    let d = dir.to_str().unwrap();
    ok(&[
        "train",
        "--method",
        "supervised",
        "--data",
        DATA,
        "--iters",
        "60",
        "--batch",
        "8",
        "--labeled-fraction",
        "1",
        "--set",
        "lr=0.025",
        "--set",
        "ema_decay=0.9",
        "--quiet",
        "--out",
        d,
    ]);
    let m = lines(&dir);
    let last = m.iter().rfind(|v| v["type"] == "eval").unwrap();
    let ckpt = dir.join("last.safetensors");
    let avg = eval_json(&ckpt);
    assert_eq!(
        avg["confusion"], last["confusion"],
        "eval != the run's evaluation"
    );
    assert_eq!(avg["miou"], last["miou"]);
    let raw: serde_json::Value = serde_json::from_str(
        ok(&[
            "eval",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--json",
            "--raw-weights",
        ])
        .lines()
        .last()
        .unwrap(),
    )
    .unwrap();
    assert_ne!(
        raw["confusion"], last["confusion"],
        "the live weights score as the average: the check cannot tell them apart"
    );
    // The snapshot's confidence map is the average's: predict reproduces it, and
    // predict --raw-weights does not.
    let snap = dir.join("snapshots/step_000060");
    let (pred, stem) = predict_probe(&dir, 60, "last");
    let probe = stem.strip_suffix("_input").unwrap();
    let conf = snap.join(format!("{probe}_confidence.png"));
    assert_eq!(
        gray(&pred.join(format!("{stem}_confidence.png"))),
        gray(&conf),
        "snapshot != predict with the average"
    );
    let input = snap.join(format!("{stem}.png"));
    let raw_out = dir.join("pred_raw");
    ok(&[
        "predict",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        raw_out.to_str().unwrap(),
        "--maps",
        "--raw-weights",
    ]);
    assert_ne!(
        gray(&raw_out.join(format!("{stem}_confidence.png"))),
        gray(&conf),
        "predict --raw-weights gave the average's confidence"
    );
    fails(
        &[
            "train",
            "--method",
            "supervised",
            "--data",
            DATA,
            "--set",
            "ema_decay=1",
            "--quiet",
        ],
        "ema_decay",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
