//! `rrm`'s settings: [`RrmConfig`] with recipe (B)'s defaults, the shared settings the method
//! changes, and the checks of an edited table. `src/app/setup.rs` reads this file's field
//! comments as the panel's tooltips.

use super::rrm_labels::LabelRules;
use super::{check, non_negative, table};
use crate::ops::crf::CrfCfg;
use serde::{Deserialize, Serialize};

/// RRM settings; defaults are recipe (B) of methods.md §4.4 (`train_from_cls_weight.py`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RrmConfig {
    /// λ_d of the dense energy loss.
    pub dense_weight: f32,
    /// Resize factor of the dense loss's inputs (rloss scale).
    pub dense_scale: f32,
    /// Dense loss kernel: σ_rgb (0–255 units) and σ_xy in crop pixels (× `dense_scale` on the
    /// resized grid).
    pub sigma_rgb: f32,
    pub sigma_xy: f32,
    /// α of the low / high background scores.
    pub alpha_low: f32,
    pub alpha_high: f32,
    /// Label CRF: mean-field iterations, Gaussian σ_xy / weight, bilateral σ_xy / σ_rgb / weight.
    pub crf_iters: usize,
    pub crf_smooth_sxy: f32,
    pub crf_smooth_w: f32,
    pub crf_app_sxy: f32,
    pub crf_app_srgb: f32,
    pub crf_app_w: f32,
    /// Input scales of the training CAM (1.0 must be among them: it sets the map size).
    pub cam_scales: Vec<f32>,
    /// Input scales of the evaluation's thresholded-CAM score (a diagnostic; training's four
    /// scales made rrm's evaluation of CamVid's val split ~7× slower than its segmentation).
    pub eval_cam_scales: Vec<f32>,
    /// Top-(1 − q) rule: quantile and floor of the CAM values.
    pub top_quantile: f32,
    pub cam_floor: f32,
    /// Background CAM confidence (on `B_high`) and CRF confidence thresholds.
    pub bg_conf: f32,
    pub crf_conf: f32,
    /// Label CRFs on crops of at most this many pixels build one dense operator per image
    /// (exact, ~HW² floats each; `ops::crf_matrix`); larger ones filter every iteration. 0 = never.
    pub crf_matrix_max_px: usize,
    /// Steps at the start that train the classification loss only (recipe A's first half).
    pub cls_only_steps: usize,
    /// Momentum := weight decay, as PSA's `PolyOptimizer` effectively does.
    pub psa_momentum_quirk: bool,
    /// Presence threshold on σ(image logits) for the probe maps (no image labels at inference).
    pub cls_threshold: f32,
}

impl Default for RrmConfig {
    fn default() -> Self {
        let crf = CrfCfg::rrm_labels();
        RrmConfig {
            dense_weight: 1e-7,
            dense_scale: 0.5,
            sigma_rgb: 15.0,
            sigma_xy: 100.0,
            alpha_low: 4.0,
            alpha_high: 32.0,
            crf_iters: crf.iters,
            crf_smooth_sxy: crf.smooth_sxy,
            crf_smooth_w: crf.smooth_w,
            crf_app_sxy: crf.app_sxy,
            crf_app_srgb: crf.app_srgb,
            crf_app_w: crf.app_w,
            cam_scales: vec![1.0, 0.5, 1.5, 2.0],
            eval_cam_scales: vec![1.0],
            top_quantile: 0.6,
            cam_floor: 0.1,
            bg_conf: 0.8,
            crf_conf: 0.8,
            crf_matrix_max_px: crf.matrix_max_px,
            cls_only_steps: 0,
            psa_momentum_quirk: false,
            cls_threshold: 0.5,
        }
    }
}

pub fn defaults() -> toml::Table {
    table(&RrmConfig::default())
}

/// Recipe (B)'s optimiser and batch as this method's shared defaults.
pub fn common_defaults(c: &mut crate::train::TrainConfig) {
    c.arch = "rrm-resnet50".into();
    c.lr = 7e-4;
    c.momentum = 0.9;
    c.weight_decay = 1e-5;
    c.power = 0.9;
    c.head_lr_mult = 10.0;
    c.batch = 4;
    c.random_mirror = true;
    c.labeled_fraction = 1.0;
}

pub fn validate(t: &toml::Table) -> std::result::Result<(), String> {
    let c = check::<RrmConfig>(t)?;
    for (key, scales) in [
        ("cam_scales", &c.cam_scales),
        ("eval_cam_scales", &c.eval_cam_scales),
    ] {
        if !scales.contains(&1.0) {
            return Err(format!("{key} {scales:?} must contain 1.0 (the map size)"));
        }
        if scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(format!("{key} {scales:?} must be > 0"));
        }
    }
    if !(c.dense_scale > 0.0 && c.dense_scale <= 1.0) {
        return Err(format!("dense_scale = {} must be in (0, 1]", c.dense_scale));
    }
    if !(0.0..=1.0).contains(&c.top_quantile) {
        return Err(format!(
            "top_quantile = {} must be in [0, 1]",
            c.top_quantile
        ));
    }
    non_negative(&[
        ("dense_weight", c.dense_weight),
        ("sigma_rgb", c.sigma_rgb),
        ("sigma_xy", c.sigma_xy),
        ("alpha_low", c.alpha_low),
        ("alpha_high", c.alpha_high),
        ("crf_smooth_sxy", c.crf_smooth_sxy),
        ("crf_smooth_w", c.crf_smooth_w),
        ("crf_app_sxy", c.crf_app_sxy),
        ("crf_app_srgb", c.crf_app_srgb),
        ("crf_app_w", c.crf_app_w),
        ("cam_floor", c.cam_floor),
        ("bg_conf", c.bg_conf),
        ("crf_conf", c.crf_conf),
        ("cls_threshold", c.cls_threshold),
    ])?;
    for (k, v) in [
        ("sigma_rgb", c.sigma_rgb),
        ("sigma_xy", c.sigma_xy),
        ("crf_smooth_sxy", c.crf_smooth_sxy),
        ("crf_app_sxy", c.crf_app_sxy),
        ("crf_app_srgb", c.crf_app_srgb),
    ] {
        if v <= 0.0 {
            return Err(format!("{k} must be > 0"));
        }
    }
    Ok(())
}

impl RrmConfig {
    pub(super) fn rules(&self, ignore: i32) -> LabelRules {
        LabelRules {
            alpha_low: self.alpha_low,
            alpha_high: self.alpha_high,
            top_quantile: self.top_quantile,
            cam_floor: self.cam_floor,
            bg_conf: self.bg_conf,
            crf_conf: self.crf_conf,
            ignore,
        }
    }
    pub(super) fn crf(&self) -> CrfCfg {
        CrfCfg {
            iters: self.crf_iters,
            smooth_sxy: self.crf_smooth_sxy,
            smooth_w: self.crf_smooth_w,
            app_sxy: self.crf_app_sxy,
            app_srgb: self.crf_app_srgb,
            app_w: self.crf_app_w,
            matrix_max_px: self.crf_matrix_max_px,
            ..CrfCfg::rrm_labels()
        }
    }
}
