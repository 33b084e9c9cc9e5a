//! The kernel interface checked from one source, with naga's reflection of the composed WGSL
//! (no GPU needed):
//! - every shader's `Params` uniform against its Rust `#[repr(C)]` mirror (size, and each
//!   non-padding field's name, offset, scalar type and count), found by shader name so a
//!   shader without a mirror fails;
//! - the op codes Rust uses (`advseg::gpu::codes`) against the WGSL constants;
//! - a per-entry-point count of storage bindings declared vs used (the 4-buffer downlevel limit).

use advseg::gpu::layout::{ParamsLayout, Scalar};
use advseg::gpu::wgsl_compose::{compose_all, Composed};
use naga::{AddressSpace, ArraySize, Module, ScalarKind, TypeInner};

fn composed() -> Vec<Composed> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    compose_all(&dir).expect("shaders compose")
}

fn parse(c: &Composed) -> Module {
    naga::front::wgsl::parse_str(&c.source)
        .unwrap_or_else(|e| panic!("{}: {}", c.name, e.emit_to_string(&c.source)))
}

/// (name, offset, scalar, count) of a WGSL type flattened to scalars, or why it cannot be.
fn flatten(m: &Module, ty: naga::Handle<naga::Type>) -> Result<(Scalar, usize), String> {
    let scalar = |s: naga::Scalar| match (s.kind, s.width) {
        (ScalarKind::Uint, 4) => Ok(Scalar::U32),
        (ScalarKind::Sint, 4) => Ok(Scalar::I32),
        (ScalarKind::Float, 4) => Ok(Scalar::F32),
        k => Err(format!("scalar {k:?} has no Rust mirror type")),
    };
    match &m.types[ty].inner {
        TypeInner::Scalar(s) => Ok((scalar(*s)?, 1)),
        TypeInner::Vector { size, scalar: s } => Ok((scalar(*s)?, *size as usize)),
        TypeInner::Array {
            base,
            size: ArraySize::Constant(n),
            stride,
        } => {
            let (s, k) = flatten(m, *base)?;
            // A Rust array is packed: the WGSL stride must be the element's size.
            if *stride as usize != 4 * k {
                return Err(format!("array stride {stride} is not {} (packed)", 4 * k));
            }
            Ok((s, k * n.get() as usize))
        }
        t => Err(format!("type {t:?} has no Rust mirror")),
    }
}

/// Mismatches between the WGSL `Params` (binding 0) of `m` and `rust`.
fn compare(m: &Module, rust: &ParamsLayout) -> Vec<String> {
    let Some(var) = m
        .global_variables
        .iter()
        .map(|(_, v)| v)
        .find(|v| v.space == AddressSpace::Uniform)
    else {
        return vec!["no uniform in the shader".into()];
    };
    let TypeInner::Struct { members, span } = &m.types[var.ty].inner else {
        return vec!["the uniform is not a struct".into()];
    };
    let mut bad = Vec::new();
    if *span as usize != rust.size {
        bad.push(format!("size: WGSL {span} bytes, Rust {} bytes", rust.size));
    }
    // Padding (names starting with `_`) may be split differently on the two sides; the sizes
    // above and the offsets of the real fields pin it down.
    let wgsl: Vec<_> = members
        .iter()
        .filter(|f| !f.name.as_deref().unwrap_or("_").starts_with('_'))
        .collect();
    let ours: Vec<_> = rust
        .fields
        .iter()
        .filter(|f| !f.name.starts_with('_'))
        .collect();
    if wgsl.len() != ours.len() {
        bad.push(format!(
            "fields: WGSL {:?}, Rust {:?}",
            wgsl.iter()
                .map(|f| f.name.as_deref().unwrap_or("?"))
                .collect::<Vec<_>>(),
            ours.iter().map(|f| f.name).collect::<Vec<_>>()
        ));
    }
    for (w, r) in wgsl.iter().zip(&ours) {
        let wn = w.name.as_deref().unwrap_or("?");
        if wn != r.name {
            bad.push(format!("field {wn:?} (WGSL) vs {:?} (Rust)", r.name));
        }
        if w.offset as usize != r.offset {
            bad.push(format!("{wn}: offset WGSL {}, Rust {}", w.offset, r.offset));
        }
        match flatten(m, w.ty) {
            Ok(t) if t == (r.scalar, r.count) => {}
            Ok(t) => bad.push(format!(
                "{wn}: type WGSL {t:?}, Rust {:?}",
                (r.scalar, r.count)
            )),
            Err(e) => bad.push(format!("{wn}: {e}")),
        }
    }
    bad
}

#[test]
fn every_params_struct_matches_its_rust_mirror() {
    let layouts = advseg::kernels::params_layouts();
    let shaders = composed();
    let mut failures = Vec::new();
    let mut checked = 0;
    for c in &shaders {
        let m = parse(c);
        let has_uniform = m
            .global_variables
            .iter()
            .any(|(_, v)| v.space == AddressSpace::Uniform);
        // A variant binds its base shader's Params.
        let owner = c.base.as_deref().unwrap_or(&c.name);
        let mirrors: Vec<_> = layouts.iter().filter(|l| l.shader == owner).collect();
        match (has_uniform, mirrors.as_slice()) {
            (false, []) => {}
            (true, [one]) => {
                for b in compare(&m, one) {
                    failures.push(format!("{} vs {}: {b}", c.name, one.rust_type));
                }
                checked += 1;
            }
            (true, []) => failures.push(format!(
                "{}: Params has no Rust mirror in advseg::kernels::params_layouts",
                c.name
            )),
            (_, many) => failures.push(format!(
                "{}: {} Rust mirrors ({:?}) for {} uniform",
                c.name,
                many.len(),
                many.iter().map(|l| l.rust_type).collect::<Vec<_>>(),
                if has_uniform { "one" } else { "no" }
            )),
        }
    }
    for l in &layouts {
        if !shaders.iter().any(|c| c.name == l.shader) {
            failures.push(format!(
                "{}: shader {:?} does not exist",
                l.rust_type, l.shader
            ));
        }
    }
    println!(
        "checked {checked} Params structs against {} Rust mirrors",
        layouts.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= layouts.len(), "some mirrors were never compared");
}

/// The check itself catches what it is for: a layout with a field moved, retyped or missing.
#[test]
fn params_check_reports_offset_type_and_size_mismatches() {
    let shaders = composed();
    let c = shaders
        .iter()
        .find(|c| c.name == "elementwise")
        .expect("elementwise");
    let m = parse(c);
    let good = advseg::kernels::params_layouts()
        .into_iter()
        .find(|l| l.shader == "elementwise")
        .expect("mirror");
    assert!(compare(&m, &good).is_empty());

    let mut moved = good.clone();
    moved.fields[2].offset += 4;
    let e = compare(&m, &moved).join("; ");
    assert!(e.contains("a: offset WGSL 8, Rust 12"), "{e}");

    let mut retyped = good.clone();
    retyped.fields[2].scalar = Scalar::U32;
    let e = compare(&m, &retyped).join("; ");
    assert!(e.contains("a: type WGSL (F32, 1), Rust (U32, 1)"), "{e}");

    let mut short = good.clone();
    short.size -= 16;
    short.fields.retain(|f| f.name != "sb");
    let e = compare(&m, &short).join("; ");
    assert!(e.contains("size: WGSL 80 bytes, Rust 64 bytes"), "{e}");
    assert!(e.contains("fields: WGSL"), "{e}");
}

#[test]
fn op_codes_are_the_wgsl_constants() {
    let shaders = composed();
    let mut seen = vec![false; advseg::gpu::codes::ALL.len()];
    let mut failures = Vec::new();
    for c in &shaders {
        let m = parse(c);
        for (_, k) in m.constants.iter() {
            let Some(name) = k.name.as_deref() else {
                continue;
            };
            let Some(i) = advseg::gpu::codes::ALL.iter().position(|(n, _)| *n == name) else {
                continue;
            };
            seen[i] = true;
            let want = advseg::gpu::codes::ALL[i].1;
            match m.global_expressions[k.init] {
                naga::Expression::Literal(naga::Literal::U32(v)) if v == want => {}
                ref e => failures.push(format!("{}: {name} = {e:?}, Rust has {want}", c.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(seen.iter().all(|&s| s), "every code reaches some shader");
    // The enum → code maps are explicit, so reordering an enum cannot change them.
    use advseg::gpu::codes as k;
    assert_eq!(
        [
            k::BIN_ADD,
            k::BIN_SUB,
            k::BIN_MUL,
            k::BIN_DIV,
            k::BIN_MAX,
            k::BIN_GT
        ],
        [0, 1, 2, 3, 4, 5]
    );
    assert_eq!(
        advseg::ops::conv::GemmMode::WeightGrad as u32,
        k::GEMM_WEIGHT_GRAD
    );
}

/// Which shaders use the shared prelude instead of a copy of its helpers.
#[test]
fn prelude_helpers_live_once() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for p in advseg::gpu::wgsl_compose::wgsl_files(&dir) {
        let src = std::fs::read_to_string(&p).unwrap();
        assert!(
            !src.contains("fn linear_id("),
            "{}: defines linear_id; `// @include prelude` instead",
            p.display()
        );
    }
    let n = composed()
        .iter()
        .filter(|c| c.source.contains("// ---- begin @include prelude"))
        .count();
    assert!(n >= 10, "{n} shaders include the prelude");
}

/// Storage bindings per kernel (entry point): declared in its shader (what was bound before
/// pipelines bound per entry point, placeholders included) and used by the entry point (what
/// `Gpu` lays out and binds now, from the same `reflect::analyse`). Prints the table; fails
/// past WebGPU's default of 8 per stage.
#[test]
fn storage_buffers_per_kernel() {
    let mut rows = Vec::new();
    for c in composed().iter().filter(|c| c.base.is_none()) {
        let m = parse(c);
        let uses = advseg::gpu::reflect::analyse(&c.source).expect("analysis");
        let storage: Vec<u32> = m
            .global_variables
            .iter()
            .filter(|(_, g)| matches!(g.space, AddressSpace::Storage { .. }))
            .filter_map(|(_, g)| g.binding.as_ref().map(|b| b.binding))
            .collect();
        for ep in &m.entry_points {
            let used = uses[&ep.name]
                .iter()
                .filter(|b| storage.contains(b))
                .count();
            rows.push((format!("{}::{}", c.name, ep.name), storage.len(), used));
        }
    }
    let over = |k: fn(&(String, usize, usize)) -> usize| rows.iter().filter(|r| k(r) > 4).count();
    println!("{:<36} {:>8} {:>5}", "kernel", "declared", "used");
    for r in &rows {
        println!("{:<36} {:>8} {:>5}", r.0, r.1, r.2);
    }
    println!(
        "{} kernels; over 4 storage buffers: {} as declared, {} as used",
        rows.len(),
        over(|r| r.1),
        over(|r| r.2)
    );
    let too_many: Vec<_> = rows.iter().filter(|r| r.2 > 8).collect();
    assert!(too_many.is_empty(), "over WebGPU's 8: {too_many:?}");
    // Placeholders no longer count: `elementwise::fill` writes one buffer of its four.
    assert!(
        rows.contains(&("elementwise::fill".into(), 4, 1)),
        "{rows:?}"
    );
}

#[test]
fn analysis_sees_each_entry_points_own_bindings() {
    let src = "
        @group(0) @binding(0) var<uniform> p: vec4<u32>;
        @group(0) @binding(1) var<storage, read> a: array<f32>;
        @group(0) @binding(2) var<storage, read_write> b: array<f32>;
        fn helper(i: u32) -> f32 { return a[i]; }
        @compute @workgroup_size(1) fn reads(@builtin(global_invocation_id) g: vec3<u32>) {
            b[g.x] = helper(g.x + p.x);
        }
        @compute @workgroup_size(1) fn writes(@builtin(global_invocation_id) g: vec3<u32>) {
            b[g.x] = 1.0;
        }";
    let uses = advseg::gpu::reflect::analyse(src).expect("valid");
    assert_eq!(uses["reads"], [0, 1, 2], "through the helper call");
    assert_eq!(uses["writes"], [2]);
}

/// On the GPU: unused slots are skipped (fill binds one buffer of four), and a kernel given
/// fewer bindings than it uses is refused by name instead of failing inside wgpu.
#[test]
fn kernels_bind_only_what_they_use() {
    use advseg::gpu::r;
    let gpu = advseg::Gpu::shared().expect("GPU adapter");
    let t = advseg::Tensor::zeros(&gpu, &[5], advseg::DType::F32).unwrap();
    advseg::ops::elementwise::fill(&t, 2.5).unwrap();
    assert_eq!(t.to_vec_f32().unwrap(), [2.5; 5]);
    // Params of elementwise: n = 5 in the first word, the rest zero (80 bytes).
    let mut params = [0u32; 20];
    params[0] = 5;
    let e = gpu
        .dispatch(
            "elementwise",
            "unary",
            &[("OP", advseg::gpu::codes::UN_RELU)],
            &params,
            &[r(t.buffer()), gpu.unused()],
            [1, 1, 1],
        )
        .expect_err("binding 3 missing")
        .to_string();
    assert!(
        e.contains("elementwise::unary uses binding 3 but was given 2"),
        "{e}"
    );
}

/// A context with wgpu's downlevel 4 storage buffers per stage, shared by the fallback tests.
fn downlevel() -> std::sync::Arc<advseg::Gpu> {
    static G: std::sync::OnceLock<std::sync::Arc<advseg::Gpu>> = std::sync::OnceLock::new();
    G.get_or_init(|| advseg::Gpu::new_with_limits(None, Some(4)).expect("GPU adapter"))
        .clone()
}

fn wave(n: usize, k: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.37 + k).sin() * 1.5).collect()
}

/// Asserts two runs' outputs are bit-identical, by name.
fn same_bits(low: &[(String, Vec<f32>)], full: &[(String, Vec<f32>)]) {
    assert_eq!(low.len(), full.len());
    for ((name, a), (_, b)) in low.iter().zip(full) {
        let (a, b): (Vec<u32>, Vec<u32>) = (
            a.iter().map(|v| v.to_bits()).collect(),
            b.iter().map(|v| v.to_bits()).collect(),
        );
        assert_eq!(a, b, "{name}: 4-buffer context vs the shared one");
        assert!(!a.is_empty(), "{name}");
    }
}

/// Batch norm in training mode, forward (output, running statistics) and backward (input,
/// weight and bias gradients), at H·W % 4 == 0 (vec4 reads) and not.
fn batch_norm_run(gpu: &std::sync::Arc<advseg::Gpu>) -> Vec<(String, Vec<f32>)> {
    use advseg::ops::{batchnorm, elementwise as ew, reduce};
    use advseg::{autograd, Tensor};
    let mut out = Vec::new();
    for (h, w) in [(4, 4), (3, 3)] {
        let s = [2, 3, h, w];
        let n: usize = s.iter().product();
        let x = Tensor::from_f32(gpu, &wave(n, 0.3), &s)
            .unwrap()
            .into_param();
        let wt = Tensor::from_f32(gpu, &[0.5, 1.5, -1.0], &[3])
            .unwrap()
            .into_param();
        let b = Tensor::from_f32(gpu, &[0.1, -0.2, 0.3], &[3])
            .unwrap()
            .into_param();
        let rm = Tensor::from_f32(gpu, &[0.0, 0.5, -0.5], &[3]).unwrap();
        let rv = Tensor::from_f32(gpu, &[1.0, 2.0, 0.5], &[3]).unwrap();
        let k = Tensor::from_f32(gpu, &wave(n, 1.1), &s).unwrap();
        let y =
            batchnorm::batch_norm2d(&x, Some(&wt), Some(&b), &rm, &rv, true, 0.1, 1e-5).unwrap();
        let loss = reduce::sum(&ew::mul(&y, &k).unwrap()).unwrap();
        let grads = autograd::grad(&loss, &[&x, &wt, &b], false).unwrap();
        out.push((format!("bn {h}x{w} y"), y.to_vec_f32().unwrap()));
        out.push((format!("bn {h}x{w} running mean"), rm.to_vec_f32().unwrap()));
        out.push((format!("bn {h}x{w} running var"), rv.to_vec_f32().unwrap()));
        for (name, g) in ["dx", "dweight", "dbias"].iter().zip(grads) {
            out.push((
                format!("bn {h}x{w} {name}"),
                g.unwrap().to_vec_f32().unwrap(),
            ));
        }
    }
    out
}

/// Cross-entropy (with ignored pixels and pixel weights) and BCE with logits (with a mask),
/// forward and backward.
fn losses_run(gpu: &std::sync::Arc<advseg::Gpu>) -> Vec<(String, Vec<f32>)> {
    use advseg::ops::loss;
    use advseg::{autograd, Tensor};
    let mut out = Vec::new();
    let s = [2, 4, 3, 3];
    let n: usize = s.iter().product();
    let x = Tensor::from_f32(gpu, &wave(n, 0.7), &s)
        .unwrap()
        .into_param();
    let labels: Vec<i32> = (0..18)
        .map(|i| if i % 7 == 3 { 255 } else { i % 4 })
        .collect();
    let target = Tensor::from_i32(gpu, &labels, &[2, 3, 3]).unwrap();
    let pw: Vec<f32> = wave(18, 2.0).iter().map(|v| v.abs() + 0.25).collect();
    let pw = Tensor::from_f32(gpu, &pw, &[2, 3, 3]).unwrap().into_param();
    let ce = loss::cross_entropy(&x, &target, 255, Some(&pw)).unwrap();
    let g = autograd::grad(&ce, &[&x, &pw], false).unwrap();
    out.push(("ce".to_string(), ce.to_vec_f32().unwrap()));
    out.push((
        "ce dlogits".into(),
        g[0].as_ref().unwrap().to_vec_f32().unwrap(),
    ));
    out.push((
        "ce dweight".into(),
        g[1].as_ref().unwrap().to_vec_f32().unwrap(),
    ));

    let t: Vec<f32> = wave(n, 0.1).iter().map(|v| (v + 1.5) / 3.0).collect();
    let t = Tensor::from_f32(gpu, &t, &s).unwrap().into_param();
    let mask: Vec<f32> = (0..n).map(|i| (i % 5 != 2) as u8 as f32).collect();
    let mask = Tensor::from_f32(gpu, &mask, &s).unwrap();
    let bce = loss::bce_with_logits(&x, &t, Some(&mask)).unwrap();
    let g = autograd::grad(&bce, &[&x, &t], false).unwrap();
    out.push(("bce".to_string(), bce.to_vec_f32().unwrap()));
    out.push((
        "bce dlogits".into(),
        g[0].as_ref().unwrap().to_vec_f32().unwrap(),
    ));
    out.push((
        "bce dtarget".into(),
        g[1].as_ref().unwrap().to_vec_f32().unwrap(),
    ));
    out
}

/// Dense CRF on the gather path (crf::update) on a small image.
fn crf_run(gpu: &std::sync::Arc<advseg::Gpu>) -> Vec<(String, Vec<f32>)> {
    use advseg::ops::{self, crf::CrfCfg};
    use advseg::Tensor;
    let (n, c, h, w) = (1, 3, 6, 7);
    let p: Vec<f32> = wave(n * c * h * w, 0.9)
        .iter()
        .map(|v| (v + 1.5) / 3.0)
        .collect();
    let img: Vec<f32> = (0..n * 3 * h * w)
        .map(|i| ((i * 37 % 97) as f32 / 97.0 * 255.0).round())
        .collect();
    let pt = Tensor::from_f32(gpu, &p, &[n, c, h, w]).unwrap();
    let it = Tensor::from_f32(gpu, &img, &[n, 3, h, w]).unwrap();
    let cfg = CrfCfg {
        iters: 3,
        ..CrfCfg::rrm_labels().with_matrix(false)
    };
    let q = ops::crf::dense_crf(&pt, &it, &cfg).unwrap();
    vec![("dense crf".into(), q.to_vec_f32().unwrap())]
}

/// On an adapter with wgpu's downlevel 4 storage buffers per stage, fused kernels that use
/// more (batchnorm::batch_stats and the loss backward kernels use 7) run with their read-only
/// inputs merged into one binding, bit-identical to the shared context.
#[test]
fn batch_norm_on_4_storage_buffers_matches_bit_for_bit() {
    let full = batch_norm_run(&advseg::Gpu::shared().expect("GPU adapter"));
    same_bits(&batch_norm_run(&downlevel()), &full);
}

#[test]
fn losses_on_4_storage_buffers_match_bit_for_bit() {
    let full = losses_run(&advseg::Gpu::shared().expect("GPU adapter"));
    same_bits(&losses_run(&downlevel()), &full);
}

#[test]
fn dense_crf_on_4_storage_buffers_matches_bit_for_bit() {
    let full = crf_run(&advseg::Gpu::shared().expect("GPU adapter"));
    same_bits(&crf_run(&downlevel()), &full);
}

/// A kernel that merging cannot bring under the limit (batch_stats writes three buffers, so
/// at 3 per stage even one merged input binding is too many) is refused by name with the
/// limit (not a wgpu validation panic), and kernels within the limit still run on the context.
#[test]
fn kernels_over_the_storage_buffer_limit_are_refused_by_name() {
    use advseg::{ops, Gpu, Tensor};
    let gpu = Gpu::new_with_limits(None, Some(3)).unwrap();
    let x = Tensor::from_f32(
        &gpu,
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        &[2, 2, 1, 2],
    )
    .unwrap();
    let sum = ops::add(&x, &x).unwrap().to_vec_f32().unwrap();
    assert_eq!(sum[7], 16.0);
    let rm = Tensor::from_f32(&gpu, &[0.0, 0.0], &[2]).unwrap();
    let rv = Tensor::from_f32(&gpu, &[1.0, 1.0], &[2]).unwrap();
    let err = ops::batchnorm::batch_norm2d(&x, None, None, &rm, &rv, true, 0.1, 1e-5)
        .and_then(|y| y.to_vec_f32())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batchnorm::batch_stats uses 7 storage buffers")
            && err.contains("max_storage_buffers_per_shader_stage of 3")
            && err.contains("read-only inputs merged"),
        "{err}"
    );
}
