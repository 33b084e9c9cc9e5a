//! The run setup panel. Every field is text in `--set` syntax and goes through
//! `RunConfig::set`, the same code path as the CLI, so the app and `advseg train` cannot
//! disagree about what a setting means.

mod docs;
mod values;

use super::browse::{self, PathField};
use super::presets::Kind;
use super::state::UiState;
use crate::data::DataSpec;
use crate::train::methods;
use crate::train::RunConfig;
use std::collections::BTreeMap;
use values::{line_value, show_value, value_of};

pub use docs::setting_doc;

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
    "ema_decay",
    "seed",
    "eval_every",
    "snapshot_every",
    "checkpoint_every",
    "probes",
];

/// Shared settings the panel has no row for: they travel as extra `KEY=VALUE` lines, so a
/// loaded config keeps every key.
fn hidden_common() -> Vec<String> {
    crate::train::config::common_keys()
        .into_iter()
        .filter(|k| k != "method" && !COMMON.contains(&k.as_str()))
        .collect()
}

/// The panel's fields for a resolved configuration: shared keys first, then the method's.
fn panel_fields(cfg: &RunConfig) -> Result<Vec<(String, String)>, String> {
    let m = cfg.method_name().to_string();
    let common = toml::Table::try_from(&cfg.common).map_err(|e| e.to_string())?;
    let mut v = Vec::new();
    for k in COMMON {
        v.push((
            k.to_string(),
            common.get(*k).map(show_value).unwrap_or_default(),
        ));
    }
    for (k, x) in &cfg.method {
        v.push((format!("{m}.{k}"), show_value(x)));
    }
    Ok(v)
}

/// The `data` spec of a TOML config as written, if it sets one.
fn preset_data(text: &str) -> Option<String> {
    let t = text.parse::<toml::Table>().ok()?;
    Some(t.get("data")?.as_str()?.to_string())
}

/// The method's keys with the app's defaults, its demo preset (shared ones first).
pub fn default_fields(method: &str) -> Result<Vec<(String, String)>, String> {
    // Asked every frame by the panel: resolve each method's preset once.
    static CACHE: std::sync::Mutex<BTreeMap<String, Vec<(String, String)>>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = cache.get(method) {
        return Ok(v.clone());
    }
    let mut v = panel_fields(&super::presets::demo_config(method)?)?;
    // The preset's dataset spec as written (`size=48`), not re-printed in full.
    if let Some((_, text)) = super::presets::find(Kind::Demo, method, "") {
        if let Some(d) = preset_data(text) {
            v.iter_mut()
                .filter(|f| f.0 == "data")
                .for_each(|f| f.1 = d.clone());
        }
    }
    cache.insert(method.to_string(), v.clone());
    Ok(v)
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
        CamVid(p) | CamVidThings(p) | Voc(p) | Cityscapes(p) | Folder(p) => p,
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

/// The panel's fields holding the values of a resolved configuration (for "Load config"),
/// and extra `KEY=VALUE` lines for the shared keys the panel does not show that differ from
/// the method's defaults.
pub fn fields_from_config(cfg: &RunConfig) -> Result<(BTreeMap<String, String>, String), String> {
    let f = panel_fields(cfg)?.into_iter().collect();
    let base = RunConfig::new(cfg.method_name()).map_err(|e| e.to_string())?;
    let t = toml::Table::try_from(&cfg.common).map_err(|e| e.to_string())?;
    let d = toml::Table::try_from(&base.common).map_err(|e| e.to_string())?;
    let mut extra = String::new();
    for k in hidden_common() {
        if let Some(v) = t.get(&k).filter(|v| d.get(&k) != Some(*v)) {
            extra += &format!("{k}={}\n", line_value(v));
        }
    }
    Ok((f, extra))
}

/// Puts a TOML run config (as `advseg train --config` takes) into the panel: its method, every
/// field, and the keys the panel has no row for as extra lines (replacing the old ones, which
/// would override the file). Without a `data` key the panel's dataset stays.
pub fn load_config_text(
    st: &mut UiState,
    text: &str,
    origin: &std::path::Path,
) -> Result<(), String> {
    let table = text
        .parse::<toml::Table>()
        .map_err(|e| format!("{}: {e}", origin.display()))?;
    let method = table
        .get("method")
        .and_then(|m| m.as_str())
        .unwrap_or(&st.method)
        .to_string();
    let mut cfg = RunConfig::new(&method).map_err(|e| e.to_string())?;
    // The dataset as typed, kept (not re-printed) when the file does not set one.
    let kept_data = (!table.contains_key("data"))
        .then(|| {
            st.fields
                .get(&st.method)
                .and_then(|f| f.get("data"))
                .cloned()
        })
        .flatten()
        .filter(|d| d.trim().parse::<DataSpec>().is_ok());
    if let Some(d) = &kept_data {
        cfg.common.data = d.trim().parse().map_err(|e| format!("data: {e}"))?;
    }
    cfg.apply_toml(text, origin).map_err(|e| e.to_string())?;
    let (mut fields, extra) = fields_from_config(&cfg)?;
    if let Some(d) = kept_data.or_else(|| preset_data(text)) {
        fields.insert("data".into(), d);
    }
    st.method = method.clone();
    st.fields.insert(method, fields);
    st.extra_set = extra;
    Ok(())
}

/// Reads a TOML run config file into the panel ([`load_config_text`]).
pub fn load_config_file(st: &mut UiState, path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    load_config_text(st, &text, path)
}

/// Applies the method's demo or paper preset (for the panel's arch) to the panel.
pub fn apply_preset(st: &mut UiState, kind: super::presets::Kind) -> Result<String, String> {
    let arch = st
        .fields
        .get(&st.method)
        .and_then(|f| f.get("arch"))
        .cloned()
        .unwrap_or_default();
    let (name, text) = super::presets::find(kind, &st.method, &arch)
        .ok_or_else(|| format!("no {} preset for {}", kind.folder(), st.method))?;
    let origin = super::presets::origin(kind, name);
    load_config_text(st, text, &origin)?;
    Ok(format!("applied preset {}", origin.display()))
}

/// Where a `--set KEY=VALUE` preset goes in the panel: a field (shared panel keys, the method's
/// keys as `method.key`) or, for a shared key the panel has no row for, an extra line.
pub enum PresetSlot {
    Field(String),
    Extra,
}

pub fn preset_slot(method: &str, key: &str) -> PresetSlot {
    if COMMON.contains(&key) || key.contains('.') {
        PresetSlot::Field(key.to_string())
    } else if hidden_common().iter().any(|k| k == key) {
        PresetSlot::Extra
    } else {
        PresetSlot::Field(format!("{method}.{key}"))
    }
}

/// Checks `--set` presets as `advseg train --set` does: unknown keys, other methods' keys and
/// values that do not fit are errors. Without a method, a key any method takes is accepted
/// (the app's method is only known once its saved state is read).
pub fn check_presets(method: Option<&str>, presets: &[(String, String)]) -> Result<(), String> {
    let all: Vec<&str> = methods::METHODS.iter().map(|m| m.name).collect();
    let candidates: Vec<&str> = method.map_or(all, |m| vec![m]);
    for (k, v) in presets {
        let mut first_err = None;
        let fits = candidates.iter().any(|m| {
            let r = RunConfig::new(m)
                .map_err(|e| e.to_string())
                .and_then(|mut cfg| {
                    if k == "data" {
                        v.trim()
                            .parse::<DataSpec>()
                            .map_err(|e| format!("data: {e}"))?;
                    }
                    cfg.set(k, value_of(k, v)?).map_err(|e| e.to_string())
                });
            match r {
                Ok(()) => true,
                Err(e) => {
                    first_err.get_or_insert(e);
                    false
                }
            }
        });
        if !fits {
            return Err(format!(
                "--set {k}={v}: {}",
                first_err.unwrap_or_else(|| "not a setting".into())
            ));
        }
    }
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
pub fn setup_ui(
    ui: &mut egui::Ui,
    st: &mut UiState,
    editable: bool,
    preset_msg: &mut Option<Result<String, String>>,
) -> Option<PathField> {
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
                    let doc = setting_doc(k).map(|d| format!("{d}\n")).unwrap_or_default();
                    let l = ui
                        .label(label)
                        .on_hover_text(format!("{doc}--set {k}=…  (default {d})"));
                    let v = fields.entry(k.clone()).or_insert_with(|| d.clone());
                    if k == "arch" || k == "disc" {
                        egui::ComboBox::from_id_salt(k.as_str())
                            .selected_text(v.clone())
                            .show_ui(ui, |ui| {
                                for a in crate::nn::registry::ARCH_REGISTRY {
                                    ui.selectable_value(v, a.name.to_string(), a.name)
                                        .on_hover_text(a.about);
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
        ui.horizontal(|ui| {
            for (kind, label, about) in [
                (
                    Kind::Demo,
                    "Demo preset",
                    "the app's demo: trains in minutes, every term of the method on",
                ),
                (
                    Kind::Paper,
                    "Paper defaults",
                    "the paper's settings for this method (and arch, where they differ)",
                ),
            ] {
                if ui.button(label).on_hover_text(about).clicked() {
                    *preset_msg = Some(apply_preset(st, kind));
                }
            }
        });
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
            assert!(c.common.iters <= 400, "{}: a demo is short", m.name);
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
        let back = build_config("advsemi", &st.fields["advsemi"], &st.extra_set).unwrap();
        assert_eq!(back, c);
        let _ = std::fs::remove_file(p);
    }

    /// Keys the panel has no row for survive Load then Save (they were dropped silently).
    #[test]
    fn load_keeps_keys_the_panel_does_not_show() {
        let text = r#"
method = "advsemi"
data = "synthetic:size=32,n=8,val=2"
ndf = 4
random_mirror = true
workers = 1
bn_mode = "train"
eval_split = "train"
split_file = "splits/a.txt"
momentum = 0.8
[advsemi]
mask_t = 0.3
"#;
        let origin = std::path::Path::new("x.toml");
        let mut want = RunConfig::new("advsemi").unwrap();
        want.apply_toml(text, origin).unwrap();
        let mut st = UiState {
            extra_set: "ndf=99".into(),
            ..UiState::default()
        };
        load_config_text(&mut st, text, origin).unwrap();
        let got = build_config("advsemi", &st.fields["advsemi"], &st.extra_set).unwrap();
        let same = |a: &RunConfig, b: &RunConfig| {
            super::super::presets::as_f32(a) == super::super::presets::as_f32(b)
        };
        assert!(same(&got, &want), "extra lines: {}", st.extra_set);
        assert_eq!(got.common.ndf, Some(4));
        assert!(got.common.random_mirror);
        // Saved and loaded again: the same run.
        let mut st2 = UiState::default();
        load_config_text(&mut st2, &got.to_toml(), origin).unwrap();
        let again = build_config("advsemi", &st2.fields["advsemi"], &st2.extra_set).unwrap();
        assert!(same(&again, &want));
    }

    #[test]
    fn presets_from_the_command_line_are_checked() {
        let kv = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(check_presets(None, &kv("iters", "100")).is_ok());
        assert!(check_presets(None, &kv("ndf", "4")).is_ok());
        assert!(check_presets(None, &kv("advsemi.mask_t", "0.3")).is_ok());
        assert!(check_presets(None, &kv("encoding", "product")).is_ok());
        let e = check_presets(None, &kv("bogus", "1")).unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        assert!(check_presets(Some("supervised"), &kv("mask_t", "0.3")).is_err());
        assert!(check_presets(None, &kv("iters", "lots")).is_err());
        assert!(matches!(preset_slot("advsemi", "ndf"), PresetSlot::Extra));
        assert!(
            matches!(preset_slot("advsemi", "mask_t"), PresetSlot::Field(k) if k == "advsemi.mask_t")
        );
    }
}
