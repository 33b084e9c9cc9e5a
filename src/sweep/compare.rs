//! `advseg compare`: reads finished run directories (`config.toml`, `metrics.jsonl`,
//! `classes.json`), groups them by (method, labelled fraction) and summarises over seeds: final
//! and best validation mIoU, per-class IoU, and paired differences against `supervised` at the
//! same fraction and seed (the same seed draws the same labelled split, `data::semi`), with a
//! bootstrap interval of the mean difference.

use super::stats::{bootstrap_mean_ci, paired_differences, Interval, Summary};
use super::SweepError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The baseline every group is paired against.
pub const BASELINE: &str = "supervised";

/// What `compare` needs of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub dir: PathBuf,
    pub method: String,
    pub fraction: f64,
    pub seed: u64,
    pub iters: usize,
    /// Validation mIoU at step `iters`.
    pub final_miou: f64,
    /// Highest validation mIoU of any evaluation after step 0, and its step.
    pub best_miou: f64,
    pub best_step: u64,
    /// Per-class IoU of the final evaluation, by class name (absent classes left out).
    pub final_iou: BTreeMap<String, f64>,
    /// Class names in id order (`classes.json`), when the run has one.
    pub class_order: Vec<String>,
    /// The signal metrics of the final evaluation that the method reports (`SIGNALS` keys:
    /// D-uncertainty AUROC, gate precision and coverage, thresholded-CAM mIoU).
    pub final_signals: BTreeMap<String, f64>,
    /// Which setting of the method this run tried (`--variants`: the name of the directory
    /// the run sits in); runs of one method with different variants are grouped apart.
    /// Always empty for the baseline, which every variant is paired against.
    pub variant: String,
    /// Per-class IoU at every evaluation after step 0, in step order (for
    /// [`Run::exclude_classes`], which recomputes the best mIoU).
    pub evals: Vec<(u64, BTreeMap<String, f64>)>,
}

impl Run {
    /// Restates the run's mIoU over its classes other than `excluded`: final and best mIoU are
    /// recomputed from the per-class IoU (mean over the classes an evaluation scored, as the
    /// evaluation's own mIoU), and the excluded classes leave the per-class table. For the weak
    /// methods on a background-dominated dataset, where predicting background everywhere
    /// already scores `IoU_bg / C` (15.6% on camvid-things), the object classes alone say what
    /// the method localised.
    pub fn exclude_classes(&mut self, excluded: &[String]) -> Result<(), SweepError> {
        if excluded.is_empty() {
            return Ok(());
        }
        let bad = |why: String| SweepError::Run {
            path: self.dir.clone(),
            why,
        };
        let known: Vec<&String> = if self.class_order.is_empty() {
            self.final_iou.keys().collect()
        } else {
            self.class_order.iter().collect()
        };
        if let Some(x) = excluded.iter().find(|x| !known.contains(x)) {
            let names: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
            return Err(bad(format!(
                "--exclude-class {x:?}: the run has no such class (classes: {})",
                names.join(", ")
            )));
        }
        let kept_mean = |iou: &BTreeMap<String, f64>| {
            let v: Vec<f64> = iou
                .iter()
                .filter(|(k, _)| !excluded.contains(k))
                .map(|(_, &x)| x)
                .collect();
            super::stats::mean(&v)
        };
        self.final_miou = kept_mean(&self.final_iou)
            .ok_or_else(|| bad("no class left to average after --exclude-class".to_string()))?;
        let best = self
            .evals
            .iter()
            .filter_map(|(step, iou)| kept_mean(iou).map(|m| (m, *step)))
            .fold(None, |b: Option<(f64, u64)>, x| match b {
                Some(b) if b.0 >= x.0 => Some(b),
                _ => Some(x),
            });
        (self.best_miou, self.best_step) = best.unwrap_or((self.final_miou, self.iters as u64));
        self.final_iou.retain(|k, _| !excluded.contains(k));
        self.class_order.retain(|k| !excluded.contains(k));
        for (_, iou) in &mut self.evals {
            iou.retain(|k, _| !excluded.contains(k));
        }
        Ok(())
    }
}

impl Run {
    /// Restates the run's final values as the mean of its last `k` evaluations (the final one
    /// included): final mIoU as the mean of their mIoUs, per-class IoU as each class's mean
    /// over those of them that scored it. A single evaluation of a small validation set swings
    /// by a few mIoU points from one evaluation to the next (±3–5 on CamVid's 101 images); the
    /// mean of the last few damps that without moving the comparison to another training
    /// length. Best mIoU and the signals stay those of single evaluations. Apply after
    /// [`Run::exclude_classes`], whose per-evaluation IoU it reads.
    pub fn average_last_evals(&mut self, k: usize) -> Result<(), SweepError> {
        if k == 0 {
            return Err(SweepError::Run {
                path: self.dir.clone(),
                why: "--last-evals must be at least 1".into(),
            });
        }
        if k == 1 {
            return Ok(());
        }
        if self.evals.len() < k {
            return Err(SweepError::Run {
                path: self.dir.clone(),
                why: format!(
                    "--last-evals {k}: the run has {} evaluation(s) after step 0",
                    self.evals.len()
                ),
            });
        }
        let last = &self.evals[self.evals.len() - k..];
        let mious: Vec<f64> = last
            .iter()
            .filter_map(|(_, iou)| super::stats::mean(&iou.values().copied().collect::<Vec<_>>()))
            .collect();
        self.final_miou = super::stats::mean(&mious).ok_or_else(|| SweepError::Run {
            path: self.dir.clone(),
            why: format!("--last-evals {k}: no class scored in the last {k} evaluations"),
        })?;
        let mut per_class: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (_, iou) in last {
            for (c, &x) in iou {
                per_class.entry(c.clone()).or_default().push(x);
            }
        }
        self.final_iou = per_class
            .into_iter()
            .filter_map(|(c, v)| super::stats::mean(&v).map(|m| (c, m)))
            .collect();
        Ok(())
    }
}

/// The evaluation's signal metrics `compare` summarises, as metrics.jsonl names them.
pub const SIGNALS: [&str; 4] = ["d_auroc", "gate_precision", "gate_coverage", "cam_miou"];

/// A run directory that is not finished: `compare` leaves it out and says so.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unfinished {
    pub dir: PathBuf,
    pub why: String,
}

/// Reads one run directory. `Ok(Err(..))`: readable but not finished.
pub fn read_run(dir: &Path) -> Result<Result<Run, Unfinished>, SweepError> {
    let cfg_path = dir.join("config.toml");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| SweepError::Run {
        path: cfg_path.clone(),
        why: e.to_string(),
    })?;
    let bad_cfg = |why: String| SweepError::Run {
        path: cfg_path.clone(),
        why,
    };
    let t: toml::Table = toml::from_str(&text).map_err(|e| bad_cfg(e.to_string()))?;
    let method = t
        .get("method")
        .and_then(|v| v.as_str())
        .ok_or_else(|| bad_cfg("no `method`".into()))?
        .to_string();
    let int = |k: &str| {
        t.get(k)
            .and_then(|v| v.as_integer())
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad_cfg(format!("no integer `{k}`")))
    };
    let seed = int("seed")? as u64;
    let iters = int("iters")? as usize;
    let fraction = t
        .get("labeled_fraction")
        .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|n| n as f64)))
        .ok_or_else(|| bad_cfg("no `labeled_fraction`".into()))?;

    let m_path = dir.join("metrics.jsonl");
    let text = match std::fs::read_to_string(&m_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Err(Unfinished {
                dir: dir.to_path_buf(),
                why: "no metrics.jsonl yet".into(),
            }))
        }
        Err(e) => {
            return Err(SweepError::Run {
                path: m_path,
                why: e.to_string(),
            })
        }
    };
    let mut final_eval = None;
    let mut evals = Vec::new();
    let mut best: Option<(f64, u64)> = None;
    let mut last_step = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| SweepError::Run {
            path: m_path.clone(),
            why: format!("line {}: {e}", i + 1),
        })?;
        if v["type"] != "eval" {
            continue;
        }
        let bad = |why: &str| SweepError::Run {
            path: m_path.clone(),
            why: format!("line {}: evaluation {why}", i + 1),
        };
        let step = v["step"].as_u64().ok_or_else(|| bad("without a step"))?;
        // A NaN mIoU (no class present) is written as null; such an evaluation cannot rank.
        let miou = v["miou"].as_f64();
        last_step = last_step.max(step);
        if let Some(m) = miou.filter(|_| step > 0) {
            if best.is_none_or(|b| m > b.0) {
                best = Some((m, step));
            }
        }
        let iou = || -> Result<BTreeMap<String, f64>, SweepError> {
            Ok(v["iou"]
                .as_object()
                .ok_or_else(|| bad("without an `iou` object"))?
                .iter()
                .filter_map(|(k, x)| x.as_f64().map(|x| (k.clone(), x)))
                .collect())
        };
        if step > 0 && miou.is_some() {
            evals.push((step, iou()?));
        }
        if step == iters as u64 {
            let miou = miou.ok_or_else(|| bad("of the last step has no mIoU"))?;
            let iou = iou()?;
            let signals = SIGNALS
                .iter()
                .filter_map(|k| v[*k].as_f64().map(|x| (k.to_string(), x)))
                .collect();
            final_eval = Some((miou, iou, signals));
        }
    }
    let Some((final_miou, final_iou, final_signals)) = final_eval else {
        return Ok(Err(Unfinished {
            dir: dir.to_path_buf(),
            why: format!("no evaluation of step {iters} (last evaluated step {last_step})"),
        }));
    };
    let (best_miou, best_step) = best.unwrap_or((final_miou, iters as u64));
    let class_order = crate::train::rundir::read_classes(dir)
        .map_err(|why| SweepError::Run {
            path: dir.join(crate::train::rundir::CLASSES_FILE),
            why,
        })?
        .map(|c| c.names)
        .unwrap_or_default();
    Ok(Ok(Run {
        dir: dir.to_path_buf(),
        method,
        fraction,
        seed,
        iters,
        final_miou,
        best_miou,
        best_step,
        final_iou,
        class_order,
        final_signals,
        variant: String::new(),
        evals,
    }))
}

/// Names each non-baseline run's variant after the directory it sits in (a sweep's OUT), so
/// that one method run with different settings in different sweeps is compared group by group.
pub fn name_variants_by_dir(runs: &mut [Run]) {
    for r in runs.iter_mut().filter(|r| r.method != BASELINE) {
        r.variant = r
            .dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
}

/// The run directories among `paths`: a directory with `config.toml` is a run, any other
/// directory stands for the runs directly inside it.
pub fn find_runs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SweepError> {
    let mut out = Vec::new();
    for p in paths {
        if p.join("config.toml").is_file() {
            out.push(p.clone());
            continue;
        }
        let rd = std::fs::read_dir(p).map_err(|e| SweepError::Run {
            path: p.clone(),
            why: e.to_string(),
        })?;
        let mut inner: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| d.join("config.toml").is_file())
            .collect();
        if inner.is_empty() {
            return Err(SweepError::Run {
                path: p.clone(),
                why: "neither a run directory (no config.toml) nor a directory of runs".into(),
            });
        }
        inner.sort();
        out.extend(inner);
    }
    Ok(out)
}

/// Paired differences of one group against the baseline at the same fraction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Paired {
    /// Seeds present in both the group and the baseline, ascending.
    pub seeds: Vec<u64>,
    /// Final mIoU of the group minus the baseline's, per seed in `seeds` order.
    pub differences: Vec<f64>,
    pub summary: Summary,
    pub ci: Option<Interval>,
    /// The same for the best mIoU.
    pub best_differences: Vec<f64>,
    pub best_summary: Summary,
    pub best_ci: Option<Interval>,
    /// Final mIoU of the group over the baseline's, per seed (seeds whose baseline mIoU is
    /// above 0): the weak methods' goals are stated as a share of the supervised mIoU.
    pub ratios: Vec<f64>,
    pub ratio_summary: Option<Summary>,
    pub ratio_ci: Option<Interval>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    pub method: String,
    /// The run's variant (see [`Run::variant`]); empty when not named.
    pub variant: String,
    pub fraction: f64,
    pub seeds: Vec<u64>,
    pub dirs: Vec<PathBuf>,
    pub final_miou: Summary,
    pub best_miou: Summary,
    /// Per class, in class order: the final IoU over the seeds that saw the class.
    pub iou: Vec<(String, Summary)>,
    /// Absent for the baseline itself and where no baseline run shares a seed.
    pub vs_supervised: Option<Paired>,
    /// The final evaluation's signal metrics (`SIGNALS` order) over the seeds reporting them.
    pub signals: Vec<(String, Summary)>,
}

impl Group {
    /// The method, with its variant in brackets when it has one.
    pub fn label(&self) -> String {
        if self.variant.is_empty() {
            self.method.clone()
        } else {
            format!("{} [{}]", self.method, self.variant)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub classes: Vec<String>,
    /// Classes left out of every mIoU ([`Run::exclude_classes`]), for the table's caption.
    pub excluded_classes: Vec<String>,
    /// How many last evaluations each run's final values average ([`Run::average_last_evals`]).
    pub last_evals: usize,
    pub groups: Vec<Group>,
    pub unfinished: Vec<Unfinished>,
    pub resamples: usize,
    pub bootstrap_seed: u64,
    pub level: f64,
}

/// Groups runs by (method, variant, fraction) and summarises them.
pub fn compare(
    runs: &[Run],
    unfinished: Vec<Unfinished>,
    resamples: usize,
    bootstrap_seed: u64,
) -> Result<Comparison, SweepError> {
    let level = 0.95;
    // Fractions as keys: the same text gives the same f64, and configs store the parsed f64.
    let key = |r: &Run| (r.method.clone(), r.variant.clone(), r.fraction.to_bits());
    let mut by: BTreeMap<(String, String, u64), Vec<&Run>> = BTreeMap::new();
    for r in runs {
        let g = by.entry(key(r)).or_default();
        if let Some(o) = g.iter().find(|o| o.seed == r.seed) {
            return Err(SweepError::Run {
                path: r.dir.clone(),
                why: format!(
                    "same method, fraction and seed as {} ({} f{} s{}); compare them apart, \
                     or name their variants by directory (--variants)",
                    o.dir.display(),
                    r.method,
                    r.fraction,
                    r.seed
                ),
            });
        }
        g.push(r);
    }
    let mut classes: Vec<String> = runs
        .iter()
        .find(|r| !r.class_order.is_empty())
        .map(|r| r.class_order.clone())
        .unwrap_or_default();
    for r in runs {
        for c in r.final_iou.keys() {
            if !classes.contains(c) {
                classes.push(c.clone());
            }
        }
    }
    let mut groups = Vec::new();
    for ((method, variant, fbits), mut rs) in by.iter().map(|(k, v)| (k.clone(), v.clone())) {
        rs.sort_by_key(|r| r.seed);
        let fraction = f64::from_bits(fbits);
        let finals: Vec<f64> = rs.iter().map(|r| r.final_miou).collect();
        let bests: Vec<f64> = rs.iter().map(|r| r.best_miou).collect();
        let iou = classes
            .iter()
            .filter_map(|c| {
                let v: Vec<f64> = rs
                    .iter()
                    .filter_map(|r| r.final_iou.get(c).copied())
                    .collect();
                Summary::of(&v).map(|s| (c.clone(), s))
            })
            .collect();
        let vs_supervised = if method == BASELINE {
            None
        } else {
            by.get(&(BASELINE.to_string(), String::new(), fbits))
                .and_then(|base| paired(&rs, base, level, resamples, bootstrap_seed))
        };
        let signals = SIGNALS
            .iter()
            .filter_map(|k| {
                let v: Vec<f64> = rs
                    .iter()
                    .filter_map(|r| r.final_signals.get(*k).copied())
                    .collect();
                Summary::of(&v).map(|s| (k.to_string(), s))
            })
            .collect();
        groups.push(Group {
            method,
            variant,
            fraction,
            seeds: rs.iter().map(|r| r.seed).collect(),
            dirs: rs.iter().map(|r| r.dir.clone()).collect(),
            final_miou: Summary::of(&finals).expect("a group has runs"),
            best_miou: Summary::of(&bests).expect("a group has runs"),
            iou,
            vs_supervised,
            signals,
        });
    }
    // Baseline first at each fraction, then methods by name; full labels before fractions.
    groups.sort_by(|a, b| {
        b.fraction
            .total_cmp(&a.fraction)
            .then((a.method != BASELINE).cmp(&(b.method != BASELINE)))
            .then(a.method.cmp(&b.method))
            .then(a.variant.cmp(&b.variant))
    });
    Ok(Comparison {
        classes,
        excluded_classes: Vec::new(),
        last_evals: 1,
        groups,
        unfinished,
        resamples,
        bootstrap_seed,
        level,
    })
}

fn paired(rs: &[&Run], base: &[&Run], level: f64, resamples: usize, seed: u64) -> Option<Paired> {
    let pairs: Vec<(&Run, &Run)> = rs
        .iter()
        .filter_map(|r| base.iter().find(|b| b.seed == r.seed).map(|b| (*r, *b)))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let col = |f: fn(&Run) -> f64| -> (Vec<f64>, Vec<f64>) {
        pairs.iter().map(|(r, b)| (f(r), f(b))).unzip()
    };
    let (a, b) = col(|r| r.final_miou);
    let differences = paired_differences(&a, &b);
    let ratios: Vec<f64> = a
        .iter()
        .zip(&b)
        .filter(|(_, b)| **b > 0.0)
        .map(|(a, b)| a / b)
        .collect();
    let (a, b) = col(|r| r.best_miou);
    let best_differences = paired_differences(&a, &b);
    Some(Paired {
        ratio_summary: Summary::of(&ratios),
        ratio_ci: bootstrap_mean_ci(&ratios, level, resamples, seed),
        ratios,
        seeds: pairs.iter().map(|(r, _)| r.seed).collect(),
        summary: Summary::of(&differences)?,
        ci: bootstrap_mean_ci(&differences, level, resamples, seed),
        best_summary: Summary::of(&best_differences)?,
        best_ci: bootstrap_mean_ci(&best_differences, level, resamples, seed),
        differences,
        best_differences,
    })
}

/// A fraction as people write it: `1`, `1/8`, else the decimal.
pub fn fraction_text(f: f64) -> String {
    if f == 1.0 {
        return "1".into();
    }
    let inv = 1.0 / f;
    if (inv - inv.round()).abs() < 1e-9 && inv.round() >= 2.0 {
        format!("1/{}", inv.round() as u64)
    } else {
        format!("{f}")
    }
}
