//! Maps tab: the map viewer at full width.

use crate::app::state::Tab;
use crate::app::AdvsegApp;

pub fn ui(app: &mut AdvsegApp, ui: &mut egui::Ui) {
    let names = |c: usize| app.history.class_names(c);
    app.viewer
        .ui(ui, &app.history.snapshots, &names, &mut app.st, Tab::Maps);
}
