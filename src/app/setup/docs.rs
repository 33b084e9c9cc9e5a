//! Tooltips of the setup fields, read from the `///` comments of the config structs' fields.

use std::collections::BTreeMap;

/// The sources whose `///` field comments document the settings: the shared `TrainConfig`
/// and each method's config struct. Reading them keeps the tooltips and the docs one text.
const DOC_SOURCES: &[(&str, &str, &str)] = &[
    ("", "TrainConfig", include_str!("../../train/config.rs")),
    (
        "advsemi",
        "AdvSemiConfig",
        include_str!("../../train/methods/advsemi.rs"),
    ),
    (
        "gan-cegu",
        "GanCeguConfig",
        include_str!("../../train/methods/gan_cegu.rs"),
    ),
    (
        "ssgan",
        "SsGanConfig",
        include_str!("../../train/methods/ssgan.rs"),
    ),
    (
        "eader",
        "EaderConfig",
        include_str!("../../train/methods/eader.rs"),
    ),
    (
        "rrm",
        "RrmConfig",
        include_str!("../../train/methods/rrm_config.rs"),
    ),
];

/// The doc comment of a field of `pub struct NAME { … }` in Rust source.
fn field_doc(src: &str, strukt: &str, field: &str) -> Option<String> {
    let start = src.find(&format!("pub struct {strukt} {{"))?;
    let mut doc: Vec<&str> = vec![];
    for line in src[start..].lines().skip(1) {
        let l = line.trim();
        if l == "}" {
            break;
        }
        if let Some(d) = l.strip_prefix("///") {
            doc.push(d.trim());
            continue;
        }
        let name = l
            .strip_prefix("pub ")
            .and_then(|r| r.split_once(':'))
            .map(|(n, _)| n.trim());
        if name == Some(field) && !doc.is_empty() {
            return Some(doc.join(" "));
        }
        if !l.starts_with("#[") {
            doc.clear();
        }
    }
    None
}

/// The documentation of a panel key (`name` or `method.name`), if the source has any.
pub fn setting_doc(key: &str) -> Option<String> {
    static CACHE: std::sync::Mutex<BTreeMap<String, Option<String>>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(key.to_string())
        .or_insert_with(|| {
            let (section, name) = key.split_once('.').unwrap_or(("", key));
            DOC_SOURCES
                .iter()
                .filter(|d| d.0 == section)
                .find_map(|d| field_doc(d.2, d.1, name))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_have_their_documentation() {
        assert!(setting_doc("advsemi.mask_t").unwrap().contains("T_semi"));
        assert!(setting_doc("batch").unwrap().contains("Images per batch"));
        assert!(setting_doc("ndf").unwrap().contains("fcdisc"));
        assert!(setting_doc("rrm.dense_weight")
            .unwrap()
            .contains("dense energy"));
        assert_eq!(setting_doc("bogus"), None);
    }
}
