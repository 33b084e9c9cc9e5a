//! Real files: the CamVid copy in ../shared/datasets/camvid (or $ADVSEG_CAMVID). Skipped with a
//! message when absent.

use advseg::data::check::check;
use advseg::data::{open, DataSpec, Dataset};
use std::path::PathBuf;
use std::sync::Arc;

fn camvid_root() -> Option<PathBuf> {
    let p = std::env::var_os("ADVSEG_CAMVID")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/datasets/camvid"
            ))
        });
    if p.join("train.txt").exists() {
        Some(p)
    } else {
        eprintln!(
            "skipping: CamVid not found at {} (set ADVSEG_CAMVID)",
            p.display()
        );
        None
    }
}

fn camvid(split: &str) -> Option<Arc<dyn Dataset>> {
    let root = camvid_root()?;
    Some(open(&DataSpec::CamVid(root), split).unwrap())
}

/// Train pixel shares from the CamVid README, classes 0..=10, then void.
const README_SHARES: [f64; 12] = [
    0.169, 0.233, 0.010, 0.317, 0.045, 0.097, 0.012, 0.011, 0.059, 0.006, 0.003, 0.040,
];

#[test]
fn camvid_counts_sizes_and_labels() {
    let Some(train) = camvid("train") else { return };
    let val = camvid("val").unwrap();
    assert_eq!(train.len(), 367);
    assert_eq!(val.len(), 101);
    assert_eq!(train.num_classes(), 11);
    assert_eq!(train.ignore_index(), 255);
    assert_eq!(train.class_names()[3], "Road");
    assert_eq!(train.colours()[4], [60, 40, 222]);
    assert_eq!(train.name(0), "0001TP_006690");

    // A spread of train samples: 360x480, labels in 0..11 or 255, shares roughly as the README.
    let mut counts = [0u64; 12];
    for i in (0..367).step_by(23) {
        let s = train.get(i).unwrap();
        assert_eq!((s.image.h, s.image.w), (360, 480), "{}", s.name);
        for &v in &s.label.data {
            match v {
                0..=10 => counts[v as usize] += 1,
                255 => counts[11] += 1,
                _ => panic!("{}: label value {v}", s.name),
            }
        }
        let present: Vec<bool> = (0..11).map(|c| s.label.data.contains(&(c as u8))).collect();
        assert_eq!(s.image_labels, present);
    }
    let total: u64 = counts.iter().sum();
    for (c, (&n, &want)) in counts.iter().zip(&README_SHARES).enumerate() {
        let share = n as f64 / total as f64;
        assert!(
            (share - want).abs() < 0.05 + want * 0.5,
            "class {c}: share {share:.3}, README {want}"
        );
    }
}

/// `camvid-things`: the same files, stuff merged into background 0 and the five object classes
/// renumbered 1..=5, void still ignored; image labels follow the merged map.
#[test]
fn camvid_things_merges_stuff_into_background() {
    let Some(root) = camvid_root() else { return };
    let raw = open(&DataSpec::CamVid(root.clone()), "val").unwrap();
    let spec: DataSpec = format!("camvid-things:{}", root.display()).parse().unwrap();
    assert_eq!(spec, DataSpec::CamVidThings(root.clone()));
    assert_eq!(spec.to_string().parse::<DataSpec>().unwrap(), spec);
    let things = open(&spec, "val").unwrap();
    assert_eq!(things.len(), raw.len());
    assert_eq!(things.num_classes(), 6);
    assert_eq!(things.class_names()[0], "background");
    assert_eq!(things.class_names()[3], "Car");
    let want = |v: u8| match v {
        0 | 1 | 3 | 4 | 5 | 7 => 0,
        2 => 1,
        6 => 2,
        8 => 3,
        9 => 4,
        10 => 5,
        _ => 255,
    };
    let mut seen = [0u64; 6];
    for i in (0..raw.len()).step_by(20) {
        let (a, b) = (raw.get(i).unwrap(), things.get(i).unwrap());
        assert_eq!(a.name, b.name);
        assert_eq!(a.image.data, b.image.data);
        for (&r, &t) in a.label.data.iter().zip(&b.label.data) {
            assert_eq!(t, want(r), "{}: raw class {r}", a.name);
            if t < 6 {
                seen[t as usize] += 1;
            }
        }
        let present: Vec<bool> = (0..6).map(|c| b.label.data.contains(&c)).collect();
        assert_eq!(b.image_labels, present, "{}", b.name);
    }
    assert!(seen.iter().all(|&n| n > 0), "every class occurs: {seen:?}");
    assert!(
        seen[0] > seen[1..].iter().sum::<u64>(),
        "background dominates: {seen:?}"
    );
}

#[test]
fn camvid_val_walks_clean() {
    let Some(val) = camvid("val") else { return };
    let t = std::time::Instant::now();
    let rep = check(val.as_ref(), None, 2);
    eprintln!(
        "checked {} CamVid val samples in {:.1?}",
        rep.checked,
        t.elapsed()
    );
    assert_eq!(rep.checked, 101);
    assert!(rep.bad.is_empty(), "{:?}", rep.bad);
    assert_eq!(rep.sizes.len(), 1);
    assert_eq!(rep.sizes.get(&(360, 480)), Some(&101));
    assert_eq!(rep.total_pixels(), 101 * 360 * 480);
    // Road and Building dominate val too; every class occurs.
    let shares = rep.class_shares();
    assert!(shares[3] > 0.2 && shares[1] > 0.1, "{shares:?}");
    assert!(shares.iter().all(|&s| s > 0.0), "{shares:?}");
    assert!(rep.ignore_share() > 0.0 && rep.ignore_share() < 0.15);
}

#[test]
fn camvid_bad_split_and_path() {
    let Some(root) = camvid_root() else { return };
    let e = open(&DataSpec::CamVid(root), "extra")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown split \"extra\""), "{e}");
    let e = open(&DataSpec::CamVid("/nonexistent/camvid".into()), "train")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/nonexistent/camvid") && e.contains("missing"),
        "{e}"
    );
}
