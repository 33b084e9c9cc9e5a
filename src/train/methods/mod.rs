//! The method registry: `--method` names, their settings and constructors.

pub mod advsemi;
pub mod common;
pub mod eader;
pub mod gan;
pub mod gan_cegu;
pub mod rrm;
pub mod rrm_config;
pub mod rrm_labels;
pub mod ssgan;
pub mod supervised;

use super::config::RunConfig;
use super::error::TrainError;
use super::method::Method;
use crate::gpu::Gpu;
use crate::nn::arch::Model;
use crate::train::error::Result;
use std::sync::Arc;

/// What a constructor gets.
pub struct BuildEnv<'a> {
    pub gpu: &'a Arc<Gpu>,
    pub cfg: &'a RunConfig,
    pub classes: usize,
    pub ignore: i32,
    /// Called on each network (by its checkpoint name) after initialisation and before any
    /// optimiser holds its parameters: loads resumed or pretrained weights.
    pub init: &'a dyn Fn(&str, &Model) -> Result<()>,
}

pub struct MethodInfo {
    pub name: &'static str,
    pub about: &'static str,
    /// The method's own settings with their defaults.
    pub defaults: fn() -> toml::Table,
    /// Checks a (possibly edited) settings table.
    pub validate: fn(&toml::Table) -> std::result::Result<(), String>,
    pub build: fn(&BuildEnv<'_>) -> Result<Box<dyn Method>>,
}

pub const METHODS: &[MethodInfo] = &[
    MethodInfo {
        name: "supervised",
        about: "cross-entropy baseline (SGD + poly, head lr x10)",
        defaults: supervised::defaults,
        validate: supervised::validate,
        build: supervised::build,
    },
    MethodInfo {
        name: "advsemi",
        about: "Hung et al. BMVC 2018: adversarial + semi-supervised (D confidence gate)",
        defaults: advsemi::defaults,
        validate: advsemi::validate,
        build: advsemi::build,
    },
    MethodInfo {
        name: "gan-cegu",
        about: "GAN auxiliary network (PIC 2021): D's per-pixel uncertainty weights the CE (CEGU)",
        defaults: gan_cegu::defaults,
        validate: gan_cegu::validate,
        build: gan_cegu::build,
    },
    MethodInfo {
        name: "ssgan",
        about: "SS-GAN / Luc et al. 2016: image-conditioned adversary, CE + non-saturating adversarial term",
        defaults: ssgan::defaults,
        validate: ssgan::validate,
        build: ssgan::build,
    },
    MethodInfo {
        name: "eader",
        about: "EADER (Stammes et al. 2021): adversarial erasing of Grad-CAM maps, image labels only",
        defaults: eader::defaults,
        validate: eader::validate,
        build: eader::build,
    },
    MethodInfo {
        name: "rrm",
        about: "RRM (Zhang et al. AAAI 2020): CAM -> reliable labels (CRF) -> CE + dense energy loss, image labels only",
        defaults: rrm::defaults,
        validate: rrm::validate,
        build: rrm::build,
    },
];

/// Shared settings whose defaults differ for a method (its official optimiser and arch).
pub fn common_defaults(method: &str, mut c: super::TrainConfig) -> super::TrainConfig {
    match method {
        "eader" => eader::common_defaults(&mut c),
        "rrm" => rrm::common_defaults(&mut c),
        _ => {}
    }
    c
}

/// Methods of the issue that are not implemented yet (named in the error message).
const PLANNED: &[&str] = &[];

pub fn find(name: &str) -> std::result::Result<&'static MethodInfo, TrainError> {
    METHODS.iter().find(|m| m.name == name).ok_or_else(|| {
        let known = METHODS
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", ");
        TrainError::UnknownMethod {
            name: name.to_string(),
            known: if PLANNED.contains(&name) {
                format!("{known} ({name} is planned but not implemented yet)")
            } else {
                known
            },
        }
    })
}

/// Settings table of a serde config struct.
pub(crate) fn table<T: serde::Serialize>(c: &T) -> toml::Table {
    toml::Table::try_from(c).expect("serialisable settings")
}

/// Checks that a table deserialises into `T` (unknown keys and wrong types fail).
pub(crate) fn check<T: serde::de::DeserializeOwned>(
    t: &toml::Table,
) -> std::result::Result<T, String> {
    t.clone()
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())
}

/// Every named setting must be finite and ≥ 0 (weights, learning rates, thresholds).
pub(crate) fn non_negative(settings: &[(&str, f32)]) -> std::result::Result<(), String> {
    match settings.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
        Some((k, v)) => Err(format!("{k} = {v} must be finite and >= 0")),
        None => Ok(()),
    }
}

/// D's Adam settings `d_beta1`, `d_beta2` must lie in [0, 1): at 1 the moment never forgets
/// and the bias correction divides by zero.
pub(crate) fn adam_betas(beta1: f32, beta2: f32) -> std::result::Result<(), String> {
    match [("d_beta1", beta1), ("d_beta2", beta2)]
        .into_iter()
        .find(|(_, v)| !(0.0..1.0).contains(v))
    {
        Some((k, v)) => Err(format!("{k} = {v} must be within [0, 1)")),
        None => Ok(()),
    }
}
