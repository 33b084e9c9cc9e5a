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
    pub zoom: f32,
    pub hidden_classes: Vec<usize>,
    pub probe: usize,
    /// Views shown side by side in the map viewer.
    pub views: Vec<String>,
    pub checkpoint: String,
    pub image: String,
    pub export_dir: String,
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
