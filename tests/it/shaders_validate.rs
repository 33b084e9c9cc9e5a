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
    assert!(
        !files.is_empty(),
        "no .wgsl files found in {}",
        dir.display()
    );
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
        let mut v = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        );
        if let Err(e) = v.validate(&module) {
            failures.push(format!("{}: {}", f.display(), e.emit_to_string(&src)));
        }
        // The embedded copy must be the file on disk (build.rs keeps them in sync).
        let stem = f.file_stem().unwrap().to_string_lossy();
        assert_eq!(
            advseg::gpu::shader_source(&stem),
            Some(src.as_str()),
            "{stem} not embedded"
        );
    }
    // Composed variants (shaders/variants/, built by build.rs) validate with the capabilities
    // they are used under.
    for (name, base, src) in advseg::gpu::shader_variants() {
        match naga::front::wgsl::parse_str(src) {
            Ok(module) => {
                let mut v = naga::valid::Validator::new(
                    naga::valid::ValidationFlags::all(),
                    naga::valid::Capabilities::SUBGROUP,
                );
                v.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
                v.subgroup_operations(naga::valid::SubgroupOperationSet::all());
                if let Err(e) = v.validate(&module) {
                    failures.push(format!(
                        "variant {name} of {base}: {}",
                        e.emit_to_string(src)
                    ));
                }
            }
            Err(e) => failures.push(format!(
                "variant {name} of {base}: {}",
                e.emit_to_string(src)
            )),
        }
    }
    println!(
        "validated {} shaders and {} variants",
        files.len(),
        advseg::gpu::shader_variants().len()
    );
    assert!(
        failures.is_empty(),
        "{} shader(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
