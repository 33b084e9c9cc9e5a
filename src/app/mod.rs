//! The desktop app (`advseg app`): eframe + egui on the wgpu renderer, drawing the trainer's
//! event stream. All egui code lives under this module.
//!
//! Layout: `state` (persisted UI state), `command` (every action as a `Command`: buttons,
//! shortcuts, tests), `controls` (the setup side panel), `tabs` (one panel per tab), `runner`
//! (the training thread), `history` (what the run has reported), `setup` (run setup through
//! `RunConfig::set`), `plots`, `viewer` / `viewer_ui` (maps, T_semi gate, hover), `compose`
//! (pixel work, PNG export), `infer` (inference tab), `compare` (several runs overlaid),
//! `presets` / `assets` (the embedded `assets/` files).

pub mod assets;
pub mod bench;
pub mod browse;
pub mod command;
pub mod compare;
pub mod compose;
mod controls;
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
mod tabs;
pub mod viewer;
mod viewer_ui;

use crate::train::Event;
use crate::train::{ResumeFrom, RunSession, TrainError};
use history::History;
use runner::{Msg, Run};
use state::UiState;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub use command::{Command, SHORTCUTS};

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
    /// Open on this tab.
    pub tab: Option<state::Tab>,
    /// Window's inner size in points (default 1400×860); a tall window shows every plot of the
    /// Plots tab at once in a screenshot.
    pub window_size: Option<[f32; 2]>,
}

struct ScreenshotPlan {
    path: PathBuf,
    after_secs: f64,
    requested: bool,
    done: Arc<AtomicBool>,
    /// Close the window once written (`advseg app --screenshot`).
    quit: bool,
}

impl ScreenshotPlan {
    /// A screenshot at the next frame, the window kept open.
    fn now(path: PathBuf, elapsed: std::time::Duration) -> Self {
        ScreenshotPlan {
            path,
            after_secs: elapsed.as_secs_f64(),
            requested: false,
            done: Arc::new(AtomicBool::new(false)),
            quit: false,
        }
    }
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
        if let Some(t) = opts.tab {
            st.tab = t;
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
                quit: true,
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
        let cfg = self
            .st
            .run_config(&self.st.extra_set)
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
        match RunSession::fresh(cfg, run_dir) {
            Ok(s) => self.launch(s, wake),
            Err(e) => self.error = Some(session_error(e)),
        }
    }

    /// Continues the run in the run directory from its `last` checkpoint, with its own config.
    pub fn resume(&mut self, wake: Option<egui::Context>) {
        if self.running() {
            return;
        }
        self.error = None;
        let dir = PathBuf::from(self.st.run_dir.trim());
        match RunSession::open(
            None,
            &self.st.method,
            Some(dir.clone()),
            &ResumeFrom::Path(dir),
        ) {
            Ok(s) => self.launch(s, wake),
            Err(e) => self.error = Some(session_error(e)),
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

    fn launch(&mut self, session: RunSession, wake: Option<egui::Context>) {
        // A resumed run's curves and snapshots continue from what its directory logged up to
        // the checkpoint (later entries are about to be rewritten).
        self.pending = Some(match (session.run_dir(), session.resume_step()) {
            (Some(d), Some(step)) => History::load_run(d, Some(step)).unwrap_or_else(|e| {
                let mut h = History::default();
                h.log.push(format!("could not load the run's history: {e}"));
                h
            }),
            _ => History::default(),
        });
        self.run = Some(Run::start(session, wake));
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
        for c in command::from_keys(ui.ctx()) {
            self.apply(c, Some(&ui.ctx().clone()));
        }
        egui::Panel::left("setup_panel")
            .default_size(330.0)
            .resizable(true)
            .show(ui, |ui| self.side_panel(ui));
        let tab_cmd = egui::Panel::top("tabs")
            .show(ui, |ui| tabs::tab_bar(self, ui))
            .inner;
        if let Some(c) = tab_cmd {
            self.apply(c, None);
        }
        egui::CentralPanel::default().show(ui, |ui| tabs::central(self, ui));
        // No timed repaints: the training thread wakes the UI with every event, so a paused
        // or finished run costs nothing while idle.
        self.screenshot_step(ui.ctx());
    }

    fn screenshot_step(&mut self, ctx: &egui::Context) {
        let Some(p) = &mut self.screenshot else {
            return;
        };
        if p.done.load(Ordering::SeqCst) {
            if p.quit {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            } else {
                self.screenshot = None;
            }
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

/// A run the session refused, as the app says it.
fn session_error(e: TrainError) -> String {
    match e {
        TrainError::RunDirTaken { dir } => format!(
            "{} already holds a run: use \"Resume run dir\" or choose another run dir",
            dir.display()
        ),
        e => format!("{e:#}"),
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
        .with_inner_size(opts.window_size.unwrap_or([1400.0, 860.0]));
    if let Some(icon) = assets::icon() {
        viewport = viewport.with_icon(icon);
    }
    let native = eframe::NativeOptions {
        viewport,
        // A window size asked for on the command line wins over the remembered one.
        persist_window: opts.window_size.is_none(),
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
