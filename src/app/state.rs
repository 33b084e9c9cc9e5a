//! UI state that persists between launches (eframe storage). Runtime state — the training
//! thread, textures, the GPU — lives in the app struct and is never serialised.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Tab {
    #[default]
    Overview,
    Plots,
    Maps,
    Inference,
    Compare,
}

impl Tab {
    /// Tabs in display order, with their names (keys 1.. select them).
    pub const ALL: [(Tab, &'static str); 5] = [
        (Tab::Overview, "Overview"),
        (Tab::Plots, "Plots"),
        (Tab::Maps, "Maps"),
        (Tab::Inference, "Inference"),
        (Tab::Compare, "Compare"),
    ];
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct UiState {
    pub tab: Tab,
    pub method: String,
    /// Setup fields per method: key -> text as typed (`--set` syntax).
    pub fields: BTreeMap<String, BTreeMap<String, String>>,
    /// Extra `KEY=VALUE` lines applied last.
    pub extra_set: String,
    /// Run directory; empty keeps the run in memory.
    pub run_dir: String,
    /// Where "Save config" / "Load config" read and write a TOML run config.
    pub config_path: String,
    pub smoothing: f32,
    pub opacity: f32,
    pub cam_alpha: f32,
    /// Class whose CAM (`cam_<c>` map) the CAM view shows.
    pub cam_class: usize,
    pub t_semi: f32,
    /// View scale of the Maps tab; the Overview and Inference tabs have their own.
    pub zoom: f32,
    pub zoom_overview: f32,
    pub zoom_infer: f32,
    /// Plots: logarithmic y axes, wall-clock x axis, series switched off (by name).
    pub log_y: bool,
    pub time_axis: bool,
    pub hidden_series: Vec<String>,
    /// Run directories overlaid in the Compare tab.
    pub compare_dirs: Vec<String>,
    pub show_help: bool,
    pub hidden_classes: Vec<usize>,
    pub probe: usize,
    /// Views shown side by side in the map viewer.
    pub views: Vec<String>,
    pub checkpoint: String,
    pub image: String,
    pub export_dir: String,
}

impl UiState {
    /// The run configuration the setup panel describes: the current method's fields, then the
    /// `extra` `KEY=VALUE` lines (start, Save config and `bench app` all build it this way).
    pub fn run_config(&self, extra: &str) -> Result<crate::train::config::RunConfig, String> {
        let none = BTreeMap::new();
        let fields = self.fields.get(&self.method).unwrap_or(&none);
        super::setup::build_config(&self.method, fields, extra)
    }

    /// The view scale of a tab's map viewer (each tab keeps its own).
    pub fn zoom_mut(&mut self, tab: Tab) -> &mut f32 {
        match tab {
            Tab::Overview => &mut self.zoom_overview,
            Tab::Inference => &mut self.zoom_infer,
            _ => &mut self.zoom,
        }
    }
}

impl Default for UiState {
    fn default() -> Self {
        UiState {
            tab: Tab::Overview,
            method: "advsemi".into(),
            fields: BTreeMap::new(),
            extra_set: String::new(),
            run_dir: String::new(),
            config_path: "advseg_run.toml".into(),
            smoothing: 0.6,
            opacity: 0.5,
            cam_alpha: 0.5,
            cam_class: 1,
            t_semi: 0.2,
            zoom: 4.0,
            zoom_overview: 4.0,
            zoom_infer: 4.0,
            log_y: false,
            time_axis: false,
            hidden_series: vec![],
            compare_dirs: vec![],
            show_help: false,
            hidden_classes: vec![],
            probe: 0,
            views: vec![
                "input".into(),
                "gt".into(),
                "prediction".into(),
                "d_confidence".into(),
                "semi_mask@T".into(),
                "cam".into(),
                "uncertainty".into(),
            ],
            checkpoint: String::new(),
            image: String::new(),
            export_dir: "exports".into(),
        }
    }
}
