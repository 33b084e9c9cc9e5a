//! The desktop app (`advseg app`): eframe + egui on the wgpu renderer, drawing the trainer's
//! event stream. All egui code lives under this module.
//!
//! Layout: `state` (persisted UI state), `runner` (the training thread), `history` (what the
//! run has reported), `setup` (run setup through `RunConfig::set`), `plots`, `viewer` (maps,
//! T_semi gate, hover), `compose` (pixel work, PNG export), `infer` (inference tab),
//! `compare` (several runs overlaid), `presets` / `assets` (the embedded `assets/` files).

pub mod assets;
pub mod bench;
pub mod browse;
pub mod compare;
pub mod compose;
pub mod history;
pub mod infer;
pub mod load;
mod offscreen;
pub mod plots;
pub mod presets;
pub mod runner;
pub mod setup;
pub mod signals;
pub mod state;
pub mod viewer;

use crate::train::Event;
use history::History;
use runner::{Msg, Run, RunRequest};
use state::{Tab, UiState};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Keyboard shortcuts, as the Help panel lists them.
pub const SHORTCUTS: &[(&str, &str)] = &[
    ("Space", "pause / resume the run"),
    ("← / →", "previous / next snapshot step"),
    ("1 – 5", "Overview, Plots, Maps, Inference, Compare tab"),
    ("F1 or ?", "show / hide this help"),
];

/// Launch options from the command line.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Start training as soon as the window opens.
    pub start: bool,
    /// Setup fields to preset (`key=value`, the panel's keys).
    pub preset: Vec<(String, String)>,
    pub method: Option<String>,
    /// Save a screenshot of the window here after `after_secs`, then quit.
    pub screenshot: Option<PathBuf>,
    pub after_secs: f64,
    /// Ignore the persisted UI state (fresh defaults).
    pub fresh: bool,
}

struct ScreenshotPlan {
    path: PathBuf,
    after_secs: f64,
    requested: bool,
    done: Arc<AtomicBool>,
}

pub struct AdvsegApp {
    pub st: UiState,
    pub run: Option<Run>,
    pub history: History,
    /// The last error (bad setting, failing run), shown until dismissed.
    pub error: Option<String>,
    pub viewer: viewer::Viewer,
    pub infer: infer::Infer,
    /// The open file dialog, if any (its picker is replaceable in tests).
    pub browse: browse::Browse,
    pub compare: compare::Compare,
    /// The readout of the plot under the cursor (tests read it).
    pub plot_hover: Option<String>,
    /// The history of a run that has been launched but not started yet: the previous run's
    /// plots stay until it starts, and stay for good if it fails to.
    pending: Option<History>,
    /// With `--fresh`: the saved state as loaded, written back unchanged on exit.
    kept_state: Option<UiState>,
    preset_msg: Option<Result<String, String>>,
    screenshot: Option<ScreenshotPlan>,
    autostart: bool,
    opened: Instant,
}

impl AdvsegApp {
    pub fn new(st: UiState, opts: &AppOptions) -> Self {
        let (mut st, kept_state) = if opts.fresh {
            (UiState::default(), Some(st))
        } else {
            (st, None)
        };
        if let Some(m) = &opts.method {
            st.method = m.clone();
        }
        setup::ensure_fields(&mut st);
        let method = st.method.clone();
        // Checked again for the method actually chosen (the CLI may not have known it).
        let error = setup::check_presets(Some(&method), &opts.preset).err();
        let autostart = opts.start && error.is_none();
        for (k, v) in &opts.preset {
            match setup::preset_slot(&method, k) {
                setup::PresetSlot::Field(k) => {
                    st.fields
                        .entry(method.clone())
                        .or_default()
                        .insert(k, v.clone());
                }
                setup::PresetSlot::Extra => {
                    let mut lines: Vec<String> = st
                        .extra_set
                        .lines()
                        .filter(|l| {
                            l.split_once('=')
                                .is_none_or(|(x, _)| x.trim() != k.as_str())
                        })
                        .map(str::to_string)
                        .collect();
                    lines.push(format!("{k}={v}"));
                    st.extra_set = lines.join("\n");
                }
            }
        }
        AdvsegApp {
            st,
            run: None,
            history: History::default(),
            error,
            viewer: Default::default(),
            infer: Default::default(),
            browse: Default::default(),
            compare: Default::default(),
            plot_hover: None,
            pending: None,
            kept_state,
            preset_msg: None,
            screenshot: opts.screenshot.clone().map(|path| ScreenshotPlan {
                path,
                after_secs: opts.after_secs,
                requested: false,
                done: Arc::new(AtomicBool::new(false)),
            }),
            autostart,
            opened: Instant::now(),
        }
    }

    /// The UI state to save on exit: with `--fresh` the one loaded at launch, so a fresh
    /// session never overwrites the saved one.
    pub fn state_to_save(&self) -> &UiState {
        self.kept_state.as_ref().unwrap_or(&self.st)
    }

    pub fn running(&self) -> bool {
        self.run.as_ref().is_some_and(|r| !r.is_finished())
    }

    /// Starts a run from the setup panel; a bad setting becomes `self.error`.
    pub fn start(&mut self, wake: Option<egui::Context>) {
        if self.running() {
            return;
        }
        self.error = None;
        let fields = self
            .st
            .fields
            .get(&self.st.method)
            .cloned()
            .unwrap_or_default();
        let cfg = setup::build_config(&self.st.method, &fields, &self.st.extra_set)
            .and_then(|c| setup::check_data_dir(&c.common.data).map(|()| c));
        let cfg = match cfg {
            Ok(c) => c,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        let run_dir = Some(self.st.run_dir.trim())
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        if let Some(d) = &run_dir {
            if d.join("last.safetensors").exists() {
                self.error = Some(format!(
                    "{} already holds a run: use \"Resume run dir\" or choose another run dir",
                    d.display()
                ));
                return;
            }
        }
        self.launch(
            RunRequest {
                cfg,
                run_dir,
                resume: None,
            },
            wake,
            None,
        );
    }

    /// Continues the run in the run directory from its `last` checkpoint, with its own config.
    pub fn resume(&mut self, wake: Option<egui::Context>) {
        if self.running() {
            return;
        }
        self.error = None;
        let dir = PathBuf::from(self.st.run_dir.trim());
        let ck = dir.join("last.safetensors");
        let cfg = crate::train::checkpoint::Checkpoint::read(&ck)
            .map_err(|e| format!("{e:#}"))
            .and_then(|c| {
                crate::train::RunConfig::from_toml(&c.meta.config_toml, &ck)
                    .map(|cfg| (cfg, c.meta.step))
                    .map_err(|e| e.to_string())
            });
        match cfg {
            Ok((cfg, step)) => self.launch(
                RunRequest {
                    cfg,
                    run_dir: Some(dir),
                    resume: Some(ck),
                },
                wake,
                Some(step),
            ),
            Err(e) => self.error = Some(e),
        }
    }

    /// Shows an existing run directory's metrics and snapshots (without training).
    pub fn open_run_dir(&mut self) {
        match History::load_run(std::path::Path::new(self.st.run_dir.trim()), None) {
            Ok(h) => {
                self.history = h;
                self.viewer.snap_index = None;
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }

    fn launch(&mut self, req: RunRequest, wake: Option<egui::Context>, resumed_at: Option<usize>) {
        // A resumed run's curves and snapshots continue from what its directory logged up to
        // the checkpoint (later entries are about to be rewritten).
        self.pending = Some(match (&req.run_dir, resumed_at) {
            (Some(d), Some(step)) => History::load_run(d, Some(step)).unwrap_or_else(|e| {
                let mut h = History::default();
                h.log.push(format!("could not load the run's history: {e}"));
                h
            }),
            _ => History::default(),
        });
        self.run = Some(Run::start(req, wake));
    }

    /// Drains the training thread's messages.
    pub fn poll(&mut self) {
        let Some(run) = &self.run else { return };
        while let Ok(m) = run.rx.try_recv() {
            match m {
                Msg::Event(e) => {
                    if matches!(e, Event::Started { .. }) {
                        if let Some(h) = self.pending.take() {
                            self.history = h;
                            self.viewer.snap_index = None;
                        }
                    }
                    self.history.apply(e)
                }
                Msg::Failed(e) => {
                    let e = format!("run failed: {e}{}", self.kept_note(&e));
                    self.history.log.push(e.clone());
                    // A device loss has already said why; the trainer's error only follows.
                    if !self
                        .error
                        .as_ref()
                        .is_some_and(|x| x.starts_with("GPU device lost"))
                    {
                        self.error = Some(e);
                    }
                }
                Msg::DeviceLost(why) => {
                    let e = format!(
                        "GPU device lost ({why}). Restart the app to train again{}",
                        self.kept_note("")
                    );
                    self.history.log.push(e.clone());
                    self.error = Some(e);
                }
                Msg::Exited => {
                    // A run that never started leaves the previous run's plots in place.
                    if let Some(h) = self.pending.take() {
                        self.history.log.extend(h.log);
                    }
                    self.history.finished = true
                }
            }
        }
    }

    /// Where the failed run's last checkpoint is, unless the message already says.
    fn kept_note(&self, msg: &str) -> String {
        if msg.contains("checkpoint") {
            return String::new();
        }
        let h = self.pending.as_ref().unwrap_or(&self.history);
        match h.checkpoints.last() {
            Some((step, path)) => format!("; the last checkpoint (step {step}) is kept at {path}"),
            None => "; no checkpoint had been written".into(),
        }
    }

    fn controls(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        ui.horizontal(|ui| {
            let running = self.running();
            if ui
                .add_enabled(!running, egui::Button::new("Start"))
                .clicked()
            {
                self.start(Some(ctx.clone()));
            }
            if let Some(r) = self.run.as_ref().filter(|_| running) {
                if r.paused() {
                    if ui.button("Resume").clicked() {
                        r.set_paused(false);
                    }
                } else if ui.button("Pause").clicked() {
                    r.set_paused(true);
                }
                if ui.button("Stop").clicked() {
                    r.request_stop();
                }
            }
            let has_ckpt = !self.st.run_dir.trim().is_empty()
                && PathBuf::from(self.st.run_dir.trim())
                    .join("last.safetensors")
                    .exists();
            if ui
                .add_enabled(!running && has_ckpt, egui::Button::new("Resume run dir"))
                .clicked()
            {
                self.resume(Some(ctx.clone()));
            }
            if ui
                .add_enabled(
                    !running && !self.st.run_dir.trim().is_empty(),
                    egui::Button::new("Open run dir"),
                )
                .on_hover_text("show the run directory's logged metrics and snapshots")
                .clicked()
            {
                self.open_run_dir();
            }
        });
        let h = &self.history;
        if h.iters > 0 {
            let paused = self
                .run
                .as_ref()
                .is_some_and(|r| r.paused() && self.running());
            let eta = match h.eta() {
                Some(e) if !h.finished => format!("  ETA {}", plots::clock(e)),
                _ => String::new(),
            };
            ui.add(
                egui::ProgressBar::new(h.step as f32 / h.iters as f32).text(format!(
                    "step {}/{}  {:.2} steps/s  elapsed {}{eta}{}",
                    h.step,
                    h.iters,
                    h.it_per_s,
                    plots::clock(h.elapsed()),
                    if paused { "  (paused)" } else { "" }
                )),
            );
        }
        if let Some(w) = &self.history.balance.current {
            ui.colored_label(
                egui::Color32::from_rgb(230, 160, 40),
                format!("Warning: {w}"),
            );
        }
    }

    fn side_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Run setup");
        self.controls(ui);
        if let Some(e) = self.error.clone() {
            ui.horizontal_wrapped(|ui| {
                ui.colored_label(egui::Color32::LIGHT_RED, format!("Error: {e}"));
                if ui.small_button("dismiss").clicked() {
                    self.error = None;
                }
            });
        }
        ui.horizontal(|ui| {
            let l = ui.label("config");
            ui.add(egui::TextEdit::singleline(&mut self.st.config_path).desired_width(130.0))
                .labelled_by(l.id);
            if browse::button(ui, browse::PathField::Config, !self.browse.busy()) {
                self.browse
                    .open(browse::PathField::Config, &self.st, Some(ui.ctx().clone()));
            }
            if ui.small_button("Save").clicked() {
                let fields = self
                    .st
                    .fields
                    .get(&self.st.method)
                    .cloned()
                    .unwrap_or_default();
                let path = PathBuf::from(&self.st.config_path);
                self.error = setup::build_config(&self.st.method, &fields, &self.st.extra_set)
                    .and_then(|c| {
                        std::fs::write(&path, c.to_toml())
                            .map_err(|e| format!("{}: {e}", path.display()))
                    })
                    .err();
                if self.error.is_none() {
                    self.history
                        .log
                        .push(format!("saved config to {}", path.display()));
                }
            }
            if ui
                .add_enabled(!self.running(), egui::Button::new("Load").small())
                .clicked()
            {
                let path = PathBuf::from(&self.st.config_path);
                self.error = setup::load_config_file(&mut self.st, &path).err();
            }
        });
        ui.separator();
        let editable = !self.running();
        egui::ScrollArea::vertical()
            .id_salt("setup")
            .show(ui, |ui| {
                if let Some(f) = setup::setup_ui(ui, &mut self.st, editable, &mut self.preset_msg) {
                    self.browse.open(f, &self.st, Some(ui.ctx().clone()));
                }
                match self.preset_msg.take() {
                    Some(Ok(m)) => self.history.log.push(m),
                    Some(Err(e)) => self.error = Some(e),
                    None => {}
                }
                ui.separator();
                ui.label("log");
                for l in self.history.log.iter().rev().take(12) {
                    ui.small(l);
                }
            });
    }

    /// The whole UI into `ui` (eframe's root or a test harness).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.poll();
        self.infer.poll();
        self.viewer.view_rects.clear();
        if let Some(m) = self.browse.poll(&mut self.st) {
            self.history.log.push(m);
        }
        if self.autostart {
            self.autostart = false;
            self.start(Some(ui.ctx().clone()));
        }
        // Before any widget: shortcut keys are consumed here.
        self.shortcuts(ui.ctx());
        egui::Panel::left("setup_panel")
            .default_size(330.0)
            .resizable(true)
            .show(ui, |ui| self.side_panel(ui));
        egui::Panel::top("tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                for (t, name) in Tab::ALL {
                    ui.selectable_value(&mut self.st.tab, t, name);
                }
                ui.separator();
                ui.toggle_value(&mut self.st.show_help, "Help")
                    .on_hover_text("keyboard shortcuts (F1)");
            });
            if self.st.show_help {
                egui::Grid::new("help").num_columns(2).show(ui, |ui| {
                    for (k, what) in SHORTCUTS {
                        ui.monospace(*k);
                        ui.label(*what);
                        ui.end_row();
                    }
                });
            }
        });
        egui::CentralPanel::default().show(ui, |ui| {
            let names = |c: usize| self.history.class_names(c);
            match self.st.tab {
                Tab::Overview => {
                    let h = ui.available_height();
                    ui.columns(2, |cols| {
                        egui::ScrollArea::vertical()
                            .id_salt("ov_plots")
                            .show(&mut cols[0], |ui| {
                                plots::plots_ui(
                                    ui,
                                    &self.history,
                                    &mut self.st,
                                    (h / 4.0).max(90.0),
                                    &mut self.plot_hover,
                                );
                            });
                        self.viewer.ui(
                            &mut cols[1],
                            &self.history.snapshots,
                            &names,
                            &mut self.st,
                            Tab::Overview,
                        );
                    });
                }
                Tab::Plots => {
                    egui::ScrollArea::vertical()
                        .id_salt("plots")
                        .show(ui, |ui| {
                            plots::plots_ui(
                                ui,
                                &self.history,
                                &mut self.st,
                                200.0,
                                &mut self.plot_hover,
                            );
                        });
                }
                Tab::Maps => {
                    self.viewer
                        .ui(ui, &self.history.snapshots, &names, &mut self.st, Tab::Maps)
                }
                Tab::Inference => {
                    if let Some(f) = self.infer.ui(ui, &mut self.st) {
                        self.browse.open(f, &self.st, Some(ui.ctx().clone()));
                    }
                }
                Tab::Compare => self.compare.ui(ui, &mut self.st),
            }
        });
        // No timed repaints: the training thread wakes the UI with every event, so a paused
        // or finished run costs nothing while idle.
        self.screenshot_step(ui.ctx());
    }

    /// Space pauses / resumes, ←/→ step through snapshots, 1–5 pick a tab, F1 or ? toggles
    /// the help; not while a text field has the keyboard.
    fn shortcuts(&mut self, ctx: &egui::Context) {
        if ctx.text_edit_focused() {
            return;
        }
        use egui::Key;
        // Consumed, so a focused button does not also take the key (Space would press it).
        let pressed = |k: Key| ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, k));
        if pressed(Key::Space) {
            if let Some(r) = self.run.as_ref().filter(|r| !r.is_finished()) {
                r.set_paused(!r.paused());
            }
        }
        let snaps = match self.st.tab {
            Tab::Inference => 0,
            _ => self.history.snapshots.len(),
        };
        if snaps > 0 {
            let cur = self.viewer.snap_index.unwrap_or(snaps - 1).min(snaps - 1);
            if pressed(Key::ArrowLeft) {
                self.viewer.snap_index = Some(cur.saturating_sub(1));
            }
            if pressed(Key::ArrowRight) {
                // Stepping past the end follows the latest again.
                self.viewer.snap_index = (cur + 1 < snaps - 1).then_some(cur + 1);
            }
        }
        for (i, k) in [Key::Num1, Key::Num2, Key::Num3, Key::Num4, Key::Num5]
            .into_iter()
            .enumerate()
        {
            if pressed(k) {
                self.st.tab = Tab::ALL[i].0;
            }
        }
        let question = ctx.input_mut(|i| {
            i.consume_key(egui::Modifiers::SHIFT, Key::Questionmark)
                || i.consume_key(egui::Modifiers::NONE, Key::Questionmark)
        });
        if pressed(Key::F1) || question {
            self.st.show_help = !self.st.show_help;
        }
    }

    fn screenshot_step(&mut self, ctx: &egui::Context) {
        let Some(p) = &mut self.screenshot else {
            return;
        };
        if p.done.load(Ordering::SeqCst) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        ctx.request_repaint_after(std::time::Duration::from_millis(100));
        if !p.requested && self.opened.elapsed().as_secs_f64() >= p.after_secs {
            p.requested = true;
            let (path, done) = (p.path.clone(), p.done.clone());
            let wake = ctx.clone();
            ctx.request_screenshot(move |img| {
                let [w, h] = img.size;
                let px: Vec<u8> = img.pixels.iter().flat_map(|c| c.to_array()).collect();
                match compose::write_png_atomic(&path, w, h, &px) {
                    Ok(()) => eprintln!("screenshot written to {}", path.display()),
                    Err(e) => eprintln!("screenshot failed: {e}"),
                }
                done.store(true, Ordering::SeqCst);
                wake.request_repaint();
            });
        }
    }
}

impl eframe::App for AdvsegApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, self.state_to_save());
    }
}

/// Whether a window can be opened (X11 or Wayland display).
pub fn display_available() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// Opens the window and runs until it is closed.
pub fn run_native(opts: AppOptions) -> anyhow::Result<()> {
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("advseg")
        .with_app_id("advseg")
        .with_inner_size([1400.0, 860.0]);
    if let Some(icon) = assets::icon() {
        viewport = viewport.with_icon(icon);
    }
    let native = eframe::NativeOptions {
        viewport,
        persist_window: true,
        ..Default::default()
    };
    eframe::run_native(
        "advseg",
        native,
        Box::new(move |cc| {
            let st: UiState = cc
                .storage
                .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
                .unwrap_or_default();
            Ok(Box::new(AdvsegApp::new(st, &opts)))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the app window failed: {e}"))
}
