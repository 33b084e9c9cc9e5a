//! Checkpoint save → load round trip, load reports, strict refusal, atomic writes.

use advseg::nn::disc::FcDiscriminator;
use advseg::nn::ParamStore;
use advseg::Gpu;
use std::collections::HashMap;

fn disc(classes: usize) -> ParamStore {
    let mut s = ParamStore::new();
    FcDiscriminator::new(&mut s, "", classes, 4);
    s
}

#[test]
fn save_load_roundtrip_and_reports() {
    let gpu = Gpu::shared().unwrap();
    let dir = std::env::temp_dir().join(format!("advseg_ckpt_{}", std::process::id()));
    let path = dir.join("d.safetensors");
    let a = disc(3);
    a.materialize(&gpu, 1).unwrap();
    a.save(
        &path,
        &HashMap::from([("arch".to_string(), "fcdisc".to_string())]),
    )
    .unwrap();
    // No temp file left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    let b = disc(3);
    b.materialize(&gpu, 2).unwrap();
    let rep = b.load(&gpu, &path, true).unwrap();
    assert!(rep.is_exact(), "{rep}");
    assert_eq!(a.to_host().unwrap(), b.to_host().unwrap());
    // Same file → bit-identical outputs through a real model.
    let m1 = advseg::nn::arch::build("tiny", 3).unwrap();
    let m2 = advseg::nn::arch::build("tiny", 3).unwrap();
    m1.materialize(&gpu, 7).unwrap();
    m2.materialize(&gpu, 8).unwrap();
    let tiny_path = dir.join("tiny.safetensors");
    m1.store.save(&tiny_path, &HashMap::new()).unwrap();
    m2.store.load(&gpu, &tiny_path, true).unwrap();
    let x: Vec<f32> = (0..2 * 3 * 16 * 16)
        .map(|i| (i % 17) as f32 / 8.0 - 1.0)
        .collect();
    let x = advseg::Tensor::from_f32(&gpu, &x, &[2, 3, 16, 16]).unwrap();
    let mode = advseg::nn::BnMode::Frozen;
    let (y1, y2) = (m1.forward(&x, mode).unwrap(), m2.forward(&x, mode).unwrap());
    assert_eq!(y1.to_vec_f32().unwrap(), y2.to_vec_f32().unwrap());
    std::fs::remove_file(&tiny_path).unwrap();

    // A model for 5 classes: conv1.weight differs in shape.
    let c = disc(5);
    c.materialize(&gpu, 3).unwrap();
    let err = c.load(&gpu, &path, true).unwrap_err().to_string();
    assert!(
        err.contains("d.safetensors")
            && err.contains("conv1.weight")
            && err.contains("[4, 5, 4, 4]")
            && err.contains("[4, 3, 4, 4]"),
        "{err}"
    );
    let rep = c.load(&gpu, &path, false).unwrap();
    assert_eq!(rep.mismatched.len(), 1);
    assert_eq!(rep.loaded.len(), 9);

    // Unknown file content is a clear error.
    std::fs::write(dir.join("bad.safetensors"), b"not a checkpoint").unwrap();
    let err = b
        .load(&gpu, &dir.join("bad.safetensors"), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.safetensors") && err.contains("safetensors"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
