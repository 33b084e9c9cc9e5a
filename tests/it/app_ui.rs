//! Drives the desktop app through egui_kittest: a tiny synthetic run on the engine's GPU
//! (lavapipe in CI), the live T_semi gate, hover readout, class toggles, errors as messages,
//! pause/stop, and a rendered screenshot where the wgpu test renderer has an adapter.

use advseg::app::state::{Tab, UiState};
use advseg::app::{AdvsegApp, AppOptions};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use std::time::{Duration, Instant};

fn app(preset: &[(&str, &str)]) -> AdvsegApp {
    let mut p: Vec<(String, String)> = [
        ("data", "synthetic:size=32,n=8,val=2"),
        ("iters", "6"),
        ("batch", "2"),
        ("snapshot_every", "2"),
        ("eval_every", "3"),
        ("checkpoint_every", "0"),
        ("probes", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    p.extend(preset.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    AdvsegApp::new(
        UiState::default(),
        &AppOptions {
            fresh: true,
            preset: p,
            ..Default::default()
        },
    )
}

fn harness(a: AdvsegApp) -> Harness<'static, AdvsegApp> {
    Harness::builder()
        .with_size([1400.0, 900.0])
        .build_ui_state(|ui, app: &mut AdvsegApp| app.show(ui), a)
}

/// Steps the UI until `done` holds (the training thread works meanwhile).
fn wait(h: &mut Harness<'static, AdvsegApp>, secs: u64, done: impl Fn(&AdvsegApp) -> bool) {
    let t = Instant::now();
    while !done(h.state()) {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out; error: {:?}, log: {:?}",
            h.state().error,
            h.state().history.log
        );
        std::thread::sleep(Duration::from_millis(40));
        h.step();
    }
    h.step();
}

#[test]
fn tiny_run_gate_hover_and_class_toggle() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let mut h = harness(app(&[]));
    h.get_by_label("Start").click();
    h.step();
    wait(&mut h, 80, |a| a.history.finished);
    let a = h.state();
    assert!(a.error.is_none(), "{:?}", a.error);
    assert_eq!(a.history.step, 6);
    assert!(a.history.snapshots.len() >= 3, "snapshots at 2, 4, 6");
    assert!(a.history.scalars.keys().any(|k| k.starts_with("loss")));
    assert!(!a.history.evals.is_empty());

    h.state_mut().st.tab = Tab::Maps;
    h.run_steps(3);
    let total = h
        .state()
        .viewer
        .pass_count
        .expect("advsemi has a D confidence")
        .1;
    assert_eq!(total, 32 * 32);
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "T_semi")
        .set_value_accesskit(0.0);
    h.run_steps(3);
    assert_eq!(h.state().st.t_semi, 0.0);
    assert_eq!(
        h.state().viewer.pass_count.unwrap().0,
        total,
        "every pixel passes T=0"
    );
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "T_semi")
        .set_value_accesskit(1.0);
    h.run_steps(3);
    let at1 = h.state().viewer.pass_count.unwrap().0;
    assert!(at1 < total, "T=1 passes {at1} of {total}");
    h.get_by_label_contains(&format!("{at1} / {total} pixels pass"));

    let r = h.get_by_label("view prediction").rect();
    h.hover_at(r.min + egui::vec2(3.0, 3.0) * h.state().st.zoom);
    h.run_steps(4);
    let text = h.state().viewer.hover.clone().expect("hover readout");
    assert!(
        text.starts_with("pixel (0, 0)") || text.starts_with("pixel ("),
        "{text}"
    );
    for part in [
        "GT: ",
        "pred: ",
        "top: ",
        "d_confidence: ",
        "T_semi 1.000: ",
    ] {
        assert!(text.contains(part), "{part} missing from {text}");
    }
    h.get_by_label_contains("pred: ");

    // Hide class 1: the prediction view then shows the image where class 1 was predicted.
    let name = h
        .state()
        .history
        .class_names(h.state().history.snapshots[0].classes)[1]
        .clone();
    h.get_by_role_and_label(egui::accesskit::Role::CheckBox, &name)
        .click();
    h.run_steps(2);
    assert_eq!(h.state().st.hidden_classes, vec![1]);

    // Screenshots of the main views through kittest's wgpu renderer (lavapipe in CI). Live
    // training text (it/s) differs run to run, so they are checked for content, not diffed.
    for (tab, name) in [
        (Tab::Maps, "maps"),
        (Tab::Plots, "plots"),
        (Tab::Overview, "overview"),
    ] {
        h.state_mut().st.tab = tab;
        h.run_steps(3);
        match h.render() {
            Ok(img) => {
                let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
                img.save(dir.join(format!("app_{name}.png"))).unwrap();
                let distinct: std::collections::HashSet<_> = img.pixels().map(|p| p.0).collect();
                assert!(distinct.len() > 50, "rendered {name} view looks blank");
            }
            Err(e) => {
                eprintln!("no wgpu test renderer here ({e}); rendering not checked");
                break;
            }
        }
    }
}

#[test]
fn errors_are_messages_and_stop_pause_work() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    // A bad setting never starts a run.
    let mut h = harness(app(&[("iters", "lots")]));
    h.get_by_label("Start").click();
    h.run_steps(2);
    let e = h.state().error.clone().expect("error shown");
    assert!(e.contains("iters"), "{e}");
    h.get_by_label_contains("Error: iters");

    // A missing dataset folder is reported before any run starts.
    let mut h = harness(app(&[("data", "camvid:/nonexistent/camvid")]));
    h.get_by_label("Start").click();
    h.run_steps(2);
    let e = h.state().error.clone().expect("error shown");
    assert!(
        e.contains("/nonexistent/camvid") && e.contains("does not exist"),
        "{e}"
    );
    assert!(h.state().run.is_none());

    // A folder that is not a CamVid layout fails on the training thread: a message too.
    let empty = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("app_empty_data");
    std::fs::create_dir_all(&empty).unwrap();
    let mut h = harness(app(&[("data", &format!("camvid:{}", empty.display()))]));
    h.get_by_label("Start").click();
    wait(&mut h, 30, |a| a.history.finished);
    let e = h.state().error.clone().expect("error shown");
    assert!(
        e.starts_with("run failed: ") && e.contains("train.txt"),
        "{e}"
    );

    // A diverging run stops with a message that names the term and the checkpoint it kept.
    let run = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("app_nan_run");
    let _ = std::fs::remove_dir_all(&run);
    let mut a = app(&[("iters", "20"), ("lr", "1e20"), ("checkpoint_every", "1")]);
    a.st.run_dir = run.display().to_string();
    let mut h = harness(a);
    h.get_by_label("Start").click();
    wait(&mut h, 60, |a| a.history.finished);
    let e = h.state().error.clone().expect("error shown");
    assert!(
        e.contains("run failed") && e.contains("is kept") && e.contains("checkpoint (step"),
        "{e}"
    );
    assert!(run.join("last.safetensors").exists());
    h.get_by_label_contains("Error: run failed");

    // Pause holds the step, Resume continues, Stop ends the run early.
    let mut h = harness(app(&[
        ("iters", "100000"),
        ("snapshot_every", "0"),
        ("eval_every", "0"),
    ]));
    h.get_by_label("Start").click();
    wait(&mut h, 60, |a| a.history.step >= 1);
    h.get_by_label("Pause").click();
    h.run_steps(2);
    assert!(h.state().run.as_ref().unwrap().paused());
    // Space toggles it, also right after a click on the Pause / Resume button.
    h.key_press(egui::Key::Space);
    h.run_steps(2);
    assert!(!h.state().run.as_ref().unwrap().paused());
    h.key_press(egui::Key::Space);
    h.run_steps(2);
    assert!(h.state().run.as_ref().unwrap().paused());
    std::thread::sleep(Duration::from_millis(800));
    h.run_steps(2);
    let s0 = h.state().history.step;
    std::thread::sleep(Duration::from_millis(800));
    h.run_steps(2);
    assert!(h.state().history.step <= s0 + 1, "paused run advanced");
    // Paused, nothing asks for a repaint: the UI sleeps until an event or input.
    h.run_steps(3);
    let delay = h.output().viewport_output[&egui::ViewportId::ROOT].repaint_delay;
    assert!(
        delay >= Duration::from_secs(1),
        "paused run repaints every {delay:?}"
    );
    h.get_by_label("Resume").click();
    wait(&mut h, 60, |a| a.history.step > s0 + 1);
    h.get_by_label("Stop").click();
    wait(&mut h, 60, |a| a.history.finished);
    assert!(h.state().history.step < 100000);
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
}

#[test]
fn ui_state_defaults_fill_missing_fields() {
    let st: UiState = serde_json::from_str(r#"{"t_semi": 0.7, "tab": "Plots"}"#).unwrap();
    assert_eq!(st.t_semi, 0.7);
    assert_eq!(st.tab, Tab::Plots);
    assert_eq!(st.opacity, UiState::default().opacity);
    let back: UiState = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
    assert_eq!(back.t_semi, 0.7);
}

#[test]
fn run_dir_then_inference_and_export() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("app_infer");
    let _ = std::fs::remove_dir_all(&dir);
    let run = dir.join("run");
    let mut a = app(&[("iters", "2"), ("eval_every", "2")]);
    a.st.run_dir = run.display().to_string();
    a.st.export_dir = dir.join("exports").display().to_string();
    let mut h = harness(a);
    h.get_by_label("Start").click();
    wait(&mut h, 60, |a| a.history.finished);
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
    let ckpt = run.join("last.safetensors");
    assert!(ckpt.exists());

    // Any RGB image: the probe's input, written with the app's own PNG writer.
    let s = h.state().history.snapshots.last().unwrap().clone();
    let p = &s.probes[0];
    let img = dir.join("probe.png");
    advseg::app::compose::write_png_atomic(
        &img,
        p.w,
        p.h,
        &advseg::app::compose::rgb_to_rgba(&p.input),
    )
    .unwrap();

    h.state_mut().st.tab = Tab::Inference;
    h.state_mut().st.checkpoint = ckpt.display().to_string();
    h.state_mut().st.image = img.display().to_string();
    h.run_steps(2);
    h.get_by_label("Run inference").click();
    wait(&mut h, 60, |a| {
        a.infer.result.is_some() || a.infer.error.is_some()
    });
    assert!(
        h.state().infer.error.is_none(),
        "{:?}",
        h.state().infer.error
    );
    h.run_steps(2);
    h.get_by_label("view prediction");
    h.get_by_label("advsemi / tiny at step 2");
    let n = h.query_all_by_label("export PNG").count();
    assert!(n >= 3);
    h.query_all_by_label("export PNG").next().unwrap().click();
    h.run_steps(2);
    let msg = h.state().infer.viewer.message.clone().unwrap();
    assert!(msg.starts_with("wrote "), "{msg}");
    let f: Vec<_> = std::fs::read_dir(dir.join("exports")).unwrap().collect();
    assert_eq!(f.len(), 1, "one PNG, no temporary left");

    // A missing checkpoint is a message, not a crash.
    h.state_mut().st.checkpoint = dir.join("missing.safetensors").display().to_string();
    h.get_by_label("Run inference").click();
    wait(&mut h, 30, |a| a.infer.error.is_some());

    // The run directory's logged curves and snapshot PNGs load back into a fresh app.
    let live: Vec<_> = h.state().history.snapshots.clone();
    let mut fresh = app(&[]);
    fresh.st.run_dir = run.display().to_string();
    fresh.st.tab = Tab::Maps;
    let mut h = harness(fresh);
    h.get_by_label("Open run dir").click();
    h.run_steps(3);
    let hist = &h.state().history;
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
    assert!(
        hist.scalars.keys().any(|k| k.starts_with("loss")),
        "{:?}",
        hist.log
    );
    assert_eq!(hist.evals.last().map(|r| r.step), Some(2));
    let steps = |v: &[std::sync::Arc<advseg::train::Snapshot>]| -> Vec<usize> {
        v.iter().map(|s| s.step).collect()
    };
    assert_eq!(steps(&hist.snapshots), steps(&live), "{:?}", hist.log);
    let (a, b) = (&hist.snapshots[0].probes[0], &live[0].probes[0]);
    assert_eq!(
        (a.input.clone(), a.gt.clone(), a.pred.clone()),
        (b.input.clone(), b.gt.clone(), b.pred.clone())
    );
    let conf = b.map("d_confidence").unwrap();
    let back = a.map("d_confidence").unwrap();
    for (x, y) in conf.iter().zip(back) {
        assert!(
            (x - y).abs() <= 0.5 / 255.0 + 1e-6,
            "8-bit map {x} read back as {y}"
        );
    }
    assert_eq!(hist.snapshots[0].colours, live[0].colours);
    // Class names follow class ids (they came out in alphabetical order: the red disc read
    // "GT: bar"), from classes.json or, for older runs, the dataset in config.toml.
    let want: Vec<String> = advseg::data::synthetic::CLASS_NAMES[..6]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(run.join("classes.json").exists());
    assert_eq!(hist.class_names(6), want);
    let ev = hist.evals.last().unwrap();
    let names: Vec<&str> = ev.per_class_iou.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, want);
    // The viewer shows the old run: its views and a readout (no probabilities on disk).
    h.get_by_label("view prediction");
    h.get_by_label("view d_confidence");
    let r = h.get_by_label("view gt").rect();
    for d in [2.0, 3.0] {
        h.hover_at(r.min + egui::vec2(d, d) * h.state().st.zoom);
        h.run_steps(2);
    }
    let text = h.state().viewer.hover.clone().expect("hover readout");
    assert!(
        text.contains("d_confidence: ") && !text.contains("top: "),
        "{text}"
    );

    let gt = h.state().history.snapshots[0].probes[0].gt.clone();
    let w = h.state().history.snapshots[0].probes[0].w;
    if let Some(i) = gt.iter().position(|&c| c != 0 && c != 255) {
        let r = h.get_by_label("view gt").rect();
        let zoom = r.width() / w as f32;
        let (x, y) = ((i % w) as f32 + 0.5, (i / w) as f32 + 0.5);
        for d in [0.0, 0.3] {
            h.hover_at(r.min + egui::vec2(x + d, y) * zoom);
            h.run_steps(2);
        }
        let text = h.state().viewer.hover.clone().unwrap();
        let name = &want[gt[i] as usize];
        assert!(text.contains(&format!("GT: {name}")), "{text}");
    }

    // Resuming the opened run still works (it is complete: it ends at once) and keeps the
    // loaded history.
    h.get_by_label("Resume run dir").click();
    wait(&mut h, 60, |a| a.history.finished);
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
    assert_eq!(
        steps(&h.state().history.snapshots[..live.len()]),
        steps(&live)
    );
}

/// The same class table for a run directory written before classes.json existed: from the
/// dataset its config.toml names.
#[test]
fn old_run_dirs_name_classes_from_their_config() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("app_old_run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = advseg::train::RunConfig::new("advsemi").unwrap();
    std::fs::write(dir.join("config.toml"), cfg.to_toml()).unwrap();
    std::fs::write(
        dir.join("metrics.jsonl"),
        r#"{"type":"eval","step":2,"split":"val","miou":0.5,"iou":{"background":0.9,"bar":0.1,"cross":0.2,"disc":0.7,"rectangle":0.3,"ring":0.4,"triangle":0.5}}"#,
    )
    .unwrap();
    let h = advseg::app::history::History::load_run(&dir, None).unwrap();
    assert_eq!(h.class_names(6)[1], "disc");
    assert_eq!(h.evals[0].per_class_iou[1], ("disc".to_string(), Some(0.7)));
}

fn advseg_cmd(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_advseg"))
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .unwrap()
}

/// `advseg app --set` rejects what `train --set` rejects, before opening a window.
#[test]
fn app_set_rejects_unknown_keys() {
    for (kv, what) in [("bogus=1", "bogus"), ("iters=lots", "iters")] {
        let out = advseg_cmd(&["app", "--set", kv]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{kv} accepted");
        assert!(err.contains(what) && !err.contains("no display"), "{err}");
    }
    let out = advseg_cmd(&["app", "--method", "supervised", "--set", "mask_t=0.3"]);
    assert!(!out.status.success());
}

/// The presets are `advseg train --config` files: the demo trains (two steps here) and the
/// paper preset resolves.
#[test]
fn presets_are_train_config_files() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/presets");
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("preset_demo_run");
    let _ = std::fs::remove_dir_all(&out_dir);
    let demo = root.join("demo/advsemi.toml");
    let out = advseg_cmd(&[
        "train",
        "--method",
        "advsemi",
        "--config",
        demo.to_str().unwrap(),
        "--iters",
        "2",
        "--out",
        out_dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = std::fs::read_to_string(out_dir.join("config.toml")).unwrap();
    assert!(cfg.contains("semi_start = 150"), "{cfg}");
    for entry in std::fs::read_dir(root.join("paper")).unwrap() {
        let p = entry.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let method = text
            .parse::<toml::Table>()
            .unwrap()
            .get("method")
            .and_then(|m| m.as_str().map(str::to_string))
            .unwrap();
        let mut c = advseg::train::RunConfig::new(&method).unwrap();
        c.apply_toml(&text, &p).unwrap();
        c.validate().unwrap();
    }
}

/// `advseg app --tab plots` opens on that tab (the screenshot script uses it to show the signal
/// plots); the default stays the Overview.
#[test]
fn app_opens_on_the_tab_asked_for() {
    use advseg::app::state::{Tab, UiState};
    let a = AdvsegApp::new(
        UiState::default(),
        &AppOptions {
            fresh: true,
            tab: Some(Tab::Plots),
            ..Default::default()
        },
    );
    assert_eq!(a.st.tab, Tab::Plots);
    let b = AdvsegApp::new(
        UiState::default(),
        &AppOptions {
            fresh: true,
            ..Default::default()
        },
    );
    assert_eq!(b.st.tab, Tab::Overview);
}

/// The setup panel's Save writes the run's config file atomically and Load reads it back into
/// the panel; a save that cannot be written is an error message naming the path, and the file
/// that was there is kept whole.
#[test]
fn save_config_then_load_round_trips_and_failures_keep_the_file() {
    use advseg::app::command::Command;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("app_save_config");
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("sub/run.toml");
    let preset = [("iters", "17"), ("advsemi.lambda_adv", "0.02")];
    let mut a = AdvsegApp::new(
        UiState::default(),
        &AppOptions {
            fresh: true,
            method: Some("advsemi".into()),
            preset: preset
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        },
    );
    a.st.config_path = path.to_str().unwrap().into();
    a.apply(Command::SaveConfig, None);
    assert_eq!(a.error, None);
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(saved.contains("iters = 17"), "{saved}");
    assert!(saved.contains("lambda_adv = 0.02"), "{saved}");
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["run.toml"], "no temp file left");

    let mut b = app(&[]);
    b.st.config_path = a.st.config_path.clone();
    b.apply(Command::LoadConfig, None);
    assert_eq!(b.error, None);
    assert_eq!(b.st.method, "advsemi");
    assert_eq!(b.st.fields["advsemi"]["iters"], "17");
    assert_eq!(b.st.fields["advsemi"]["advsemi.lambda_adv"], "0.02");

    // A directory where the file should go: the rename fails, the message names the path.
    let blocked = dir.join("blocked.toml");
    std::fs::create_dir_all(blocked.join("x")).unwrap();
    a.st.config_path = blocked.to_str().unwrap().into();
    a.apply(Command::SaveConfig, None);
    let e = a.error.clone().expect("an error message");
    assert!(e.contains("blocked.toml"), "{e}");
    assert!(blocked.join("x").is_dir(), "what was there is kept");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
}
