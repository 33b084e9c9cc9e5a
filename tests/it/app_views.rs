//! The app's views on a hand-made history (no training, so these run in seconds): the Overview,
//! Maps and Plots layouts at two window sizes, the CAM class selector, and views of generic
//! maps by their declared kinds (CEGU weights, uncertainty, erased images, label maps,
//! `train_*`).

use advseg::app::history::History;
use advseg::app::state::{Tab, UiState};
use advseg::app::{AdvsegApp, AppOptions};
use advseg::metrics::signals::{GatePoint, SignalScores};
use advseg::train::event::{EvalResult, HostMap, ProbeSnapshot, Snapshot, StepScalars};
use advseg::train::Event;
use advseg::train::MapKind::{self, *};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

const H: usize = 24;
const W: usize = 32;
const C: usize = 3;

fn map(name: &str, kind: MapKind, values: Vec<f32>) -> HostMap {
    HostMap {
        name: name.into(),
        kind,
        h: H,
        w: W,
        values,
    }
}

/// A probe whose maps are simple ramps, so a pixel's expected value is known.
fn probe(step: usize) -> ProbeSnapshot {
    let hw = H * W;
    let ramp = |k: usize| -> Vec<f32> {
        (0..hw)
            .map(|i| ((i % W) as f32 / (W - 1) as f32 * (k + 1) as f32 / C as f32).min(1.0))
            .collect()
    };
    let mut probs = vec![0.0; C * hw];
    for i in 0..hw {
        probs[(i % C) * hw + i] = 0.8;
        probs[((i + 1) % C) * hw + i] = 0.2;
    }
    ProbeSnapshot {
        name: "probe0".into(),
        h: H,
        w: W,
        input: (0..hw * 3).map(|i| (i * 7 % 251) as u8).collect(),
        gt: (0..hw).map(|i| (i / W % C) as u8).collect(),
        pred: (0..hw).map(|i| (i % C) as u8).collect(),
        probs,
        maps: vec![
            map("d_confidence", Confidence, ramp(2)),
            map("cam_1", Cam, ramp(0)),
            map("cam_2", Cam, ramp(1)),
            map("uncertainty", Confidence, ramp(1)),
            map("erased", Image, ramp(2)),
            // Label maps carry class ids as id/255 (255: ignore) to stay in [0, 1].
            map(
                "reliable_label",
                Labels,
                (0..hw)
                    .map(|i| {
                        if i % 5 == 0 {
                            1.0
                        } else {
                            (i % C) as f32 / 255.0
                        }
                    })
                    .collect(),
            ),
        ],
    }
    .with_step(step)
}

trait WithStep {
    fn with_step(self, step: usize) -> Self;
}
impl WithStep for ProbeSnapshot {
    fn with_step(mut self, step: usize) -> Self {
        self.input[0] = step as u8;
        self
    }
}

fn history() -> History {
    let mut h = History::default();
    h.apply(Event::Started {
        method: "fake".into(),
        start_step: 0,
        iters: 20,
        run_dir: None,
    });
    for s in 1..=20 {
        h.apply(Event::Step(StepScalars {
            step: s,
            iters: 20,
            scalars: vec![
                ("loss_seg".into(), 1.0 / s as f32),
                ("d_fake_mean".into(), 0.5),
                ("lr/g".into(), 0.01),
            ],
            it_per_s: 10.0,
        }));
        if s % 10 == 0 {
            h.apply(Event::Eval(EvalResult {
                step: s,
                split: "val".into(),
                miou: Some(0.1 * s as f64 / 10.0),
                pixel_acc: Some(0.5),
                mean_class_acc: Some(0.4),
                per_class_iou: (0..C).map(|c| (format!("c{c}"), Some(0.3))).collect(),
                images: 2,
                seconds: 0.1,
                // Whole split: 10 pixels per cell, 50 more on the diagonal.
                confusion: (0..C * C)
                    .map(|i| if i % (C + 1) == 0 { 60 } else { 10 })
                    .collect(),
                signals: Box::new(signal_scores(s)),
            }));
            h.apply(Event::Snapshot(Box::new(Snapshot {
                step: s,
                classes: C,
                colours: vec![[200, 0, 0], [0, 200, 0], [0, 0, 200]],
                ignore: 255,
                probes: vec![probe(s)],
                train_maps: vec![HostMap {
                    name: "cegu_weight".into(),
                    kind: MapKind::Scalar,
                    h: H / 2,
                    w: W / 2,
                    values: (0..H * W / 4).map(|i| (i % 7) as f32 / 6.0).collect(),
                }],
                signals: SignalScores {
                    d_auroc: Some(0.9),
                    ..SignalScores::default()
                },
            })));
        }
    }
    h
}

/// Signal scores whose AUROC rises with the step, with a gate curve and T_semi 0.2.
fn signal_scores(step: usize) -> SignalScores {
    let grid = advseg::metrics::signals::gate_grid();
    SignalScores {
        d_auroc: Some(0.5 + step as f64 / 100.0),
        gate_t: Some(0.2),
        gate_precision: Some(0.8),
        gate_coverage: Some(0.6),
        gate_curve: grid
            .iter()
            .map(|&t| GatePoint {
                t,
                precision: Some(0.5 + 0.5 * t),
                coverage: 1.0 - t,
            })
            .collect(),
        cam_miou: None,
    }
}

fn harness(size: [f32; 2]) -> Harness<'static, AdvsegApp> {
    let mut a = AdvsegApp::new(
        UiState::default(),
        &AppOptions {
            fresh: true,
            ..Default::default()
        },
    );
    a.history = history();
    Harness::builder()
        .with_size(size)
        .build_ui_state(|ui, app: &mut AdvsegApp| app.show(ui), a)
}

fn save(img: &image::RgbaImage, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    img.save(dir.join(format!("views_{name}.png"))).unwrap();
}

/// The map views of the Overview, Maps and Plots tabs at two window sizes: every view lies
/// inside the window (the Overview used to push its map column past the right edge), views
/// do not overlap, the Overview keeps them right of the plots, and the rendered pixels under
/// a view are that view's colours.
#[test]
fn views_fit_the_window_at_two_sizes() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    for size in [[1400.0, 900.0], [1000.0, 700.0]] {
        let mut h = harness(size);
        for tab in [Tab::Overview, Tab::Maps, Tab::Plots] {
            h.state_mut().st.tab = tab;
            h.run_steps(3);
            let rects = h.state().viewer.view_rects.clone();
            if tab == Tab::Plots {
                assert!(rects.is_empty());
                let r = h.get_by_label("losses").rect();
                assert!(r.max.x <= size[0] && r.max.y <= size[1]);
                continue;
            }
            assert!(rects.len() >= 6, "{tab:?} at {size:?}: {rects:?}");
            let smoothing_x = (tab == Tab::Overview).then(|| {
                h.get_by_role_and_label(egui::accesskit::Role::Slider, "smoothing")
                    .rect()
                    .min
                    .x
            });
            for (i, (v, r)) in rects.iter().enumerate() {
                // Rows below the window scroll; no view may leave it sideways.
                assert!(
                    r.min.x >= 0.0 && r.max.x <= size[0],
                    "{tab:?} at {size:?}: view {v} at {r:?} leaves the window"
                );
                assert!(
                    i > 0 || r.max.y <= size[1],
                    "first view {v} at {r:?} not visible"
                );
                assert!(r.width() >= 32.0, "{v} shrank to nothing: {r:?}");
                for (w, q) in &rects[..i] {
                    assert!(!r.intersects(*q), "{v} overlaps {w}");
                }
                if let Some(x0) = smoothing_x {
                    let mid = x0 + (size[0] - x0) / 2.0 - 20.0;
                    assert!(
                        r.min.x >= mid,
                        "overview view {v} at {r:?} is not in the map column"
                    );
                }
            }
        }
        // Rendered: the pixel at the centre of the input view is the probe's input pixel.
        h.state_mut().st.tab = Tab::Overview;
        h.run_steps(2);
        let img = match h.render() {
            Ok(img) => img,
            Err(e) => {
                eprintln!("no wgpu test renderer here ({e}); rendering not checked");
                return;
            }
        };
        save(&img, &format!("overview_{}", size[0]));
        let r = h
            .state()
            .viewer
            .view_rects
            .iter()
            .find(|v| v.0 == "input")
            .unwrap()
            .1;
        let (fx, fy) = (0.5 + 0.25 / W as f32, 0.5 + 0.25 / H as f32);
        let (x, y) = ((fx * W as f32) as usize, (fy * H as f32) as usize);
        let at = r.min + egui::vec2(fx * r.width(), fy * r.height());
        let got = img.get_pixel(at.x as u32, at.y as u32).0;
        let i = 3 * (y * W + x);
        let want = probe(20).input[i..i + 3].to_vec();
        for c in 0..3 {
            assert!(
                (got[c] as i32 - want[c] as i32).abs() <= 3,
                "rendered {got:?} at {at:?}, input pixel ({x}, {y}) is {want:?}"
            );
        }
        for tab in [Tab::Maps, Tab::Plots] {
            h.state_mut().st.tab = tab;
            h.run_steps(2);
            let img = h.render().unwrap();
            save(&img, &format!("{tab:?}_{}", size[0]).to_lowercase());
            let distinct: std::collections::HashSet<_> = img.pixels().map(|p| p.0).collect();
            assert!(distinct.len() > 50, "rendered {tab:?} looks blank");
        }
    }
}

fn hover_pixel(h: &mut Harness<'static, AdvsegApp>, view: &str, x: usize, y: usize) -> String {
    let r = h
        .state()
        .viewer
        .view_rects
        .iter()
        .find(|v| v.0 == view)
        .unwrap_or_else(|| panic!("no view {view}"))
        .1;
    let (vw, vh) = if view.starts_with("train_") {
        (W / 2, H / 2)
    } else {
        (W, H)
    };
    let at = r.min
        + egui::vec2(
            (x as f32 + 0.5) * r.width() / vw as f32,
            (y as f32 + 0.5) * r.height() / vh as f32,
        );
    h.hover_at(at);
    h.run_steps(3);
    // The first move only enters the window.
    h.hover_at(at + egui::vec2(0.5, 0.0));
    h.run_steps(3);
    h.state().viewer.hover.clone().expect("hover readout")
}

/// One CAM view with a class selector (the readout follows the class), and generic views of
/// label maps, erased images and the last training batch's maps.
#[test]
fn cam_selector_and_generic_map_views() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let mut h = harness([1400.0, 900.0]);
    h.state_mut().st.tab = Tab::Maps;
    h.run_steps(3);
    // cam_1 and cam_2 are one view, not two.
    assert!(h.query_by_label("view cam_1").is_none());
    let x = 20;
    let t = hover_pixel(&mut h, "cam", x, 3);
    let v1 = (x as f32 / (W - 1) as f32 / C as f32).min(1.0);
    assert!(t.contains(&format!("CAM c1 (cam_1): {v1:.3}")), "{t}");
    assert!(!t.contains("cam_2"), "{t}");

    // Pick class 2 in the selector.
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "CAM class")
        .click();
    h.run_steps(2);
    h.get_by_label("2: c2").click();
    h.run_steps(2);
    assert_eq!(h.state().st.cam_class, 2);
    let t = hover_pixel(&mut h, "cam", x, 3);
    let v2 = (x as f32 / (W - 1) as f32 * 2.0 / C as f32).min(1.0);
    assert!(t.contains(&format!("CAM c2 (cam_2): {v2:.3}")), "{t}");
    assert!(!t.contains("cam_1"), "{t}");

    for v in ["erased", "reliable_label", "train_cegu_weight"] {
        h.get_by_label(v).click();
        h.run_steps(1);
    }
    h.run_steps(2);
    for v in [
        "erased",
        "reliable_label",
        "train_cegu_weight",
        "uncertainty",
    ] {
        h.get_by_label(&format!("view {v}"));
    }
    // Pixel 1 of the label map holds class 1; pixel 0 is ignored (unreliable).
    let t = hover_pixel(&mut h, "reliable_label", 1, 0);
    assert!(t.contains("reliable_label: c1"), "{t}");
    let t = hover_pixel(&mut h, "reliable_label", 0, 0);
    assert!(t.contains("reliable_label: ignore"), "{t}");
    let t = hover_pixel(&mut h, "erased", 31, 0);
    assert!(t.contains("erased: 1.000"), "{t}");
    // The training map has its own 16x12 grid.
    let t = hover_pixel(&mut h, "train_cegu_weight", 3, 1);
    let want = ((W / 2 + 3) % 7) as f32 / 6.0;
    assert!(
        t.starts_with("train_cegu_weight (last training batch)")
            && t.contains(&format!("pixel (3, 1): {want:.3}")),
        "{t}"
    );
}

/// The "Browse…" button next to a field opens the picker for that field (a stand-in for the
/// native dialog, which tests cannot drive) and the answer lands in the field.
#[test]
fn browse_buttons_fill_their_fields() {
    use advseg::app::browse::{PathField, Request};
    use std::sync::{Arc, Mutex};
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browse");
    std::fs::create_dir_all(dir.join("JPEGImages")).unwrap();
    let asked: Arc<Mutex<Vec<Request>>> = Arc::default();
    let mut h = harness([1400.0, 900.0]);
    let (a, d) = (asked.clone(), dir.clone());
    h.state_mut().browse.picker = Arc::new(move |r: Request| {
        a.lock().unwrap().push(r.clone());
        match r.field {
            PathField::Data => Some(d.clone()),
            PathField::Checkpoint => Some(d.join("last.safetensors")),
            _ => None,
        }
    });
    // The button on the row of a field: the same height as the field.
    let click_next_to = |h: &mut Harness<'static, AdvsegApp>, field: &str| {
        let y = h
            .get_by_role_and_label(egui::accesskit::Role::TextInput, field)
            .rect()
            .center()
            .y;
        h.query_all_by_label("Browse…")
            .find(|b| (b.rect().center().y - y).abs() < 8.0)
            .unwrap_or_else(|| panic!("no Browse… next to {field}"))
            .click();
        for _ in 0..50 {
            h.step();
            if !h.state().browse.busy() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        h.run_steps(2);
    };
    click_next_to(&mut h, "data");
    assert_eq!(
        h.state().st.fields["advsemi"]["data"],
        format!("voc:{}", dir.display())
    );
    h.state_mut().st.tab = Tab::Inference;
    h.run_steps(2);
    click_next_to(&mut h, "checkpoint");
    assert_eq!(
        h.state().st.checkpoint,
        dir.join("last.safetensors").display().to_string()
    );
    // A cancelled dialog leaves the field alone and says so in the log.
    click_next_to(&mut h, "image");
    assert_eq!(h.state().st.image, "");
    assert!(h
        .state()
        .history
        .log
        .last()
        .unwrap()
        .contains("no path chosen"));
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 3);
    assert!(asked[0].folder && !asked[1].folder);
}

fn text_width(h: &Harness<'static, AdvsegApp>, label: &str) -> f32 {
    h.get_by_role_and_label(egui::accesskit::Role::TextInput, label)
        .rect()
        .width()
}

/// The Inference tab's path fields were ~40 px wide (a grid cell's first-frame width); they
/// now take the room they have, as the setup panel's fields do.
#[test]
fn path_fields_are_wide() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let mut h = harness([1400.0, 900.0]);
    h.state_mut().st.tab = Tab::Inference;
    h.run_steps(3);
    for f in ["checkpoint", "image", "export folder"] {
        let w = text_width(&h, f);
        assert!(w >= 300.0, "{f} is {w} px wide");
    }
    assert!(text_width(&h, "data") >= 150.0);
    // A sample image fills the image field with a file that exists.
    h.get_by_label("synthetic_val_000001").click();
    h.run_steps(2);
    let img = h.state().st.image.clone();
    assert!(img.ends_with("synthetic_val_000001.png"), "{img}");
    let decoded = image::open(&img).unwrap().to_rgb8();
    assert_eq!(
        decoded.into_raw(),
        advseg::app::assets::sample_image(1).data
    );
}

/// Each tab has its own view scale.
#[test]
fn scale_is_per_tab() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let mut h = harness([1400.0, 900.0]);
    h.state_mut().st.tab = Tab::Maps;
    h.run_steps(3);
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "scale")
        .set_value_accesskit(2.0);
    h.run_steps(3);
    let st = &h.state().st;
    assert_eq!(st.zoom, 2.0);
    assert_eq!(st.zoom_overview, UiState::default().zoom_overview);
    assert_eq!(st.zoom_infer, UiState::default().zoom_infer);
    let w = h
        .state()
        .viewer
        .view_rects
        .iter()
        .find(|v| v.0 == "input")
        .unwrap()
        .1
        .width();
    assert!(
        (w - 2.0 * W as f32).abs() < 1.0,
        "maps view {w} px at scale 2"
    );
    h.state_mut().st.tab = Tab::Overview;
    h.run_steps(3);
    assert_eq!(h.state().st.zoom, 2.0);
}

fn plot_readout(h: &mut Harness<'static, AdvsegApp>, title: &str, fx: f32) -> String {
    let t = h
        .get_by_role_and_label(egui::accesskit::Role::Label, title)
        .rect();
    let at = egui::pos2(t.min.x + fx * 600.0, t.max.y + 100.0);
    h.hover_at(at);
    h.run_steps(2);
    h.hover_at(at + egui::vec2(0.5, 0.0));
    h.run_steps(2);
    h.state().plot_hover.clone().expect("plot readout")
}

/// Hovering a plot reads out the values of every series at the nearest step; log-scale y
/// still reads raw values; the x axis can be wall-clock time; series can be switched off;
/// per-class IoU comes with a table in class colours.
#[test]
fn plots_read_out_values_and_switch_axes_and_series() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let mut h = harness([1400.0, 900.0]);
    h.state_mut().st.tab = Tab::Plots;
    h.state_mut().st.smoothing = 0.0;
    h.run_steps(3);
    let t = plot_readout(&mut h, "losses", 0.5);
    let step: usize = t
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("step "))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{t}"));
    assert!(
        t.contains(&format!("loss_seg: {:.4}", 1.0 / step as f32)),
        "{t}"
    );
    h.get_by_label("log y").click();
    h.run_steps(3);
    assert!(h.state().st.log_y);
    let t = plot_readout(&mut h, "losses", 0.5);
    let step: usize = t.lines().next().unwrap()[5..].parse().unwrap();
    assert!(
        t.contains(&format!("loss_seg: {:.4}", 1.0 / step as f32)),
        "{t}"
    );
    h.get_by_label("wall clock").click();
    h.run_steps(3);
    assert!(h.state().st.time_axis);
    let t = plot_readout(&mut h, "losses", 0.5);
    assert!(t.starts_with("t "), "{t}");
    // The IoU table: latest, best and its step per class.
    h.get_by_label("best step");
    let c2 = h.query_all_by_role_and_label(egui::accesskit::Role::Label, "c2");
    assert!(c2.count() >= 3, "IoU table and both confusion axes");
    // The whole split's confusion matrix, from the latest evaluation.
    h.get_by_label_contains("confusion matrix, whole val split (2 images) at step 20");
    // The probes' matrix (runs without the whole split's): gt is y % 3, pred (32y + x) % 3
    // on a 32×24 probe.
    let m = advseg::app::plots::confusion(h.state().history.snapshots.last().unwrap());
    assert_eq!(
        m,
        vec![vec![88, 88, 80], vec![88, 80, 88], vec![80, 88, 88]]
    );
    // Switching a series off removes it from every plot (here: the only loss).
    h.get_by_role_and_label(egui::accesskit::Role::Button, "loss_seg")
        .click();
    h.run_steps(3);
    assert_eq!(h.state().st.hidden_series, vec!["loss_seg".to_string()]);
    assert!(h
        .query_by_role_and_label(egui::accesskit::Role::Label, "losses")
        .is_none());
}

/// A swatch and its class checkbox never end up on different rows.
#[test]
fn class_legend_keeps_swatch_and_checkbox_together() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let mut h = harness([900.0, 700.0]);
    h.state_mut().history.classes = Some(advseg::data::ClassInfo::new(
        &[
            "background and everything else",
            "a rather long class name",
            "another long class name here",
        ],
        &[[0, 0, 0], [200, 0, 0], [0, 200, 0]],
        255,
    ));
    h.state_mut().st.tab = Tab::Maps;
    h.run_steps(3);
    let rects = h.state().viewer.legend_rects.clone();
    assert_eq!(rects.len(), 3);
    let rows: std::collections::BTreeSet<i32> =
        rects.iter().map(|r| r.2.center().y as i32).collect();
    assert!(
        rows.len() > 1,
        "the legend should wrap at this width: {rects:?}"
    );
    for (c, swatch, cb) in rects {
        assert!(
            swatch.min.y >= cb.min.y - 1.0
                && swatch.max.y <= cb.max.y + 1.0
                && swatch.max.x <= cb.min.x + 1.0,
            "class {c}: swatch {swatch:?}, checkbox {cb:?}"
        );
    }
}

/// Heat maps carry a colour bar with their value scale; label maps do not.
#[test]
fn heat_maps_have_colour_bars() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let mut h = harness([1400.0, 900.0]);
    h.state_mut().st.tab = Tab::Maps;
    h.run_steps(3);
    h.get_by_label("colour bar d_confidence: 0 to 1");
    h.get_by_label("colour bar cam: 0 to 1");
    assert!(h.query_by_label("colour bar gt: 0 to 1").is_none());
    assert!(h.query_by_label("colour bar input: 0 to 1").is_none());
}

/// Space, arrows, 1–5 and F1 drive the app; the Help panel lists them.
#[test]
fn keyboard_shortcuts() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let mut h = harness([1400.0, 900.0]);
    h.run_steps(2);
    for (k, tab) in [
        (egui::Key::Num2, Tab::Plots),
        (egui::Key::Num4, Tab::Inference),
        (egui::Key::Num5, Tab::Compare),
        (egui::Key::Num3, Tab::Maps),
    ] {
        h.key_press(k);
        h.run_steps(2);
        assert_eq!(h.state().st.tab, tab);
    }
    // Two snapshots (steps 10, 20), following the latest: ← goes to the first, → back.
    h.key_press(egui::Key::ArrowLeft);
    h.run_steps(2);
    assert_eq!(h.state().viewer.snap_index, Some(0));
    h.key_press(egui::Key::ArrowRight);
    h.run_steps(2);
    assert_eq!(h.state().viewer.snap_index, None);
    h.key_press(egui::Key::F1);
    h.run_steps(2);
    assert!(h.state().st.show_help);
    h.get_by_label("pause / resume the run");
}

/// The same actions as commands (what buttons and keys send): tab, snapshots, help, clicking
/// a tab, a screenshot that keeps the window open, and run commands without a run.
#[test]
fn commands_drive_the_app() {
    use advseg::app::Command;
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let mut h = harness([1400.0, 900.0]);
    h.run_steps(2);
    h.state_mut().apply(Command::Tab(Tab::Maps), None);
    h.state_mut().apply(Command::PrevSnapshot, None);
    assert_eq!(h.state().viewer.snap_index, Some(0));
    h.state_mut().apply(Command::NextSnapshot, None);
    assert_eq!(h.state().viewer.snap_index, None);
    // No run: pause, stop and toggle do nothing and do not fail.
    for c in [Command::Pause, Command::TogglePause, Command::Stop] {
        h.state_mut().apply(c, None);
    }
    assert!(!h.state().running() && h.state().error.is_none());
    h.state_mut().apply(Command::ToggleHelp, None);
    h.run_steps(2);
    h.get_by_label("pause / resume the run");
    // The tab bar sends commands too.
    h.get_by_label("Plots").click();
    h.run_steps(2);
    assert_eq!(h.state().st.tab, Tab::Plots);
    let shot = std::env::temp_dir().join(format!("advseg_cmd_shot_{}.png", std::process::id()));
    h.state_mut().apply(Command::Screenshot(shot.clone()), None);
    h.run_steps(4);
    // (A headless harness renders no screenshot; the plan must not close the window.)
    let _ = std::fs::remove_file(shot);
    h.state_mut().apply(Command::ResumeRunDir, None);
    assert!(
        h.state().error.is_some(),
        "resuming an empty run dir must say why"
    );
}

/// The G/D balance monitor's warning shows in the side panel with its numbers.
#[test]
fn balance_warning_is_shown() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let mut h = harness([1400.0, 900.0]);
    for s in 21..=60 {
        h.state_mut().history.apply(Event::Step(StepScalars {
            step: s,
            iters: 100,
            scalars: vec![
                ("loss_adv".into(), 6.5),
                ("d_fake_mean".into(), 0.04),
                ("semi_ratio".into(), 0.13),
            ],
            it_per_s: 10.0,
        }));
    }
    h.run_steps(2);
    h.get_by_label_contains("Warning: D is winning");
    let banner = h.get_by_label_contains("Warning: D is winning").rect();
    assert!(banner.width() > 0.0);
    let w = h.state().history.balance.current.clone().unwrap();
    assert!(w.d_fake_mean < 0.1 && w.loss_adv > 2.3 && w.gate_now.unwrap() < 0.2);
    assert!(h
        .state()
        .history
        .log
        .iter()
        .any(|l| l.starts_with("warning: D is winning")));
}

/// "Paper defaults" and "Demo preset" fill the panel from assets/presets; the dataset stays
/// when the preset has none.
#[test]
fn preset_buttons_fill_the_panel() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let mut h = harness([1400.0, 900.0]);
    h.state_mut()
        .st
        .fields
        .get_mut("advsemi")
        .unwrap()
        .insert("data".into(), "synthetic:size=40".into());
    h.get_by_label("Paper defaults").click();
    h.run_steps(2);
    let f = h.state().st.fields["advsemi"].clone();
    assert_eq!(f["arch"], "deeplabv2-resnet101");
    assert_eq!(f["advsemi.semi_start"], "5000");
    assert_eq!(f["data"], "synthetic:size=40");
    h.get_by_label("Demo preset").click();
    h.run_steps(2);
    let f = h.state().st.fields["advsemi"].clone();
    assert_eq!(f["arch"], "tiny");
    assert_eq!(f["advsemi.semi_start"], "150");
}

/// `--fresh` ignores the saved state and keeps it for the next launch; `--set` routes keys
/// the panel has no row for to the extra lines and reports unknown ones.
#[test]
fn fresh_keeps_saved_state_and_presets_are_checked() {
    let saved = UiState {
        t_semi: 0.7,
        run_dir: "runs/x".into(),
        ..UiState::default()
    };
    let a = AdvsegApp::new(
        saved.clone(),
        &AppOptions {
            fresh: true,
            preset: vec![("ndf".into(), "4".into()), ("iters".into(), "9".into())],
            ..Default::default()
        },
    );
    assert_eq!(a.st.t_semi, UiState::default().t_semi);
    assert_eq!(a.state_to_save().t_semi, 0.7);
    assert_eq!(a.state_to_save().run_dir, "runs/x");
    assert!(a.error.is_none(), "{:?}", a.error);
    assert!(a.st.extra_set.contains("ndf=4"));
    let cfg =
        advseg::app::setup::build_config(&a.st.method, &a.st.fields[&a.st.method], &a.st.extra_set)
            .unwrap();
    assert_eq!((cfg.common.ndf, cfg.common.iters), (Some(4), 9));
    let a = AdvsegApp::new(saved.clone(), &AppOptions::default());
    assert_eq!(a.state_to_save().t_semi, 0.7);
    let a = AdvsegApp::new(
        saved,
        &AppOptions {
            preset: vec![("bogus".into(), "1".into())],
            start: true,
            ..Default::default()
        },
    );
    assert!(a.error.as_deref().is_some_and(|e| e.contains("bogus")));
}

/// A run that fails before it starts leaves the previous run's plots in place.
#[test]
fn failed_start_keeps_previous_plots() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let empty = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("views_empty_data");
    std::fs::create_dir_all(&empty).unwrap();
    let mut h = harness([1400.0, 900.0]);
    h.state_mut()
        .st
        .fields
        .get_mut("advsemi")
        .unwrap()
        .insert("data".into(), format!("camvid:{}", empty.display()));
    h.get_by_label("Start").click();
    let t = std::time::Instant::now();
    while !h.state().history.finished || h.state().running() {
        assert!(t.elapsed().as_secs() < 60, "{:?}", h.state().error);
        std::thread::sleep(std::time::Duration::from_millis(40));
        h.step();
    }
    h.step();
    assert!(h
        .state()
        .error
        .as_deref()
        .unwrap()
        .starts_with("run failed"));
    assert_eq!(h.state().history.scalars["loss_seg"].len(), 20);
    assert_eq!(h.state().history.snapshots.len(), 2);
}

/// Two run directories overlaid: a table of final and best metrics, curves per run.
#[test]
fn compare_runs() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare");
    let _ = std::fs::remove_dir_all(&root);
    let mut dirs = vec![];
    for (i, best) in [0.4, 0.6].into_iter().enumerate() {
        let d = root.join(format!("run{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let mut text = String::new();
        for s in (10..=40).step_by(10) {
            text += &format!(
                "{{\"type\":\"step\",\"step\":{s},\"it_per_s\":10.0,\"loss_seg\":{}}}\n",
                1.0 / (s as f64 + i as f64)
            );
        }
        text += &format!(
            "{{\"type\":\"eval\",\"step\":20,\"split\":\"val\",\"miou\":{best},\"iou\":{{}}}}\n"
        );
        text += "{\"type\":\"eval\",\"step\":40,\"split\":\"val\",\"miou\":0.3,\"iou\":{}}\n";
        std::fs::write(d.join("metrics.jsonl"), text).unwrap();
        dirs.push(d.display().to_string());
    }
    let mut h = harness([1400.0, 900.0]);
    h.state_mut().st.tab = Tab::Compare;
    h.run_steps(2);
    for d in &dirs {
        let a = h.state_mut();
        a.compare.add(&mut a.st, d);
    }
    h.run_steps(3);
    assert_eq!(h.state().st.compare_dirs, dirs);
    assert!(h.query_all_by_label(dirs[0].as_str()).count() >= 1);
    h.get_by_label("60.00");
    assert_eq!(h.query_all_by_label("step 20").count(), 2);
    h.state_mut().st.smoothing = 0.0;
    h.run_steps(2);
    let t = h
        .get_by_role_and_label(egui::accesskit::Role::Label, "loss_seg")
        .rect();
    let at = egui::pos2(t.min.x + 500.0, t.max.y + 80.0);
    h.hover_at(at);
    h.run_steps(2);
    h.hover_at(at + egui::vec2(0.5, 0.0));
    h.run_steps(2);
    let r = h.state().compare.hover.clone().expect("readout");
    assert!(
        r.contains(&format!("{}: ", dirs[0])) && r.contains(&format!("{}: ", dirs[1])),
        "{r}"
    );
}

/// The committed icon and sample images are what the generators make
/// (`ADVSEG_REGEN_ASSETS=1` rewrites them).
#[test]
fn assets_match_their_generators() {
    use advseg::app::assets;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let regen = std::env::var_os("ADVSEG_REGEN_ASSETS").is_some();
    let n = assets::ICON_SIZE as u32;
    let icon = image::RgbaImage::from_raw(n, n, assets::icon_rgba()).unwrap();
    if regen {
        icon.save(root.join("icon.png")).unwrap();
    }
    let got = image::open(root.join("icon.png")).unwrap().to_rgba8();
    assert_eq!(got, icon);
    for (i, (name, _)) in assets::SAMPLES.iter().enumerate() {
        let s = assets::sample_image(i);
        let img = image::RgbImage::from_raw(s.w as u32, s.h as u32, s.data).unwrap();
        let p = root.join("samples").join(name);
        if regen {
            img.save(&p).unwrap();
        }
        assert_eq!(image::open(&p).unwrap().to_rgb8(), img, "{name}");
    }
    if !regen {
        assert!(assets::icon().is_some(), "the embedded icon decodes");
    }
}

/// The progress line: steps/s, elapsed training time and the ETA at the current rate.
#[test]
fn progress_shows_rate_elapsed_and_eta() {
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let mut h = harness([1400.0, 900.0]);
    h.state_mut().history.iters = 40;
    h.run_steps(2);
    // 20 steps left at 10 steps/s.
    h.get_by_label_contains("step 20/40  10.00 steps/s  elapsed 0:00  ETA 0:02");
    assert_eq!(h.state().history.eta(), Some(2.0));
}

/// The Plots tab shows the signal metrics over the evaluations (with a readout of their
/// values), the gate's precision / coverage curve over T_semi at the latest evaluation, and
/// the whole split's confusion matrix; without them (older runs, methods without a D) the
/// plots are absent and the confusion matrix is the probes'.
#[test]
fn plots_show_signal_quality_and_whole_split_confusion() {
    use advseg::app::plots::fmt_value;
    use advseg::app::signals::{confusion_view, gate_curve_title, signal_series, SIGNALS_TITLE};
    std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
    let mut h = harness([1200.0, 2600.0]);
    h.state_mut().st.tab = Tab::Plots;
    h.run_steps(3);
    h.get_by_label(SIGNALS_TITLE);
    h.get_by_label(&gate_curve_title(20));
    let series = signal_series(&h.state().history);
    let names: Vec<&str> = series.iter().map(|s| s.0).collect();
    assert_eq!(
        names,
        [
            "D-uncertainty AUROC",
            "gate precision",
            "gate coverage",
            "D-uncertainty AUROC, probes"
        ]
    );
    assert_eq!(series[3].1, vec![[10.0, 0.9], [20.0, 0.9]]);
    assert_eq!(series[0].1, vec![[10.0, 0.6], [20.0, 0.7]]);
    let t = plot_readout(&mut h, SIGNALS_TITLE, 0.9);
    let step: usize = t
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("step "))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{t}"));
    let auroc = format!(
        "D-uncertainty AUROC: {}",
        fmt_value(0.5 + step as f64 / 100.0)
    );
    assert!(t.contains(&auroc), "{t}");
    assert!(
        t.contains(&format!("gate coverage: {}", fmt_value(0.6))),
        "{t}"
    );
    let v = confusion_view(&h.state().history).unwrap();
    assert!(v.title.starts_with("confusion matrix, whole val split"));
    assert_eq!(v.m[1], vec![10, 60, 10]);
    // An older run: no signals, no whole-split matrix.
    for r in &mut h.state_mut().history.evals {
        *r.signals = SignalScores::default();
        r.confusion.clear();
    }
    h.state_mut().history.snapshots.retain(|_| false);
    let snap = history().snapshots.last().unwrap().as_ref().clone();
    let plain = advseg::train::Snapshot {
        signals: SignalScores::default(),
        ..snap
    };
    h.state_mut()
        .history
        .apply(Event::Snapshot(Box::new(plain)));
    h.run_steps(3);
    assert!(h.query_by_label(SIGNALS_TITLE).is_none());
    assert!(h.query_by_label(&gate_curve_title(20)).is_none());
    h.get_by_label_contains("confusion matrix, probe images at step 20");
}
