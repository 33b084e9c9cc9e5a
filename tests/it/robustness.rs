//! Reliability (issue 10): poisoned checkpoints, corrupt inputs, interrupted writes, signals,
//! error messages, 0-d tensors, fuzzing of the file readers and a kill -9 loop. Figures printed
//! here (`-- --nocapture`) are the ones in docs/RELIABILITY.md.

use crate::common;
use crate::common::{advseg, fails, ok, tmp};
use advseg::data::io::{decode_image, write_gray_png, write_rgb_png, RgbImage};
use advseg::nn::checkpoint::{parse_safetensors, read_safetensors, to_safetensors};
use advseg::train::checkpoint::Checkpoint;
use advseg::{ops, Gpu, Tensor};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

// ---------------------------------------------------------------------------------------------
// Allocation accounting for the fuzzer: per thread, because the test harness runs tests in
// parallel threads and only the reader under test may count.

struct Counting;

thread_local! {
    static CUR: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = CUR.try_with(|c| {
            let n = c.get() + l.size();
            c.set(n);
            let _ = PEAK.try_with(|p| p.set(p.get().max(n)));
        });
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let _ = CUR.try_with(|c| c.set(c.get().saturating_sub(l.size())));
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let _ = CUR.try_with(|c| {
            let n = c.get().saturating_sub(l.size()) + new;
            c.set(n);
            let _ = PEAK.try_with(|pk| pk.set(pk.get().max(n)));
        });
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak bytes allocated by `f` on this thread above what was live before it.
fn peak_of(f: &mut dyn FnMut()) -> usize {
    let base = CUR.with(|c| c.get());
    PEAK.with(|p| p.set(base));
    f();
    PEAK.with(|p| p.get()) - base
}

// ---------------------------------------------------------------------------------------------
// Helpers

const DATA: &str = "synthetic:size=32,n=16,val=4";

/// A two-step run of `method` on tiny synthetic data; returns its directory.
fn trained(name: &str, method: &str) -> PathBuf {
    let dir = tmp("rob", name);
    ok(&train(
        method,
        DATA,
        dir.to_str().unwrap(),
        &["--batch", "2", "--iters", "2", "--ndf", "4", "--quiet"],
    ));
    dir
}

/// `advseg train --method M --data D --out O` and `extra`.
fn train<'a>(method: &'a str, data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["train", "--method", method, "--data", data, "--out", out];
    a.extend_from_slice(extra);
    a
}

fn stderr_of(args: &[&str]) -> (Option<i32>, String) {
    let o = advseg(args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().contains(".tmp") {
                out.push(p);
            }
        }
    }
    out
}

/// A folder dataset of 32×32 images (labels 0/1); `bad` names train samples whose image is
/// garbage.
fn folder_dataset(name: &str, bad: &[&str]) -> PathBuf {
    let root = tmp("rob", name);
    std::fs::create_dir_all(root.join("images")).unwrap();
    std::fs::create_dir_all(root.join("labels")).unwrap();
    let mut train = String::new();
    let mut val = String::new();
    for i in 0..10 {
        let n = format!("s{i}");
        let data: Vec<u8> = (0..32 * 32 * 3)
            .map(|k| ((k * 7 + i * 13) % 251) as u8)
            .collect();
        let img = root.join(format!("images/{n}.png"));
        if bad.contains(&n.as_str()) {
            std::fs::write(&img, b"\x89PNG\r\n\x1a\nthis is not a png").unwrap();
        } else {
            write_rgb_png(&img, &RgbImage { w: 32, h: 32, data }).unwrap();
        }
        let lab: Vec<u8> = (0..32 * 32).map(|k| u8::from(k % 32 < 16)).collect();
        write_gray_png(&root.join(format!("labels/{n}.png")), 32, 32, &lab).unwrap();
        if i < 8 {
            train += &format!("{n}\n");
        } else {
            val += &format!("{n}\n");
        }
    }
    std::fs::write(root.join("train.txt"), train).unwrap();
    std::fs::write(root.join("val.txt"), val).unwrap();
    root
}

// ---------------------------------------------------------------------------------------------
// 1, 2: non-finite state is never saved, and non-finite checkpoints are refused.

/// The GPU count of NaN/inf values is exact, across chunk boundaries.
#[test]
fn gpu_non_finite_count_is_exact() {
    let gpu = Gpu::shared().unwrap();
    let n = 3 * 65536 + 17;
    let mut v = vec![0.5f32; n];
    for &i in &[0, 65535, 65536, 2 * 65536 + 3, n - 1] {
        v[i] = f32::NAN;
    }
    v[100] = f32::INFINITY;
    v[70000] = f32::NEG_INFINITY;
    v[5] = f32::MAX; // finite
    let a = Tensor::from_f32(&gpu, &v, &[n]).unwrap();
    let b = Tensor::from_f32(&gpu, &[1.0, 2.0, 3.0], &[3]).unwrap();
    let c = Tensor::from_f32(&gpu, &[f32::NAN], &[]).unwrap();
    let l = Tensor::from_i32(&gpu, &[1, 2], &[2]).unwrap();
    let counts = ops::count_non_finite(&gpu, &[&a, &b, &c, &l]).unwrap();
    assert_eq!(counts, vec![7, 0, 1, 0]);
}

/// The repro: lr 1e6 turns a finite loss (1.5e31) into inf weights at step 4. The
/// checkpoint kept must be finite, name its step, and evaluate.
#[test]
fn overflowing_update_never_poisons_the_checkpoint() {
    let dir = tmp("rob", "poison");
    let d = dir.to_str().unwrap();
    let (code, err) = stderr_of(&train(
        "advsemi",
        DATA,
        d,
        &[
            "--arch",
            "tiny",
            "--batch",
            "2",
            "--ndf",
            "4",
            "--iters",
            "30",
            "--set",
            "lr=1e6",
            "--set",
            "checkpoint_every=1",
            "--quiet",
        ],
    ));
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("training stopped"), "{err}");
    let last = dir.join("last.safetensors");
    let kept: u64 = err
        .split("last good checkpoint (step ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no kept step in: {err}"));
    let ck = Checkpoint::read(&last).expect("the kept checkpoint loads and is finite");
    assert_eq!(ck.meta.step as u64, kept);
    let (t, _) = read_safetensors(&last).unwrap();
    assert!(advseg::nn::checkpoint::non_finite(&t).is_empty());
    assert_eq!(common::eval_json(&last)["step"], kept);
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    eprintln!("lr=1e6: stopped with `last` at step {kept}: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// eval, predict, --load-from and --resume refuse a checkpoint with NaN/inf weights and name
/// the tensors.
#[test]
fn non_finite_checkpoints_are_refused() {
    let dir = trained("refuse", "supervised");
    let good = dir.join("last.safetensors");
    let bytes = std::fs::read(&good).unwrap();
    let (mut t, meta) = parse_safetensors(&bytes, &good).unwrap();
    let name = t
        .keys()
        .find(|k| k.starts_with("G.") && k.ends_with("weight"))
        .unwrap()
        .clone();
    t.get_mut(&name).unwrap().1[3] = f32::NAN;
    t.get_mut(&name).unwrap().1[4] = f32::INFINITY;
    let bad = dir.join("poisoned.safetensors");
    std::fs::write(&bad, to_safetensors(&t, &meta).unwrap()).unwrap();
    let b = bad.to_str().unwrap();
    let needle = format!("{name} (2 of");
    fails(&["eval", "--checkpoint", b], &needle);
    let pred = dir.join("pred");
    fails(
        &[
            "predict",
            "--checkpoint",
            b,
            "--input",
            dir.join("config.toml").to_str().unwrap(),
            "--out",
            pred.to_str().unwrap(),
        ],
        &needle,
    );
    let other = tmp("rob", "refuse_other");
    fails(
        &train(
            "supervised",
            DATA,
            other.to_str().unwrap(),
            &["--iters", "1", "--batch", "2", "--quiet", "--load-from", b],
        ),
        "non-finite",
    );
    fails(
        &train(
            "supervised",
            DATA,
            dir.to_str().unwrap(),
            &["--iters", "4", "--batch", "2", "--quiet", "--resume", b],
        ),
        &needle,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

// ---------------------------------------------------------------------------------------------
// 3: truncated JPEGs.

/// A JPEG cut inside its scan but ending in an EOI marker is refused (the lenient decoder
/// grey-fills it); an intact one decodes exactly as the `image` crate does.
#[test]
fn truncated_jpeg_with_eoi_is_refused() {
    let mut rng = advseg::rng::Rng::new(3);
    let jpg = advseg::testing::fuzz::jpeg_rgb(64, 48, &mut rng);
    let p = Path::new("cut.jpg");
    let img = decode_image(&jpg, p).unwrap();
    let reference = image::load_from_memory(&jpg).unwrap().to_rgb8();
    assert_eq!((img.w, img.h), (64, 48));
    assert_eq!(img.data, reference.into_raw());
    let mut cut = jpg[..jpg.len() * 4 / 10].to_vec();
    cut.extend_from_slice(&[0xFF, 0xD9]);
    // The lenient decoder the `image` crate uses accepts it: the defect being guarded against.
    assert!(image::load_from_memory(&cut).is_ok());
    let e = decode_image(&cut, p).unwrap_err().to_string();
    assert!(e.contains("cut.jpg") && e.contains("truncated"), "{e}");

    // `data check` names the file and fails.
    let root = folder_dataset("jpeg", &[]);
    std::fs::remove_file(root.join("images/s2.png")).unwrap();
    std::fs::write(root.join("images/s2.jpg"), &cut).unwrap();
    let spec = format!("folder:{}", root.display());
    let (code, err) = stderr_of(&["data", "check", "--data", &spec]);
    let out =
        String::from_utf8_lossy(&advseg(&["data", "check", "--data", &spec]).stdout).into_owned();
    assert_ne!(code, Some(0));
    assert!(format!("{out}{err}").contains("s2.jpg"), "{out}{err}");
    let _ = std::fs::remove_dir_all(&root);
}

// ---------------------------------------------------------------------------------------------
// 4: temp files of atomic writes.

#[test]
fn atomic_writes_leave_no_temp_files() {
    let dir = tmp("rob", "atomic");
    std::fs::create_dir_all(dir.join("target_is_a_dir/inner")).unwrap();
    // The rename fails (the target is a non-empty directory): the temp file must go too.
    let e = advseg::atomic::write_atomic(&dir.join("target_is_a_dir"), &[7u8; 4096]);
    assert!(e.is_err());
    assert_eq!(temp_files(&dir), Vec::<PathBuf>::new());

    // Sweeping removes a dead writer's temp file, keeps a live one's.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = advseg::atomic::temp_path(&dir.join("snapshots/last.safetensors"), dead);
    let live = advseg::atomic::temp_path(&dir.join("best.safetensors"), std::process::id());
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, [0u8; 100]).unwrap();
    std::fs::write(&live, [0u8; 100]).unwrap();
    let removed = advseg::atomic::sweep_stale_temps(&dir);
    assert_eq!(removed, vec![stale.clone()]);
    assert!(live.exists() && !stale.exists());

    // A run sweeps its directory at start.
    let run = tmp("rob", "atomic_run");
    std::fs::create_dir_all(&run).unwrap();
    let stale = advseg::atomic::temp_path(&run.join("last.safetensors"), dead);
    std::fs::write(&stale, [0u8; 100]).unwrap();
    ok(&train(
        "supervised",
        DATA,
        run.to_str().unwrap(),
        &["--iters", "1", "--batch", "2", "--quiet"],
    ));
    assert!(!stale.exists());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&run);
}

// ---------------------------------------------------------------------------------------------
// 5: bad samples mid-run.

#[test]
fn bad_sample_saves_last_or_is_skipped() {
    let root = folder_dataset("badsample", &["s5"]);
    let spec = format!("folder:{}", root.display());
    let run = |name: &str, extra: &[&str]| -> (PathBuf, Option<i32>, String) {
        let dir = tmp("rob", name);
        let mut a = vec![
            "train",
            "--method",
            "supervised",
            "--data",
            &spec,
            "--iters",
            "12",
            "--batch",
            "2",
            "--labeled-fraction",
            "1",
            "--crop",
            "32,32",
            "--eval-every",
            "100",
            "--quiet",
            "--out",
        ];
        let d = dir.to_str().unwrap().to_string();
        a.push(&d);
        a.extend(extra);
        let (code, err) = stderr_of(&a);
        (dir, code, err)
    };
    let (dir, code, err) = run("bad_stop", &[]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("s5.png") && err.contains("`last` was saved at step"),
        "{err}"
    );
    let ck = Checkpoint::read(&dir.join("last.safetensors")).unwrap();
    assert!(
        err.contains(&format!("saved at step {}", ck.meta.step)),
        "{err}"
    );

    let (dir2, code, err) = run("bad_skip", &["--set", "on_bad_sample=skip"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("skipped") && err.contains("s5"), "{err}");
    let m = common::lines(&dir2);
    let bad: Vec<_> = m.iter().filter(|v| v["type"] == "bad_sample").collect();
    assert!(!bad.is_empty(), "no bad_sample line in metrics.jsonl");
    assert!(bad.iter().all(|v| v["name"] == "s5"));
    let steps: Vec<_> = m.iter().filter(|v| v["type"] == "step").collect();
    assert!(steps.last().unwrap()["bad_samples"].as_f64().unwrap() >= 1.0);
    for d in [dir, dir2, root] {
        let _ = std::fs::remove_dir_all(d);
    }
}

// ---------------------------------------------------------------------------------------------
// 6: SIGTERM.

#[test]
fn sigterm_saves_last_and_exits_143() {
    let dir = tmp("rob", "sigterm");
    let (code, err) = common::signal_run(&dir, "-TERM", 2);
    assert_eq!(code, Some(143), "{err}");
    assert!(err.contains("--resume auto"), "{err}");
    let ck = Checkpoint::read(&dir.join("last.safetensors")).unwrap();
    assert!(ck.meta.step >= 2, "saved step {}", ck.meta.step);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// 7, 8: predict over a directory with bad files; sizes over the GPU's limit.

#[test]
fn predict_reports_every_bad_file_and_goes_on() {
    // advsemi's discriminator (five 4×4 stride-2 convs) needs inputs of about 30 px.
    let dir = trained("predict", "advsemi");
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let data: Vec<u8> = (0..32 * 32 * 3).map(|k| (k % 200) as u8).collect();
    write_rgb_png(&input.join("a_good.png"), &RgbImage { w: 32, h: 32, data }).unwrap();
    write_rgb_png(
        &input.join("b_tiny.png"),
        &RgbImage {
            w: 1,
            h: 1,
            data: vec![1, 2, 3],
        },
    )
    .unwrap();
    std::fs::write(input.join("c_broken.jpg"), b"\xFF\xD8\xFF garbage").unwrap();
    write_rgb_png(
        &input.join("d_good.png"),
        &RgbImage {
            w: 40,
            h: 32,
            data: vec![9; 40 * 32 * 3],
        },
    )
    .unwrap();
    let out = dir.join("pred");
    let o = advseg(&[
        "predict",
        "--checkpoint",
        dir.join("last.safetensors").to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        out.join("a_good.png").is_file() && out.join("d_good.png").is_file(),
        "{err}"
    );
    assert!(err.contains("2 of 4 image(s) failed"), "{err}");
    assert!(
        err.contains("b_tiny.png: 1x1 (WxH) is smaller than"),
        "{err}"
    );
    assert!(err.contains("c_broken.jpg"), "{err}");
    // The file is named once per line.
    assert!(
        err.lines().all(|l| l.matches("c_broken.jpg").count() <= 1),
        "{err}"
    );
    eprintln!("predict over a directory with bad files:\n{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn over_limit_sizes_name_the_setting_or_file() {
    let limit = Gpu::shared()
        .unwrap()
        .summary
        .max_storage_buffer_binding_size;
    // A 4000×4000 crop of 3 f32 channels is 192 MB: over lavapipe's and most GPUs' binding
    // limit. Such tensors can be allocated now, but the conv GEMMs cannot split an input over
    // one binding (only a weight, along output features), so the step fails naming the crop,
    // the kernel and the limit.
    if 3 * 4 * 4000 * 4000 <= limit {
        eprintln!("skipped: the adapter binds {limit} bytes");
        return;
    }
    let dir = tmp("rob", "crop");
    let (code, err) = stderr_of(&train(
        "supervised",
        DATA,
        dir.to_str().unwrap(),
        &[
            "--iters",
            "1",
            "--batch",
            "1",
            "--crop",
            "4000,4000",
            "--quiet",
        ],
    ));
    assert_ne!(code, Some(0));
    assert!(
        err.contains("setting \"crop\": 4000x4000 with batch 1")
            && err.contains(&format!("limit of {limit} bytes")),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    let dir = trained("bigpredict", "supervised");
    let big = dir.join("big.png");
    write_rgb_png(
        &big,
        &RgbImage {
            w: 4000,
            h: 3000,
            data: vec![128; 4000 * 3000 * 3],
        },
    )
    .unwrap();
    // A 4000×3000 image now predicts (tensors over one binding are split: tests/it/large.rs,
    // docs/PERFORMANCE.md "Large tensors"); a forced 1 MiB binding limit, below one 48 MB
    // channel plane, shows the message of a size no split can take.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_advseg"))
        .args(["predict", "--checkpoint"])
        .arg(dir.join("last.safetensors"))
        .arg("--input")
        .arg(&big)
        .arg("--out")
        .arg(dir.join("pred"))
        .env("XDG_RUNTIME_DIR", "/tmp")
        .env("ADVSEG_MAX_BINDING_BYTES", "1048576")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("big.png: the image is too large for this device")
            && err.contains("one channel of [1, 3, 3000, 4000] is 48000000 bytes")
            && err.contains("limit of 1048576 bytes"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// 9: smaller error-message defects.

#[test]
fn error_messages_are_clean() {
    // Each cause once.
    let (_, err) = stderr_of(&["eval", "--checkpoint", "/nonexistent/missing.safetensors"]);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.contains("missing.safetensors"), "{err}");

    // A bad key in a config file names the file.
    let dir = tmp("rob", "msgs");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "iters = 3\nlamda_adv = 0.1\n").unwrap();
    let run = dir.join("run");
    fails(
        &train(
            "advsemi",
            DATA,
            run.to_str().unwrap(),
            &["--config", cfg.to_str().unwrap()],
        ),
        &format!("config {}: unknown setting \"lamda_adv\"", cfg.display()),
    );

    // A typo in --arch leaves no files behind.
    fails(
        &train(
            "supervised",
            DATA,
            run.to_str().unwrap(),
            &["--arch", "tinyy", "--quiet"],
        ),
        "unknown arch \"tinyy\"",
    );
    assert!(!run.join("split.txt").exists() && !run.join("config.toml").exists());

    // A method's list setting names itself and the rule it breaks.
    fails(
        &train(
            "rrm",
            DATA,
            run.to_str().unwrap(),
            &[
                "--arch",
                "rrm-tiny",
                "--set",
                "eval_cam_scales=[0.5, 2.0]",
                "--quiet",
            ],
        ),
        "eval_cam_scales [0.5, 2.0] must contain 1.0",
    );

    // --help lists every registered method.
    let help = String::from_utf8_lossy(&advseg(&["--help"]).stdout).into_owned();
    for m in advseg::train::methods::METHODS {
        assert!(help.contains(m.name), "{} missing in:\n{help}", m.name);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// 10: 0-d tensors.

#[test]
fn scalars_are_0d_end_to_end() {
    let gpu = Gpu::shared().unwrap();
    let x = Tensor::from_f32(&gpu, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])
        .unwrap()
        .into_param();
    let s = ops::sum(&x).unwrap();
    let m = ops::mean(&x).unwrap();
    assert_eq!((s.shape(), m.shape()), (&[] as &[usize], &[] as &[usize]));
    assert_eq!((s.item().unwrap(), m.item().unwrap()), (21.0, 3.5));
    // A 0-d operand broadcasts; a 0-d loss backpropagates.
    let k = Tensor::from_f32(&gpu, &[2.0], &[]).unwrap();
    let l = ops::mean(&ops::mul(&x, &k).unwrap()).unwrap();
    assert_eq!(l.shape(), &[] as &[usize]);
    l.backward().unwrap();
    let g = x.grad().unwrap().to_vec_f32().unwrap();
    assert!(g.iter().all(|v| (v - 2.0 / 6.0).abs() < 1e-6), "{g:?}");
    let logits = Tensor::from_f32(&gpu, &[0.1, 0.9, -0.3, 0.2], &[2, 2]).unwrap();
    let target = Tensor::from_i32(&gpu, &[1, 0], &[2]).unwrap();
    let ce = ops::loss::cross_entropy(&logits, &target, -100, None).unwrap();
    assert_eq!(ce.shape(), &[] as &[usize]);

    // 0-d tensors (PyTorch's num_batches_tracked) survive a safetensors round trip.
    let mut t = advseg::nn::checkpoint::HostTensors::new();
    t.insert("bn.num_batches_tracked".into(), (vec![], vec![5.0]));
    let bytes = to_safetensors(&t, &Default::default()).unwrap();
    let (back, _) = parse_safetensors(&bytes, Path::new("x")).unwrap();
    assert_eq!(back["bn.num_batches_tracked"], (vec![], vec![5.0]));

    // The parity runner compares PyTorch's own 0-d shapes.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch");
    let mut zero_d = 0;
    for f in advseg::testing::parity::case_files(&dir).unwrap() {
        let case = advseg::testing::parity::load_case(&f).unwrap();
        if case.out.shape.is_empty() || case.inputs.values().any(|i| i.shape.is_empty()) {
            let r = advseg::testing::parity::run_case(&gpu, &case).unwrap();
            assert!(
                r.passed(),
                "{}: worst {} at {}",
                f.display(),
                r.worst,
                r.worst_at
            );
            zero_d += 1;
        }
    }
    assert!(zero_d >= 20, "only {zero_d} cases with 0-d tensors");
    // A case whose expected shape is [1] where the op gives [] is a mismatch, not a pass.
    let f = dir.join("reduce__sum_0.safetensors");
    let mut case = advseg::testing::parity::load_case(&f).unwrap();
    case.out.shape = vec![1];
    assert!(advseg::testing::parity::run_case(&gpu, &case).is_err());
}

// ---------------------------------------------------------------------------------------------
// 11: fuzzing.

/// Mutation fuzzing of every reader of untrusted files: no panic, allocations within a budget
/// set by the input's length. `ADVSEG_FUZZ_CASES=100000` runs a long pass.
#[test]
fn fuzz_readers() {
    let cases: usize = std::env::var("ADVSEG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let seed: u64 = std::env::var("ADVSEG_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // The case: a header claiming 2^40 bytes must cost about nothing.
    for (i, h) in advseg::testing::fuzz::hostile_safetensors()
        .iter()
        .enumerate()
    {
        let peak = peak_of(&mut || {
            assert!(parse_safetensors(h, Path::new("h")).is_err());
        });
        assert!(peak < 1 << 20, "hostile header {i}: {peak} bytes allocated");
        let p = std::env::temp_dir().join(format!("advseg_rob_hostile_{i}_{}", std::process::id()));
        std::fs::write(&p, h).unwrap();
        let peak = peak_of(&mut || {
            assert!(read_safetensors(&p).is_err());
        });
        assert!(peak < 1 << 20, "hostile file {i}: {peak} bytes allocated");
        let _ = std::fs::remove_file(&p);
    }
    let t0 = std::time::Instant::now();
    let reports = advseg::testing::fuzz::run(cases, seed, &peak_of);
    let mut total = 0;
    for r in &reports {
        eprintln!(
            "fuzz {:<24} {:>7} cases, {:>6} accepted, {} panics, {} over budget, peak {} B (input {} B)",
            r.target,
            r.cases,
            r.accepted,
            r.panics.len(),
            r.over_budget.len(),
            r.max_peak.0,
            r.max_peak.1
        );
        total += r.cases;
    }
    eprintln!(
        "fuzz: {total} cases in {:.1} s (seed {seed})",
        t0.elapsed().as_secs_f64()
    );
    for r in &reports {
        assert!(r.panics.is_empty(), "{}: panics {:?}", r.target, r.panics);
        assert!(
            r.over_budget.is_empty(),
            "{}: over budget {:?}",
            r.target,
            r.over_budget
        );
        assert!(r.accepted > 0, "{}: no input accepted", r.target);
    }
}

// ---------------------------------------------------------------------------------------------
// kill -9 loop.

/// Kills a training run with SIGKILL at random moments (checkpoint every step): every kept
/// checkpoint loads and is finite, resume works, and the steps lost per kill are counted.
#[test]
fn kill_9_loop() {
    let dir = tmp("rob", "kill9");
    let d = dir.to_str().unwrap().to_string();
    let mut rng = advseg::rng::Rng::new(9);
    let mut lost = Vec::new();
    let spawn = |resume: bool| {
        let mut args = vec![
            "train",
            "--method",
            "supervised",
            "--data",
            "synthetic:size=16,n=16,val=4",
            "--iters",
            "100000",
            "--batch",
            "2",
            "--eval-every",
            "100000",
            "--log-every",
            "1",
            "--quiet",
            "--out",
            &d,
            "--set",
            "checkpoint_every=1",
        ];
        if resume {
            args.extend(["--resume", "auto"]);
        }
        Command::new(env!("CARGO_BIN_EXE_advseg"))
            .args(&args)
            .env("XDG_RUNTIME_DIR", "/tmp")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let kills = 4;
    for round in 0..kills {
        let mut child = spawn(round > 0);
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<u64>();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(s) = line.strip_prefix("step ") {
                    if let Some(n) = s
                        .trim_start()
                        .split('/')
                        .next()
                        .and_then(|n| n.parse().ok())
                    {
                        let _ = tx.send(n);
                    }
                }
            }
        });
        // Let it run 1–4 steps past its start, then up to 150 ms more, then SIGKILL.
        let want = 1 + rng.below(4) as u64;
        let t0 = std::time::Instant::now();
        let mut seen = Vec::new();
        while seen.len() < want as usize {
            match rx.recv_timeout(std::time::Duration::from_secs(60)) {
                Ok(s) => seen.push(s),
                Err(_) => panic!("round {round}: no progress in 60 s"),
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(rng.below(150) as u64));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        seen.extend(rx.try_iter());
        let last_logged = *seen.last().unwrap();
        let ck = Checkpoint::read(&dir.join("last.safetensors"))
            .unwrap_or_else(|e| panic!("round {round}: checkpoint unusable after kill: {e}"));
        assert!(ck.meta.step as u64 <= last_logged);
        lost.push(last_logged - ck.meta.step as u64);
        eprintln!(
            "kill {round}: after {:.1} s, logged step {last_logged}, checkpoint step {}",
            t0.elapsed().as_secs_f64(),
            ck.meta.step
        );
    }
    // The final resume finishes, and sweeps whatever temp file a kill left.
    let step = Checkpoint::read(&dir.join("last.safetensors"))
        .unwrap()
        .meta
        .step;
    let iters = (step + 2).to_string();
    ok(&train(
        "supervised",
        "synthetic:size=16,n=16,val=4",
        &d,
        &[
            "--iters", &iters, "--batch", "2", "--quiet", "--resume", "auto",
        ],
    ));
    assert_eq!(
        Checkpoint::read(&dir.join("last.safetensors"))
            .unwrap()
            .meta
            .step,
        step + 2
    );
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    let mean = lost.iter().sum::<u64>() as f64 / lost.len() as f64;
    eprintln!(
        "kill -9 loop: {kills} kills, steps lost per kill {lost:?} (mean {mean:.2}, max {})",
        lost.iter().max().unwrap()
    );
    assert!(lost.iter().all(|&l| l <= 1), "lost {lost:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
