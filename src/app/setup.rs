//! The run setup panel. Every field is text in `--set` syntax and goes through
//! `RunConfig::set`, the same code path as the CLI, so the app and `advseg train` cannot
//! disagree about what a setting means.

use super::browse::{self, PathField};
use super::state::UiState;
use crate::data::DataSpec;
use crate::train::config::parse_value;
use crate::train::methods;
use crate::train::RunConfig;
use std::collections::BTreeMap;

/// Shared settings shown in the panel, in display order.
pub const COMMON: &[&str] = &[
    "data",
    "arch",
    "disc",
    "iters",
    "batch",
    "crop",
    "labeled_fraction",
    "lr",
    "seed",
    "eval_every",
    "snapshot_every",
    "checkpoint_every",
    "probes",
];

/// The app opens on a demo that trains in seconds (the CLI's defaults are paper-scale).
const APP_DEFAULTS: &[(&str, &str)] = &[
    ("data", "synthetic:size=48,n=64,val=8"),
    ("iters", "400"),
    ("batch", "4"),
    ("eval_every", "50"),
    ("snapshot_every", "10"),
    ("checkpoint_every", "200"),
    ("probes", "2"),
];

fn show_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(show_value).collect::<Vec<_>>().join(","),
        // Settings are f32: print the f32, not the widened f64's noise digits.
        toml::Value::Float(f) => {
            let s = (*f as f32).to_string();
            if s.contains(['.', 'e', 'i', 'N']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        v => v.to_string(),
    }
}

/// The method's keys with their defaults (shared ones first).
pub fn default_fields(method: &str) -> Result<Vec<(String, String)>, String> {
    let cfg = RunConfig::new(method).map_err(|e| e.to_string())?;
    let common = toml::Table::try_from(&cfg.common).map_err(|e| e.to_string())?;
    let mut v = Vec::new();
    for k in COMMON {
        let app = APP_DEFAULTS
            .iter()
            .find(|a| a.0 == *k)
            .map(|a| a.1.to_string());
        let d = app.unwrap_or_else(|| common.get(*k).map(show_value).unwrap_or_default());
        v.push((k.to_string(), d));
    }
    for (k, x) in &cfg.method {
        v.push((format!("{method}.{k}"), show_value(x)));
    }
    Ok(v)
}

/// Turns a field's text into the TOML value `--set` would give it; `a,b` lists and `1/8`
/// fractions are accepted as the CLI flags accept them.
fn value_of(key: &str, text: &str) -> Result<toml::Value, String> {
    let t = text.trim();
    if key == "labeled_fraction" {
        if let Some((a, b)) = t.split_once('/') {
            let (a, b): (f64, f64) = (
                a.trim()
                    .parse()
                    .map_err(|_| format!("{key}: {t:?} is not a fraction"))?,
                b.trim()
                    .parse()
                    .map_err(|_| format!("{key}: {t:?} is not a fraction"))?,
            );
            return Ok(toml::Value::Float(a / b));
        }
    }
    // Number lists (`crop`, RRM's `cam_scales`, …) are shown as `a,b,c`; other text with
    // commas (a `--data` spec) stays a string.
    if t.contains(',') && !t.starts_with('[') {
        if let v @ toml::Value::Array(_) = parse_value(&format!("[{t}]")) {
            return Ok(v);
        }
    }
    Ok(parse_value(t))
}

/// Builds the run configuration from the panel's fields and extra `KEY=VALUE` lines.
pub fn build_config(
    method: &str,
    fields: &BTreeMap<String, String>,
    extra: &str,
) -> Result<RunConfig, String> {
    let mut cfg = RunConfig::new(method).map_err(|e| e.to_string())?;
    for (k, _) in default_fields(method)? {
        let Some(text) = fields.get(&k) else { continue };
        if text.trim().is_empty() {
            continue;
        }
        if k == "data" {
            text.trim()
                .parse::<DataSpec>()
                .map_err(|e| format!("data: {e}"))?;
        }
        cfg.set(&k, value_of(&k, text)?)
            .map_err(|e| format!("{k}: {e}"))?;
    }
    for line in extra.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("{line:?}: expected KEY=VALUE"))?;
        cfg.set(k.trim(), value_of(k.trim(), v)?)
            .map_err(|e| format!("{line}: {e}"))?;
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

/// A dataset folder that does not exist is reported before a run starts (the loader would
/// only say so on the training thread).
pub fn check_data_dir(spec: &DataSpec) -> Result<(), String> {
    use crate::data::DataSpec::*;
    let dir = match spec {
        Synthetic(_) => return Ok(()),
        CamVid(p) | Voc(p) | Cityscapes(p) | Folder(p) => p,
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "data: the dataset folder {} does not exist",
            dir.display()
        ))
    }
}

/// The panel's fields holding the values of a resolved configuration (for "Load config").
pub fn fields_from_config(cfg: &RunConfig) -> Result<BTreeMap<String, String>, String> {
    let m = cfg.method_name().to_string();
    let common = toml::Table::try_from(&cfg.common).map_err(|e| e.to_string())?;
    let mut f = BTreeMap::new();
    for k in COMMON {
        f.insert(
            k.to_string(),
            common.get(*k).map(show_value).unwrap_or_default(),
        );
    }
    for (k, v) in &cfg.method {
        f.insert(format!("{m}.{k}"), show_value(v));
    }
    Ok(f)
}

/// Reads a TOML run config (as `advseg train --config` takes) into the panel.
pub fn load_config_file(st: &mut UiState, path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let method = text
        .parse::<toml::Table>()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .get("method")
        .and_then(|m| m.as_str())
        .unwrap_or(&st.method)
        .to_string();
    let mut cfg = RunConfig::new(&method).map_err(|e| e.to_string())?;
    cfg.apply_toml(&text, path).map_err(|e| e.to_string())?;
    st.method = method.clone();
    st.fields.insert(method, fields_from_config(&cfg)?);
    Ok(())
}

/// Fills in defaults for keys the persisted state does not have yet.
pub fn ensure_fields(st: &mut UiState) {
    let m = st.method.clone();
    if let Ok(d) = default_fields(&m) {
        let f = st.fields.entry(m).or_default();
        for (k, v) in d {
            f.entry(k).or_insert(v);
        }
    }
}

/// Draws the setup fields, editing `st` in place; returns the path field whose "Browse…"
/// button was clicked.
pub fn setup_ui(ui: &mut egui::Ui, st: &mut UiState, editable: bool) -> Option<PathField> {
    let mut browse = None;
    ui.add_enabled_ui(editable, |ui| {
        egui::ComboBox::from_label("method")
            .selected_text(st.method.clone())
            .show_ui(ui, |ui| {
                for m in methods::METHODS {
                    ui.selectable_value(&mut st.method, m.name.to_string(), m.name)
                        .on_hover_text(m.about);
                }
            });
        ensure_fields(st);
        let method = st.method.clone();
        let Ok(defaults) = default_fields(&method) else {
            return;
        };
        let fields = st.fields.entry(method.clone()).or_default();
        egui::Grid::new("setup_fields")
            .num_columns(2)
            .striped(true)
            .show(ui, |ui| {
                for (k, d) in &defaults {
                    let label = k.strip_prefix(&format!("{method}.")).unwrap_or(k);
                    let l = ui
                        .label(label)
                        .on_hover_text(format!("--set {k}=…  (default {d})"));
                    let v = fields.entry(k.clone()).or_insert_with(|| d.clone());
                    if k == "arch" || k == "disc" {
                        egui::ComboBox::from_id_salt(k.as_str())
                            .selected_text(v.clone())
                            .show_ui(ui, |ui| {
                                for (a, about) in crate::nn::arch::ARCHS {
                                    ui.selectable_value(v, a.to_string(), *a)
                                        .on_hover_text(*about);
                                }
                            })
                            .response
                            .labelled_by(l.id);
                    } else if k == "data" {
                        ui.horizontal(|ui| {
                            ui.add(
                                egui::TextEdit::singleline(v)
                                    .desired_width(180.0)
                                    .id_salt(k.as_str()),
                            )
                            .labelled_by(l.id);
                            if browse::button(ui, PathField::Data, true) {
                                browse = Some(PathField::Data);
                            }
                        });
                    } else {
                        ui.add(
                            egui::TextEdit::singleline(v)
                                .desired_width(180.0)
                                .id_salt(k.as_str()),
                        )
                        .labelled_by(l.id);
                    }
                    ui.end_row();
                }
            });
        if ui.button("Reset to defaults").clicked() {
            *fields = defaults.into_iter().collect();
        }
        let l = ui.label("extra settings (KEY=VALUE per line, as --set):");
        ui.add(
            egui::TextEdit::multiline(&mut st.extra_set)
                .desired_rows(2)
                .desired_width(260.0),
        )
        .labelled_by(l.id);
        ui.horizontal(|ui| {
            let l = ui.label("run dir");
            ui.add(egui::TextEdit::singleline(&mut st.run_dir).desired_width(180.0))
                .labelled_by(l.id)
                .on_hover_text("empty: keep the run in memory (no checkpoints)");
            if browse::button(ui, PathField::RunDir, true) {
                browse = Some(PathField::RunDir);
            }
        });
    });
    browse
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(m: &str) -> BTreeMap<String, String> {
        default_fields(m).unwrap().into_iter().collect()
    }

    #[test]
    fn defaults_build() {
        for m in methods::METHODS {
            let c = build_config(m.name, &fields(m.name), "").unwrap();
            assert_eq!(c.common.iters, 400);
        }
    }

    #[test]
    fn config_roundtrip_through_toml() {
        let mut f = fields("advsemi");
        f.insert("advsemi.lambda_adv".into(), "0.02".into());
        f.insert("iters".into(), "123".into());
        let c = build_config("advsemi", &f, "").unwrap();
        let p = std::env::temp_dir().join(format!("advseg_app_cfg_{}.toml", std::process::id()));
        std::fs::write(&p, c.to_toml()).unwrap();
        let mut st = UiState::default();
        load_config_file(&mut st, &p).unwrap();
        let back = build_config("advsemi", &st.fields["advsemi"], "").unwrap();
        assert_eq!(back, c);
        let _ = std::fs::remove_file(p);
    }

    #[test]
    fn set_semantics_and_errors() {
        let mut f = fields("advsemi");
        f.insert("crop".into(), "32,40".into());
        f.insert("labeled_fraction".into(), "1/4".into());
        f.insert("advsemi.mask_t".into(), "0.3".into());
        let c = build_config("advsemi", &f, "seed=7").unwrap();
        assert_eq!(c.common.crop, Some([32, 40]));
        assert_eq!(c.common.labeled_fraction, 0.25);
        assert_eq!(c.common.seed, 7);
        assert!((c.method["mask_t"].as_float().unwrap() - 0.3).abs() < 1e-6);
        f.insert("data".into(), "nonsense:x".into());
        assert!(build_config("advsemi", &f, "")
            .unwrap_err()
            .contains("data"));
        assert!(build_config("advsemi", &fields("advsemi"), "bogus=1").is_err());
    }
}
