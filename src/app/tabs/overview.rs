//! Overview tab: the plots beside the map viewer.

use crate::app::state::Tab;
use crate::app::{plots, AdvsegApp};

pub fn ui(app: &mut AdvsegApp, ui: &mut egui::Ui) {
    let h = ui.available_height();
    let names = |c: usize| app.history.class_names(c);
    ui.columns(2, |cols| {
        egui::ScrollArea::vertical()
            .id_salt("ov_plots")
            .show(&mut cols[0], |ui| {
                plots::plots_ui(
                    ui,
                    &app.history,
                    &mut app.st,
                    (h / 4.0).max(90.0),
                    &mut app.plot_hover,
                );
            });
        app.viewer.ui(
            &mut cols[1],
            &app.history.snapshots,
            &names,
            &mut app.st,
            Tab::Overview,
        );
    });
}
