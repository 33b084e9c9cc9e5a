//! Embeds every `shaders/*.wgsl` into the binary, keyed by file stem, so adding a shader needs
//! no registration by hand. The sources are composed first (`// @include NAME` from
//! `shaders/include/`, `shaders/variants/` regions): see `src/gpu/wgsl_compose.rs`, which the
//! naga tests use too. The op codes of `shaders/include/codes.wgsl` become Rust constants
//! (`advseg::gpu::codes`), so both sides read one definition.
use std::{env, fs, path::Path};

#[path = "src/gpu/wgsl_compose.rs"]
#[allow(dead_code)]
mod wgsl_compose;

fn main() {
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("shaders");
    let out_dir = Path::new(&env::var("OUT_DIR").unwrap()).to_path_buf();
    println!("cargo:rerun-if-changed=src/gpu/wgsl_compose.rs");
    for d in [root.clone(), root.join("variants"), root.join("include")] {
        println!("cargo:rerun-if-changed={}", d.display());
    }
    // A malformed shader fails the build, naming the file.
    let all = wgsl_compose::compose_all(&root).unwrap_or_else(|e| panic!("{e}"));
    let gen = out_dir.join("wgsl");
    fs::create_dir_all(&gen).unwrap();
    let mut shaders = String::from(
        "/// (name, composed WGSL source) of every shader in `shaders/`.\npub const SHADERS: &[(&str, &str)] = &[\n",
    );
    let mut variants = String::from("/// (name, base shader, composed WGSL source) of every `shaders/variants/*.wgsl`.\npub const VARIANTS: &[(&str, &str, &str)] = &[\n");
    for c in &all {
        for p in &c.inputs {
            println!("cargo:rerun-if-changed={}", p.display());
        }
        let file = gen.join(format!("{}.wgsl", c.name));
        fs::write(&file, &c.source).unwrap();
        let file = file.display().to_string();
        match &c.base {
            None => shaders.push_str(&format!("    ({:?}, include_str!({file:?})),\n", c.name)),
            Some(b) => variants.push_str(&format!(
                "    ({:?}, {b:?}, include_str!({file:?})),\n",
                c.name
            )),
        }
    }
    shaders.push_str("];\n");
    variants.push_str("];\n");
    fs::write(out_dir.join("shaders.rs"), shaders + &variants).unwrap();

    let codes_file = root.join("include").join("codes.wgsl");
    let src =
        fs::read_to_string(&codes_file).unwrap_or_else(|e| panic!("{}: {e}", codes_file.display()));
    let codes = wgsl_compose::parse_codes(&src, &codes_file).unwrap_or_else(|e| panic!("{e}"));
    let mut rs = String::new();
    for (name, v) in &codes {
        rs.push_str(&format!("pub const {name}: u32 = {v};\n"));
    }
    rs.push_str("/// Every code, for the naga test that reads them back from the WGSL.\npub const ALL: &[(&str, u32)] = &[\n");
    for (name, _) in &codes {
        rs.push_str(&format!("    ({name:?}, {name}),\n"));
    }
    rs.push_str("];\n");
    fs::write(out_dir.join("codes.rs"), rs).unwrap();
}
