//! Embeds every `shaders/*.wgsl` into the binary, keyed by file stem, so adding a shader needs
//! no registration by hand. `shaders/variants/NAME.wgsl` files are composed here with the base
//! shader they name (`// @variant-of BASE`): each `// @region R` section of the variant replaces
//! the base's lines from `// @region R` to `// @end-region`, and the result is embedded as NAME.
use std::collections::BTreeMap;
use std::{env, fs, path::Path};

fn wgsl_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn region_name(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix("// @region ")?;
    rest.split(|c: char| c == ':' || c.is_whitespace())
        .next()
        .filter(|s| !s.is_empty())
}

/// The base shader with the variant's regions swapped in; panics (failing the build) on a
/// malformed variant, naming the file.
fn compose(base: &str, variant: &str, file: &Path) -> String {
    let mut parts: BTreeMap<String, String> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for line in variant.lines() {
        if let Some(r) = region_name(line) {
            cur = Some(r.to_string());
            parts.entry(r.to_string()).or_default();
        } else if let Some(r) = &cur {
            let p = parts.get_mut(r).unwrap();
            p.push_str(line);
            p.push('\n');
        }
    }
    let mut out = String::new();
    let mut skipping = false;
    let mut used = 0;
    for line in base.lines() {
        if skipping {
            if line.trim() == "// @end-region" {
                skipping = false;
            }
            continue;
        }
        if let Some(r) = region_name(line) {
            if let Some(text) = parts.get(r) {
                out.push_str(text);
                skipping = true;
                used += 1;
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(
        used == parts.len(),
        "{}: a region is missing from its base shader",
        file.display()
    );
    out
}

fn main() {
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("shaders");
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-changed={}", root.join("variants").display());
    let mut out = String::from("/// (name, WGSL source) of every shader in `shaders/`.\npub const SHADERS: &[(&str, &str)] = &[\n");
    for p in wgsl_files(&root) {
        println!("cargo:rerun-if-changed={}", p.display());
        let stem = p.file_stem().unwrap().to_string_lossy();
        out.push_str(&format!(
            "    ({stem:?}, include_str!({:?})),\n",
            p.display().to_string()
        ));
    }
    out.push_str("];\n");
    let gen = Path::new(&env::var("OUT_DIR").unwrap()).join("variants");
    fs::create_dir_all(&gen).unwrap();
    out.push_str("/// (name, base shader, composed WGSL source) of every `shaders/variants/*.wgsl`.\npub const VARIANTS: &[(&str, &str, &str)] = &[\n");
    for p in wgsl_files(&root.join("variants")) {
        println!("cargo:rerun-if-changed={}", p.display());
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        let variant = fs::read_to_string(&p).unwrap();
        let of = variant
            .lines()
            .find_map(|l| l.trim().strip_prefix("// @variant-of "))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| panic!("{}: no `// @variant-of BASE` line", p.display()));
        let base = fs::read_to_string(root.join(format!("{of}.wgsl")))
            .unwrap_or_else(|e| panic!("{}: base shader {of}: {e}", p.display()));
        let text = compose(&base, &variant, &p);
        let file = gen.join(format!("{stem}.wgsl"));
        fs::write(&file, &text).unwrap();
        out.push_str(&format!(
            "    ({stem:?}, {of:?}, include_str!({:?})),\n",
            file.display().to_string()
        ));
    }
    out.push_str("];\n");
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("shaders.rs"),
        out,
    )
    .unwrap();
}
