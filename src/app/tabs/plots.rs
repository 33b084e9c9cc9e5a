//! Plots tab: every plot at full width.

use crate::app::{plots, AdvsegApp};

pub fn ui(app: &mut AdvsegApp, ui: &mut egui::Ui) {
    egui::ScrollArea::vertical()
        .id_salt("plots")
        .show(ui, |ui| {
            plots::plots_ui(ui, &app.history, &mut app.st, 200.0, &mut app.plot_hover);
        });
}
