//! `advseg bench ops --quick --json` runs and prints well-formed rows for all three GEMM modes.

use std::process::Command;

#[test]
fn bench_ops_quick_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_advseg"))
        .args(["bench", "ops", "--quick", "--json", "--reps", "1"])
        .env(
            "XDG_RUNTIME_DIR",
            std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()),
        )
        .output()
        .expect("run advseg");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "advseg bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    let rows = v["rows"].as_array().expect("rows");
    for op in [
        "conv2d fwd",
        "conv2d dgrad",
        "conv2d wgrad",
        "linear fwd",
        "linear dgrad",
        "linear wgrad",
        "batch_norm2d fwd",
        "batch_norm2d fwd+bwd",
        "upsample_bilinear2d fwd",
        "upsample_bilinear2d fwd+bwd",
    ] {
        assert!(rows.iter().any(|r| r["op"] == op), "no {op} row");
    }
    for r in rows {
        let ms = r["ms"].as_f64().expect("ms");
        assert!(ms.is_finite() && ms > 0.0, "bad time in {r}");
        // Compute-bound rows report GFLOP/s, memory-bound ones GB/s.
        let rate = r["gflops"].as_f64().or(r["gbps"].as_f64());
        assert!(rate.is_some_and(|g| g > 0.0), "no GFLOP/s or GB/s in {r}");
        assert!(
            r["counters"]["dispatches"].as_u64().is_some_and(|d| d > 0),
            "no dispatches counted in {r}"
        );
    }
    assert!(v["counters"]["pipelines"].as_u64().is_some_and(|p| p > 0));
}

/// `advseg bench app` runs a tiny training headless and under the app's frame loop and
/// reports both rates and the frame times (only in a build with the `app` feature).
#[cfg(feature = "app")]
#[test]
fn bench_app_tiny_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_advseg"))
        .args([
            "bench",
            "app",
            "--json",
            "--iters",
            "2",
            "--snapshot-every",
            "1",
            "--eval-every",
            "0",
            "--data",
            "synthetic:size=32,n=8,val=2",
        ])
        .env(
            "XDG_RUNTIME_DIR",
            std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()),
        )
        .output()
        .expect("run advseg");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "advseg bench app failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    for k in [
        "headless_steps_per_s",
        "app_steps_per_s",
        "frame_ms_median",
        "fps",
    ] {
        let x = v[k].as_f64().unwrap_or(f64::NAN);
        assert!(x.is_finite() && x > 0.0, "{k} = {x} in {v}");
    }
    assert!(v["frames"].as_u64().unwrap() >= 1);
}

fn bench(args: &[&str], cache: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_advseg"))
        .args(args)
        .env("ADVSEG_CACHE_DIR", cache)
        .env_remove("ADVSEG_TUNE")
        .env_remove("ADVSEG_CONV_FAMILY")
        .env(
            "XDG_RUNTIME_DIR",
            std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()),
        )
        .output()
        .expect("run advseg");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "advseg {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `bench ops --tune` measures the convolution variants per shape class and caches the
/// choices on disk; a later process reuses them without measuring again.
#[test]
fn tuned_choices_are_measured_cached_and_reused() {
    let cache = std::env::temp_dir().join(format!("advseg_tune_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let args = [
        "bench", "ops", "--quick", "--reps", "1", "--filter", "conv2d",
    ];
    let mut tune = args.to_vec();
    tune.push("--tune");
    let out = bench(&tune, &cache);
    assert!(out.contains("tuned choices"), "{out}");
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let json = files
        .iter()
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a tune-*.json cache file");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let choices = v["choices"].as_object().expect("choices");
    // Two quick conv shapes × forward, input grad, weight grad.
    assert!(choices.len() >= 4, "{v}");
    for c in choices.values() {
        let c = c.as_str().unwrap();
        assert!(c == "tiled" || c.starts_with("texture:"), "{c}");
    }
    let log = cache.join("tune.log");
    let measured = std::fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(measured, choices.len(), "one log line per choice");
    // A second process uses the cache: nothing is measured again.
    bench(&args, &cache);
    let after = std::fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(after, measured, "the cached choices were measured again");
    let _ = std::fs::remove_dir_all(&cache);
}
