//! The central panel: the tab bar (with Help) and one small panel per tab. Inference and
//! Compare keep their panels next to their state (`infer`, `compare`).

mod maps;
mod overview;
mod plots;

use super::command::Command;
use super::state::Tab;
use super::{AdvsegApp, SHORTCUTS};

/// The tab bar and the Help grid; returns the tab clicked, as a command.
pub fn tab_bar(app: &mut AdvsegApp, ui: &mut egui::Ui) -> Option<Command> {
    let mut cmd = None;
    ui.horizontal(|ui| {
        for (t, name) in Tab::ALL {
            if ui.selectable_label(app.st.tab == t, name).clicked() {
                cmd = Some(Command::Tab(t));
            }
        }
        ui.separator();
        if ui
            .selectable_label(app.st.show_help, "Help")
            .on_hover_text("keyboard shortcuts (F1)")
            .clicked()
        {
            cmd = Some(Command::ToggleHelp);
        }
    });
    if app.st.show_help {
        egui::Grid::new("help").num_columns(2).show(ui, |ui| {
            for (k, what) in SHORTCUTS {
                ui.monospace(*k);
                ui.label(*what);
                ui.end_row();
            }
        });
    }
    cmd
}

/// The current tab's panel.
pub fn central(app: &mut AdvsegApp, ui: &mut egui::Ui) {
    match app.st.tab {
        Tab::Overview => overview::ui(app, ui),
        Tab::Plots => plots::ui(app, ui),
        Tab::Maps => maps::ui(app, ui),
        Tab::Inference => {
            if let Some(f) = app.infer.ui(ui, &mut app.st) {
                app.browse.open(f, &app.st, Some(ui.ctx().clone()));
            }
        }
        Tab::Compare => app.compare.ui(ui, &mut app.st),
    }
}
