//! Helpers shared by the end-to-end CLI tests: run the `advseg` binary, read a run directory.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn advseg(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_advseg"))
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .expect("run advseg");
    out
}

pub fn ok(args: &[&str]) -> String {
    let o = advseg(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "advseg {args:?} failed:\n{text}");
    text
}

pub fn fails(args: &[&str], needle: &str) {
    let o = advseg(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "advseg {args:?} should fail");
    assert!(
        err.contains(needle),
        "advseg {args:?}: expected {needle:?} in:\n{err}"
    );
}

pub fn tmp(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("advseg_{prefix}_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub fn lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn evals(m: &[serde_json::Value]) -> Vec<(u64, f64)> {
    m.iter()
        .filter(|v| v["type"] == "eval")
        .map(|v| (v["step"].as_u64().unwrap(), v["miou"].as_f64().unwrap()))
        .collect()
}

/// Every loss term of every logged step is finite; returns the logged steps.
pub fn finite_steps(m: &[serde_json::Value]) -> Vec<u64> {
    m.iter()
        .filter(|v| v["type"] == "step")
        .map(|v| {
            for (k, x) in v.as_object().unwrap() {
                if k.starts_with("loss") {
                    let x = x.as_f64().unwrap_or(f64::NAN);
                    assert!(x.is_finite(), "{k} = {x} in {v}");
                }
            }
            v["step"].as_u64().unwrap()
        })
        .collect()
}

pub fn complete_run_dir(dir: &Path, last_step: u64, maps: &[&str]) {
    for f in [
        "config.toml",
        "split.txt",
        "metrics.jsonl",
        "last.safetensors",
        "best.safetensors",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    let snap = dir.join(format!("snapshots/step_{last_step:06}"));
    let names: Vec<String> = std::fs::read_dir(&snap)
        .unwrap_or_else(|e| panic!("{}: {e}", snap.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    for want in ["input", "gt", "pred", "overlay", "confidence"]
        .iter()
        .chain(maps)
    {
        assert!(
            names.iter().any(|n| n.ends_with(&format!("_{want}.png"))),
            "no *_{want}.png in {names:?}"
        );
    }
}

pub fn eval_json(ckpt: &Path) -> serde_json::Value {
    let s = ok(&["eval", "--checkpoint", ckpt.to_str().unwrap(), "--json"]);
    serde_json::from_str(s.lines().last().unwrap()).unwrap()
}

pub const DATA: &str = "synthetic:size=32,n=96,val=16";
