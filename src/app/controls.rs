//! The setup side panel: run controls (Start / Pause / Resume / Stop / Resume run dir / Open
//! run dir) as [`Command`]s, progress, the error line, config Save / Load, setup fields, log.

use super::command::Command;
use super::{browse, plots, setup, AdvsegApp};
use std::path::PathBuf;

impl AdvsegApp {
    /// The control buttons' command this frame, if one was clicked.
    fn control_buttons(&self, ui: &mut egui::Ui) -> Option<Command> {
        let mut cmd = None;
        let mut on = |clicked: bool, c: Command| {
            if clicked {
                cmd = Some(c);
            }
        };
        ui.horizontal(|ui| {
            let running = self.running();
            on(
                ui.add_enabled(!running, egui::Button::new("Start"))
                    .clicked(),
                Command::Start,
            );
            if let Some(r) = self.run.as_ref().filter(|_| running) {
                if r.paused() {
                    on(ui.button("Resume").clicked(), Command::Resume);
                } else {
                    on(ui.button("Pause").clicked(), Command::Pause);
                }
                on(ui.button("Stop").clicked(), Command::Stop);
            }
            let dir = self.st.run_dir.trim();
            let has_ckpt = !dir.is_empty()
                && PathBuf::from(dir)
                    .join(crate::train::session::LAST)
                    .exists();
            on(
                ui.add_enabled(!running && has_ckpt, egui::Button::new("Resume run dir"))
                    .clicked(),
                Command::ResumeRunDir,
            );
            on(
                ui.add_enabled(
                    !running && !dir.is_empty(),
                    egui::Button::new("Open run dir"),
                )
                .on_hover_text("show the run directory's logged metrics and snapshots")
                .clicked(),
                Command::OpenRunDir,
            );
        });
        cmd
    }

    fn controls(&mut self, ui: &mut egui::Ui) {
        if let Some(c) = self.control_buttons(ui) {
            self.apply(c, Some(&ui.ctx().clone()));
        }
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

    /// Writes the setup as a config file (the Save button).
    pub(super) fn save_config(&mut self) {
        let path = PathBuf::from(&self.st.config_path);
        self.error = self
            .st
            .run_config(&self.st.extra_set)
            .and_then(|c| {
                // Through a temp file and a rename: a failed save must not leave the user's
                // config half written.
                crate::atomic::write_atomic(&path, c.to_toml().as_bytes())
                    .map_err(|(p, e)| format!("{}: {e}", p.display()))
            })
            .err();
        if self.error.is_none() {
            self.history
                .log
                .push(format!("saved config to {}", path.display()));
        }
    }

    pub(super) fn side_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Run setup");
        self.controls(ui);
        let mut cmd = None;
        if let Some(e) = self.error.clone() {
            ui.horizontal_wrapped(|ui| {
                ui.colored_label(egui::Color32::LIGHT_RED, format!("Error: {e}"));
                if ui.small_button("dismiss").clicked() {
                    cmd = Some(Command::DismissError);
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
                cmd = Some(Command::SaveConfig);
            }
            if ui
                .add_enabled(!self.running(), egui::Button::new("Load").small())
                .clicked()
            {
                cmd = Some(Command::LoadConfig);
            }
        });
        if let Some(c) = cmd {
            self.apply(c, Some(&ui.ctx().clone()));
        }
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
}
