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
/// reports both rates and the frame times.
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
