//! Every shader parses and validates with naga (no GPU needed), composed from `shaders/` by
//! the same code as build.rs (`advseg::gpu::wgsl_compose`: `// @include`, variants), and the
//! embedded copies are exactly that composition. All failures are reported at once.

use advseg::gpu::wgsl_compose::compose_all;

#[test]
fn all_shaders_validate_with_naga() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let all = compose_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let plain = all.iter().filter(|c| c.base.is_none()).count();
    assert!(plain > 0, "no .wgsl files found in {}", dir.display());
    let mut failures = Vec::new();
    for c in &all {
        let module = match naga::front::wgsl::parse_str(&c.source) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{}: {}", c.name, e.emit_to_string(&c.source)));
                continue;
            }
        };
        // Variants validate with the capabilities they are used under.
        let mut v = if c.base.is_some() {
            let mut v = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::SUBGROUP,
            );
            v.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
            v.subgroup_operations(naga::valid::SubgroupOperationSet::all());
            v
        } else {
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            )
        };
        if let Err(e) = v.validate(&module) {
            failures.push(format!("{}: {}", c.name, e.emit_to_string(&c.source)));
        }
        // The embedded copy must be this composition (build.rs keeps them in sync).
        assert_eq!(
            advseg::gpu::shader_source(&c.name),
            Some(c.source.as_str()),
            "{} not embedded as composed",
            c.name
        );
    }
    assert_eq!(
        all.len() - plain,
        advseg::gpu::shader_variants().len(),
        "variants embedded"
    );
    println!(
        "validated {plain} shaders and {} variants",
        all.len() - plain
    );
    assert!(
        failures.is_empty(),
        "{} shader(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
