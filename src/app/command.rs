//! Every user action of the app as one [`Command`]: buttons, keyboard shortcuts and tests all
//! go through [`AdvsegApp::apply`], so a shortcut can never do something a button does not.

use super::state::Tab;
use super::{AdvsegApp, ScreenshotPlan};
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Start a run from the setup panel.
    Start,
    Pause,
    /// Resume a paused run (not "Resume run dir": [`Command::ResumeRunDir`]).
    Resume,
    /// Space: pause a running run, resume a paused one.
    TogglePause,
    /// Stop after the current step (`last` is saved).
    Stop,
    /// Continue the run directory's run from its `last` checkpoint.
    ResumeRunDir,
    /// Show the run directory's logged metrics and snapshots.
    OpenRunDir,
    /// Save the window as a PNG at the next frame.
    Screenshot(PathBuf),
    Tab(Tab),
    PrevSnapshot,
    /// Past the last snapshot: follow the latest again.
    NextSnapshot,
    ToggleHelp,
    /// Save the setup as the config file; load it back.
    SaveConfig,
    LoadConfig,
    DismissError,
}

/// Keyboard shortcuts, as the Help panel lists them.
pub const SHORTCUTS: &[(&str, &str)] = &[
    ("Space", "pause / resume the run"),
    ("← / →", "previous / next snapshot step"),
    ("1 – 5", "Overview, Plots, Maps, Inference, Compare tab"),
    ("F1 or ?", "show / hide this help"),
];

/// The commands of this frame's shortcut keys (consumed, so a focused button does not also
/// take Space); none while a text field has the keyboard.
pub fn from_keys(ctx: &egui::Context) -> Vec<Command> {
    if ctx.text_edit_focused() {
        return Vec::new();
    }
    use egui::Key;
    let pressed = |k: Key| ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, k));
    let mut out = Vec::new();
    if pressed(Key::Space) {
        out.push(Command::TogglePause);
    }
    if pressed(Key::ArrowLeft) {
        out.push(Command::PrevSnapshot);
    }
    if pressed(Key::ArrowRight) {
        out.push(Command::NextSnapshot);
    }
    for (i, k) in [Key::Num1, Key::Num2, Key::Num3, Key::Num4, Key::Num5]
        .into_iter()
        .enumerate()
    {
        if pressed(k) {
            out.push(Command::Tab(Tab::ALL[i].0));
        }
    }
    let question = ctx.input_mut(|i| {
        i.consume_key(egui::Modifiers::SHIFT, Key::Questionmark)
            || i.consume_key(egui::Modifiers::NONE, Key::Questionmark)
    });
    if pressed(Key::F1) || question {
        out.push(Command::ToggleHelp);
    }
    out
}

impl AdvsegApp {
    /// Does `cmd`. `wake` is the context a started run wakes with its events (`None` in
    /// tests that poll).
    pub fn apply(&mut self, cmd: Command, wake: Option<&egui::Context>) {
        let live = self.run.as_ref().filter(|r| !r.is_finished());
        match cmd {
            Command::Start => self.start(wake.cloned()),
            Command::ResumeRunDir => self.resume(wake.cloned()),
            Command::OpenRunDir => self.open_run_dir(),
            Command::Pause => live.into_iter().for_each(|r| r.set_paused(true)),
            Command::Resume => live.into_iter().for_each(|r| r.set_paused(false)),
            Command::TogglePause => live.into_iter().for_each(|r| r.set_paused(!r.paused())),
            Command::Stop => live.into_iter().for_each(|r| r.request_stop()),
            Command::Screenshot(path) => {
                self.screenshot = Some(ScreenshotPlan::now(path, self.opened.elapsed()));
            }
            Command::Tab(t) => self.st.tab = t,
            Command::PrevSnapshot | Command::NextSnapshot => {
                let snaps = match self.st.tab {
                    Tab::Inference => 0,
                    _ => self.history.snapshots.len(),
                };
                if snaps == 0 {
                    return;
                }
                let cur = self.viewer.snap_index.unwrap_or(snaps - 1).min(snaps - 1);
                self.viewer.snap_index = if cmd == Command::PrevSnapshot {
                    Some(cur.saturating_sub(1))
                } else {
                    // Stepping past the end follows the latest again.
                    (cur + 1 < snaps - 1).then_some(cur + 1)
                };
            }
            Command::ToggleHelp => self.st.show_help = !self.st.show_help,
            Command::SaveConfig => self.save_config(),
            Command::LoadConfig => {
                let path = PathBuf::from(&self.st.config_path);
                self.error = super::setup::load_config_file(&mut self.st, &path).err();
            }
            Command::DismissError => self.error = None,
        }
    }
}
