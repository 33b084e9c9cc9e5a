//! Run presets: the TOML files under `assets/presets/`, embedded so the app works from any
//! folder. `demo/<method>.toml` is what the app opens on (seconds per run, every term of the
//! method switched on within its length); `paper/<method>[-<arch>].toml` holds the paper's
//! settings, the arch-specific file winning. Both are plain `advseg train --config` files.

use crate::train::RunConfig;
use std::path::Path;

macro_rules! presets {
    ($dir:literal: $($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../assets/presets/", $dir, "/", $name, ".toml")))),*]
    };
}

/// (file stem, text) of the demo presets, one per method.
pub const DEMO: &[(&str, &str)] = presets!("demo":
    "supervised", "advsemi", "gan-cegu", "ssgan", "eader", "rrm");

/// (file stem, text) of the paper presets: `<method>` or `<method>-<arch>`.
pub const PAPER: &[(&str, &str)] = presets!("paper":
    "supervised", "advsemi", "gan-cegu", "ssgan", "eader", "rrm");

/// The kinds of preset the setup panel offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Demo,
    Paper,
}

impl Kind {
    pub fn folder(self) -> &'static str {
        match self {
            Kind::Demo => "demo",
            Kind::Paper => "paper",
        }
    }
}

/// The preset of `kind` for the method (and arch, for paper presets): (file stem, text).
pub fn find(kind: Kind, method: &str, arch: &str) -> Option<(&'static str, &'static str)> {
    let list = match kind {
        Kind::Demo => DEMO,
        Kind::Paper => PAPER,
    };
    let specific = format!("{method}-{arch}");
    list.iter()
        .find(|p| p.0 == specific)
        .or_else(|| list.iter().find(|p| p.0 == method))
        .copied()
}

/// The method's defaults with a preset applied (as `advseg train --config` applies it).
pub fn resolve(method: &str, text: &str, origin: &Path) -> Result<RunConfig, String> {
    let mut cfg = RunConfig::new(method).map_err(|e| e.to_string())?;
    cfg.apply_toml(text, origin).map_err(|e| e.to_string())?;
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

/// The demo configuration of a method (its defaults if it has no demo preset).
pub fn demo_config(method: &str) -> Result<RunConfig, String> {
    match find(Kind::Demo, method, "") {
        Some((name, text)) => resolve(method, text, &origin(Kind::Demo, name)),
        None => RunConfig::new(method).map_err(|e| e.to_string()),
    }
}

/// Where a preset lives in the source tree (for messages).
pub fn origin(kind: Kind, name: &str) -> std::path::PathBuf {
    Path::new("assets/presets")
        .join(kind.folder())
        .join(format!("{name}.toml"))
}

/// A configuration with every float as the f32 the settings hold (a default is a widened f32,
/// a value read from text the nearest f64), so equal settings compare equal.
#[cfg(test)]
pub(crate) fn as_f32(c: &RunConfig) -> RunConfig {
    fn v(x: &toml::Value) -> toml::Value {
        match x {
            toml::Value::Float(f) => toml::Value::Float(*f as f32 as f64),
            toml::Value::Array(a) => toml::Value::Array(a.iter().map(v).collect()),
            x => x.clone(),
        }
    }
    RunConfig {
        common: c.common.clone(),
        method: c.method.iter().map(|(k, x)| (k.clone(), v(x))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::methods::METHODS;

    #[test]
    fn every_method_has_both_presets_and_they_resolve() {
        for m in METHODS {
            for kind in [Kind::Demo, Kind::Paper] {
                let (name, text) = find(kind, m.name, "tiny")
                    .unwrap_or_else(|| panic!("no {kind:?} preset for {}", m.name));
                resolve(m.name, text, &origin(kind, name))
                    .unwrap_or_else(|e| panic!("{kind:?} preset {name}: {e}"));
            }
        }
    }

    /// The paper presets say what the defaults already are (the official code's values), plus
    /// the paper's networks.
    #[test]
    fn paper_presets_are_the_defaults_on_the_papers_networks() {
        for m in METHODS {
            let (name, text) = find(Kind::Paper, m.name, "").unwrap();
            let got = resolve(m.name, text, &origin(Kind::Paper, name)).unwrap();
            let mut want = RunConfig::new(m.name).unwrap();
            want.common.arch = got.common.arch.clone();
            want.common.ndf = got.common.ndf;
            assert_eq!(as_f32(&got), as_f32(&want), "{name}");
            assert_ne!(got.common.arch, "tiny", "{name}: the paper's network");
        }
    }

    /// The demo must show every term of its method within its length: the schedule knobs that
    /// switch terms on come before the end.
    #[test]
    fn demo_presets_switch_every_term_on() {
        for m in METHODS {
            let c = demo_config(m.name).unwrap();
            let iters = c.common.iters;
            assert!(iters <= 400, "{}: a demo is short", m.name);
            let get = |k: &str| c.method.get(k).and_then(|v| v.as_integer());
            let f = |k: &str| c.method.get(k).and_then(|v| v.as_float()).unwrap_or(0.0);
            match m.name {
                "advsemi" => {
                    assert!((get("semi_start").unwrap() as usize) < iters / 2);
                    assert!(f("lambda_semi") > 0.0 && f("lambda_semi_adv") > 0.0);
                    assert!(c.common.labeled_fraction < 1.0, "no unlabelled batch");
                }
                "gan-cegu" | "ssgan" => assert!(f("lambda_adv") > 0.0, "{}", m.name),
                "eader" => {
                    let phases = get("loc_steps").unwrap() + get("adv_steps").unwrap();
                    assert!(2 * phases as usize <= iters, "both phases twice");
                }
                "rrm" => assert!((get("cls_only_steps").unwrap() as usize) < iters / 2),
                _ => {}
            }
            assert!(
                c.common.lr >= 0.005,
                "{}: tiny nets need a larger lr",
                m.name
            );
        }
    }
}
