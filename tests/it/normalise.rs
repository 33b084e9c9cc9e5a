//! The per-run `normalise` setting: recorded in the run's config and checkpoint, and what
//! eval and predict apply to a checkpoint's inputs.

use crate::common::*;
use advseg::data::Normalise;
use advseg::train::checkpoint;
use advseg::train::config::Normalisation;
use advseg::train::{RunConfig, TrainError};

/// Two supervised steps with ImageNet normalisation, evaluated and snapshotted at the end.
fn short_run(name: &str) -> std::path::PathBuf {
    let dir = tmp("normalise", name);
    ok(&[
        "train",
        "--method",
        "supervised",
        "--data",
        "synthetic:size=16,n=8,val=4",
        "--iters",
        "2",
        "--batch",
        "2",
        "--eval-every",
        "2",
        "--out",
        dir.to_str().unwrap(),
        "--quiet",
        "--set",
        "probes=1",
        "--set",
        "lr=0.025",
        "--set",
        "normalise=rgb-imagenet",
    ]);
    dir
}

#[test]
fn non_default_normalisation_is_kept_and_used() {
    let dir = short_run("imagenet");
    // The run dir and the checkpoint both record it.
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(text.contains("normalise = \"rgb-imagenet\""), "{text}");
    let ckpt = dir.join("last.safetensors");
    let meta = checkpoint::Checkpoint::read(&ckpt).unwrap().meta;
    let cfg = RunConfig::from_toml(&meta.config_toml, &ckpt).unwrap();
    assert_eq!(cfg.common.normalise, Normalisation::RgbImagenet);
    assert_eq!(cfg.normalise(), Normalise::imagenet());
    assert_eq!(RunConfig::from_toml(&cfg.to_toml(), &ckpt).unwrap(), cfg);

    // eval reproduces the run's own last evaluation (made with the run's normalisation) ...
    let m = lines(&dir);
    let last = m.iter().rev().find(|l| l.get("miou").is_some()).unwrap();
    let j = eval_json(&ckpt);
    assert_eq!(j["step"], 2);
    assert_eq!(j["confusion"], last["confusion"], "eval: {j}\nrun: {last}");

    // ... and predict's confidence map of a probe is the snapshot's, pixel for pixel.
    let (pred, stem) = predict_probe(&dir, 2, "last");
    let base = stem.strip_suffix("_input").unwrap();
    let snap = dir.join(format!("snapshots/step_000002/{base}_confidence.png"));
    let got = std::fs::read(pred.join(format!("{stem}_confidence.png"))).unwrap();
    let want = std::fs::read(&snap).unwrap();
    assert!(
        got == want,
        "predict's confidence differs from {}",
        snap.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn checkpoints_without_the_key_mean_bgr_mean() {
    // Configs written before the setting existed have no `normalise` line.
    let mut cfg = RunConfig::new("supervised").unwrap();
    let old: String = cfg
        .to_toml()
        .lines()
        .filter(|l| !l.starts_with("normalise"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!old.contains("normalise"));
    let back = RunConfig::from_toml(&old, std::path::Path::new("old.toml")).unwrap();
    assert_eq!(back.normalise(), Normalise::BgrMean);
    assert_eq!(back, cfg);
    for (name, want) in [
        ("bgr-mean", Normalise::BgrMean),
        ("rgb-imagenet", Normalise::imagenet()),
        ("none", Normalise::None),
    ] {
        cfg.set("normalise", toml::Value::String(name.into()))
            .unwrap();
        assert_eq!(cfg.normalise(), want, "{name}");
        let back = RunConfig::from_toml(&cfg.to_toml(), std::path::Path::new("x")).unwrap();
        assert_eq!(back, cfg, "{name}");
    }
    assert_eq!(Normalisation::NAMES.len(), 3);
}

#[test]
fn bad_normalisation_names_the_key_and_values() {
    let mut cfg = RunConfig::new("supervised").unwrap();
    for bad in [toml::Value::String("bgr".into()), toml::Value::Integer(3)] {
        let e = cfg.set("normalise", bad).unwrap_err();
        assert!(matches!(e, TrainError::BadValue { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("\"normalise\"") && msg.contains("bgr-mean, rgb-imagenet, none"),
            "{msg}"
        );
    }
    // The CLI says the same before writing anything.
    let dir = tmp("normalise", "bad");
    fails(
        &[
            "train",
            "--method",
            "supervised",
            "--data",
            "synthetic:size=16,n=8,val=4",
            "--out",
            dir.to_str().unwrap(),
            "--set",
            "normalise=imagenet",
        ],
        "setting \"normalise\": \"imagenet\" does not fit: use one of bgr-mean, rgb-imagenet, none",
    );
    assert!(!dir.join("config.toml").exists());
}
