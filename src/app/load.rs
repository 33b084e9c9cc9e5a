//! Reads a run directory's snapshot PNGs (as `train::rundir::write_snapshot` wrote them) back
//! into [`Snapshot`]s, so the step slider and map viewer work on an old run.
//!
//! What the PNGs cannot give back: class probabilities (only their max, `confidence`, was
//! written; the readout then has no top-k line) and maps at more than 8 bits. Map kinds come
//! from the folder's `maps.json`; folders written before it existed fall back to
//! [`MapKind::from_legacy_name`].

use crate::data::io::{read_image, read_label};
use crate::train::event::{HostMap, ProbeSnapshot};
use crate::train::maps::{KindTable, MapKind};
use crate::train::rundir::{MAP_KINDS_FILE, TRAIN_MAP_PREFIX};
use crate::train::Snapshot;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Probe files that are not method maps.
const FIXED: &[&str] = &["input", "gt", "pred", "overlay"];

fn err(p: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", p.display())
}

/// The palette of an indexed PNG (empty for other colour types).
fn palette(path: &Path) -> Result<Vec<[u8; 3]>, String> {
    let f = std::fs::File::open(path).map_err(|e| err(path, e))?;
    let r = png::Decoder::new(std::io::BufReader::new(f))
        .read_info()
        .map_err(|e| err(path, e))?;
    Ok(r.info()
        .palette
        .as_deref()
        .unwrap_or_default()
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect())
}

fn gray(path: &Path) -> Result<(usize, usize, Vec<f32>), String> {
    let m = read_label(path).map_err(|e| e.to_string())?;
    Ok((m.h, m.w, m.data.iter().map(|&v| v as f32 / 255.0).collect()))
}

/// `snapshots/step_NNNNNN` folders, by step.
fn step_dirs(dir: &Path) -> Result<Vec<(usize, PathBuf)>, String> {
    let root = dir.join("snapshots");
    if !root.is_dir() {
        return Ok(vec![]);
    }
    let mut v: Vec<(usize, PathBuf)> = std::fs::read_dir(&root)
        .map_err(|e| err(&root, e))?
        .filter_map(|e| {
            let e = e.ok()?;
            let step = e
                .file_name()
                .to_str()?
                .strip_prefix("step_")?
                .parse()
                .ok()?;
            Some((step, e.path()))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Every snapshot of the run directory up to `up_to` (a resumed run drops later ones, as its
/// metrics log does). `classes` (from the logged evaluations) sizes the palette; without it
/// the classes are those the labels and palette show.
pub fn load_snapshots(
    dir: &Path,
    up_to: Option<usize>,
    classes: Option<usize>,
) -> Result<Vec<Arc<Snapshot>>, String> {
    let mut out = Vec::new();
    for (step, d) in step_dirs(dir)? {
        if up_to.is_some_and(|u| step > u) {
            continue;
        }
        out.push(Arc::new(load_step(step, &d, classes)?));
    }
    Ok(out)
}

/// The folder's map kinds; empty (every kind then guessed by name) in an older run directory.
fn kinds(d: &Path) -> Result<KindTable, String> {
    let p = d.join(MAP_KINDS_FILE);
    match std::fs::read_to_string(&p) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| err(&p, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KindTable::new()),
        Err(e) => Err(err(&p, e)),
    }
}

fn load_step(step: usize, d: &Path, classes: Option<usize>) -> Result<Snapshot, String> {
    let kinds = kinds(d)?;
    let kind = |stem: &str, name: &str| {
        kinds
            .get(stem)
            .copied()
            .unwrap_or_else(|| MapKind::from_legacy_name(name))
    };
    let mut files: Vec<String> = std::fs::read_dir(d)
        .map_err(|e| err(d, e))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".png").map(str::to_string))
        .collect();
    files.sort();
    // Probe bases are `{index}_{name}`; the index keeps names that share a prefix apart.
    let mut bases: Vec<(usize, String)> = files
        .iter()
        .filter_map(|f| {
            let base = f.strip_suffix("_input")?;
            let i = base.split_once('_')?.0.parse().ok()?;
            Some((i, base.to_string()))
        })
        .collect();
    bases.sort();
    let mut probes = Vec::new();
    let mut colours: Vec<[u8; 3]> = Vec::new();
    let mut max_id = 0usize;
    for (_, base) in &bases {
        let f = |what: &str| d.join(format!("{base}_{what}.png"));
        let img = read_image(&f("input")).map_err(|e| e.to_string())?;
        let gt = read_label(&f("gt")).map_err(|e| e.to_string())?;
        let pred = read_label(&f("pred")).map_err(|e| e.to_string())?;
        for m in [&gt, &pred] {
            if (m.w, m.h) != (img.w, img.h) {
                return Err(err(&f("gt"), "labels and input differ in size"));
            }
        }
        if colours.is_empty() {
            colours = palette(&f("gt"))?;
        }
        max_id = gt
            .data
            .iter()
            .chain(&pred.data)
            .filter(|&&c| c != 255)
            .map(|&c| c as usize + 1)
            .fold(max_id, usize::max);
        let mut maps = Vec::new();
        let prefix = format!("{base}_");
        for name in files.iter().filter_map(|n| n.strip_prefix(&prefix)) {
            if FIXED.contains(&name) {
                continue;
            }
            let (h, w, values) = gray(&d.join(format!("{prefix}{name}.png")))?;
            if (h, w) == (img.h, img.w) {
                maps.push(HostMap {
                    name: name.to_string(),
                    kind: kind(name, name),
                    h,
                    w,
                    values,
                });
            }
        }
        probes.push(ProbeSnapshot {
            name: base
                .split_once('_')
                .map_or(base.as_str(), |b| b.1)
                .to_string(),
            h: img.h,
            w: img.w,
            input: img.data,
            gt: gt.data,
            pred: pred.data,
            probs: vec![],
            maps,
        });
    }
    let mut train_maps = Vec::new();
    for (stem, name) in files
        .iter()
        .filter_map(|n| Some((n, n.strip_prefix(TRAIN_MAP_PREFIX)?)))
    {
        let (h, w, values) = gray(&d.join(format!("{stem}.png")))?;
        train_maps.push(HostMap {
            name: name.to_string(),
            kind: kind(stem, name),
            h,
            w,
            values,
        });
    }
    // Without logged class names, the classes are what the palette colours or labels use.
    let painted = colours
        .iter()
        .take(255)
        .rposition(|c| *c != [0, 0, 0])
        .map_or(0, |i| i + 1);
    let classes = classes.unwrap_or(painted.max(max_id)).max(1);
    colours.resize(classes.max(colours.len()), [0, 0, 0]);
    colours.truncate(classes);
    Ok(Snapshot {
        step,
        classes,
        colours,
        ignore: 255,
        probes,
        train_maps,
        signals: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::rundir::write_snapshot;

    /// Kinds come back from `maps.json`; without it (an older run dir) from the name rule.
    #[test]
    fn kinds_round_trip_and_fall_back() {
        let root = std::env::temp_dir().join(format!("advseg_kinds_{}", std::process::id()));
        let (h, w) = (4, 5);
        let m = |name: &str, kind| HostMap {
            name: name.into(),
            kind,
            h,
            w,
            values: vec![0.5; h * w],
        };
        let snap = Snapshot {
            step: 3,
            classes: 2,
            colours: vec![[0, 0, 0], [200, 0, 0]],
            ignore: 255,
            probes: vec![ProbeSnapshot {
                name: "p".into(),
                h,
                w,
                input: vec![9; 3 * h * w],
                gt: vec![1; h * w],
                pred: vec![0; h * w],
                probs: vec![0.5; 2 * h * w],
                maps: vec![
                    m("seeds", MapKind::Labels),
                    m("d_confidence", MapKind::Confidence),
                ],
            }],
            train_maps: vec![m("erased_batch", MapKind::Image)],
            signals: Default::default(),
        };
        let snaps = root.join("snapshots");
        write_snapshot(&snaps, &snap).unwrap();
        let kinds = |s: &Snapshot| -> Vec<(String, MapKind)> {
            let p = s.probes[0].maps.iter().chain(&s.train_maps);
            p.filter(|m| m.name != "confidence")
                .map(|m| (m.name.clone(), m.kind))
                .collect()
        };
        let back = load_snapshots(&root, None, Some(2)).unwrap();
        let want = |seeds| {
            vec![
                ("d_confidence".to_string(), MapKind::Confidence),
                ("seeds".to_string(), seeds),
                ("erased_batch".to_string(), MapKind::Image),
            ]
        };
        assert_eq!(kinds(&back[0]), want(MapKind::Labels));
        std::fs::remove_file(snaps.join("step_000003").join(MAP_KINDS_FILE)).unwrap();
        let old = load_snapshots(&root, None, Some(2)).unwrap();
        // By name, `seeds` is a scalar and `d_confidence` too (the old rule knew no kinds).
        let mut w = want(MapKind::Scalar);
        w[0].1 = MapKind::Scalar;
        assert_eq!(kinds(&old[0]), w);
        let _ = std::fs::remove_dir_all(root);
    }
}
