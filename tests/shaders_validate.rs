//! Every shaders/*.wgsl parses and validates with naga (no GPU needed). All failures are
//! reported at once.

#[test]
fn all_shaders_validate_with_naga() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("shaders/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .wgsl files found in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        let module = match naga::front::wgsl::parse_str(&src) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{}: {}", f.display(), e.emit_to_string(&src)));
                continue;
            }
        };
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default());
        if let Err(e) = v.validate(&module) {
            failures.push(format!("{}: {}", f.display(), e.emit_to_string(&src)));
        }
        // The embedded copy must be the file on disk (build.rs keeps them in sync).
        let stem = f.file_stem().unwrap().to_string_lossy();
        assert_eq!(advseg::gpu::shader_source(&stem), Some(src.as_str()), "{stem} not embedded");
    }
    println!("validated {} shaders", files.len());
    assert!(failures.is_empty(), "{} shader(s) failed:\n{}", failures.len(), failures.join("\n"));
}
