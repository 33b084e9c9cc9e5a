//! Setup field text ↔ TOML values: what a field shows for a value, and the value `--set` would
//! give a field's text (lists as `a,b`, fractions as `1/8`).

use crate::train::config::parse_value;

pub(super) fn show_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        // A one-element list keeps a trailing comma, so it reads back as a list.
        toml::Value::Array(a) if a.len() == 1 => format!("{},", show_value(&a[0])),
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

/// A value as an extra `KEY=VALUE` line's text: quoted strings stay strings whatever they
/// look like, lists keep their brackets.
pub(super) fn line_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(_) => v.to_string(),
        toml::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(line_value).collect::<Vec<_>>().join(", ")
        ),
        v => show_value(v),
    }
}

/// Turns a field's text into the TOML value `--set` would give it; `a,b` lists and `1/8`
/// fractions are accepted as the CLI flags accept them.
pub(super) fn value_of(key: &str, text: &str) -> Result<toml::Value, String> {
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
        if let v @ toml::Value::Array(_) = parse_value(&format!("[{}]", t.trim_end_matches(','))) {
            return Ok(v);
        }
    }
    Ok(parse_value(t))
}

#[cfg(test)]
mod tests {
    use super::super::{build_config, default_fields};
    use std::collections::BTreeMap;

    fn fields(m: &str) -> BTreeMap<String, String> {
        default_fields(m).unwrap().into_iter().collect()
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
