//! How the embedded WGSL is made from `shaders/`: shared by `build.rs` (which embeds the
//! result; it includes this file by path) and the naga tests (which compose the files on disk
//! again and check they match), so both see the same source.
//!
//! - `// @include NAME` lines are replaced by `shaders/include/NAME.wgsl` (WGSL has no
//!   includes: shared helpers such as `linear_id` and the op codes live there once).
//! - `shaders/variants/NAME.wgsl` (`// @variant-of BASE`) replaces each `// @region R` section
//!   of BASE, up to its `// @end-region`, by the variant's section R.
//! - `shaders/include/codes.wgsl` holds the op codes as `const NAME: u32 = Vu;`, which build.rs
//!   also writes as Rust constants (`crate::gpu::codes`).
//!
//! Pure std, no panics: errors are strings naming the file.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// One composed shader.
pub struct Composed {
    /// File stem: the name kernels are dispatched by.
    pub name: String,
    /// For a variant, the base shader it was composed with.
    pub base: Option<String>,
    /// The WGSL after splicing.
    pub source: String,
    /// Every file it was made from (for `cargo:rerun-if-changed`).
    pub inputs: Vec<PathBuf>,
}

/// The `.wgsl` files directly in `dir`, sorted.
pub fn wgsl_files(dir: &Path) -> Vec<PathBuf> {
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

fn read(p: &Path) -> Result<String, String> {
    fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn region_name(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix("// @region ")?;
    rest.split(|c: char| c == ':' || c.is_whitespace())
        .next()
        .filter(|s| !s.is_empty())
}

/// The base shader with the variant's regions swapped in.
pub fn compose_variant(base: &str, variant: &str, file: &Path) -> Result<String, String> {
    let mut parts: BTreeMap<String, String> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for line in variant.lines() {
        if let Some(r) = region_name(line) {
            cur = Some(r.to_string());
            parts.entry(r.to_string()).or_default();
        } else if let Some(p) = cur.as_ref().and_then(|r| parts.get_mut(r)) {
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
        if let Some(text) = region_name(line).and_then(|r| parts.get(r)) {
            out.push_str(text);
            skipping = true;
            used += 1;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if used != parts.len() {
        return Err(format!(
            "{}: a region is missing from its base shader",
            file.display()
        ));
    }
    Ok(out)
}

/// `src` with every `// @include NAME` line replaced by `include_dir/NAME.wgsl`; the files
/// read are pushed to `inputs`. Includes do not nest, and each is spliced at most once.
pub fn splice_includes(
    src: &str,
    file: &Path,
    include_dir: &Path,
    inputs: &mut Vec<PathBuf>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for line in src.lines() {
        let Some(name) = line.trim().strip_prefix("// @include ") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let name = name.trim();
        if seen.contains(&name) {
            return Err(format!("{}: `@include {name}` twice", file.display()));
        }
        seen.push(name);
        let p = include_dir.join(format!("{name}.wgsl"));
        let text = read(&p).map_err(|e| format!("{}: @include {name}: {e}", file.display()))?;
        if text.lines().any(|l| l.trim().starts_with("// @include ")) {
            return Err(format!("{}: includes do not nest", p.display()));
        }
        out.push_str(&format!("// ---- begin @include {name}\n"));
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("// ---- end @include {name}\n"));
        inputs.push(p);
    }
    Ok(out)
}

/// Every shader of `root` (= `shaders/`) composed: the top-level files, then the variants.
pub fn compose_all(root: &Path) -> Result<Vec<Composed>, String> {
    let inc = root.join("include");
    let mut all = Vec::new();
    for p in wgsl_files(root) {
        let mut inputs = vec![p.clone()];
        let source = splice_includes(&read(&p)?, &p, &inc, &mut inputs)?;
        all.push(Composed {
            name: stem(&p),
            base: None,
            source,
            inputs,
        });
    }
    for p in wgsl_files(&root.join("variants")) {
        let variant = read(&p)?;
        let of = variant
            .lines()
            .find_map(|l| l.trim().strip_prefix("// @variant-of "))
            .map(|s| s.trim().to_string())
            .ok_or_else(|| format!("{}: no `// @variant-of BASE` line", p.display()))?;
        let bp = root.join(format!("{of}.wgsl"));
        let base = read(&bp).map_err(|e| format!("{}: base shader: {e}", p.display()))?;
        let mut inputs = vec![p.clone(), bp];
        let text = compose_variant(&base, &variant, &p)?;
        let source = splice_includes(&text, &p, &inc, &mut inputs)?;
        all.push(Composed {
            name: stem(&p),
            base: Some(of),
            source,
            inputs,
        });
    }
    Ok(all)
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// The `const NAME: u32 = Vu;` lines of a codes file, in order; any other non-comment line is
/// an error, and so are repeated names or values within one `// @group`.
pub fn parse_codes(src: &str, file: &Path) -> Result<Vec<(String, u32)>, String> {
    let mut codes = Vec::new();
    let mut group: Vec<u32> = Vec::new();
    for (i, line) in src.lines().enumerate() {
        let l = line.trim();
        let at = || format!("{}:{}", file.display(), i + 1);
        if l.starts_with("// @group") {
            group.clear();
            continue;
        }
        if l.is_empty() || l.starts_with("//") {
            continue;
        }
        let parsed = l
            .strip_prefix("const ")
            .and_then(|r| r.split_once(": u32 = "))
            .and_then(|(n, v)| {
                let v = v.split("//").next()?.trim().strip_suffix("u;")?;
                Some((n.trim().to_string(), v.parse::<u32>().ok()?))
            });
        let (name, v) =
            parsed.ok_or_else(|| format!("{}: expected `const NAME: u32 = Vu;`", at()))?;
        if codes.iter().any(|(n, _)| *n == name) {
            return Err(format!("{}: {name} defined twice", at()));
        }
        if group.contains(&v) {
            return Err(format!("{}: {name} repeats value {v} in its group", at()));
        }
        group.push(v);
        codes.push((name, v));
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_and_refuse_duplicates() {
        let f = Path::new("codes.wgsl");
        let ok = "// @group a\nconst A_X: u32 = 0u;\nconst A_Y: u32 = 1u; // y\n// @group b\nconst B_X: u32 = 0u;\n";
        let c = parse_codes(ok, f).unwrap();
        assert_eq!(c, [("A_X".into(), 0), ("A_Y".into(), 1), ("B_X".into(), 0)]);
        let e = parse_codes("const A: u32 = 0u;\nconst B: u32 = 0u;\n", f).unwrap_err();
        assert!(e.contains("codes.wgsl:2: B repeats value 0"), "{e}");
        let e = parse_codes("const A: f32 = 0.0;\n", f).unwrap_err();
        assert!(e.contains("codes.wgsl:1: expected"), "{e}");
    }

    #[test]
    fn variants_swap_regions_and_name_missing_ones() {
        let base = "a\n// @region r\nold\n// @end-region\nb\n";
        let v = "// @variant-of base\n// @region r: faster\nnew\n";
        let f = Path::new("v.wgsl");
        assert_eq!(compose_variant(base, v, f).unwrap(), "a\nnew\nb\n");
        let e = compose_variant(base, "// @region q\nx\n", f).unwrap_err();
        assert!(e.contains("v.wgsl: a region is missing"), "{e}");
    }
}
