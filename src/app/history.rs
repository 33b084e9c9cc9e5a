//! What the app has seen of a run: scalar series, evaluations and every snapshot, so the plots
//! and the step slider can go back in time.

use crate::data::ClassInfo;
use crate::metrics::signals::SignalScores;
use crate::train::{EvalResult, Event, Snapshot};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

#[derive(Default)]
pub struct History {
    pub method: String,
    pub iters: usize,
    pub step: usize,
    pub it_per_s: f64,
    /// name -> (step, value), in arrival order.
    pub scalars: BTreeMap<String, Vec<[f64; 2]>>,
    pub evals: Vec<EvalResult>,
    pub snapshots: Vec<Arc<Snapshot>>,
    pub checkpoints: Vec<(usize, String)>,
    /// Human-readable log of notable events and errors, newest last.
    pub log: Vec<String>,
    pub finished: bool,
    /// The trainer's own time for the run, once it finished.
    pub seconds: Option<f64>,
    /// Class ids, names and colours (the run directory's `classes.json`); live runs name
    /// classes through their evaluations, which are in id order.
    pub classes: Option<ClassInfo>,
    /// (step, seconds of training) of every step seen, for the wall-clock axis and the elapsed
    /// time; a loaded run's times are rebuilt from its logged it/s.
    pub times: Vec<[f64; 2]>,
    /// When the live part of the run started, and the training time before it (a resumed run).
    live_since: Option<Instant>,
    time_offset: f64,
    /// G/D balance: `balance.current` holds the imbalance while D is winning.
    pub balance: crate::train::balance::BalanceMonitor,
    /// Probe scores read from metrics.jsonl's `probe_signals` lines, by step, until
    /// `load_run` gives them to the snapshots read back from PNGs.
    probe_signals: BTreeMap<usize, SignalScores>,
}

impl History {
    pub fn apply(&mut self, e: Event) {
        match e {
            Event::Started {
                method,
                start_step,
                iters,
                run_dir,
            } => {
                self.method = method.clone();
                self.iters = iters;
                self.step = start_step;
                self.time_offset = self.times.last().map_or(0.0, |t| t[1]);
                self.live_since = Some(Instant::now());
                let dir = run_dir
                    .map(|d| format!(" -> {}", d.display()))
                    .unwrap_or_default();
                self.log
                    .push(format!("{method}: steps {start_step}..{iters}{dir}"));
            }
            Event::Step(s) => {
                self.step = s.step;
                self.it_per_s = s.it_per_s;
                let t =
                    self.time_offset + self.live_since.map_or(0.0, |t0| t0.elapsed().as_secs_f64());
                self.times.push([s.step as f64, t]);
                if let Some(w) = self.balance.observe(&s) {
                    self.log.push(format!("warning: {w}"));
                }
                for (k, v) in &s.scalars {
                    self.scalars
                        .entry(k.clone())
                        .or_default()
                        .push([s.step as f64, *v as f64]);
                }
            }
            Event::Eval(r) => {
                self.log.push(format!(
                    "eval step {}: mIoU {}",
                    r.step,
                    r.miou
                        .map(|m| format!("{:.2}%", 100.0 * m))
                        .unwrap_or_else(|| "n/a".into())
                ));
                self.evals.push(r);
            }
            Event::Snapshot(s) => self.snapshots.push(Arc::from(s)),
            Event::Checkpoint { step, path, kind } => {
                self.checkpoints.push((step, path.display().to_string()));
                if kind == "best" {
                    self.log
                        .push(format!("step {step}: new best -> {}", path.display()));
                }
            }
            Event::Interrupted { step } => {
                self.finished = true;
                self.log
                    .push(format!("stopped at step {step}; `last` checkpoint saved"));
            }
            Event::Finished { step, seconds } => {
                self.finished = true;
                self.seconds = Some(seconds);
                self.log
                    .push(format!("finished at step {step} in {seconds:.1} s"));
            }
        }
    }

    /// Reads a run directory's `metrics.jsonl` (step scalars every `log_every` steps and
    /// evaluations), so an existing run's curves show before or without resuming it.
    pub fn load_metrics(dir: &Path) -> Result<History, String> {
        let path = dir.join("metrics.jsonl");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut h = History::default();
        for (n, line) in text.lines().enumerate().filter(|l| !l.1.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
            let step = v["step"].as_u64().unwrap_or(0) as usize;
            h.step = h.step.max(step);
            match v["type"].as_str() {
                Some("step") => {
                    // Logged steps are `log_every` apart: their time is the gap at that it/s.
                    let (s0, t0) = h.times.last().map_or((0.0, 0.0), |t| (t[0], t[1]));
                    let rate = v["it_per_s"].as_f64().filter(|r| *r > 0.0);
                    let dt = rate.map_or(0.0, |r| (step as f64 - s0).max(0.0) / r);
                    h.times.push([step as f64, t0 + dt]);
                    let get = |k: &str| v[k].as_f64();
                    if let Some(w) = h.balance.observe_values(step, &get) {
                        h.log.push(format!("warning: {w}"));
                    }
                    for (k, x) in v.as_object().into_iter().flatten() {
                        if let (false, Some(x)) = (
                            ["type", "step", "it_per_s"].contains(&k.as_str()),
                            x.as_f64(),
                        ) {
                            h.scalars
                                .entry(k.clone())
                                .or_default()
                                .push([step as f64, x]);
                        }
                    }
                }
                Some("eval") => h.evals.push(EvalResult {
                    step,
                    split: v["split"].as_str().unwrap_or("").to_string(),
                    miou: v["miou"].as_f64(),
                    pixel_acc: v["pixel_acc"].as_f64(),
                    mean_class_acc: v["mean_class_acc"].as_f64(),
                    per_class_iou: v["iou"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, x)| (k.clone(), x.as_f64()))
                        .collect(),
                    images: v["images"].as_u64().unwrap_or(0) as usize,
                    seconds: v["seconds"].as_f64().unwrap_or(0.0),
                    confusion: v["confusion"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|row| row.as_array().into_iter().flatten())
                        .map(|x| x.as_u64().unwrap_or(0))
                        .collect(),
                    signals: Box::new(SignalScores::from_json(&v)),
                }),
                Some("probe_signals") => {
                    h.probe_signals.insert(step, SignalScores::from_json(&v));
                }
                _ => {}
            }
        }
        h.log
            .push(format!("loaded {} (up to step {})", path.display(), h.step));
        Ok(h)
    }

    /// A run directory as the app would have seen it: logged metrics and the snapshot PNGs
    /// up to `up_to` (the checkpoint a resumed run continues from).
    pub fn load_run(dir: &Path, up_to: Option<usize>) -> Result<History, String> {
        let mut h = History::load_metrics(dir)?;
        if let Some(u) = up_to {
            h.truncate(u);
        }
        h.classes = run_classes(dir, &mut h.log)?;
        if let Some(c) = &h.classes {
            // IoU was logged as a JSON object keyed by name: put it back in id order.
            for r in &mut h.evals {
                let by_name: BTreeMap<String, Option<f64>> = r.per_class_iou.drain(..).collect();
                r.per_class_iou = c
                    .names
                    .iter()
                    .map(|n| (n.clone(), by_name.get(n).copied().flatten()))
                    .collect();
            }
        }
        let classes = h
            .classes
            .as_ref()
            .map(|c| c.len())
            .or_else(|| h.evals.last().map(|r| r.per_class_iou.len()));
        h.snapshots = super::load::load_snapshots(dir, up_to, classes)?;
        // A reopened run plots its probes' scores as the live run did.
        let scores = std::mem::take(&mut h.probe_signals);
        for s in &mut h.snapshots {
            if let (Some(sc), Some(snap)) = (scores.get(&s.step), Arc::get_mut(s)) {
                snap.signals = sc.clone();
            }
        }
        if let Some(s) = h.snapshots.last() {
            h.log.push(format!(
                "loaded {} snapshots (steps {}..{})",
                h.snapshots.len(),
                h.snapshots[0].step,
                s.step
            ));
        }
        Ok(h)
    }

    /// Drops what was logged after `step` (a resumed run rewrites it).
    pub fn truncate(&mut self, step: usize) {
        let s = step as f64;
        for v in self.scalars.values_mut() {
            v.retain(|p| p[0] <= s);
        }
        self.times.retain(|p| p[0] <= s);
        self.evals.retain(|r| r.step <= step);
        self.step = self.step.min(step);
    }

    /// Seconds of training up to the latest step.
    pub fn elapsed(&self) -> f64 {
        self.times.last().map_or(0.0, |t| t[1])
    }

    /// Seconds to the end at the current rate, if there is one.
    pub fn eta(&self) -> Option<f64> {
        (self.it_per_s > 0.0 && self.iters > self.step)
            .then(|| (self.iters - self.step) as f64 / self.it_per_s)
    }

    /// Seconds of training at `step` (interpolated between seen steps), for the time axis.
    pub fn time_at(&self, step: f64) -> f64 {
        let t = &self.times;
        let i = t.partition_point(|p| p[0] < step);
        match (i.checked_sub(1).and_then(|j| t.get(j)), t.get(i)) {
            (_, Some(b)) if b[0] == step => b[1],
            (Some(a), Some(b)) => a[1] + (b[1] - a[1]) * (step - a[0]) / (b[0] - a[0]),
            (Some(a), None) => a[1],
            (None, Some(b)) => b[1],
            (None, None) => 0.0,
        }
    }

    /// Class names: the run's class table, else the latest evaluation's, else numbers.
    pub fn class_names(&self, classes: usize) -> Vec<String> {
        if let Some(c) = self.classes.as_ref().filter(|c| c.len() == classes) {
            return c.names.clone();
        }
        match self.evals.last() {
            Some(r) if r.per_class_iou.len() == classes => {
                r.per_class_iou.iter().map(|c| c.0.clone()).collect()
            }
            _ => (0..classes).map(|c| format!("class {c}")).collect(),
        }
    }
}

/// The class table of a run directory: `classes.json`, or for runs written before it existed,
/// the dataset named in its `config.toml` (when it can still be opened; `None` otherwise).
pub fn run_classes(dir: &Path, log: &mut Vec<String>) -> Result<Option<ClassInfo>, String> {
    if let Some(c) = crate::train::rundir::read_classes(dir)? {
        return Ok(Some(c));
    }
    let path = dir.join("config.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let from_data = crate::train::RunConfig::from_toml(&text, &path)
        .map_err(|e| e.to_string())
        .and_then(|cfg| crate::data::open(&cfg.common.data, "train").map_err(|e| e.to_string()));
    match from_data {
        Ok(ds) => Ok(Some(ds.classes().clone())),
        Err(e) => {
            log.push(format!(
                "no {} and the run's dataset does not open ({e}): classes are numbered",
                crate::train::rundir::CLASSES_FILE
            ));
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An old-style run directory whose IoU object is in name order: the class table puts it
    /// back in id order, and names follow ids, not the alphabet.
    #[test]
    fn loaded_classes_follow_ids_not_names() {
        let dir = std::env::temp_dir().join(format!("advseg_hist_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("metrics.jsonl"),
            concat!(
                r#"{"type":"step","step":10,"it_per_s":5.0,"loss_seg":1.0}"#,
                "\n",
                r#"{"type":"step","step":20,"it_per_s":10.0,"loss_seg":0.5}"#,
                "\n",
                r#"{"type":"eval","step":20,"split":"val","miou":0.5,"iou":{"background":0.9,"bar":0.1,"disc":0.7}}"#,
                "\n"
            ),
        )
        .unwrap();
        let c = ClassInfo::new(
            &["background", "disc", "bar"],
            &[[0, 0, 0], [128, 0, 0], [0, 128, 0]],
            255,
        );
        crate::train::rundir::write_classes(&dir, &c).unwrap();
        let h = History::load_run(&dir, None).unwrap();
        assert_eq!(h.class_names(3), vec!["background", "disc", "bar"]);
        let iou: Vec<_> = h.evals[0].per_class_iou.iter().map(|x| x.1).collect();
        assert_eq!(iou, vec![Some(0.9), Some(0.7), Some(0.1)]);
        // 10 steps at 5 it/s, then 10 at 10 it/s.
        assert_eq!(h.times, vec![[10.0, 2.0], [20.0, 3.0]]);
        assert_eq!(h.time_at(15.0), 2.5);
        let h = History::load_run(&dir, Some(10)).unwrap();
        assert!(h.evals.is_empty() && h.scalars["loss_seg"].len() == 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
