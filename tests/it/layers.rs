//! The library's layers stay acyclic: each module of `src/` belongs to one layer, and a file
//! may name (`crate::x`, `use crate::{x, ..}`) only modules of its own layer or of the layers
//! that layer lists, all of them below it. wgpu is named only in `src/gpu/` and in the app's
//! one egui-wgpu renderer. No GPU needed: the sources are read as text.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// (layer, its modules, the layers it may import), bottom up. A layer may list only layers
/// before it, so the graph has no cycle. Top-level items re-exported from `lib.rs`
/// (`crate::Error`, `crate::Gpu`, ...) count as their defining module (see `reexport`).
/// `src/main.rs` and `src/cli/` belong to the binary (`advseg::`, not `crate::`) and sit on top.
const LAYERS: &[(&str, &[&str], &[&str])] = &[
    ("util", &["atomic", "rng"], &[]),
    ("gpu", &["gpu"], &[]),
    ("data", &["data"], &["util"]),
    // The engine core's error (`crate::Error`) wraps gpu's and is shared by the layers up to ops;
    // nn has its own (`nn::NnError`, wrapping the core's), train its own wrapping both.
    ("tensor", &["error", "tensor", "autograd"], &["gpu"]),
    ("metrics", &["metrics"], &["tensor", "data"]),
    (
        "ops",
        &["ops", "optim", "kernels"],
        &["util", "gpu", "tensor", "metrics"],
    ),
    ("nn", &["nn"], &["util", "gpu", "tensor", "ops"]),
    (
        "train",
        &["train"],
        &["util", "gpu", "data", "tensor", "metrics", "ops", "nn"],
    ),
    (
        "testing",
        &["testing"],
        &[
            "util", "gpu", "data", "tensor", "metrics", "ops", "nn", "train",
        ],
    ),
    ("sweep", &["sweep"], &["util", "data", "metrics", "train"]),
    (
        "app",
        &["app"],
        &[
            "util", "gpu", "data", "tensor", "metrics", "ops", "nn", "train", "testing", "sweep",
        ],
    ),
];

/// Files outside `src/gpu/` allowed to name wgpu: egui-wgpu's API takes wgpu types.
const WGPU_OUTSIDE_GPU: &[&str] = &["src/app/offscreen.rs"];

fn reexport(name: &str) -> &str {
    match name {
        "Error" | "Result" => "error",
        "Gpu" => "gpu",
        "Tensor" | "DType" => "tensor",
        m => m,
    }
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, mods, _)| mods.contains(&module))
}

/// The code of a line without its `//` comment (doc links are not dependencies). A `//`
/// inside a string literal ends the line early: that can only hide a name, and only in text.
fn code(line: &str) -> &str {
    line.find("//").map_or(line, |i| &line[..i])
}

/// Top-level `crate::` modules a source text names: `crate::x::..`, `crate::X` and each name
/// in a `crate::{a, b::c}` group (groups may span lines).
fn crate_refs(src: &str) -> BTreeSet<String> {
    let text: String = src.lines().map(code).collect::<Vec<_>>().join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        if i > 0 && text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` in a macro or part of a longer path
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut at_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => at_start = true,
                    c if c.is_whitespace() => {}
                    _ if at_start && depth == 0 => {
                        out.insert(reexport(&ident(&group[j..])).to_string());
                        at_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(reexport(&ident(rest)).to_string());
        }
    }
    out.remove("");
    out
}

/// Whether the code names wgpu (the crate or egui's re-export of it).
fn names_wgpu(src: &str) -> bool {
    src.lines().map(code).any(|l| l.contains("wgpu"))
}

/// Violations of the layer table by one file of `module`.
fn violations(module: &str, src: &str) -> Vec<String> {
    let Some(me) = layer_of(module) else {
        return vec![format!("module {module:?} is in no layer of LAYERS")];
    };
    let (layer, _, allowed) = LAYERS[me];
    crate_refs(src)
        .into_iter()
        .filter_map(|m| {
            let Some(l) = layer_of(&m) else {
                return Some(format!("names crate::{m}, which is in no layer"));
            };
            let other = LAYERS[l].0;
            (l != me && !allowed.contains(&other)).then(|| {
                format!("layer {layer} names crate::{m} (layer {other}), not among {allowed:?}")
            })
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Library files as (path relative to the crate, top-level module).
fn library_files() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let first = rel.strip_prefix("src/")?.split('/').next()?.to_string();
            let module = first.trim_end_matches(".rs").to_string();
            // The binary's modules and the crate root are above every layer.
            (!matches!(module.as_str(), "main" | "cli" | "lib")).then_some((rel, module))
        })
        .collect()
}

#[test]
fn layer_table_is_bottom_up() {
    for (i, (name, _, allowed)) in LAYERS.iter().enumerate() {
        for a in *allowed {
            let j = LAYERS.iter().position(|l| l.0 == *a);
            assert!(
                j.is_some_and(|j| j < i),
                "layer {name} lists {a}, which is not a layer below it"
            );
        }
    }
}

#[test]
fn no_layer_imports_a_layer_above_it() {
    let mut bad = Vec::new();
    let files = library_files();
    assert!(files.len() > 50, "found only {} library files", files.len());
    for (rel, module) in &files {
        let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap();
        bad.extend(
            violations(module, &src)
                .into_iter()
                .map(|v| format!("{rel}: {v}")),
        );
    }
    assert!(bad.is_empty(), "layering violations:\n{}", bad.join("\n"));
}

#[test]
fn wgpu_is_named_only_behind_src_gpu() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let bad: Vec<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .filter(|rel| !rel.starts_with("src/gpu/") && !WGPU_OUTSIDE_GPU.contains(&rel.as_str()))
        .filter(|rel| names_wgpu(&std::fs::read_to_string(root.join(rel)).unwrap()))
        .collect();
    assert!(bad.is_empty(), "wgpu named outside src/gpu: {bad:?}");
}

/// The checker itself: each kind of upward import is caught, allowed ones and comments pass.
#[test]
fn checker_catches_upward_imports() {
    assert_eq!(violations("gpu", "use crate::gpu::bind;\n").len(), 0);
    assert_eq!(
        violations("ops", "//! see crate::train::Trainer\n").len(),
        0
    );
    assert_eq!(
        violations("ops", "use crate::{Error, Result, Tensor};\n").len(),
        0
    );
    let cases = [
        ("tensor", "use crate::ops::elementwise::fill;\n"),
        ("autograd", "    let s = crate::ops::add(&a, &b)?;\n"),
        ("ops", "use crate::testing::parity::CaseCtx;\n"),
        ("error", "    Data(#[from] crate::data::DataError),\n"),
        (
            "gpu",
            "use crate::{\n    gpu::bind,\n    train::TrainError,\n};\n",
        ),
        ("nn", "use crate::{ops, train};\n"),
        ("data", "use crate::Tensor;\n"),
        ("newmod", "use crate::gpu::Gpu;\n"),
    ];
    for (module, src) in cases {
        assert_eq!(violations(module, src).len(), 1, "{module}: {src}");
    }
    assert!(names_wgpu("let l = wgpu::Limits::default();"));
    assert!(!names_wgpu("// wgpu reports the loss"));
}
