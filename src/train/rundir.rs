//! The run directory writer, an [`Observer`]: `metrics.jsonl` (step scalars every `log_every`
//! steps, every evaluation) and probe snapshots as PNGs under `snapshots/step_NNNNNN/`.
//! Checkpoints, `config.toml`, `classes.json` and `split.txt` are written by the trainer itself.

use super::event::{Event, Observer, Snapshot};
use super::maps::KindTable;
use crate::data::io::{write_gray_png, write_palette_png};
use crate::data::save::save_overlay;
use crate::data::{ClassInfo, RgbImage};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The run directory's class table: ids, names and colours in id order. The evaluations in
/// `metrics.jsonl` key per-class IoU by name in a JSON object, whose order is not the class
/// order, so readers take ids and colours from here.
pub const CLASSES_FILE: &str = "classes.json";

/// Writes `classes.json` (atomically).
pub fn write_classes(dir: &Path, c: &ClassInfo) -> crate::train::error::Result<()> {
    let classes: Vec<serde_json::Value> = c
        .names
        .iter()
        .enumerate()
        .map(|(id, name)| {
            json!({"id": id, "name": name,
                   "colour": c.colours.get(id).copied().unwrap_or([0, 0, 0])})
        })
        .collect();
    let v = json!({"ignore": c.ignore, "classes": classes});
    let text = serde_json::to_string_pretty(&v).expect("serialisable") + "\n";
    Ok(crate::nn::write_atomic(
        &dir.join(CLASSES_FILE),
        text.as_bytes(),
    )?)
}

/// Reads `classes.json` back; `Ok(None)` when the run directory has none (runs made before it
/// existed).
pub fn read_classes(dir: &Path) -> Result<Option<ClassInfo>, String> {
    let path = dir.join(CLASSES_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let bad = |why: &str| format!("{}: {why}", path.display());
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
    let list = v["classes"]
        .as_array()
        .ok_or_else(|| bad("no \"classes\" list"))?;
    let mut rows: Vec<(usize, String, [u8; 3])> = Vec::with_capacity(list.len());
    for c in list {
        let id = c["id"]
            .as_u64()
            .ok_or_else(|| bad("a class without an id"))? as usize;
        let name = c["name"].as_str().unwrap_or_default().to_string();
        let col = c["colour"].as_array().map(|a| {
            let ch = |i: usize| a.get(i).and_then(|x| x.as_u64()).unwrap_or(0).min(255) as u8;
            [ch(0), ch(1), ch(2)]
        });
        rows.push((id, name, col.unwrap_or([0, 0, 0])));
    }
    rows.sort_by_key(|r| r.0);
    if rows.iter().enumerate().any(|(i, r)| r.0 != i) {
        return Err(bad("class ids are not 0..n"));
    }
    Ok(Some(ClassInfo {
        names: rows.iter().map(|r| r.1.clone()).collect(),
        colours: rows.iter().map(|r| r.2).collect(),
        ignore: v["ignore"].as_u64().unwrap_or(255).min(255) as u8,
    }))
}

/// A row-major n×n confusion matrix as JSON rows (`[gt][pred]`).
fn confusion_rows(m: &[u64], n: usize) -> serde_json::Value {
    if n == 0 || m.len() != n * n {
        return serde_json::Value::Null;
    }
    json!(m.chunks(n).collect::<Vec<_>>())
}

pub struct RunDirWriter {
    dir: PathBuf,
    log_every: usize,
    warned: bool,
}

impl RunDirWriter {
    /// With `resume_step`, lines of `metrics.jsonl` after that step (written after the
    /// checkpoint the run resumes from) are dropped so the log continues seamlessly.
    pub fn new(dir: &Path, log_every: usize, resume_step: Option<usize>) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("metrics.jsonl");
        if let (Some(s), true) = (resume_step, path.exists()) {
            let text = std::fs::read_to_string(&path)?;
            let kept: String = text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v["step"].as_u64())
                        .is_some_and(|st| st as usize <= s)
                })
                .map(|l| format!("{l}\n"))
                .collect();
            crate::nn::write_atomic(&path, kept.as_bytes())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        } else if resume_step.is_none() && path.exists() {
            std::fs::remove_file(&path)?;
        }
        Ok(RunDirWriter {
            dir: dir.to_path_buf(),
            log_every: log_every.max(1),
            warned: false,
        })
    }

    fn append(&mut self, v: serde_json::Value) -> std::io::Result<()> {
        append_jsonl(&self.dir.join("metrics.jsonl"), &v)
    }

    fn handle(&mut self, e: &Event) -> Result<(), String> {
        match e {
            Event::Step(s) if s.step.is_multiple_of(self.log_every) || s.step == s.iters => {
                let mut v = json!({"type": "step", "step": s.step, "it_per_s": s.it_per_s});
                for (k, x) in &s.scalars {
                    v[k] = json!(x);
                }
                self.append(v).map_err(|e| e.to_string())
            }
            Event::Eval(r) => {
                let iou: serde_json::Map<String, serde_json::Value> = r
                    .per_class_iou
                    .iter()
                    .map(|(n, v)| (n.clone(), json!(v)))
                    .collect();
                let mut v = json!({
                    "type": "eval", "step": r.step, "split": r.split, "miou": r.miou,
                    "pixel_acc": r.pixel_acc, "mean_class_acc": r.mean_class_acc,
                    "iou": iou, "images": r.images, "seconds": r.seconds,
                    "confusion": confusion_rows(&r.confusion, r.per_class_iou.len()),
                });
                v.as_object_mut()
                    .expect("an object")
                    .extend(r.signals.to_json());
                self.append(v).map_err(|e| e.to_string())
            }
            Event::Checkpoint { step, path, kind } => self
                .append(json!({"type": "checkpoint", "step": step, "kind": kind,
                               "path": path.display().to_string()}))
                .map_err(|e| e.to_string()),
            Event::Snapshot(s) => {
                if !s.signals.is_empty() {
                    let mut v = json!({"type": "probe_signals", "step": s.step,
                                       "images": s.probes.len()});
                    v.as_object_mut()
                        .expect("an object")
                        .extend(s.signals.to_json());
                    self.append(v).map_err(|e| e.to_string())?;
                }
                write_snapshot(&self.dir.join("snapshots"), s)
            }
            _ => Ok(()),
        }
    }
}

impl Observer for RunDirWriter {
    fn on_event(&mut self, e: &Event) {
        if let Err(why) = self.handle(e) {
            if !self.warned {
                eprintln!("warning: run directory {}: {why}", self.dir.display());
                self.warned = true;
            }
        }
    }
}

/// Appends one JSON line to `path` (a run's `metrics.jsonl`; the trainer also writes its
/// `bad_sample` lines through this).
pub fn append_jsonl(path: &Path, v: &serde_json::Value) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{v}")
}

fn to_u8(v: &[f32]) -> Vec<u8> {
    v.iter()
        .map(|x| (x.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

/// Each snapshot folder's map kinds: PNG name stem after the probe prefix (`d_confidence`,
/// `train_semi_mask_used`) → [`crate::train::MapKind`].
pub const MAP_KINDS_FILE: &str = "maps.json";
/// File-name prefix of the last training batch's maps.
pub const TRAIN_MAP_PREFIX: &str = "train_";

/// Writes one snapshot: per probe the input, ground truth and prediction (palette PNGs),
/// an overlay, the max-probability confidence and each method map (grayscale, 0..1 → 0..255);
/// the maps' kinds in `maps.json`.
pub fn write_snapshot(root: &Path, s: &Snapshot) -> Result<(), String> {
    let dir = root.join(format!("step_{:06}", s.step));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let err = |e: crate::data::DataError| e.to_string();
    let mut kinds = KindTable::new();
    for (i, p) in s.probes.iter().enumerate() {
        let base = format!("{i}_{}", p.name.replace(['/', '\\', ' '], "_"));
        let f = |what: &str| dir.join(format!("{base}_{what}.png"));
        let img = RgbImage {
            w: p.w,
            h: p.h,
            data: p.input.clone(),
        };
        crate::data::io::write_rgb_png(&f("input"), &img).map_err(err)?;
        write_palette_png(&f("gt"), p.w, p.h, &p.gt, &s.colours).map_err(err)?;
        write_palette_png(&f("pred"), p.w, p.h, &p.pred, &s.colours).map_err(err)?;
        save_overlay(&f("overlay"), &img, &p.pred, &s.colours, 0.5).map_err(err)?;
        let hw = p.h * p.w;
        let conf: Vec<f32> = (0..hw)
            .map(|j| {
                (0..s.classes)
                    .map(|c| p.probs[c * hw + j])
                    .fold(0.0, f32::max)
            })
            .collect();
        write_gray_png(&f("confidence"), p.w, p.h, &to_u8(&conf)).map_err(err)?;
        for m in &p.maps {
            write_gray_png(&f(&m.name), p.w, p.h, &to_u8(&m.values[..hw])).map_err(err)?;
            kinds.insert(m.name.clone(), m.kind);
        }
    }
    for m in &s.train_maps {
        let stem = format!("{TRAIN_MAP_PREFIX}{}", m.name);
        write_gray_png(
            &dir.join(format!("{stem}.png")),
            m.w,
            m.h,
            &to_u8(&m.values),
        )
        .map_err(err)?;
        kinds.insert(stem, m.kind);
    }
    let path = dir.join(MAP_KINDS_FILE);
    let json = serde_json::to_string_pretty(&kinds).expect("serialisable");
    crate::nn::write_atomic(&path, json.as_bytes()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_roundtrip_in_id_order() {
        let dir = std::env::temp_dir().join(format!("advseg_classes_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_classes(&dir).unwrap(), None);
        let c = ClassInfo::new(
            &["background", "disc", "bar"],
            &[[0, 0, 0], [128, 0, 0], [0, 128, 0]],
            255,
        );
        write_classes(&dir, &c).unwrap();
        assert_eq!(read_classes(&dir).unwrap(), Some(c));
        let _ = std::fs::remove_dir_all(dir);
    }
}
