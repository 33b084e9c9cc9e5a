//! Helpers shared by the end-to-end CLI tests: run the `advseg` binary, read a run directory.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn advseg(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_advseg"))
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        // Static kernel choice: concurrent test processes tuning the same shape class could
        // pick different variants (different bits) between the runs a test compares.
        .env("ADVSEG_TUNE", "off")
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

/// Starts a long `supervised` run into `dir` (logging every step), waits until `metrics.jsonl`
/// has `lines` lines, sends `kill -SIGNAL` and returns the exit code and stderr.
pub fn signal_run(dir: &Path, signal: &str, lines: usize) -> (Option<i32>, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_advseg"))
        .args([
            "train",
            "--method",
            "supervised",
            "--data",
            "synthetic:size=32,n=16,val=4",
            "--iters",
            "100000",
            "--batch",
            "2",
            "--out",
            dir.to_str().unwrap(),
            "--quiet",
            "--log-every",
            "1",
        ])
        .env("XDG_RUNTIME_DIR", "/tmp")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !std::fs::read_to_string(dir.join("metrics.jsonl"))
        .is_ok_and(|s| s.lines().count() >= lines)
    {
        assert!(t0.elapsed().as_secs() < 60, "training never started");
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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

/// Trains `method` on [`DATA`] with `extra` flags: learning (mIoU well above its value at
/// initialisation), finite losses, a complete run directory with the probe `maps` and last-batch
/// `train_maps`; then refuses to overwrite without `--resume`, resumes for 10 more steps
/// without rewriting earlier metrics, `eval` reproduces the last evaluation and `predict`
/// writes the palette, overlay, confidence and every map. `prefix` keeps test binaries' temp
/// dirs apart.
pub fn end_to_end(
    prefix: &str,
    method: &str,
    extra: &[&str],
    iters: u64,
    maps: &[&str],
    train_maps: &[&str],
) {
    let t0 = std::time::Instant::now();
    let dir = tmp(prefix, method);
    let d = dir.to_str().unwrap();
    let it = iters.to_string();
    let half = (iters / 2).to_string();
    let mut args = vec![
        "train",
        "--method",
        method,
        "--data",
        DATA,
        "--iters",
        &it,
        "--eval-every",
        &half,
        "--log-every",
        "10",
        "--out",
        d,
        "--quiet",
        "--set",
        "eval_at_start=true",
    ];
    args.extend(extra);
    ok(&args);
    let t_train = t0.elapsed().as_secs_f64();
    let m = lines(&dir);
    let e = evals(&m);
    let (first, last) = (e[0], *e.last().unwrap());
    assert_eq!(first.0, 0);
    assert_eq!(last.0, iters);
    eprintln!(
        "{method}: val mIoU {:.4} at init -> {:.4} after {iters} iters ({t_train:.1} s)",
        first.1, last.1
    );
    assert!(
        last.1 > first.1 + 0.08 && last.1 > 1.8 * first.1,
        "{method} did not learn: mIoU {first:?} -> {last:?}"
    );
    let steps = finite_steps(&m);
    assert_eq!(*steps.last().unwrap(), iters);
    complete_run_dir(&dir, iters, maps);
    for tm in train_maps {
        let f = dir.join(format!("snapshots/step_{iters:06}/train_{tm}.png"));
        assert!(f.is_file(), "{} missing", f.display());
    }

    // Resume: a rerun without --resume refuses to overwrite; --resume auto continues.
    fails(&args, "--resume auto");
    let more = (iters + 10).to_string();
    let mut resume = args.clone();
    let i = resume.iter().position(|a| *a == "--iters").unwrap();
    resume[i + 1] = &more;
    resume.extend(["--resume", "auto"]);
    let text = ok(&resume);
    assert!(text.contains(&format!("steps {iters}..{more}")), "{text}");
    let m2 = lines(&dir);
    let steps2 = finite_steps(&m2);
    assert_eq!(
        &steps2[..steps.len()],
        &steps[..],
        "resume rewrote earlier metrics"
    );
    assert_eq!(*steps2.last().unwrap(), iters + 10);
    let e2 = evals(&m2);
    assert_eq!(e2.last().unwrap().0, iters + 10);

    // eval reproduces the run's last evaluation; predict writes its outputs.
    let j = eval_json(&dir.join("last.safetensors"));
    assert_eq!(j["step"], iters + 10);
    assert!((j["miou"].as_f64().unwrap() - e2.last().unwrap().1).abs() < 1e-9);
    let (pred, stem) = predict_probe(&dir, iters + 10, "best");
    for suffix in ["".to_string(), "_overlay".into(), "_confidence".into()]
        .into_iter()
        .chain(maps.iter().map(|m| format!("_{m}")))
    {
        let f = pred.join(format!("{stem}{suffix}.png"));
        assert!(f.is_file(), "{} missing", f.display());
    }
    eprintln!("{method}: whole test {:.1} s", t0.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `predict --maps` with checkpoint `ckpt` (`last` / `best`) of run `dir` on the first
/// probe input snapshotted at `step`; returns the output dir and the input's file stem.
pub fn predict_probe(dir: &Path, step: u64, ckpt: &str) -> (PathBuf, String) {
    let pred = dir.join("pred");
    let one = std::fs::read_dir(dir.join(format!("snapshots/step_{step:06}")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("_input.png"))
        .unwrap();
    ok(&[
        "predict",
        "--checkpoint",
        dir.join(format!("{ckpt}.safetensors")).to_str().unwrap(),
        "--input",
        one.to_str().unwrap(),
        "--out",
        pred.to_str().unwrap(),
        "--maps",
    ]);
    let stem = one.file_stem().unwrap().to_string_lossy().to_string();
    (pred, stem)
}

/// A tensor with `v` on `gpu` (the split tests hold two contexts with different limits).
pub fn on(gpu: &std::sync::Arc<advseg::Gpu>, v: &[f32], shape: &[usize]) -> advseg::Tensor {
    advseg::Tensor::from_f32(gpu, v, shape).unwrap()
}

/// `a` (split) within `rel` × max|b| of `b` (unsplit), element by element.
pub fn close(what: &str, a: &[f32], b: &[f32], rel: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= rel * scale,
            "{what}[{i}]: split {x} vs unsplit {y} (scale {scale})"
        );
    }
}
