//! `advseg sweep` and `advseg compare` end to end: a real tiny sweep (2 methods × 2 seeds on
//! synthetic data), resumed and skipped on later invocations, and the comparison checked against
//! numbers computed here from the runs' metrics files.

use crate::common::{advseg, fails, lines, ok, tmp};
use std::path::Path;

const SETS: &[&str] = &[
    "--set",
    "data=synthetic:size=32,n=16,val=8",
    "--set",
    "batch=4",
    "--set",
    "eval_every=10",
    "--set",
    "lr=0.025",
    "--set",
    "advsemi.semi_start=10",
];

fn sweep_args<'a>(out: &'a str, iters: &'a str) -> Vec<&'a str> {
    let mut a = vec![
        "sweep",
        "--methods",
        "supervised,advsemi",
        "--seeds",
        "1,2",
        "--fractions",
        "1/2",
        "--out",
        out,
        "--set",
        iters,
    ];
    a.extend_from_slice(SETS);
    a
}

/// The final (step `iters`) validation mIoU of a run.
fn final_miou(dir: &Path, iters: u64) -> f64 {
    lines(dir)
        .iter()
        .find(|v| v["type"] == "eval" && v["step"] == iters)
        .and_then(|v| v["miou"].as_f64())
        .unwrap_or_else(|| panic!("{}: no final eval", dir.display()))
}

#[test]
fn sweep_runs_skips_resumes_and_compare_pairs_by_seed() {
    let out = tmp("sweep", "grid");
    let o = out.to_str().unwrap();

    // --list: indices, directories, states; nothing runs.
    let list = ok(&sweep_args(o, "iters=20")
        .into_iter()
        .chain(["--list"])
        .collect::<Vec<_>>());
    let rows: Vec<Vec<&str>> = list.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 4, "{list}");
    for (i, (m, s)) in [
        ("supervised", 1),
        ("supervised", 2),
        ("advsemi", 1),
        ("advsemi", 2),
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(rows[i][0], i.to_string());
        assert!(rows[i][1].ends_with(&format!("{m}-f1_2-s{s}")), "{list}");
        assert_eq!(rows[i][2], "new");
    }
    assert!(!out.exists(), "--list must not create anything");

    // An interrupted run: cell 2 (advsemi, seed 1) stopped at step 10, as `--index 2` with a
    // shorter run would leave it; the sweep must resume it, not restart it.
    ok(&sweep_args(o, "iters=10")
        .into_iter()
        .chain(["--index", "2"])
        .collect::<Vec<_>>());
    let partial = out.join("advsemi-f1_2-s1");
    let list = ok(&sweep_args(o, "iters=20")
        .into_iter()
        .chain(["--list"])
        .collect::<Vec<_>>());
    assert!(list.contains("advsemi-f1_2-s1\tpartial"), "{list}");

    let text = ok(&sweep_args(o, "iters=20"));
    assert!(text.contains("advsemi-f1_2-s1: resuming"), "{text}");
    assert!(text.contains("4 run(s) finished"), "{text}");
    let m = lines(&partial);
    let evals: Vec<u64> = m
        .iter()
        .filter(|v| v["type"] == "eval")
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(evals, [10, 20], "resumed run keeps its first evaluation");
    let log = std::fs::read_to_string(partial.join("train.log")).unwrap();
    assert!(log.contains("steps 10..20"), "{log}");

    // Paired comparisons need the same labelled split for the same seed across methods.
    for s in [1, 2] {
        let a = std::fs::read_to_string(out.join(format!("advsemi-f1_2-s{s}/split.txt"))).unwrap();
        let b =
            std::fs::read_to_string(out.join(format!("supervised-f1_2-s{s}/split.txt"))).unwrap();
        assert_eq!(a, b, "seed {s}: methods drew different splits");
    }
    let s1 = std::fs::read_to_string(out.join("supervised-f1_2-s1/split.txt")).unwrap();
    let s2 = std::fs::read_to_string(out.join("supervised-f1_2-s2/split.txt")).unwrap();
    assert_ne!(s1, s2, "the seed drives the split");

    // Second invocation: everything is done, nothing runs.
    let text = ok(&sweep_args(o, "iters=20"));
    assert!(text.contains("all 4 runs are done"), "{text}");
    assert_eq!(text.matches("done, skipped").count(), 4, "{text}");
    // And `--index` of a finished cell is a no-op.
    let text = ok(&sweep_args(o, "iters=20")
        .into_iter()
        .chain(["--index", "0"])
        .collect::<Vec<_>>());
    assert!(text.contains("done, skipped"), "{text}");

    // compare --json against the metrics files.
    let json = ok(&["compare", o, "--json", "--resamples", "500"]);
    let c: serde_json::Value = serde_json::from_str(&json).expect("json");
    let groups = c["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["method"], "supervised", "baseline first");
    let adv = &groups[1];
    assert_eq!(adv["method"], "advsemi");
    assert_eq!(adv["fraction"], 0.5);
    assert_eq!(adv["seeds"], serde_json::json!([1, 2]));
    let fin = |m: &str, s: u64| final_miou(&out.join(format!("{m}-f1_2-s{s}")), 20);
    let d: Vec<f64> = [1, 2]
        .iter()
        .map(|&s| fin("advsemi", s) - fin("supervised", s))
        .collect();
    let p = &adv["vs_supervised"];
    for (i, x) in d.iter().enumerate() {
        let got = p["differences"][i].as_f64().unwrap();
        assert!((got - x).abs() < 1e-9, "difference {i}: {got} vs {x}");
    }
    let mean = (d[0] + d[1]) / 2.0;
    let sd = (d[0] - d[1]).abs() / 2f64.sqrt();
    assert!((p["summary"]["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert!((p["summary"]["std"].as_f64().unwrap() - sd).abs() < 1e-9);
    let sup_mean = (fin("supervised", 1) + fin("supervised", 2)) / 2.0;
    assert!((groups[0]["final_miou"]["mean"].as_f64().unwrap() - sup_mean).abs() < 1e-9);
    assert!(groups[0]["vs_supervised"].is_null());
    // With two seeds every resample mean is d0, d1 or their mean: the interval stays inside.
    let (lo, hi) = (
        p["ci"]["lo"].as_f64().unwrap(),
        p["ci"]["hi"].as_f64().unwrap(),
    );
    assert!(
        d[0].min(d[1]) - 1e-12 <= lo && lo <= hi && hi <= d[0].max(d[1]) + 1e-12,
        "{lo} {hi} vs {d:?}"
    );
    assert_eq!(p["ci"]["resamples"], 500);
    // Per-class IoU: the synthetic classes, background first (classes.json order).
    assert_eq!(c["classes"][0], "background");
    assert_eq!(adv["iou"].as_array().unwrap().len(), 6);
    // Deterministic: the same command prints the same bytes.
    assert_eq!(json, ok(&["compare", o, "--json", "--resamples", "500"]));

    // Text and markdown name the groups and the interval settings.
    let text = ok(&["compare", o]);
    assert!(text.contains("10000 resamples"), "{text}");
    let md = ok(&["compare", o, "--markdown"]);
    assert!(md.contains("| advsemi | 1/2 | 2 |"), "{md}");
    assert!(
        md.contains(&format!("{:+.2} ±", 100.0 * mean)),
        "{md}\n{mean}"
    );
    // advsemi reports D's signals at its final evaluation; supervised has none.
    let sig = &adv["signals"];
    assert_eq!(sig[0][0], "d_auroc", "{sig}");
    assert!(groups[0]["signals"].as_array().unwrap().is_empty());
    assert!(text.contains("Signals at the final evaluation"), "{text}");

    // A second setting of advsemi in a directory of its own: without --variants the seeds
    // clash (named); with it each directory is a group paired against the same baseline.
    let other = tmp("sweep", "grid-variant");
    std::fs::create_dir_all(&other).unwrap();
    for s in [1, 2] {
        let name = format!("advsemi-f1_2-s{s}");
        let status = std::process::Command::new("cp")
            .args([
                "-r",
                out.join(&name).to_str().unwrap(),
                other.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let v = other.to_str().unwrap();
    fails(&["compare", o, v], "--variants");
    let json = ok(&[
        "compare",
        "--variants",
        o,
        v,
        "--json",
        "--resamples",
        "500",
    ]);
    let c: serde_json::Value = serde_json::from_str(&json).expect("json");
    let groups = c["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "{json}");
    let variant = |g: &serde_json::Value| g["variant"].as_str().unwrap().to_string();
    assert_eq!(variant(&groups[0]), "", "the baseline has no variant");
    let names: Vec<String> = groups[1..].iter().map(variant).collect();
    let dir_name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let mut want = [dir_name(&out), dir_name(&other)];
    want.sort();
    assert_eq!(names, want, "variants in name order");
    assert_eq!(
        groups[1]["vs_supervised"]["differences"], groups[2]["vs_supervised"]["differences"],
        "the same runs in two directories pair alike"
    );
    let text = ok(&["compare", "--variants", o, v]);
    assert!(
        text.contains(&format!("advsemi [{}]", dir_name(&other))),
        "{text}"
    );

    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
}

#[test]
fn sweep_and_compare_name_what_is_wrong() {
    let out = tmp("sweep", "errors");
    std::fs::create_dir_all(&out).unwrap();
    let o = out.to_str().unwrap();
    // A typo in a setting is caught before any run starts.
    fails(
        &[
            "sweep",
            "--methods",
            "supervised",
            "--seeds",
            "1",
            "--out",
            o,
            "--set",
            "itres=5",
        ],
        "supervised-f1-s1: unknown setting \"itres\"",
    );
    fails(
        &["sweep", "--methods", "nope", "--seeds", "1", "--out", o],
        "unknown method \"nope\"",
    );
    fails(
        &[
            "sweep",
            "--methods",
            "supervised",
            "--seeds",
            "1",
            "--out",
            o,
            "--set",
            "seed=3",
        ],
        "chosen by the grid",
    );
    fails(
        &[
            "sweep",
            "--methods",
            "supervised",
            "--seeds",
            "1",
            "--out",
            o,
            "--index",
            "5",
        ],
        "--index 5: the grid has 1 cells",
    );
    let grid = out.join("grid.toml");
    std::fs::write(&grid, "[[grid]]\nmethods = [\"supervised\"]\nseed = [1]\n").unwrap();
    fails(
        &["sweep", grid.to_str().unwrap(), "--out", o, "--list"],
        "grid.toml: [[grid]] #1: unexpected key \"seed\"",
    );
    assert!(std::fs::read_dir(&out).unwrap().count() == 1, "nothing ran");

    // compare: a run directory with a broken metrics line is named with its file and line.
    let run = out.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("config.toml"),
        "method = \"supervised\"\nseed = 1\niters = 10\nlabeled_fraction = 1.0\n",
    )
    .unwrap();
    std::fs::write(run.join("metrics.jsonl"), "{\"type\": \"eval\"\nnot json\n").unwrap();
    fails(
        &["compare", run.to_str().unwrap()],
        "run/metrics.jsonl: line 1",
    );
    // Unfinished runs are left out with their reason; none left is an error.
    std::fs::write(
        run.join("metrics.jsonl"),
        "{\"type\":\"eval\",\"step\":5,\"miou\":0.2,\"iou\":{}}\n",
    )
    .unwrap();
    let o2 = advseg(&["compare", o]);
    let err = String::from_utf8_lossy(&o2.stderr);
    assert!(!o2.status.success());
    assert!(
        err.contains("no evaluation of step 10 (last evaluated step 5)"),
        "{err}"
    );
    assert!(err.contains("no finished run"), "{err}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// The committed protocol grid parses and lists its cells (no run).
#[test]
fn committed_protocol_grid_lists() {
    let grid = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/sweeps/camvid-protocol.toml"
    );
    let out = tmp("sweep", "protocol");
    let text = ok(&["sweep", grid, "--out", out.to_str().unwrap(), "--list"]);
    // 4 methods × 2 fractions × 3 seeds + 2 weak methods × 3 seeds.
    assert_eq!(text.lines().count(), 30, "{text}");
    for m in ["supervised", "advsemi", "gan-cegu", "ssgan"] {
        assert!(text.contains(&format!("{m}-f1_8-s1\tnew")), "{text}");
        assert!(text.contains(&format!("{m}-f1-s3\tnew")), "{text}");
    }
    assert!(text.contains("eader-f1-s2\tnew") && text.contains("rrm-f1-s1\tnew"));
    assert!(!out.exists());
}

/// Every committed grid parses, its settings pass each method's checks, and it lists its
/// cells without running anything: a typo in a grid fails here, not hours into a sweep.
#[test]
fn every_committed_grid_lists() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sweeps");
    let mut grids: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    grids.sort();
    assert!(grids.len() >= 5, "{grids:?}");
    let out = tmp("sweep", "grids");
    for g in &grids {
        let text = ok(&[
            "sweep",
            g.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--list",
        ]);
        assert!(
            !text.is_empty() && text.lines().all(|l| l.ends_with("\tnew")),
            "{}: {text}",
            g.display()
        );
    }
    assert!(!out.exists());
}

/// Hand-written runs with known IoUs: the paired ratio against supervised, and
/// `--exclude-class` restating final and best mIoU over the remaining classes.
#[test]
fn compare_ratio_and_exclude_class() {
    let out = tmp("sweep", "ratio");
    let classes = r#"{"classes":[{"id":0,"name":"background","colour":[0,0,0]},
        {"id":1,"name":"car","colour":[1,1,1]},{"id":2,"name":"person","colour":[2,2,2]}]}"#;
    // (method, seed, [(step, [bg, car, person])]); person unscored (null) at one evaluation.
    type Evals = [(u64, [Option<f64>; 3]); 2];
    let runs: [(&str, u64, Evals); 4] = [
        (
            "supervised",
            1,
            [
                (5, [Some(0.9), Some(0.3), Some(0.3)]),
                (10, [Some(0.9), Some(0.4), Some(0.2)]),
            ],
        ),
        (
            "supervised",
            2,
            [
                (5, [Some(0.8), Some(0.2), None]),
                (10, [Some(0.9), Some(0.5), Some(0.1)]),
            ],
        ),
        (
            "eader",
            1,
            [
                (5, [Some(0.9), Some(0.2), Some(0.2)]),
                (10, [Some(0.6), Some(0.1), Some(0.0)]),
            ],
        ),
        (
            "eader",
            2,
            [
                (5, [Some(0.9), Some(0.0), Some(0.0)]),
                (10, [Some(0.9), Some(0.3), Some(0.0)]),
            ],
        ),
    ];
    let names = ["background", "car", "person"];
    let mean = |v: &[Option<f64>]| {
        let s: Vec<f64> = v.iter().flatten().copied().collect();
        s.iter().sum::<f64>() / s.len() as f64
    };
    for (m, seed, evals) in &runs {
        let dir = out.join(format!("{m}-s{seed}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.toml"),
            format!("method = \"{m}\"\nseed = {seed}\niters = 10\nlabeled_fraction = 1.0\n"),
        )
        .unwrap();
        std::fs::write(dir.join("classes.json"), classes).unwrap();
        let mut text = String::new();
        for (step, iou) in evals {
            let map: serde_json::Map<String, serde_json::Value> = names
                .iter()
                .zip(iou)
                .map(|(n, x)| (n.to_string(), serde_json::json!(x)))
                .collect();
            let line = serde_json::json!({"type": "eval", "step": step, "miou": mean(iou),
                "iou": map});
            text += &format!("{line}\n");
        }
        std::fs::write(dir.join("metrics.jsonl"), text).unwrap();
    }
    let o = out.to_str().unwrap();
    let group = |json: &str, m: &str| -> serde_json::Value {
        let c: serde_json::Value = serde_json::from_str(json).unwrap();
        c["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["method"] == m)
            .unwrap()
            .clone()
    };
    let close = |a: &serde_json::Value, b: f64| {
        assert!((a.as_f64().unwrap() - b).abs() < 1e-12, "{a} vs {b}")
    };

    // All classes: final mIoU eader (0.7/3, 1.2/3), supervised (1.5/3, 1.5/3).
    let json = ok(&["compare", o, "--json", "--resamples", "200"]);
    let p = &group(&json, "eader")["vs_supervised"];
    close(&p["ratios"][0], 0.7 / 1.5);
    close(&p["ratios"][1], 1.2 / 1.5);
    close(&p["ratio_summary"]["mean"], (0.7 + 1.2) / 3.0);
    let (lo, hi) = (
        p["ratio_ci"]["lo"].as_f64().unwrap(),
        p["ratio_ci"]["hi"].as_f64().unwrap(),
    );
    assert!(0.7 / 1.5 - 1e-12 <= lo && lo <= hi && hi <= 1.2 / 1.5 + 1e-12);
    let md = ok(&["compare", o, "--markdown", "--resamples", "200"]);
    assert!(md.contains("final as % of supervised"), "{md}");
    assert!(md.contains("63.33 ± "), "{md}");

    // Without background: means over car and person, person unscored at supervised s2 step 5.
    let json = ok(&[
        "compare",
        o,
        "--json",
        "--resamples",
        "200",
        "--exclude-class",
        "background",
    ]);
    let c: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(c["classes"], serde_json::json!(["car", "person"]));
    assert_eq!(c["excluded_classes"], serde_json::json!(["background"]));
    let e = group(&json, "eader");
    close(&e["final_miou"]["mean"], (0.05 + 0.15) / 2.0);
    // Best over the kept classes: eader s1 at step 5 (0.2 against 0.05), s2 at step 10
    // (0.15 against 0.0).
    close(&e["best_miou"]["mean"], (0.2 + 0.15) / 2.0);
    let s = group(&json, "supervised");
    close(&s["final_miou"]["mean"], (0.3 + 0.3) / 2.0);
    // supervised s2 at step 5 scored car only: 0.2 < 0.3 at step 10.
    close(&s["best_miou"]["mean"], (0.3 + 0.3) / 2.0);
    let p = &e["vs_supervised"];
    close(&p["ratios"][0], 0.05 / 0.3);
    close(&p["ratios"][1], 0.15 / 0.3);
    assert_eq!(e["iou"].as_array().unwrap().len(), 2);
    let text = ok(&["compare", o, "--exclude-class", "background"]);
    assert!(text.contains("over every class but background"), "{text}");
    fails(
        &["compare", o, "--exclude-class", "sky"],
        "--exclude-class \"sky\": the run has no such class (classes: background, car, person)",
    );

    // --last-evals 2: final values are the means over steps 5 and 10.
    let json = ok(&[
        "compare",
        o,
        "--json",
        "--resamples",
        "200",
        "--last-evals",
        "2",
    ]);
    let c: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(c["last_evals"], 2);
    let e = group(&json, "eader");
    close(
        &e["final_miou"]["mean"],
        ((1.3 + 0.7) / 6.0 + (0.9 + 1.2) / 6.0) / 2.0,
    );
    // Best stays a single evaluation.
    close(&e["best_miou"]["mean"], (1.3 / 3.0 + 1.2 / 3.0) / 2.0);
    let p = &e["vs_supervised"];
    close(&p["differences"][0], 1.0 / 3.0 - 0.5);
    close(&p["differences"][1], 1.05 / 3.0 - 0.5);
    // With background left out, per class: supervised s2 scored person at step 10 only.
    let json = ok(&[
        "compare",
        o,
        "--json",
        "--resamples",
        "200",
        "--exclude-class",
        "background",
        "--last-evals",
        "2",
    ]);
    let s = group(&json, "supervised");
    // Per-evaluation mIoUs over car and person: s1 0.3, 0.3; s2 0.2 (car only), 0.3.
    close(&s["final_miou"]["mean"], (0.3 + 0.25) / 2.0);
    let iou = |g: &serde_json::Value, class: &str| -> f64 {
        g["iou"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x[0] == class)
            .unwrap()[1]["mean"]
            .as_f64()
            .unwrap()
    };
    assert!((iou(&s, "car") - (0.35 + 0.35) / 2.0).abs() < 1e-12);
    assert!((iou(&s, "person") - (0.25 + 0.1) / 2.0).abs() < 1e-12);
    let text = ok(&["compare", o, "--last-evals", "2"]);
    assert!(
        text.contains("each run's mean over its last 2 evaluations"),
        "{text}"
    );
    fails(
        &["compare", o, "--last-evals", "3"],
        "--last-evals 3: the run has 2 evaluation(s) after step 0",
    );
    fails(
        &["compare", o, "--last-evals", "0"],
        "--last-evals must be at least 1",
    );
    std::fs::remove_dir_all(&out).unwrap();
}

/// `advseg sweep --list | head` and friends: a reader that has gone away is "seen enough", not
/// a failure. Before the fix the write hit EPIPE and println! panicked (exit 101, a panic
/// message on stderr). The pipe's read end is closed before the child starts, so every write
/// fails: no race with the reader.
#[test]
fn listings_into_a_closed_pipe_end_quietly() {
    let out = tmp("sweep", "pipe");
    let o = out.to_str().unwrap();
    let mut list: Vec<&str> = sweep_args(o, "iters=20");
    list.push("--list");
    for args in [list, vec!["model", "--list"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let r = std::process::Command::new(env!("CARGO_BIN_EXE_advseg"))
            .args(&args)
            .env("XDG_RUNTIME_DIR", "/tmp")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(r.status.success(), "{args:?}: {:?}\n{err}", r.status);
        assert!(err.is_empty(), "{args:?}: nothing on stderr, got\n{err}");
    }
    assert!(!out.exists(), "--list must not create anything");
}
